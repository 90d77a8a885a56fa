"""The top of the `gamedsl` command: its help text (with the exit codes) and --version."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from gamedsl.cli.quick import VERSION_FLAG, version_line


def _version(value: bool) -> None:
    if value:
        typer.echo(version_line())
        raise typer.Exit()


def root(
    version: Annotated[
        Optional[bool], typer.Option(VERSION_FLAG, callback=_version, is_eager=True, help="Show the version and exit.")
    ] = None,
) -> None:
    """Declare smooth two-player games (GANs above all) in .game files, check them, solve them and analyse them.

    Exit codes: 0 ok, 1 goal not reached, 2 bad usage, 3 invalid game file, 4 missing or
    malformed data, 5 bad checkpoint, 6 run diverged, 7 input beyond a safety limit,
    8 beyond symbolic analysis, 9 a distributed peer failed, 10 an output could not be
    written (disk full, read-only), 130 interrupted (a checkpoint was saved).
    """
