"""Densities of 2-D samples over the target, as in the paper's Figure 2."""

from __future__ import annotations

import numpy as np
from matplotlib.colors import PowerNorm
from matplotlib.figure import Figure
from scipy.ndimage import gaussian_filter

RESOLUTION = 200


def extent_of(means: np.ndarray, std: float) -> tuple[float, float, float, float]:
    lo, hi = means.min(0) - 0.5 - 5 * std, means.max(0) + 0.5 + 5 * std
    half = max(hi - lo) / 2
    centre = (lo + hi) / 2
    return (centre[0] - half, centre[0] + half, centre[1] - half, centre[1] + half)


def density(samples: np.ndarray, extent, sigma_pixels: float = 1.5) -> np.ndarray:
    """A smoothed 2-D histogram (rows = y, columns = x), normalised to sum to 1."""
    x0, x1, y0, y1 = extent
    hist, _, _ = np.histogram2d(samples[:, 1], samples[:, 0], bins=RESOLUTION, range=[[y0, y1], [x0, x1]])
    hist = gaussian_filter(hist, sigma_pixels)
    total = hist.sum()
    return hist / total if total else hist


def target_density(means: np.ndarray, std: float, extent) -> np.ndarray:
    x0, x1, y0, y1 = extent
    xs, ys = np.linspace(x0, x1, RESOLUTION), np.linspace(y0, y1, RESOLUTION)
    gx, gy = np.meshgrid(xs, ys)
    # widen very narrow modes to at least a couple of pixels so they stay visible
    s = max(std, 2 * (x1 - x0) / RESOLUTION)
    d2 = (gx[..., None] - means[:, 0]) ** 2 + (gy[..., None] - means[:, 1]) ** 2
    return np.exp(-d2 / (2 * s * s)).sum(-1)


def panel(snapshots: list[tuple[int, np.ndarray]], means: np.ndarray, std: float, title: str = "") -> Figure:
    """One square per snapshot (its step above it) and the target density in red, left to right."""
    extent = extent_of(means, std)
    n = len(snapshots) + 1
    fig = Figure(figsize=(2.2 * n, 2.5), dpi=100)
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, (step, samples) in zip(axes, snapshots):
        # a square-root scale keeps modes with little mass visible beside dominant ones
        ax.imshow(density(samples, extent), origin="lower", extent=extent, cmap="viridis", norm=PowerNorm(0.5))
        ax.set_title(f"step {step:,}", fontsize=9)
    axes[-1].imshow(target_density(means, std, extent), origin="lower", extent=extent, cmap="Reds")
    axes[-1].set_title("target", fontsize=9)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
