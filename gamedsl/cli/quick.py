"""The quick route: `gamedsl check FILE... [--json]` and `gamedsl --version` without typer.

`gamedsl check` runs whenever a .game file is saved (editors, pre-commit hooks) and should
answer within half a second. Starting typer costs 0.2–0.3 s on its own (its import, and
pydantic adapters built for the options at each call), as much as reading, parsing and
checking a game. So an argument list made only of the word `check`, file names and `--json`
is run here directly, as is `--version` alone. Anything else (`--help`, an unknown option, a
name starting with '-', no file at all) goes to typer, which owns the help and every usage
error. The two routes print the same bytes and exit with the same codes:
`tests/test_quick_route.py` runs both on the same arguments and compares them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

COMMAND = "check"
VERSION_FLAG = "--version"  # `root.py` declares it to typer


def version_line() -> str:
    """The versions, read from the installed metadata: printing them imports no torch."""
    from importlib.metadata import PackageNotFoundError, version

    from gamedsl import __version__

    try:
        torch_version = version("torch")
    except PackageNotFoundError:
        torch_version = "not installed"
    return f"gamedsl {__version__} (torch {torch_version})"


def _print_version() -> int:
    print(version_line())
    return 0


def route(args: list[str]) -> int | None:
    """Run `args` if the quick route takes them, and return the exit code; None if it does
    not take them (typer must)."""
    command = _command(args)
    if command is None:
        return None
    try:
        return command()
    except BrokenPipeError:  # the reader went away (`... | head -1`): quietly 1, as typer does
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's last flush must not fail again
        return 1


def _command(args: list[str]) -> Callable[[], int] | None:
    """What the quick route would run for `args`, or None."""
    if "_GAMEDSL_COMPLETE" in os.environ:  # typer's shell completion
        return None
    if args == [VERSION_FLAG]:
        return _print_version
    if not args or args[0] != COMMAND:
        return None
    from gamedsl.cli.check_report import JSON_FLAG, run

    files = [arg for arg in args[1:] if arg != JSON_FLAG]
    if not files or any(arg.startswith("-") for arg in files):
        return None
    return lambda: int(run([Path(f) for f in files], as_json=JSON_FLAG in args))
