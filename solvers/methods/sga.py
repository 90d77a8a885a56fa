"""Symplectic gradient adjustment (Balduzzi et al. 2018, "The mechanics of n-player
differentiable games"): follow v + lambda A v, A = (v' - v'^T) / 2.

The Jacobian of a game's field splits into a symmetric part, the "potential" part that
gradient steps handle well, and an antisymmetric part A, the "Hamiltonian" part that makes
them rotate. SGA adds lambda A v, which turns the rotation towards the fixed points: on the
bilinear game A = v' and the direction (I + lambda v') v points inwards. The one-step
Jacobian at a stationary point is I + h (I + lambda A) v'.

Balduzzi et al. write the method for losses: xi = -v, H = xi' = -v', and the adjusted
direction xi + lambda A_H^T xi, A_H the antisymmetric part of H. Here A_H = -A, so
A_H^T = A and xi + lambda A_H^T xi = -(v + lambda A v): every lambda means what it means
in the paper. A v = (v' v - v'^T v) / 2 costs one Jacobian-vector and one
vector-Jacobian product, never a matrix.

`align=true` is the paper's sign rule: lambda is multiplied by
sign(<xi, grad Ham> <A_H^T xi, grad Ham> / d + eps), eps = 1/10, d the number of parameters,
Ham = |xi|^2 / 2 the Hamiltonian, grad Ham = H^T xi = v'^T v, so that the adjustment pulls
towards stable fixed points and pushes away from unstable ones. In our signs the product is <v, v'^T v> <A v, v'^T v>;
v'^T v is already computed, so alignment is free. At a stationary point the product
vanishes faster than eps, so the one-step Jacobian is the same with and without it.
"""

from __future__ import annotations

from dataclasses import dataclass

from solvers.base import SOLVERS, Solver, Step
from solvers.registry import param

ALIGN_EPS = 0.1  # Balduzzi et al.'s epsilon in the sign rule


@SOLVERS.register
@dataclass
class SGA(Solver):
    name = "sga"
    rank = 90
    summary = "symplectic gradient adjustment: v + lambda A v, A = (v' - v'^T)/2 (Balduzzi et al. 2018)"
    formula = "I + h (I + lambda A) v', A = (v' - v'^T) / 2"
    lam: float = param(1.0, "lambda, the weight of the adjustment A v", "[0, 1e6]")
    align: bool = param(False, "multiply lambda by the paper's sign-alignment rule")

    def step(self, engine, state):
        import torch

        from solvers import vec

        ev = engine.evaluate(engine.sample(), create_graph=True)
        jv = engine.jvp(ev, ev.v)
        jtv = engine.vjp(ev, ev.v, retain=False)  # the last product: the graph may go
        av = vec.scale(vec.axpy(-1.0, jtv, jv), 0.5)  # A v
        lam = self.lam
        extras = {}
        if self.align:
            d = sum(t.numel() for t in ev.v)
            sign = torch.sign(vec.dot(ev.v, jtv) * vec.dot(av, jtv) / d + ALIGN_EPS)
            lam = lam * sign
            extras["sga_sign"] = sign
        engine.apply(vec.axpy(lam, av, ev.v))
        return Step.of(ev, **extras)

    def linearization(self, J, blocks, players, h):
        # the sign rule is +1 near x-bar (its product is of fourth order in x - x-bar): align linearises the same
        import torch

        eye = torch.eye(len(J), dtype=J.dtype)
        A = (J - J.T) / 2
        return eye + h * (eye + self.lam * A) @ J
