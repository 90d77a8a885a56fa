"""Compiled solver steps: the field, the solver's terms, the optimizer and the guard as one graph.

An eager step of a small game is mostly overhead: a consensus step of the paper's mixture
of Gaussians dispatches some two thousand tiny operations, and their bookkeeping, not
their arithmetic, sets its time. `torch.compile` traces the functional step (the solver's
own `step` on a `FunctionalEngine`, solvers/functional.py) into one graph and inductor
fuses it into a few kernels. The step updates the run's own tensors in place (parameters,
optimizer and solver state, the guard), so checkpoints, resume and every reader of the run
see exactly what they see after an eager step. Batches are drawn eagerly, before the step,
from the game's own generators: sampling, and with it a resumed run, is unchanged.

`mode` is torch.compile's: "reduce-overhead" on CUDA captures the step as a CUDA graph
(one launch instead of thousands); on the CPU the default mode is used. Compilation happens
at the first step; where it cannot (a solver whose step takes decisions on the host,
GMRES; a game that is not an nn.Module; no working C++ compiler), the run says why once
and takes eager steps.
"""

from __future__ import annotations

import os
import types

import torch
from torch.utils._pytree import tree_flatten, tree_unflatten

from solvers.base import Step
from solvers.field import GameField
from solvers.functional import FunctionalEngine
from solvers.layout import identity
from solvers.run import critic_steps, note_non_finite, update_averages


# The compiler behind torch.compile. "aot_eager" traces and runs the same graph without
# generating code: the tests use it (GAMEDSL_COMPILE_BACKEND=aot_eager) where they check what
# is computed, and inductor itself where they check that it compiles.
BACKEND = os.environ.get("GAMEDSL_COMPILE_BACKEND", "inductor")


class NotCompilable(Exception):
    """Why this run's steps cannot be compiled; the run takes eager steps instead."""


class CompiledStep:
    def __init__(self, run, mode: str | None = None):
        solver, engine = run.solver, run.engine
        if not solver.compiles:
            raise NotCompilable(f"solver '{solver.name}' takes decisions on the host inside a step")
        if engine.world > 1 or engine.reduce is not identity:
            raise NotCompilable("data-parallel steps reduce across processes between the step's pieces")
        if not isinstance(run.game, torch.nn.Module):
            raise NotCompilable("the game is not an nn.Module, so its utilities are not a function of explicit tensors")
        try:
            field = GameField(run.game)
        except ValueError as exc:
            raise NotCompilable(str(exc)) from None
        if any(p is not q for p, q in zip(field.params, engine.params)) or len(field.params) != len(engine.params):
            raise NotCompilable("the players' tensors are not the game module's parameters")
        self.run = run
        repeats, start = run.repeats, run.average_start
        self.draws = solver.batches_per_step(len(engine.slices)) + sum(k - 1 for k in repeats.values())
        optimizers, slices, project = engine.optimizers, engine.slices, engine.project
        decays = {i: decay for i, (decay, _) in run.averages.items()}
        averages = {i: average for i, (_, average) in run.averages.items()}
        # Everything the step reads and updates in place: parameters, optimizer and solver state,
        # the averages, the guard (whose count of steps is also the schedules' clock). The compiled
        # step takes them as 1-d views of themselves (a view shares the storage) and restores their
        # shapes inside: torch.compile loses in-place updates of 0-d float64 inputs (seen with
        # torch 2.13), and scalars such as Adam's step counter are such.
        state_tree = (engine.params, engine.opt_state, run.state, averages, run.guard.first, run.guard.step)
        leaves, spec = tree_flatten(state_tree)
        tensors = [t for t in leaves if isinstance(t, torch.Tensor)]
        self.vectors = [t.detach().view(-1) for t in tensors]
        shapes = [t.shape for t in tensors]
        kinds = [isinstance(t, torch.Tensor) for t in leaves]
        constants = [None if kind else t for kind, t in zip(kinds, leaves)]

        def step(vectors, batches):
            given = iter(v.view(shape) for v, shape in zip(vectors, shapes))
            params, opt_state, state, means, first, count = tree_unflatten(
                [next(given) if kind else c for kind, c in zip(kinds, constants)], spec
            )
            functional = FunctionalEngine(field, params, optimizers, opt_state, batches, count, project)
            critic_steps(functional, repeats)
            info = solver.step(functional, state)
            utilities = torch.stack(info.utilities)
            note_non_finite(slices, first, count, utilities, info.field, functional.params)  # count: now steps taken
            update_averages({i: (decays[i], means[i]) for i in means}, functional, count, start)
            return utilities, info.field, info.extras

        step = _own_code(step)
        if BACKEND != "inductor":  # modes are inductor's
            self.function = torch.compile(step, fullgraph=True, dynamic=False, backend=BACKEND)
        elif mode is None:  # CPU: a C++ wrapper, one compiled module for all the step's kernels
            self.function = torch.compile(step, fullgraph=True, dynamic=False, options={"cpp_wrapper": True})
        else:
            self.function = torch.compile(step, fullgraph=True, dynamic=False, mode=mode)
        self.compiled = False  # until the first step has compiled

    def step(self) -> Step | None:
        """One compiled step; None (after a note, with nothing changed) if it cannot be compiled."""
        run = self.run
        if self.compiled:
            batches = [run.game.sample() for _ in range(self.draws)]
            # Dynamo checks its guards (every input's shape and dtype, every captured object) at each
            # call, which takes a fifth of a small step. Nothing they check changes between steps: the
            # inputs are the same tensors, the batches have the same shapes, the captured solver,
            # optimizer and game are the same objects. So the check is skipped after the first step.
            with torch.no_grad(), torch.compiler.set_stance(skip_guard_eval_unsafe=True):
                utilities, field, extras = self.function(self.vectors, batches)
            return Step(list(utilities.unbind()), list(field), dict(extras))
        saved = run.game.rng_state() if hasattr(run.game, "rng_state") else None
        batches = [run.game.sample() for _ in range(self.draws)]
        try:
            with torch.no_grad():
                utilities, field, extras = self.function(self.vectors, batches)
        except Exception as exc:  # dynamo's and inductor's errors have no common base
            reason = " ".join(str(exc).split())[:200] or type(exc).__name__
            run.note(f"steps run eagerly: this step could not be compiled ({type(exc).__name__}: {reason})")
            if saved is not None:  # compilation fails before anything runs: only the batches were drawn
                run.game.set_rng_state(saved)
            return None
        self.compiled = True
        return Step(list(utilities.unbind()), list(field), dict(extras))


def _own_code(function):
    """The function with a code object of its own. Dynamo keeps its compiled variants on the
    code object, at most 8 of them; every run's step is a closure of the same code, so a
    process that makes many runs (a test suite, an in-process sweep) would exhaust them."""
    return types.FunctionType(
        function.__code__.replace(), function.__globals__, function.__name__, function.__defaults__, function.__closure__
    )
