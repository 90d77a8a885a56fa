"""The `gamedsl` command and its error policy.

Every expected error is a `GameError`: it is printed as `path:line:col: error: ...` with
the source line, a caret and a hint, and the process exits with the error's code (see
`gamedsl.errors.ExitCode`, documented in README.md). Nothing else is caught here: a
traceback means a bug in gamedsl.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from gamedsl.errors import ExitCode, GameError
from gamedsl.training import stopping

if TYPE_CHECKING:
    import typer


def build() -> "typer.Typer":
    """The command-line application. Built on demand, after the signal handlers are in place,
    because importing the commands takes a moment that a Ctrl-C may interrupt."""
    import typer

    from gamedsl.cli import analyze as analyze_cmd
    from gamedsl.cli import check as check_cmd
    from gamedsl.cli import plot as plot_cmd
    from gamedsl.cli import root
    from gamedsl.cli import sample as sample_cmd
    from gamedsl.cli import solve as solve_cmd
    from gamedsl.cli import solvers_list
    from gamedsl.cli import spectrum as spectrum_cmd
    from gamedsl.cli import sweep as sweep_cmd

    app = typer.Typer(
        name="gamedsl",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode="markdown",
    )
    app.callback()(root.root)
    app.command("check")(check_cmd.check)
    app.command("solve")(solve_cmd.solve)
    app.command("solvers")(solvers_list.list_solvers)
    app.command("spectrum")(spectrum_cmd.spectrum)
    app.command("plot")(plot_cmd.plot)
    app.command("sweep")(sweep_cmd.sweep)
    app.command("sample")(sample_cmd.sample)
    app.command("analyze")(analyze_cmd.analyze)
    return app


def main() -> None:
    stopping.install()  # first thing: a signal during start-up is one line and exit 130
    try:
        build()(standalone_mode=True)
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
