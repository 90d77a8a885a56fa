"""Adam (Kingma and Ba 2015) applied to an ascent direction, with bias correction."""

from __future__ import annotations

from dataclasses import dataclass

from solvers.optimizers.base import OPTIMIZERS, Optimizer
from solvers.registry import param


@OPTIMIZERS.register
@dataclass
class Adam(Optimizer):
    name = "adam"
    summary = "Adam with bias correction"
    lr: float = param(1e-4, "learning rate", "(0, 1e3]")
    beta1: float = param(0.9, "decay of the first moment", "[0, 1)")
    beta2: float = param(0.999, "decay of the second moment", "[0, 1)")
    eps: float = param(1e-8, "added to the root of the second moment", "(0, 1]")

    def init(self, params):
        import torch

        from solvers import vec

        return {
            "exp_avg": vec.zeros_like(params),
            "exp_avg_sq": vec.zeros_like(params),
            "step": [torch.zeros((), dtype=torch.float64) for _ in params],
        }

    def step_(self, params, direction, state, lr):
        import torch

        from solvers import vec

        with torch.no_grad():
            steps = state["step"]
            for s in steps:
                s.add_(1.0)
            vec.ema_(state["exp_avg"], direction, self.beta1)
            vec.ema_square_(state["exp_avg_sq"], direction, self.beta2)
            # Each tensor is bias-corrected with its own count: the players of one call may
            # have taken different numbers of steps (critic steps move one player alone).
            # Eagerly, tensors with equal counts are corrected together; under torch.func
            # transforms and compiled, the counts stay tensors and each tensor is corrected alone.
            if vec.is_eager(params):
                counts: dict[float, list[int]] = {}
                for k, s in enumerate(steps):
                    counts.setdefault(float(s), []).append(k)
                parts = list(counts.items())
            else:
                parts = [(s, [k]) for k, s in enumerate(steps)]
            for t, ks in parts:
                pick = lambda tensors: [tensors[k] for k in ks]  # noqa: E731
                denom = vec.root(vec.scale(pick(state["exp_avg_sq"]), 1 / (1 - self.beta2**t)), self.eps)
                vec.add_ratio_(pick(params), pick(state["exp_avg"]), denom, lr / (1 - self.beta1**t))
