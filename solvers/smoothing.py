"""The smoothing optimizer (supplement Fig. 7): consensus's regulariser on one player only.

The discriminator follows v_D - gamma grad_D (|v_G|^2 / 2), the other players follow
their plain field, as in the authors' code. It asks whether consensus works merely by
smoothing the discriminator. `player` names the regularised player (the discriminator);
by default the first player, which the catalog's games declare first.
"""

from __future__ import annotations

from dataclasses import dataclass

from solvers import vec
from solvers.base import SOLVERS, Solver, Step, player_index
from solvers.registry import param


@SOLVERS.register
@dataclass
class Smoothing(Solver):
    name = "smoothing"
    summary = "consensus regulariser on the discriminator only (supplement Fig. 7)"
    gamma: float = param(10.0, "weight of the regulariser |v_G|^2 / 2", "[0, 1e6]")
    player: str = param("", "the regularised player", refers="player", shown="the first player")

    def init(self, engine):
        player_index(engine, self.player, 0)
        return {}

    def step(self, engine, state):
        d = player_index(engine, self.player, 0)
        others = [i for i in range(len(engine.players)) if i != d]
        ev = engine.evaluate(engine.sample(), create_graph=True)
        parts = engine.split(ev.v, ev.players)
        v_others = [t for i in others for t in parts[i]]
        reg = engine.vjp(ev, v_others, of=others, wrt=[d], retain=False)
        parts[d] = vec.axpy(-self.gamma, reg, parts[d])
        engine.apply([t for i in ev.players for t in parts[i]])
        return Step.of(ev)
