"""Pictures people would rather look at than read: densities, spectra, sample grids.

Figures are built with matplotlib's object API and rendered by the Agg canvas, so nothing
depends on a display or a global backend; `to_array` gives an RGB array for TensorBoard.
"""

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def to_array(fig: Figure) -> np.ndarray:
    """RGB uint8 array (H, W, 3) of a rendered figure."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def save(fig: Figure, path) -> None:
    FigureCanvasAgg(fig)
    fig.savefig(path)
