"""`gamedsl sample RUN_DIR -n 64 -o grid.png`: samples of a run's generator, from a fixed z."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from gamedsl.cli.output import err, out
from gamedsl.errors import UsageError
from gamedsl.training import rundir


def sample(
    run_dir: Annotated[Path, typer.Argument(help="A run directory (with checkpoint.pt).", show_default=False)],
    n: Annotated[int, typer.Option("-n", help="Number of samples.", min=1, max=100_000)] = 64,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="A .png grid (image games) or a .npy array (default RUN_DIR/grid.png).")] = None,
    nrow: Annotated[Optional[int], typer.Option(help="Images per row of the grid (default: a square).", min=1)] = None,
) -> None:
    """Draw n samples from the generator saved in RUN_DIR's checkpoint and write them as a PNG
    grid or a .npy array.

    The latent draws come from a fixed stream, the one the run's own grids
    (RUN_DIR/grids/step_*.png) use, so the same -n gives the same z for every checkpoint of
    a run and pictures of different steps are comparable. Images are written to .npy as
    uint8 (n, C, H, W), 0..255; other samples as float32 (n, ...). Needs no data set.
    """
    import numpy as np

    from gamedsl.data import images
    from gamedsl.semantics.model import network_footprint
    from gamedsl.training.session import Session, write_png

    run_dir = rundir.existing(run_dir)
    target = rundir.output_file(output, (".png", ".npy"), "-o") if output is not None else run_dir / "grid.png"
    suffix = target.suffix.lower()
    with images.deferred():  # the generator needs no data
        session = Session.resume(run_dir)
    for net in session.game.networks.values():
        values = network_footprint(net).norm_values
        if values and n * values < 2:
            raise UsageError(f"-n {n}: network '{net.name}' uses batch norm, which needs at least 2 values per channel",
                             hint=f"draw -n {-(-2 // values)} or more")
    image = session.image_shape() is not None
    fake = session.draw_fake(n, stream="grid")
    if fake is None:
        raise UsageError("this game compares no model with data (no divergence call), so it has no samples to draw")
    if suffix == ".png":
        if not image:
            raise UsageError(
                "a PNG grid needs an image game; this game's samples have shape "
                f"{list(fake.shape[1:]) or 'scalar'}",
                hint="write them with -o samples.npy, or draw 2-D densities with `gamedsl plot`",
            )
        from gamedsl.plotting.grid import image_grid

        write_png(target, image_grid(fake, nrow=nrow))
    else:
        array = (images.to_uint8(fake) if image else fake.float().cpu()).numpy()
        rundir.write_atomic(target, lambda handle: np.save(handle, array))
    err.print(f"step {session.run.step_count:,} of {session.game.name}", markup=False)
    out.print(f"wrote {target} ({n} samples)", markup=False)
