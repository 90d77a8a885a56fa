"""Densities of 2-D samples over the target, as in the paper's Figure 2.

The target, drawn in red, is a Gaussian mixture (ring, grid: drawn from its means and
spread) or, for any other 2-D data (toy sets, points files), the smoothed histogram of
samples of the real data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from matplotlib.colors import PowerNorm
from matplotlib.figure import Figure
from scipy.ndimage import gaussian_filter

RESOLUTION = 200
TARGET_SAMPLES = 20_000  # real samples behind the target density of data that are not a mixture

Extent = tuple[float, float, float, float]
UNIT: Extent = (-1.0, 1.0, -1.0, 1.0)


@dataclass(frozen=True)
class Target:
    """What a picture shows in red: a mixture's `means` (M, 2) and `std`, or `samples` (N, 2) of the real data."""

    means: np.ndarray | None = None
    std: float = 0.0
    samples: np.ndarray | None = None

    @classmethod
    def of_mixture(cls, means, std: float) -> "Target":
        return cls(means=np.asarray(means, dtype=np.float64), std=float(std))

    def extent(self) -> Extent:
        """A square around the target, with a margin; the unit square when the target has no
        finite extent (real data of 1e308 or NaN: the picture is drawn, empty, not refused)."""
        with np.errstate(over="ignore", invalid="ignore"):
            if self.means is not None:
                lo, hi = self.means.min(0) - 0.5 - 5 * self.std, self.means.max(0) + 0.5 + 5 * self.std
            else:  # the bulk of the samples (a few outliers do not blow the picture up), plus a tenth on each side
                samples = finite(self.samples)
                if not len(samples):
                    return UNIT
                lo, hi = np.quantile(samples, 0.001, axis=0), np.quantile(samples, 0.999, axis=0)
                size = max(float((hi - lo).max()), 1e-3 * max(1.0, float(np.abs([lo, hi]).max())))  # never 0
                lo, hi = lo - 0.1 * size, hi + 0.1 * size
            half = max(hi - lo) / 2
            centre = (lo + hi) / 2
            extent = (centre[0] - half, centre[0] + half, centre[1] - half, centre[1] + half)
            usable = np.isfinite([*extent, extent[1] - extent[0]]).all() and extent[0] < extent[1] and extent[2] < extent[3]
            return extent if usable else UNIT

    def density(self, extent: Extent) -> np.ndarray:
        if self.means is None:
            return density(self.samples, extent)
        x0, x1, y0, y1 = extent
        xs, ys = np.linspace(x0, x1, RESOLUTION), np.linspace(y0, y1, RESOLUTION)
        gx, gy = np.meshgrid(xs, ys)
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            # widen very narrow modes to at least a couple of pixels so they stay visible
            s = max(self.std, 2 * (x1 - x0) / RESOLUTION)
            d2 = (gx[..., None] - self.means[:, 0]) ** 2 + (gy[..., None] - self.means[:, 1]) ** 2
            return np.exp(-d2 / (2 * s * s)).sum(-1)


def target(mixture: tuple | None, draw: Callable) -> Target:
    """The target of a 2-D game: its mixture (means, std) when it has one, else
    TARGET_SAMPLES samples of its real data from `draw` (TorchGame.draw), from the fixed
    stream "target": the same samples for every picture of a run."""
    if mixture is not None:
        return Target.of_mixture(*mixture)
    return Target(samples=draw("real", TARGET_SAMPLES, "target").cpu().double().numpy())


def is_2d(game) -> bool:
    """Whether the model samples of a checked game are 2-D points (the games these pictures draw)."""
    return game.comparison is not None and tuple(game.comparison[1].shape) == (2,)


def finite(samples: np.ndarray) -> np.ndarray:
    """The rows of `samples` whose coordinates are all finite."""
    return samples[np.isfinite(samples).all(axis=1)]


def density(samples: np.ndarray, extent, sigma_pixels: float = 1.5) -> np.ndarray:
    """A smoothed 2-D histogram (rows = y, columns = x) of the finite samples, normalised to sum to 1."""
    x0, x1, y0, y1 = extent
    samples = finite(samples)
    hist, _, _ = np.histogram2d(samples[:, 1], samples[:, 0], bins=RESOLUTION, range=[[y0, y1], [x0, x1]])
    hist = gaussian_filter(hist, sigma_pixels)
    total = hist.sum()
    return hist / total if total else hist


def panel(snapshots: list[tuple[int, np.ndarray]], target: Target, title: str = "") -> Figure:
    """One square per snapshot (its step above it) and the target density in red, left to right."""
    extent = target.extent()
    n = len(snapshots) + 1
    fig = Figure(figsize=(2.2 * n, 2.5), dpi=100)
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, (step, samples) in zip(axes, snapshots):
        # a square-root scale keeps modes with little mass visible beside dominant ones
        ax.imshow(density(samples, extent), origin="lower", extent=extent, cmap="viridis", norm=PowerNorm(0.5))
        ax.set_title(f"step {step:,}", fontsize=9)
    norm = PowerNorm(0.5) if target.means is None else None  # samples: the same scale as the model's
    axes[-1].imshow(target.density(extent), origin="lower", extent=extent, cmap="Reds", norm=norm)
    axes[-1].set_title("target", fontsize=9)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
