"""The `gamedsl` command and its error policy.

Every expected error is a `GameError`: it is printed as `path:line:col: error: ...` with
the source line, a caret and a hint, and the process exits with the error's code (see
`gamedsl.errors.ExitCode`, documented in README.md). Nothing else is caught here: a
traceback means a bug in gamedsl.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING

from gamedsl.cli import quick
from gamedsl.errors import ExitCode, GameError
from gamedsl.training import stopping

if TYPE_CHECKING:
    import typer


COMMANDS = {  # name -> the module and function that implement it, imported only when needed
    "check": ("gamedsl.cli.check", "check"),
    "solve": ("gamedsl.cli.solve", "solve"),
    "solvers": ("gamedsl.cli.solvers_list", "list_solvers"),
    "spectrum": ("gamedsl.cli.spectrum", "spectrum"),
    "plot": ("gamedsl.cli.plot", "plot"),
    "sweep": ("gamedsl.cli.sweep", "sweep"),
    "sample": ("gamedsl.cli.sample", "sample"),
    "analyze": ("gamedsl.cli.analyze", "analyze"),
}


def build(args: list[str] | None = None) -> "typer.Typer":
    """The command-line application for the arguments `args`. Built on demand, after the signal
    handlers are in place, because importing the commands takes a moment that a Ctrl-C may
    interrupt. When `args` name a command, only that command is imported and registered
    (typer reads the signature of every registered command at each call, and `gamedsl check`
    is meant to start at once); the overall help and an unknown command get them all."""
    import typer

    from gamedsl.cli import root

    named = next((arg for arg in args or [] if not arg.startswith("-")), None)
    app = typer.Typer(
        name="gamedsl",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode="markdown",
    )
    app.callback()(root.root)
    for name in [named] if named in COMMANDS else COMMANDS:
        module, function = COMMANDS[name]
        app.command(name)(getattr(importlib.import_module(module), function))
    return app


def main() -> None:
    stopping.install()  # first thing: a signal during start-up is one line and exit 130
    try:
        code = quick.route(sys.argv[1:])
        if code is None:
            build(sys.argv[1:])(standalone_mode=True)
        elif code:
            sys.exit(code)
    except GameError as exc:
        _say(exc.render())
        sys.exit(int(exc.code))
    except (KeyboardInterrupt, stopping.Interrupt) as exc:
        _say(f"interrupted{f' ({exc})' if str(exc) else ''}")
        sys.exit(int(ExitCode.INTERRUPTED))


def _say(text: str) -> None:
    """One message on stderr; in a data-parallel run only rank 0 says it (the launcher
    speaks for a rank that stopped alone)."""
    if os.environ.get("RANK", "0") == "0":
        sys.stderr.write(text + "\n")
