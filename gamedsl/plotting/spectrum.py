"""Eigenvalues in the complex plane, as in the paper's Figure 3: v' on the left, w' on the right."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure


def spectrum_figure(rows: list[tuple[str, np.ndarray, np.ndarray]], gamma: float) -> Figure:
    """One row per (label, eigenvalues of v', eigenvalues of w')."""
    fig = Figure(figsize=(8, 3.2 * len(rows)), dpi=100)
    axes = fig.subplots(len(rows), 2, squeeze=False)
    for (label, ev, ew), (left, right) in zip(rows, axes):
        for ax, eig, name in ((left, ev, "v'(x)"), (right, ew, f"w'(x) = v' - {gamma:g} v'ᵀv'")):
            ax.axvline(0, color="0.7", lw=0.8)
            ax.axhline(0, color="0.7", lw=0.8)
            ax.scatter(eig.real, eig.imag, s=6, alpha=0.6, color="tab:blue" if ax is left else "tab:red", lw=0)
            ax.set_title(f"{label}: {name}", fontsize=9)
            ax.set_xlabel("Re λ", fontsize=8)
            ax.set_ylabel("Im λ", fontsize=8)
            ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig
