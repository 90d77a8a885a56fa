"""The engine interface over explicit tensors, so that whole solver steps can be vmapped.

`FunctionalEngine` offers what solvers call on `Engine` (evaluate, vjp, jvp, apply,
snapshot, restore, sample, split), built from torch.func transforms on a *utility function
of the parameters* instead of autograd on leaf tensors. The same solver code then runs
unchanged under `torch.func.vmap`, with one set of parameters, optimizer state and
hyperparameters per configuration: a sweep pays the per-step Python overhead once for all
of them.

`make_step` builds that vmapped step for a solver class and an optimizer class.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

import torch
from torch.func import grad_and_value, jvp, vjp, vmap

from solvers.engine import Evaluation, Layout, Vec

Utility = Callable[[Vec, Any, int], torch.Tensor]  # (params, batch, player) -> that player's utility


class FunctionalEngine(Layout):
    def __init__(self, utility: Utility, slices: list[slice], params: Vec, optimizer, opt_state, batches: Iterable):
        self.utility = utility
        self.slices = slices
        self.players = list(range(len(slices)))
        self.params = list(params)
        self.optimizer = optimizer
        self.opt_state = opt_state
        self.batches = iter(batches)
        self.world = 1

    def reduce(self, xs: Vec) -> Vec:
        return xs

    def sample(self) -> Any:
        return next(self.batches)

    def _field(self, params: Vec, batch: Any, players: tuple[int, ...]):
        field, utilities = [], []
        for i in players:
            sl = self.slices[i]

            def u(own, i=i, sl=sl):
                full = list(params)
                full[sl] = own
                return self.utility(full, batch, i)

            g, value = grad_and_value(u)(list(params[sl]))
            field.extend(g)
            utilities.append(value)
        return field, utilities

    def evaluate(self, batch: Any, players: Sequence[int] | None = None, create_graph: bool = False) -> Evaluation:
        players = self.indices(players)
        field = lambda p: self._field(p, batch, players)  # noqa: E731
        if create_graph:
            v, pullback, utilities = vjp(field, self.params, has_aux=True)
        else:
            (v, utilities), pullback = field(self.params), None
        linear = (field, list(self.params)) if create_graph else None  # for jvp, before the next apply, like vjp
        return Evaluation(players, dict(zip(players, utilities)), list(v), pullback, linear)

    def vjp(
        self, ev: Evaluation, u: Vec, of: Sequence[int] | None = None, wrt: Sequence[int] | None = None, retain: bool = True
    ) -> Vec:
        of = set(ev.players if of is None else of)
        parts = self.split(ev.v, ev.players)
        given = iter(u)
        cotangent = [next(given) if i in of else torch.zeros_like(t) for i in ev.players for t in parts[i]]
        (grads,) = ev.local(cotangent)
        return [grads[k] for i in self.indices(wrt) for k in range(self.slices[i].start, self.slices[i].stop)]

    def jvp(self, ev: Evaluation, u: Vec, of: Sequence[int] | None = None, wrt: Sequence[int] | None = None) -> Vec:
        """Forward mode on the field: torch.func.jvp of x -> v(x), tangent u on x_wrt."""
        field, at = ev.linear
        given = self.split(list(u), self.indices(wrt))
        tangent = [
            t for i in self.players for t in given.get(i, [torch.zeros_like(p) for p in at[self.slices[i]]])
        ]
        _, products = jvp(lambda p: field(p)[0], (at,), (tangent,))
        parts = self.split(list(products), ev.players)
        return [t for i in (ev.players if of is None else of) for t in parts[i]]


def make_step(solver_cls, optimizer_cls, utility: Utility, slices: list[slice], fixed: dict[str, dict[str, Any]]):
    """A function of (params, opt_state, solver_state, hyper, batches) vmapped over configurations.

    `hyper` holds the numeric hyperparameters that differ between configurations, as
    batched 0-d tensors ({"solver": {...}, "optimizer": {...}}); `fixed` the ones they share.
    Returns the new params, states, and each configuration's utilities and field.
    """

    def step(params, opt_state, solver_state, hyper, batches):
        solver = solver_cls(**fixed["solver"], **hyper["solver"])
        optimizer = optimizer_cls(**fixed["optimizer"], **hyper["optimizer"])
        engine = FunctionalEngine(utility, slices, params, optimizer, opt_state, batches)
        info = solver.step(engine, solver_state)
        return engine.params, engine.opt_state, solver_state, info.utilities, info.field

    return vmap(step, randomness="error")
