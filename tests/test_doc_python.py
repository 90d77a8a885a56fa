"""Every ```python block in README.md and docs/*.md runs, each in a fresh interpreter."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```python\s*\n(.*?)^```", re.S | re.M)


def blocks():
    for page in PAGES:
        text = page.read_text()
        for match in FENCE.finditer(text):
            line = text[: match.start()].count("\n") + 1
            yield pytest.param(match.group(1), id=f"{page.name}:{line}")


@pytest.mark.parametrize("code", list(blocks()))
def test_python_examples_run(code, tmp_path):
    script = tmp_path / "example.py"
    script.write_text(code)
    result = subprocess.run(
        [sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT)),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
