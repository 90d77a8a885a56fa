"""The `gamedsl` command and its error policy.

Every expected error is a `GameError`: it is printed as `path:line:col: error: ...` with
the source line, a caret and a hint, and the process exits with the error's code (see
`gamedsl.errors.ExitCode`, documented in README.md). Nothing else is caught here: a
traceback means a bug in gamedsl.
"""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from gamedsl import __version__
from gamedsl.cli import analyze as analyze_cmd
from gamedsl.cli import check as check_cmd
from gamedsl.cli import solve as solve_cmd
from gamedsl.cli import plot as plot_cmd
from gamedsl.cli import sample as sample_cmd
from gamedsl.cli import solvers_list
from gamedsl.cli import spectrum as spectrum_cmd
from gamedsl.cli import sweep as sweep_cmd
from gamedsl.cli.output import err
from gamedsl.errors import ExitCode, GameError

app = typer.Typer(
    name="gamedsl",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)


def _version(value: bool) -> None:
    if value:
        import solvers
        import torch

        typer.echo(f"gamedsl {__version__} (solvers {solvers.__version__}, torch {torch.__version__})")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        Optional[bool], typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = None,
) -> None:
    """Declare smooth two-player games (GANs above all) in .game files, check them, solve them and analyse them.

    Exit codes: 0 ok, 1 goal not reached, 2 bad usage, 3 invalid game file, 4 missing or
    malformed data, 5 bad checkpoint, 6 run diverged, 7 input beyond a safety limit,
    8 beyond symbolic analysis, 9 a distributed peer failed, 130 interrupted (a checkpoint
    was saved).
    """


app.command("check")(check_cmd.check)
app.command("solve")(solve_cmd.solve)
app.command("solvers")(solvers_list.list_solvers)
app.command("spectrum")(spectrum_cmd.spectrum)
app.command("plot")(plot_cmd.plot)
app.command("sweep")(sweep_cmd.sweep)
app.command("sample")(sample_cmd.sample)
app.command("analyze")(analyze_cmd.analyze)


def main() -> None:
    try:
        app(standalone_mode=True)
    except GameError as exc:
        err.print(exc.render(), markup=False, highlight=False)
        sys.exit(int(exc.code))
    except KeyboardInterrupt:
        err.print("interrupted", markup=False)
        sys.exit(int(ExitCode.INTERRUPTED))
