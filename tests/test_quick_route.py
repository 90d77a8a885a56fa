"""The quick route for `gamedsl check` (gamedsl/cli/quick.py) is the typer command, faster.

The independent truth is the typer route itself: for every argument list the quick route
takes, both routes run in this process and must print the same stdout and stderr and exit
with the same code. Argument lists the quick route must leave to typer (help, unknown
options, no file) are checked to be declined without a side effect. A fresh interpreter shows
that the quick route imports neither typer nor pydantic.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from gamedsl.cli import quick
from gamedsl.cli.app import build
from tests.conftest import ROOT

INVALID = "tests/invalid/004_missing_equals.game"


def _typer(args: list[str]) -> int:
    try:
        build(args)(args, standalone_mode=True)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def _quick(args: list[str]) -> int:
    code = quick.route(args)
    assert code is not None, f"the quick route declined {args}"
    return code


@pytest.fixture
def big(tmp_path):
    path = tmp_path / "big.game"
    path.write_text("game big\n" + "# padding\n" * 120_000, encoding="utf-8")
    return str(path)


@pytest.fixture
def warned(tmp_path):
    """A valid game with a warning (an unused latent)."""
    text = (ROOT / "games/mog.game").read_text(encoding="utf-8") + "\nlatent unused ~ normal(2)\n"
    path = tmp_path / "warned.game"
    path.write_text(text, encoding="utf-8")
    return str(path)


CASES = {
    "one file": ["check", "games/mog.game"],
    "json first": ["check", "--json", "games/mog.game"],
    "json last, two files": ["check", "games/mog.game", "games/bilinear.game", "--json"],
    "invalid": ["check", INVALID],
    "invalid as json": ["check", INVALID, "--json"],
    "valid then invalid": ["check", "games/mog.game", INVALID],
    "missing file": ["check", "no/such.game"],
    "a directory": ["check", "games"],
    "json twice": ["check", "--json", "games/mog.game", "--json"],
}


@pytest.mark.parametrize("args", list(CASES.values()), ids=list(CASES))
def test_both_routes_print_the_same_and_exit_alike(args, capsys):
    typer_code = _typer(args)
    typer_out = capsys.readouterr()
    quick_code = _quick(args)
    quick_out = capsys.readouterr()
    assert (quick_code, quick_out.out, quick_out.err) == (typer_code, typer_out.out, typer_out.err)
    assert typer_out.out or typer_out.err


def test_version_alike(capsys):
    typer_code = _typer(["--version"])
    typer_out = capsys.readouterr()
    assert (_quick(["--version"]), capsys.readouterr()) == (typer_code, typer_out)
    assert typer_out.out.startswith("gamedsl ") and typer_code == 0


@pytest.mark.parametrize("fixture", ["big", "warned"])
def test_limits_and_warnings_alike(fixture, request, capsys):
    args = ["check", request.getfixturevalue(fixture)]
    typer_code = _typer(args)
    typer_out = capsys.readouterr()
    quick_code = _quick(args)
    quick_out = capsys.readouterr()
    assert (quick_code, quick_out.out, quick_out.err) == (typer_code, typer_out.out, typer_out.err)
    assert typer_out.err, "the case should say something on stderr"
    assert typer_code == (7 if fixture == "big" else 0)


@pytest.mark.parametrize(
    "args",
    [[], ["check"], ["check", "--json"], ["check", "--help"], ["check", "-h", "games/mog.game"],
     ["check", "--jsn", "games/mog.game"], ["check", "--", "games/mog.game"], ["check", "-"],
     ["--version", "check"], ["--help"], ["solve", "games/mog.game"], ["solvers"]],
)  # fmt: skip
def test_everything_else_is_left_to_typer(args, capsys):
    assert quick.route(args) is None
    assert capsys.readouterr() == ("", "")


PROBE = """
import contextlib, io, json, sys
from gamedsl.cli.app import main
sys.argv = ["gamedsl", *json.loads(sys.argv[1])]
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main()
    except SystemExit:
        pass
print(json.dumps(sorted(m for m in ("typer", "pydantic", "click", "torch") if m in sys.modules)))
"""


@pytest.mark.parametrize("args", [["check", "games/mog.game"], ["check", "games/mog.game", "--json"], ["--version"]])
def test_the_quick_route_imports_no_typer(args):
    result = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args)], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


@pytest.mark.parametrize("args", [["check", "games/mog.game"], ["--version"]], ids=["check", "version"])
def test_a_closed_pipe_ends_quietly_with_1_as_typer_does(args):
    """`gamedsl check ... | head -0`: the reader is gone before a byte is written. No
    traceback, exit 1, as the typer route does."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run([sys.executable, "-m", "gamedsl", *args], cwd=ROOT, stdout=write_end,
                                stderr=subprocess.PIPE, text=True, timeout=120)  # fmt: skip
    finally:
        os.close(write_end)
    assert (result.returncode, result.stderr) == (1, "")
