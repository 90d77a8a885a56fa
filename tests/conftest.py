"""Shared test helpers: the CLI in-process (fast) or as a real subprocess (end to end)."""

from __future__ import annotations

import os
import subprocess
import sys

os.environ.setdefault("COLUMNS", "200")  # before gamedsl's rich consoles read the terminal width
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def float64_default():
    """Tests that compare against theory run in float64; the default dtype is restored after."""
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


def run_cli(*args, cwd: Path | None = None, timeout: float = 300, env: dict | None = None) -> CliResult:
    """Run `python -m gamedsl ARGS` in a subprocess, exactly as a user would."""
    environment = dict(os.environ, OMP_NUM_THREADS="1", COLUMNS="200", **(env or {}))
    proc = subprocess.run(
        [sys.executable, "-m", "gamedsl", *map(str, args)],
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli(capsys, monkeypatch):
    """Run the `gamedsl` entry point in this process (same code path as the console script)."""
    from gamedsl.cli.app import main

    monkeypatch.chdir(ROOT)

    def run(*args) -> CliResult:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["gamedsl", *map(str, args)])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def pytest_configure(config):
    """One intra-op thread per test process: the suite runs with -n 2 on 2 cores."""
    import torch

    torch.set_num_threads(1)
