"""Pictures people would rather look at than read: densities, spectra, sample grids.

Figures are built with matplotlib's object API and rendered by the Agg canvas, so nothing
depends on a display or a global backend; `to_array` gives an RGB array for TensorBoard.
"""

from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from gamedsl.errors import UsageError


def to_array(fig: Figure) -> np.ndarray:
    """RGB uint8 array (H, W, 3) of a rendered figure."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def save(fig: Figure, path) -> Path:
    """Write the figure atomically, in the format its extension names (checked by `check_target`)."""
    from gamedsl.training.rundir import write_atomic

    FigureCanvasAgg(fig)
    path = Path(path)
    return write_atomic(path, lambda handle: fig.savefig(handle, format=path.suffix.lower().lstrip(".") or "png"))


def check_target(path: Path, option: str = "-o") -> None:
    """Refuse, before any work, a file name whose extension matplotlib cannot write (it would
    raise only at the end, or append .png to a name without one)."""
    formats = sorted(set(FigureCanvasAgg.get_supported_filetypes()) - {"pgf"})  # pgf needs a LaTeX installation
    if Path(path).suffix.lower().lstrip(".") not in formats:
        raise UsageError(
            f"{option} '{path}': a picture needs one of the extensions " + ", ".join(f".{f}" for f in formats),
            hint="for example -o figure.png or -o figure.pdf",
        )
