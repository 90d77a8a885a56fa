"""Extragradient (Korpelevich 1976) and extrapolation from the past (Popov 1980), as in
Gidel et al. 2019, "A variational inequality perspective on generative adversarial networks".

A plain step along v rotates around the equilibria of adversarial games (the bilinear game's
|x|^2 grows by 1 + h^2 per step). Extragradient first looks ahead, x' = x + h v(x), and then
steps from x with the field seen there: x <- x + h v(x'). The look-ahead sees where the
rotation is going, and the step leans inwards: the one-step Jacobian at a stationary point is
I + h v'(I + h v'), and on the bilinear game |x|^2 shrinks by 1 - h^2 + h^4 per step. It
costs two field evaluations per step, each on its own batch (the stochastic extragradient).

Extrapolation from the past reuses the field of the previous look-ahead point instead:
x' = x + h g, g <- v(x'), x <- x + h g. One evaluation per step; with state (x, g) its
one-step Jacobian is [[I + h v', h^2 v'], [v', h v']], whose eigenvalues are those of the
optimistic method's.

With rmsprop or adam both half-steps go through the optimizer and advance its state, as in
Gidel et al.'s Extra-Adam (their Algorithm 4): the moments see the look-ahead field too and
their bias corrections count half-steps; the second step starts from x again. With sgd this
is the method itself. Every process of a data-parallel run restores the same x.

Extrapolation from the past linearised: x' = x + h g, g' = v(x'), x'' = x + h g'; at
(x-bar, 0), g' = v' (x + h g) and x'' = x + h v' x + h^2 v' g. Its characteristic equation
mu^2 - (1 + 2 h lambda) mu + h lambda = 0, for every eigenvalue lambda of v', is the
optimistic method's.
"""

from __future__ import annotations

from dataclasses import dataclass

from solvers.base import SOLVERS, Solver, Step, block_matrix


@SOLVERS.register
@dataclass
class Extragradient(Solver):
    name = "extragradient"
    rank = 60
    summary = "look ahead along v, then step with the field seen there (Korpelevich; Gidel et al. 2019)"
    formula = "I + h v' (I + h v')"

    def batches_per_step(self, players):
        return 2

    def step(self, engine, state):
        start = engine.snapshot()
        ev = engine.evaluate(engine.sample())
        engine.apply(ev.v)  # the look-ahead point x + h v(x)
        ahead = engine.evaluate(engine.sample())
        engine.restore(start)
        engine.apply(ahead.v)
        return Step.of(ev)

    def linearization(self, J, blocks, players, h):
        # look-ahead x' = x + h v(x), step x + h v(x'): d/dx v(x') = v' (I + h v')
        import torch

        eye = torch.eye(len(J), dtype=J.dtype)
        return eye + h * J @ (eye + h * J)


@SOLVERS.register
@dataclass
class PastExtragradient(Solver):
    name = "past_extragradient"
    rank = 70
    summary = "extragradient reusing the last look-ahead field: one evaluation per step (Popov; Gidel et al. 2019)"
    formula = "[[I + h v', h^2 v'], [v', h v']]"
    carries = "(x, g)"  # g: the last look-ahead field

    def init(self, engine):
        from solvers import vec

        return {"previous": vec.zeros_like(engine.params)}  # g: the first look-ahead is x itself

    def step(self, engine, state):
        from solvers import vec

        start = engine.snapshot()
        engine.apply(state["previous"])
        ev = engine.evaluate(engine.sample())
        engine.restore(start)
        engine.apply(ev.v)
        vec.copy_(state["previous"], ev.v)
        return Step.of(ev)

    def linearization(self, J, blocks, players, h):
        # with per-player rates H: x' = x + H g, g' = J x + J H g, x'' = x + H J x + H J H g
        import torch

        eye = torch.eye(len(J), dtype=J.dtype)
        H = h * eye
        return block_matrix([[eye + h * J, h * J @ H], [J, J @ H]])
