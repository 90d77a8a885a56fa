"""RMSProp (Tieleman and Hinton 2012), PyTorch's formulation, applied to an ascent direction.

The paper used TensorFlow 1's RMSProp with decay 0.9 and epsilon 1e-10; write
`rmsprop(lr=1e-4, alpha=0.9, eps=1e-10)` to match. TensorFlow also put epsilon inside the
square root (immaterial at 1e-10) and started the running average at 1 instead of 0, which
only changes the first few dozen steps.
"""

from __future__ import annotations

from dataclasses import dataclass

from solvers.optimizers.base import OPTIMIZERS, Optimizer
from solvers.registry import param


@OPTIMIZERS.register
@dataclass
class RMSProp(Optimizer):
    name = "rmsprop"
    summary = "RMSProp, PyTorch formulation (TF: alpha=0.9, eps=1e-10)"
    lr: float = param(1e-4, "learning rate", "(0, 1e3]")
    alpha: float = param(0.99, "decay of the running mean of squares (TensorFlow calls it decay)", "[0, 1)")
    eps: float = param(1e-8, "added to the root mean square", "(0, 1]")
    momentum: float = param(0.0, "momentum on the scaled step", "[0, 1)")
    centered: bool = param(False, "divide by the centred second moment (the running variance)")

    def init(self, params):
        from solvers import vec

        state = {"square_avg": vec.zeros_like(params)}
        if self.momentum:
            state["momentum_buffer"] = vec.zeros_like(params)
        if self.centered:
            state["grad_avg"] = vec.zeros_like(params)
        return state

    def step_(self, params, direction, state, lr):
        import torch

        from solvers import vec

        # the state's layout (made by `init`) decides the branches, so that the same code runs
        # when the hyperparameters are tensors (vectorised sweeps)
        with torch.no_grad():
            vec.ema_square_(state["square_avg"], direction, self.alpha)
            mean = state.get("grad_avg")
            if mean is not None:
                vec.ema_(mean, direction, self.alpha)
            denom = vec.root(state["square_avg"], self.eps, mean)
            buf = state.get("momentum_buffer")
            if buf is not None:
                vec.scale_add_(buf, self.momentum, vec.ratio(direction, denom))
                vec.add_(params, buf, alpha=lr)
            else:
                vec.add_ratio_(params, direction, denom, lr)
