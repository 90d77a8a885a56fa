"""Adam (Kingma and Ba 2015) applied to an ascent direction, with bias correction."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from solvers.optimizers.base import OPTIMIZERS, Optimizer, zeros_like
from solvers.registry import param


@OPTIMIZERS.register
@dataclass
class Adam(Optimizer):
    name = "adam"
    summary = "Adam with bias correction"
    lr: float = param(1e-4, "learning rate")
    beta1: float = param(0.9, "decay of the first moment")
    beta2: float = param(0.999, "decay of the second moment")
    eps: float = param(1e-8, "added to the root of the second moment")

    def init(self, params):
        return {
            "exp_avg": zeros_like(params),
            "exp_avg_sq": zeros_like(params),
            "step": [torch.zeros((), dtype=torch.float64) for _ in params],
        }

    @torch.no_grad()
    def step_(self, params, direction, state):
        steps = state["step"]
        torch._foreach_add_(steps, 1.0)
        t = float(steps[0])  # the players step together; all counters of a call agree
        torch._foreach_lerp_(state["exp_avg"], direction, 1 - self.beta1)
        torch._foreach_mul_(state["exp_avg_sq"], self.beta2)
        torch._foreach_addcmul_(state["exp_avg_sq"], direction, direction, value=1 - self.beta2)
        denom = torch._foreach_sqrt(state["exp_avg_sq"])
        torch._foreach_div_(denom, (1 - self.beta2**t) ** 0.5)
        torch._foreach_add_(denom, self.eps)
        torch._foreach_addcdiv_(params, state["exp_avg"], denom, value=self.lr / (1 - self.beta1**t))
