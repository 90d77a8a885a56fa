"""RMSProp (Tieleman and Hinton 2012), PyTorch's formulation, applied to an ascent direction.

The paper used TensorFlow 1's RMSProp with decay 0.9 and epsilon 1e-10; write
`rmsprop(lr=1e-4, alpha=0.9, eps=1e-10)` to match. TensorFlow also put epsilon inside the
square root (immaterial at 1e-10) and started the running average at 1 instead of 0, which
only changes the first few dozen steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from solvers.optimizers.base import OPTIMIZERS, Optimizer, zeros_like
from solvers.registry import param


@OPTIMIZERS.register
@dataclass
class RMSProp(Optimizer):
    name = "rmsprop"
    summary = "RMSProp, PyTorch formulation (TF: alpha=0.9, eps=1e-10)"
    lr: float = param(1e-4, "learning rate")
    alpha: float = param(0.99, "decay of the running mean of squares (TensorFlow calls it decay)")
    eps: float = param(1e-8, "added to the root mean square")
    momentum: float = param(0.0, "momentum on the scaled step")
    centered: bool = param(False, "divide by the centred second moment (the running variance)")

    def init(self, params):
        state = {"square_avg": zeros_like(params)}
        if self.momentum:
            state["momentum_buffer"] = zeros_like(params)
        if self.centered:
            state["grad_avg"] = zeros_like(params)
        return state

    @torch.no_grad()
    def step_(self, params, direction, state):
        square = state["square_avg"]
        torch._foreach_mul_(square, self.alpha)
        torch._foreach_addcmul_(square, direction, direction, value=1 - self.alpha)
        if self.centered:
            mean = state["grad_avg"]
            torch._foreach_lerp_(mean, direction, 1 - self.alpha)
            denom = torch._foreach_addcmul(square, mean, mean, value=-1)
            torch._foreach_sqrt_(denom)
        else:
            denom = torch._foreach_sqrt(square)
        torch._foreach_add_(denom, self.eps)
        if self.momentum:
            buf = state["momentum_buffer"]
            torch._foreach_mul_(buf, self.momentum)
            torch._foreach_addcdiv_(buf, direction, denom)
            torch._foreach_add_(params, buf, alpha=self.lr)
        else:
            torch._foreach_addcdiv_(params, direction, denom, value=self.lr)
