"""`gamedsl plot RUN_DIR`: the Figure-2 panel, densities at chosen steps beside the target."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Optional

import numpy as np
import typer

import gamedsl
from gamedsl.cli.output import out
from gamedsl.errors import CheckpointError, UsageError
from gamedsl.metrics.mixture import mixture_of
from gamedsl.plotting import save
from gamedsl.plotting.density import panel


def plot(
    run_dir: Annotated[Path, typer.Argument(help="A run directory of a 2-D game.", show_default=False)],
    steps: Annotated[Optional[str], typer.Option(help="Comma-separated steps, e.g. 0,5000,10000,20000 (default: four evenly spaced snapshots).")] = None,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="PNG to write (default RUN_DIR/figure2.png).")] = None,
) -> None:
    """Draw the density of the model's samples at chosen steps beside the target density, like
    the paper's Figure 2. Uses the snapshots a run saves every image_every steps."""
    snapshots = {int(m.group(1)): p for p in sorted((run_dir / "snapshots").glob("step_*.npy")) if (m := re.match(r"step_(\d+)\.npy", p.name))}
    if not snapshots:
        raise CheckpointError(f"{run_dir} has no snapshots/", hint="2-D games save them every image_every steps during `gamedsl solve`")
    try:
        meta = json.loads((run_dir / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{run_dir}/config.json is missing or damaged ({exc})") from None
    game = gamedsl.loads(meta["source"], meta["file"], meta["config"].get("divergences"))
    mixture = mixture_of(game)
    if mixture is None:
        raise UsageError("gamedsl plot draws 2-D mixtures; this game's data is not one")
    means, std = mixture
    available = sorted(snapshots)
    if steps:
        try:
            wanted = [int(s) for s in steps.split(",")]
        except ValueError:
            raise UsageError(f"--steps takes whole numbers separated by commas, got '{steps}'") from None
        chosen = [min(available, key=lambda a: abs(a - w)) for w in wanted]
    else:
        idx = np.linspace(0, len(available) - 1, min(4, len(available))).round().astype(int)
        chosen = [available[i] for i in idx]
    fig = panel([(s, np.load(snapshots[s])) for s in chosen], means.numpy(), std, title=f"{game.name}: {meta['config']['solver']}")
    target = output or run_dir / "figure2.png"
    save(fig, target)
    out.print(f"wrote {target} (steps {', '.join(f'{s:,}' for s in chosen)})", markup=False)
