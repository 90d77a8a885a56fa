"""The engine interface over explicit tensors: solver steps that can be vmapped and compiled.

`FunctionalEngine` offers what solvers call on `Engine` (evaluate, vjp, jvp, apply,
snapshot, restore, sample, split), computed by the functional field (solvers/field.py)
at explicit parameter tensors instead of autograd on leaf tensors. The same solver code
then runs unchanged under `torch.func.vmap` (one set of parameters, optimizer state and
hyperparameters per configuration: a sweep pays the per-step Python overhead once for all
of them) and under `torch.compile` (solvers/compiled.py: the whole step becomes one graph).
Batches are drawn before the step, in the order the step uses them.

`make_step` builds the vmapped step for a solver class and an optimizer class.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from torch.func import vmap

from solvers.field import Evaluation, Field
from solvers.layout import Layout, Vec, groups_of


class FunctionalEngine(Layout):
    def __init__(
        self, field: Field, params: Vec, optimizers, opt_state: list, batches: Iterable, clock=0, project=None, world: int = 1
    ):
        """`optimizers`: one per player, or one for all; `opt_state`: one state per group of
        players sharing an optimizer (solvers/layout.py)."""
        self.field = field
        self.slices = field.slices
        self.players = list(field.players)
        self.params = list(params)
        self.optimizers = list(optimizers) if isinstance(optimizers, (list, tuple)) else [optimizers] * len(self.players)
        self.groups = groups_of(self.optimizers)
        self.opt_state = opt_state
        self.batches = iter(batches)
        self.clock = clock
        self.project = project
        self.world = world

    def reduce(self, xs: Vec) -> Vec:
        return self.field.reduce(xs)

    def sample(self) -> Any:
        return next(self.batches)

    def evaluate(self, batch: Any, players: Sequence[int] | None = None, create_graph: bool = False) -> Evaluation:
        return self.field.evaluate(self.params, batch, self.indices(players), create_graph)

    def vjp(
        self, ev: Evaluation, u: Vec, of: Sequence[int] | None = None, wrt: Sequence[int] | None = None, retain: bool = True
    ) -> Vec:
        return self.field.vjp(ev, u, of, self.indices(wrt))

    def jvp(self, ev: Evaluation, u: Vec, of: Sequence[int] | None = None, wrt: Sequence[int] | None = None) -> Vec:
        return self.field.jvp(ev, u, of, self.indices(wrt))


def make_step(solver_cls, optimizer_cls, field: Field, fixed: dict[str, dict[str, Any]], project=None):
    """A function of (params, opt_state, solver_state, hyper, batches, clock) vmapped over configurations.

    `hyper` holds the numeric hyperparameters that differ between configurations, as
    batched 0-d tensors ({"solver": {...}, "optimizer": {...}}); `fixed` the ones they share;
    `clock` (not batched) is the number of steps taken, for learning-rate schedules.
    Returns the new params, states, and each configuration's utilities and field.
    """

    def step(params, opt_state, solver_state, hyper, batches, clock):
        solver = solver_cls(**fixed["solver"], **hyper["solver"])
        optimizer = optimizer_cls(**fixed["optimizer"], **hyper["optimizer"])
        engine = FunctionalEngine(field, params, optimizer, [opt_state], batches, clock, project)
        info = solver.step(engine, solver_state)
        return engine.params, engine.opt_state[0], solver_state, info.utilities, info.field

    return vmap(step, in_dims=(0, 0, 0, 0, 0, None), randomness="error")
