"""`gamedsl check FILE...`: validate games and summarise them (the typer command; what it
prints is `gamedsl/cli/check_report.py`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gamedsl.cli.check_report import JSON_FLAG, run


def check(
    files: Annotated[list[Path], typer.Argument(help="The .game files to check.", show_default=False)],
    as_json: Annotated[bool, typer.Option(JSON_FLAG, help="Print one JSON object per file instead of a summary.")] = False,
) -> None:
    """Check .game files and summarise each: players, what they control, data and latent.

    Exits with 3 if any file is invalid (7 if one exceeds a safety limit); every error is
    printed with its position, the source line and a hint.
    """
    worst = run(files, as_json)
    if worst:
        raise typer.Exit(int(worst))
