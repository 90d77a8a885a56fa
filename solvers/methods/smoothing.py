"""The smoothing optimizer (supplement Fig. 7): consensus's regulariser on one player only.

The discriminator follows v_D - gamma grad_D (|v_G|^2 / 2), the other players follow
their plain field, as in the authors' code. It asks whether consensus works merely by
smoothing the discriminator. `player` names the regularised player (the discriminator);
by default the first player, which the catalog's games declare first.

The one-step Jacobian at a stationary point is I + h (v' - gamma E_D v'_OD^T v'_O), O the
other players: grad_D (|v_O|^2 / 2) = v'_OD^T v_O with v'_OD = d v_O / d x_D, and at a
stationary point (v = 0) its derivative is v'_OD^T v'_O, v'_O = d v_O / d x; so the D rows
of the direction's Jacobian get -gamma v'_OD^T v'_O.
"""

from __future__ import annotations

from dataclasses import dataclass

from solvers.base import SOLVERS, Solver, Step, player_index
from solvers.registry import param


@SOLVERS.register
@dataclass
class Smoothing(Solver):
    name = "smoothing"
    rank = 50
    summary = "consensus regulariser on the discriminator only (supplement Fig. 7)"
    formula = "I + h (v' - gamma E_D v'_OD^T v'_O)"
    gamma: float = param(10.0, "weight of the regulariser |v_G|^2 / 2", "[0, 1e6]")
    player: str = param("", "the regularised player", refers="player", shown="the first player")

    def init(self, engine):
        player_index(engine, self.player, 0)
        return {}

    def step(self, engine, state):
        from solvers import vec

        d = player_index(engine, self.player, 0)
        others = [i for i in range(len(engine.players)) if i != d]
        ev = engine.evaluate(engine.sample(), create_graph=True)
        parts = engine.split(ev.v, ev.players)
        v_others = [t for i in others for t in parts[i]]
        reg = engine.vjp(ev, v_others, of=others, wrt=[d], retain=False)
        parts[d] = vec.axpy(-self.gamma, reg, parts[d])
        engine.apply([t for i in ev.players for t in parts[i]])
        return Step.of(ev)

    def linearization(self, J, blocks, players, h):
        import torch

        d = players.index(self.player) if self.player in players else 0
        D = blocks[d]
        others = [torch.arange(b.start, b.stop) for i, b in enumerate(blocks) if i != d]
        J_O = J[torch.cat(others or [torch.zeros(0, dtype=torch.long)])]  # d v_O / d x
        direction = J.clone()
        direction[D] -= self.gamma * J_O[:, D].T @ J_O
        return torch.eye(len(J), dtype=J.dtype) + h * direction
