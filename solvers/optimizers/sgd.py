"""Plain steps: x <- x + h d. The setting of the paper's theory (Proposition 3, Lemma 4)."""

from __future__ import annotations

from dataclasses import dataclass

from solvers.optimizers.base import OPTIMIZERS, Optimizer
from solvers.registry import param


@OPTIMIZERS.register
@dataclass
class SGD(Optimizer):
    name = "sgd"
    summary = "plain steps x <- x + h d"
    lr: float = param(0.01, "step size h", "(0, 1e3]")

    def step_(self, params, direction, state, lr):
        import torch

        from solvers import vec

        with torch.no_grad():
            vec.add_(params, direction, alpha=lr)
