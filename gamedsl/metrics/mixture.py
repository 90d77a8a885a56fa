"""Mode metrics for 2-D Gaussian mixtures, the protocol of the PacGAN and VEEGAN tables.

With 2,500 generated samples: a sample is *high quality* if it lies within 3 standard
deviations of its nearest mode; a mode is *covered* if at least one high-quality sample is
nearest to it; the *reverse KL* is KL(h || uniform) for the histogram h of high-quality
samples over modes (infinite when there are none).
"""

from __future__ import annotations

import math

import torch


def mixture_of(game) -> tuple[torch.Tensor, float] | None:
    """(means, std) when the game's real data (the `real` side of its divergence) is a 2-D
    Gaussian mixture such as ring(...) or grid(...), else None."""
    from gamedsl.data.sources import SOURCES
    from gamedsl.semantics import ir

    if game.comparison is None or not isinstance(game.comparison[0], ir.Sample):
        return None
    info = game.samples[game.comparison[0].name]
    source = SOURCES[info.source]
    return source.mixture(info.args) if source.mixture else None


def mixture_metrics(samples: torch.Tensor, means: torch.Tensor, std: float) -> dict[str, float]:
    samples = samples.detach().to(torch.float64).cpu()
    means = means.to(torch.float64).cpu()
    distances = torch.cdist(samples, means)
    nearest_distance, nearest = distances.min(dim=1)
    good = nearest_distance <= 3 * std
    counts = torch.bincount(nearest[good], minlength=len(means)).to(torch.float64)
    total = float(counts.sum())
    if total:
        p = counts / total
        nonzero = p > 0
        reverse_kl = float((p[nonzero] * torch.log(p[nonzero] * len(means))).sum())
    else:
        reverse_kl = math.inf
    return {
        "modes": int((counts > 0).sum()),
        "modes_total": len(means),
        "high_quality": float(good.double().mean()),
        "reverse_kl": reverse_kl,
        "samples": len(samples),
    }
