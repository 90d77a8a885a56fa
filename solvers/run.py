"""Running a solver: the resumable `Run`, the `solve` loop, its guard and its `Result`.

Every method returns the same `Result`. The divergence guard (`Guard`) notes, with tensor
operations only, the first step at which any player's utility, field or parameters stop
being finite; the loop reads it on recorded steps (and checkpoints on theirs), so a step
needs no host synchronisation, and a run that diverged stops with a message naming the
step the fault was first seen at and the player. Callbacks may stop the run.

`Run(..., compile=True)` takes each step as one compiled graph (solvers/compiled.py),
falling back to the eager engine, with a note, where no graph can be made.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch

from solvers.base import SOLVERS, Solver, Step
from solvers.engine import Engine, Reduce, Vec
from solvers.optimizers.base import Optimizer
from solvers.protocol import Game


@dataclass
class Result:
    """The outcome of a run, the same for every solver."""

    solver: str
    optimizer: str
    steps: int  # the run's step count at the end (a resumed run counts its earlier steps too)
    taken: int  # steps taken by this call
    status: str  # "finished", "stopped" or "diverged"
    message: str
    seconds: float
    history: dict[str, list[float]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status != "diverged"

    def last(self, key: str) -> float:
        return self.history[key][-1]


class Interrupted(Exception):
    """A stop was requested during long work inside a step (or a callback); raised by a poll.

    `solve` ends the run cleanly at the last completed step ("stopped"): a step that is cut
    short has changed nothing a checkpoint holds (see `Run.step`)."""


class NonFinite(Exception):
    """Raised by the guard; `player` and `what` say where the first non-finite value is."""

    def __init__(self, step: int, player: str, what: str):
        super().__init__(f"step {step}: non-finite {what} of player {player}")
        self.step, self.player, self.what = step, player, what


WHAT = ("utility", "gradient", "parameter")


class Guard:
    """The first step at which each player's utility, field (gradient) or parameters were
    non-finite, kept as a tensor (players x 3, -1 where never) and updated with tensor
    operations only; `check` reads it (one host synchronisation) and raises NonFinite.

    A compiled step notes all three after every step, fused into its graph. An eager step
    notes the utilities only, which costs a few small operations; the field and the
    parameters are noted when the run is checked (recorded steps, checkpoints). A
    non-finite field or parameter makes the next utilities non-finite (NaN spreads through
    every layer), so the first fault is still found, at most one step late.

    A tensor's norm is non-finite when any entry is (or when it overflows, which is as
    much a divergence), so one norm per tensor decides."""

    def __init__(self, slices: list[slice], step: int, device=None):
        self.slices = slices
        self.first = torch.full((len(slices), len(WHAT)), -1, dtype=torch.int64, device=device)
        self.step = torch.tensor(step, dtype=torch.int64, device=device)

    def after_step(self, utilities: torch.Tensor, field: Vec | None = None, params: Vec | None = None) -> None:
        note_non_finite(self.slices, self.first, self.step, utilities, field, params)

    def reset(self, step: int) -> None:
        """Nothing seen yet, counting from `step` (a loaded checkpoint's); in place, since a
        compiled step holds these tensors."""
        self.first.fill_(-1)
        self.step.fill_(step)

    def check(self, names: list[str], field: Vec | None = None, params: Vec | None = None) -> None:
        """Raise NonFinite for the first fault noted, after noting `field` and `params` as they are now."""
        _mark_state(self.slices, self.first, self.step, field, params)
        first = self.first.tolist()
        seen = [(step, i, j) for i, row in enumerate(first) for j, step in enumerate(row) if step >= 0]
        if seen:
            step, i, j = min(seen)
            raise NonFinite(step, names[i], WHAT[j])


def note_non_finite(
    slices: list[slice], first: torch.Tensor, step: torch.Tensor, utilities: torch.Tensor,
    field: Vec | None = None, params: Vec | None = None,
) -> None:  # fmt: skip
    """The guard's update after step `step + 1`, in place on its tensors: eager and compiled alike."""
    step.add_(1)
    _mark(first, step, 0, ~torch.isfinite(utilities.reshape(len(slices))))
    _mark_state(slices, first, step, field, params)


def _mark_state(slices: list[slice], first: torch.Tensor, step: torch.Tensor, field: Vec | None, params: Vec | None) -> None:
    for column, vec in ((1, field), (2, params)):
        if vec is not None:
            _mark(first, step, column, torch.stack([~torch.isfinite(_norms(vec[sl])).all() for sl in slices]))


def _mark(first: torch.Tensor, step: torch.Tensor, column: int, faults: torch.Tensor) -> None:
    """Record `step` where a fault is seen for the first time, in one column (utility, gradient, parameter)."""
    seen = first[:, column]
    seen.copy_(torch.where((seen < 0) & faults, step, seen))


def _norms(tensors: Vec) -> torch.Tensor:
    if not tensors:
        return torch.zeros(1)
    if torch.compiler.is_compiling():
        return torch.stack([t.norm() for t in tensors])
    return torch.stack(torch._foreach_norm(tensors))


def critic_steps(engine, repeats: dict[int, int]) -> None:
    """Player i's extra steps before a step of the solver: repeats[i] - 1 of them, alone, each
    on a fresh batch (WGAN's n_critic; with altga, player i then takes its own k-th step)."""
    for i, k in repeats.items():
        for _ in range(k - 1):
            ev = engine.evaluate(engine.sample(), players=[i])
            engine.apply(ev.v, players=[i])


def update_averages(averages: dict[int, tuple[float, Vec]], engine, taken, start: int) -> None:
    """avg <- d avg + (1 - d) x for each averaged player once `taken` (steps completed) passes
    `start`; before that the average follows the parameters (Yazici et al. 2019's warm-up)."""
    compiling = torch.compiler.is_compiling()
    for i, (decay, average) in averages.items():
        own = engine.params[engine.slices[i]]
        if compiling:
            weight = 1 - torch.where(taken > start, decay, 0.0)
            for a, p in zip(average, own):
                a.lerp_(p.detach(), weight)
        else:
            torch._foreach_lerp_(average, [p.detach() for p in own], 1 - decay if taken > start else 1.0)


class Run:
    """A solver bound to a game and optimizers, with all the state a checkpoint needs.

    `optimizer`: one for every player, or a mapping from player names to optimizers (TTUR);
    `critic_steps`: player name -> k, the player's steps for each step of the others (for
    the solvers that declare `critic_steps`); `average`: player name -> decay d of an
    exponential moving average of its parameters, which starts after `average_start` steps."""

    def __init__(
        self,
        game: Game,
        solver: Solver,
        optimizer: Optimizer | dict[str, Optimizer],
        reduce: Reduce | None = None,
        world: int = 1,
        poll: Callable[[], None] | None = None,
        compile: bool | str = False,
        note: Callable[[str], None] = lambda text: None,
        critic_steps: dict[str, int] | None = None,
        average: dict[str, float] | None = None,
        average_start: int = 0,
    ):
        from solvers.errors import SolverError

        self.game = game
        self.solver = solver
        names = [p.name for p in game.players]
        if isinstance(optimizer, dict):
            unknown = sorted(set(optimizer) - set(names))
            if unknown or set(optimizer) != set(names):
                raise SolverError(
                    f"an optimizer per player needs one for each of {', '.join(names)}"
                    + (f"; there is no player '{unknown[0]}'" if unknown else "")
                )
            optimizer = [optimizer[name] for name in names]
        self.engine = Engine(game, optimizer, reduce, world)
        if poll is not None:
            self.engine.poll = poll
        self.repeats = {names.index(n): k for n, k in _known(critic_steps or {}, names, "critic_steps").items() if k > 1}
        if self.repeats and not solver.critic_steps:
            raise SolverError(
                f"solver '{solver.name}' takes no critic steps (a player's extra steps between its own)",
                "solvers that take them: " + ", ".join(n for n in SOLVERS.available() if SOLVERS.cls(n).critic_steps),
            )
        self.state = solver.init(self.engine)
        self.averages = {
            names.index(n): (float(d), [p.detach().clone() for p in self.engine.params[self.engine.slices[names.index(n)]]])
            for n, d in _known(average or {}, names, "average").items()
        }
        self.average_start = average_start
        # the game's work between steps (spectral normalisation's power iteration): after a whole
        # step, eager or compiled, so that a step cut short changes nothing and a checkpoint holds
        # what the next step uses
        self.after_step = getattr(game, "after_step", None) or (lambda: None)
        self.step_count = 0
        self.guard = Guard(self.engine.slices, 0, _device(self.engine.params))
        self.note = note
        self.compiled = None
        if compile:
            self.use_compiled(compile if isinstance(compile, str) else None)

    def use_compiled(self, mode: str | None = None) -> bool:
        """Take the next steps compiled (solvers/compiled.py); False, after a note, where that
        cannot be. `mode` is torch.compile's ("reduce-overhead" captures CUDA graphs)."""
        from solvers.compiled import CompiledStep, NotCompilable

        try:
            self.compiled = CompiledStep(self, mode=mode)
        except NotCompilable as exc:
            self.note(f"steps run eagerly: {exc}")
        return self.compiled is not None

    @property
    def player_names(self) -> list[str]:
        return [p.name for p in self.engine.players]

    def step(self) -> Step:
        """One solver step. Solvers that poll inside a step (`Solver.polls`) change parameters
        and state only after their last poll, so an interrupted step leaves them as they were;
        the batch it drew is put back too, when the game can (`rng_state`), so that a resumed
        run draws exactly what an uninterrupted one would."""
        if self.compiled is not None:
            info = self.compiled.step()
            if info is not None:
                self.step_count += 1
                self.after_step()
                return info
            self.compiled = None  # it could not be compiled after all; it said why
        rewind = getattr(self.game, "rng_state", None) if self.solver.polls else None
        saved = rewind() if rewind is not None else None
        self.engine.clock = self.step_count
        try:
            critic_steps(self.engine, self.repeats)
            info = self.solver.step(self.engine, self.state)
        except Interrupted:
            if saved is not None:
                self.game.set_rng_state(saved)
            raise
        with torch.no_grad():
            self.guard.after_step(torch.stack(info.utilities))
            update_averages(self.averages, self.engine, self.step_count + 1, self.average_start)
        self.step_count += 1
        self.after_step()
        return info

    def rates(self) -> dict[str, float]:
        """Each player's learning rate at the current step (schedules included)."""
        return {
            p.name: float(optimizer.rate(self.step_count)) for p, optimizer in zip(self.engine.players, self.engine.optimizers)
        }

    def averaged(self):
        """A context in which the averaged players' parameters hold their averages (the raw
        values come back after); nothing happens for a run without averages."""
        return _Swap(self)

    def norms(self, vec: Vec) -> list[torch.Tensor]:
        """Each player's Euclidean norm of a vector aligned with the parameters."""
        out = []
        for sl in self.engine.slices:
            part = vec[sl]
            out.append(torch.linalg.vector_norm(torch.stack(torch._foreach_norm(part))) if part else torch.zeros(()))
        return out

    def check(self, info: Step | None = None) -> None:
        """Raise NonFinite if any step so far produced a non-finite value (a host synchronisation);
        `info`, the last step's, has its field checked too, and the parameters always are."""
        with torch.no_grad():
            self.guard.check(self.player_names, None if info is None else info.field, self.engine.params)

    def scalars(self, info: Step) -> dict[str, float]:
        """Scalars of one step: utilities, |v_i|, |v|^2, L = |v|^2/2 and the solver's extras."""
        norms = [float(n) for n in self.norms(info.field)]
        row = {"step": float(self.step_count)}
        for name, u, n in zip(self.player_names, info.utilities, norms):
            row[f"utility/{name}"] = float(u)
            row[f"grad_norm/{name}"] = n
        row["grad_norm_sq"] = sum(n * n for n in norms)
        row["consensus_L"] = row["grad_norm_sq"] / 2
        for key, value in info.extras.items():
            row[key] = float(value)
        return row

    # ---- checkpoints: tensors and plain values only (torch.load(weights_only=True))
    def state_dict(self) -> dict[str, Any]:
        names = self.player_names
        return {
            "step": self.step_count,
            "params": [p.detach().clone() for p in self.engine.params],
            "optimizer": [{k: [t.clone() for t in v] for k, v in group.items()} for group in self.engine.opt_state],
            "solver": {k: [t.clone() for t in v] if isinstance(v, list) else v for k, v in self.state.items()},
            "average": {names[i]: [t.clone() for t in average] for i, (_, average) in self.averages.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved_groups = state["optimizer"]
        if isinstance(saved_groups, dict):  # written before optimizers per player: one group
            saved_groups = [saved_groups]
        with torch.no_grad():
            for p, saved in zip(self.engine.params, state["params"], strict=True):
                p.copy_(saved)
            for group, saved_group in zip(self.engine.opt_state, saved_groups, strict=True):
                for key, tensors in saved_group.items():
                    for t, saved in zip(group[key], tensors, strict=True):
                        t.copy_(saved)
            names = self.player_names
            for i, (_, average) in self.averages.items():
                for t, saved in zip(average, state.get("average", {})[names[i]], strict=True):
                    t.copy_(saved)
            for key, value in state["solver"].items():
                if isinstance(value, list):
                    for t, saved in zip(self.state[key], value, strict=True):
                        t.copy_(saved)
                else:
                    self.state[key] = value
        self.step_count = int(state["step"])
        self.guard.reset(self.step_count)


class _Swap:
    def __init__(self, run: Run):
        self.run = run

    def _exchange(self) -> None:
        with torch.no_grad():
            for i, (_, average) in self.run.averages.items():
                own = self.run.engine.params[self.run.engine.slices[i]]
                for p, a in zip(own, average):
                    held = p.detach().clone()
                    p.copy_(a)
                    a.copy_(held)

    def __enter__(self):
        self._exchange()
        return self.run

    def __exit__(self, *exc):
        self._exchange()


def _known(values: dict[str, Any], names: list[str], what: str) -> dict[str, Any]:
    from solvers.errors import SolverError

    for name in values:
        if name not in names:
            raise SolverError(f"{what}: there is no player '{name}'", "players: " + ", ".join(names))
    return values


def _device(params: Vec):
    return params[0].device if params else None


Callback = Callable[[Run, Step], Any]


def solve(
    game: Game,
    solver: Solver,
    optimizer: Optimizer,
    steps: int,
    *,
    callbacks: Sequence[Callback] = (),
    record_every: int = 1,
    reduce: Reduce | None = None,
    run: Run | None = None,
) -> Result:
    """Run `steps` steps. A callback returning True stops the run after that step. With `run`
    given, `game`, `solver` and `optimizer` are the run's (pass them as they are, or None)."""
    run = run or Run(game, solver, optimizer, reduce)
    solver = run.solver
    history: dict[str, list[float]] = {}
    start, status, message = time.perf_counter(), "finished", f"{steps} steps"
    target = run.step_count + steps
    first = run.step_count
    try:
        while run.step_count < target:
            info = run.step()
            if run.step_count % record_every == 0 or run.step_count == target:
                run.check(info)
                for key, value in run.scalars(info).items():
                    history.setdefault(key, []).append(value)
            if any(callback(run, info) for callback in callbacks):
                status, message = "stopped", f"stopped after step {run.step_count}"
                break
    except NonFinite as exc:
        status, message = "diverged", str(exc)
    except Interrupted:
        status, message = "stopped", f"stopped after step {run.step_count}"
    seconds = time.perf_counter() - start
    optimizers = " and ".join(dict.fromkeys(o.name for o in run.engine.optimizers))
    return Result(solver.name, optimizers, run.step_count, run.step_count - first, status, message, seconds, history)

