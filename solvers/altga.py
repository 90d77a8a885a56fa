"""Alternating gradient ascent (supplement Algorithm 3): players move one after another.

Players step in declaration order; each later player's gradient is taken after the
earlier players' updates, each on a fresh batch, as in the authors' code. The one-step
map is the product of the per-player maps (supplement eq. 45).
"""

from __future__ import annotations

from dataclasses import dataclass

from solvers.base import SOLVERS, Solver, Step


@SOLVERS.register
@dataclass
class AltGA(Solver):
    name = "altga"
    summary = "alternating gradient ascent (supplement Algorithm 3)"

    def batches_per_step(self, players):
        return players

    def step(self, engine, state):
        utilities, field = [], []
        for i in range(len(engine.players)):
            ev = engine.evaluate(engine.sample(), players=[i])
            engine.apply(ev.v, players=[i])
            utilities.append(ev.utilities[i])
            field.extend(ev.v)
        return Step(utilities, field)
