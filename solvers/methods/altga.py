"""Alternating gradient ascent (supplement Algorithm 3): players move one after another.

Players step in declaration order; each later player's gradient is taken after the
earlier players' updates, each on a fresh batch, as in the authors' code. The one-step
map is the product of the per-player maps (supplement eq. 45).
"""

from __future__ import annotations

from dataclasses import dataclass

from solvers.base import SOLVERS, Solver, Step, own_step_jacobian


@SOLVERS.register
@dataclass
class AltGA(Solver):
    name = "altga"
    rank = 20
    critic_steps = True  # a player's extra steps come first, alone, each on its own batch
    summary = "alternating gradient ascent (supplement Algorithm 3)"
    formula = "(I + h P_n v') ... (I + h P_1 v')  (eq. 45)"

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

    def linearization(self, J, blocks, players, h):
        # Player i moves from the point its predecessors left: F = F_n o ... o F_1, each
        # F_i(x) = x + h P_i v(x) fixes x-bar, so F' = F_n' ... F_1' by the chain rule (eq. 44),
        # P_i J being player i's rows of J, zero elsewhere; with per-player rates h P_i J is h_i P_i J.
        import torch

        out = torch.eye(len(J), dtype=J.dtype)
        for block in blocks:
            out = own_step_jacobian(J, block, h) @ out
        return out
