"""Optimistic gradient (optimistic mirror descent; Daskalakis et al. 2018, "Training GANs with
optimism"): x <- x + h (2 v_t - v_{t-1}).

The step adds the change of the field since the last step, a cheap guess of where the
rotation is heading; like extragradient, it converges on the bilinear game where SimGA
spirals out, at the cost of one field evaluation per step. With state (x, s), s the last
step, the one-step Jacobian at a stationary point is [[I + 2h v', -I], [h v', 0]]: the
2-step recursion x_{t+1} = x_t + 2h v(x_t) - h v(x_{t-1}).

Optimism acts on the optimizer's steps, not on its input: with s_t the step the optimizer
takes along v_t, x <- x + 2 s_t - s_{t-1}. With sgd(lr=h) s_t = h v_t and this is the
method above; with adam it is Daskalakis et al.'s Optimistic Adam (their Algorithm 1),
whose moments see only the fields themselves. The first step, with s_{-1} = 0, is 2 s_0.

Linearised: x' = x + 2 s_t - s, s_t = h v(x), s' = s_t, so at (x-bar, 0) s' = h v' x. The
characteristic equation mu^2 - (1 + 2 h lambda) mu + h lambda = 0, for every eigenvalue
lambda of v', is that of extrapolation from the past (solvers/methods/extragradient.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from solvers.base import SOLVERS, Solver, Step, block_matrix


@SOLVERS.register
@dataclass
class Optimistic(Solver):
    name = "optimistic"
    rank = 80
    summary = "optimistic gradient: x + 2 s_t - s_{t-1}, s the optimizer's step along v (Daskalakis et al. 2018)"
    formula = "[[I + 2h v', -I], [h v', 0]]"
    carries = "(x, s)"  # s: the last step

    def init(self, engine):
        from solvers import vec

        return {"last_step": vec.zeros_like(engine.params)}

    def step(self, engine, state):
        import torch

        from solvers import vec

        start = engine.snapshot()
        ev = engine.evaluate(engine.sample())
        engine.apply(ev.v)
        with torch.no_grad():
            step = vec.axpy(-1.0, start, engine.params)  # s_t, the optimizer's step
            vec.add_(engine.params, vec.axpy(-1.0, state["last_step"], step))  # x + s_t + (s_t - s_{t-1})
            vec.copy_(state["last_step"], step)
        engine.constrain()  # the extra move bypasses engine.apply: project it as apply does
        return Step.of(ev)

    def linearization(self, J, blocks, players, h):
        import torch

        eye = torch.eye(len(J), dtype=J.dtype)
        return block_matrix([[eye + 2 * h * J, -eye], [h * J, torch.zeros_like(J)]])
