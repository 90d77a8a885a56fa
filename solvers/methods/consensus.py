"""Consensus optimization (the paper's Algorithm 2): follow w = v - gamma grad L, L = |v|^2/2.

As in the authors' code: both players' gradients on the same minibatch and the same z, one
joint regulariser over both players, grad L = v'(x)^T v by double backprop, and the
optimizer applied to the combined direction, so that RMSProp's scaling comes after the
regulariser is added. The one-step Jacobian at a stationary point is
I + h (I - gamma v'^T) v' (Lemma 6).

With `debias=true` the minibatch estimate of L is corrected by its variance (supplement
Lemma 15): L-hat = B/(2(B-1)) |v-bar|^2 - 1/(2B(B-1)) sum_i |v_i|^2 is unbiased, and its
gradient is B/(B-1) J^T v-bar - 1/(B(B-1)) sum_i J_i^T v_i, from per-example fields.
"""

from __future__ import annotations

from dataclasses import dataclass

from solvers.base import SOLVERS, Solver, Step
from solvers.errors import SolverError
from solvers.registry import param


@SOLVERS.register
@dataclass
class Consensus(Solver):
    name = "consensus"
    rank = 40
    summary = "consensus optimization (Algorithm 2): v - gamma grad |v|^2/2"
    formula = "I + h (I - gamma v'^T) v'  (Lemma 6)"
    gamma: float = param(10.0, "weight gamma of the regulariser L = |v|^2 / 2", "[0, 1e6]")
    debias: bool = param(False, "use the unbiased estimate of L (supplement Lemma 15)", per_example=True)

    def init(self, engine):
        from solvers.per_example import field_of

        if self.debias:
            field_of(engine)  # fail early, before the first step, if the game cannot do it
        return {}

    def step(self, engine, state):
        from solvers import vec

        batch = engine.sample()
        ev = engine.evaluate(batch, create_graph=True)
        grad_L = engine.vjp(ev, ev.v, retain=False)
        extras = {}
        if self.debias:
            grad_L, extras["L_unbiased"] = self.debiased(engine, batch, ev, grad_L)
        engine.apply(vec.axpy(-self.gamma, grad_L, ev.v))
        return Step.of(ev, **extras)

    def debiased(self, engine, batch, ev, grad_L):
        """The sums over examples run over every process's examples: B is the global batch."""
        import torch

        from solvers import vec
        from solvers.per_example import per_example

        ex = per_example(engine, batch)
        local = [t.detach() for t in ev.local]
        if not all(torch.allclose(a, b, rtol=1e-4, atol=1e-6) for a, b in zip(ex.mean_field, local)):
            raise SolverError(
                "debias needs utilities that are averages of per-example terms, like E[...] sums",
                "this game's utility is not the mean of its per-example utilities",
            )
        b = ex.count * engine.world
        if b < 2:
            raise SolverError("debias needs a batch of at least 2")
        correction = vec.scale(engine.reduce(ex.correction), float(engine.world))  # a sum over processes
        sum_sq = engine.reduce([ex.sum_sq])[0] * engine.world
        out = vec.scale(grad_L, b / (b - 1))
        vec.add_(out, correction, alpha=-1.0 / (b * (b - 1)))
        unbiased = b / (2 * (b - 1)) * vec.squared_norm(ev.v) - sum_sq / (2 * b * (b - 1))
        return out, unbiased

    def linearization(self, J, blocks, players, h):
        # debias changes the estimate of L, not L: it linearises the same
        import torch

        return torch.eye(len(J), dtype=J.dtype) + h * (J - self.gamma * J.T @ J)
