"""Simultaneous gradient ascent (the paper's Algorithm 1): every player follows v at once.

x <- x + h v(x). Locally convergent iff every eigenvalue of I + h v'(x*) lies in the unit
disc (Proposition 3, Lemma 4); it fails when v' has eigenvalues on the imaginary axis.
"""

from __future__ import annotations

from dataclasses import dataclass

from solvers.base import SOLVERS, Solver, Step


@SOLVERS.register
@dataclass
class SimGA(Solver):
    name = "simga"
    rank = 10
    critic_steps = True  # a player's extra steps come first, alone, each on its own batch
    summary = "simultaneous gradient ascent (Algorithm 1)"
    formula = "I + h v'"  # eq. (9)

    def step(self, engine, state):
        ev = engine.evaluate(engine.sample())
        engine.apply(ev.v)
        return Step.of(ev)

    def linearization(self, J, blocks, players, h):
        import torch

        return torch.eye(len(J), dtype=J.dtype) + h * J
