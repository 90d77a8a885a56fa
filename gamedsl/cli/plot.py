"""`gamedsl plot RUN_DIR`: the Figure-2 panel, densities at chosen steps beside the target (any 2-D game).

numpy, torch and matplotlib are imported by the command, not by this module: `gamedsl --help`
imports every command module and must start at once.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Optional

import typer

from gamedsl.cli.output import err, out
from gamedsl.errors import CheckpointError, UsageError
from gamedsl.training import rundir


def plot(
    run_dir: Annotated[Path, typer.Argument(help="A run directory of a 2-D game.", show_default=False)],
    steps: Annotated[Optional[str], typer.Option(help="Comma-separated steps, e.g. 0,5000,10000,20000 (default: four evenly spaced snapshots).")] = None,
    output: Annotated[
        Optional[Path],
        typer.Option("--output", "-o", help="Picture to write: .png, .pdf, .svg, ... (default RUN_DIR/figure2.png)."),
    ] = None,
) -> None:
    """Draw the density of the model's samples at chosen steps beside the target density, like
    the paper's Figure 2. Uses the snapshots a run saves every image_every steps. The target
    is a mixture's modes (ring, grid) or, for other 2-D data, the real samples the run saved
    in snapshots/real.npy."""
    from gamedsl.library.signature import show_shape
    from gamedsl.metrics.mixture import mixture_of
    from gamedsl.plotting import check_target, save
    from gamedsl.plotting.density import Target, is_2d, panel
    from gamedsl.training import saved

    if output is not None:
        check_target(output)
        rundir.output_file(output, (output.suffix.lower(),), "-o")
    run_dir = rundir.existing(run_dir)
    run = saved.load(run_dir)
    if not is_2d(run.game):
        comparison = run.game.comparison
        shape = None if comparison is None else show_shape(comparison[1].shape)
        what = "compares no model with data" if shape is None else f"has samples {'of ' * shape.startswith('shape')}{shape}"
        raise UsageError(f"gamedsl plot draws games whose samples are 2-D points; this game {what}")
    folder = run_dir / "snapshots"
    snapshots = {int(m.group(1)): p for p in sorted(folder.glob("step_*.npy")) if (m := re.fullmatch(r"step_(\d+)\.npy", p.name))}
    if not snapshots or folder.is_symlink():
        raise CheckpointError(f"{run_dir} has no snapshots/", hint="2-D games save them every image_every steps during `gamedsl solve`")
    mixture = mixture_of(run.game)
    target = Target.of_mixture(*mixture) if mixture is not None else Target(samples=_snapshot(folder / "real.npy"))
    available = sorted(snapshots)
    chosen = _chosen(steps, available) if steps else _spread(available)
    fig = panel([(s, _snapshot(snapshots[s])) for s in chosen], target, title=f"{run.game.name}: {run.config.solver}")
    picture = output or run_dir / "figure2.png"
    save(fig, picture)
    out.print(f"wrote {picture} (steps {', '.join(f'{s:,}' for s in chosen)})", markup=False)


def _snapshot(path: Path) -> np.ndarray:
    """A saved snapshot: finite 2-D points, read without unpickling (exit 5 if damaged)."""
    import numpy as np

    with rundir.open_regular(path) as handle:
        try:
            points = np.load(handle, allow_pickle=False)
        except (ValueError, OSError, EOFError):
            raise CheckpointError(f"{path} is damaged: not a NumPy array of numbers") from None
    if points.ndim != 2 or points.shape[1] != 2 or not np.isfinite(points).all():
        raise CheckpointError(f"{path} is damaged: expected finite 2-D points, got an array of shape {points.shape}")
    return points


def _spread(available: list[int]) -> list[int]:
    """Four snapshots evenly spaced over the run (fewer if it has fewer)."""
    import numpy as np

    idx = np.linspace(0, len(available) - 1, min(4, len(available))).round().astype(int)
    return [available[i] for i in idx]


def _chosen(text: str, available: list[int]) -> list[int]:
    """The snapshots of `--steps`: a step between two snapshots is shown by the nearest one, and
    says so; a step before the first or after the last snapshot is refused."""
    try:
        wanted = [int(s) for s in text.split(",")]
    except ValueError:
        raise UsageError(f"--steps takes whole numbers separated by commas, got '{text}'") from None
    outside = [w for w in wanted if not available[0] <= w <= available[-1]]
    if outside:
        raise UsageError(
            f"--steps {', '.join(f'{w:,}' for w in outside)}: the run has snapshots from step {available[0]:,} "
            f"to step {available[-1]:,} only",
            hint=f"snapshot steps: {_listing(available)}",
        )
    chosen = [min(available, key=lambda a: abs(a - w)) for w in wanted]
    for w, c in zip(wanted, chosen):
        if w != c:
            err.print(f"note: no snapshot at step {w:,}; showing step {c:,}, the nearest", markup=False)
    return chosen


def _listing(steps: list[int]) -> str:
    """All snapshot steps, or a long regular series as a range: '0 to 50,000 every 1,000'."""
    if len(steps) > 12:
        body, last = (steps, None) if _even(steps) else (steps[:-1], steps[-1])  # a run's last step may be off the grid
        if _even(body):
            rest = f" and {last:,}" if last is not None else ""
            return f"{body[0]:,} to {body[-1]:,} every {body[1] - body[0]:,}{rest}"
    return ", ".join(f"{s:,}" for s in steps)


def _even(steps: list[int]) -> bool:
    return len({b - a for a, b in zip(steps, steps[1:])}) == 1
