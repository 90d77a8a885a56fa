"""Heavy-ball momentum on the game's vector field (cf. supplement eqs. 35-36).

m <- beta m + v(x);  x <- x + h m  (with sgd(lr=h)). With state (x, m) the one-step
Jacobian at a stationary point is the block matrix [[I + h v', h beta I], [v', beta I]],
the heavy-ball counterpart of eq. (36). Negative beta ("negative momentum", Gidel et al.
2019) is allowed and can damp the rotation of adversarial games.
"""

from __future__ import annotations

from dataclasses import dataclass

from solvers.base import SOLVERS, Solver, Step, block_matrix
from solvers.registry import param


@SOLVERS.register
@dataclass
class Momentum(Solver):
    name = "momentum"
    rank = 30
    summary = "heavy-ball momentum on v; negative values allowed"
    formula = "[[I + h v', h beta I], [v', beta I]]"
    carries = "(x, m)"
    beta: float = param(0.5, "momentum coefficient; negative values are allowed", "(-1, 1)")

    def init(self, engine):
        from solvers import vec

        return {"buffer": vec.zeros_like(engine.params)}

    def step(self, engine, state):
        from solvers import vec

        ev = engine.evaluate(engine.sample())
        vec.scale_add_(state["buffer"], self.beta, ev.v)
        engine.apply(state["buffer"])
        return Step.of(ev)

    def linearization(self, J, blocks, players, h):
        # m' = beta m + v(x), x' = x + h m' = x + h beta m + h v(x); at (x-bar, 0):
        import torch

        eye = torch.eye(len(J), dtype=J.dtype)
        return block_matrix([[eye + h * J, h * self.beta * eye], [J, self.beta * eye]])
