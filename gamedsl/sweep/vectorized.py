"""A whole sweep in one process: one vmapped solver step advances every configuration.

Each configuration keeps its own compiled game for sampling (its seed, its streams), so it
sees exactly the batches its sequential twin would; parameters, optimizer and solver
states are stacked along a leading axis, and numeric hyperparameters that differ become
0-d tensors under `torch.func.vmap` (see solvers/functional.py).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

import solvers
from gamedsl.compile.torch_game import TorchGame, pick_device
from gamedsl.semantics.model import CheckedGame
from gamedsl.semantics.settings import METHOD_KEYS, RunConfig
from gamedsl.training.threads import set_threads
from solvers.field import GameField
from solvers.functional import make_step

SHARED = ("solver", "optimizer", "steps", "batch", "dtype", "device", "threads")
VECTORISED_BELOW = 100_000  # parameters; beyond, a vmapped step gains little on sequential runs (docs/scaling.md)


@dataclass
class Outcome:
    """What one configuration of a sweep produced."""

    history: dict[str, list[float]] = field(default_factory=dict)
    final: dict[str, float] = field(default_factory=dict)  # as metrics.json: the last step scalars, the end's metrics
    status: str = "finished"
    message: str = ""
    seconds: float = 0.0
    directory: str = ""
    game: TorchGame | None = field(default=None, repr=False)  # vectorised runs: the configuration's trained game


def obstacle(game: CheckedGame, configs: list[RunConfig]) -> str | None:
    """Why these configurations cannot run vectorised, or None if they can."""
    first = configs[0]
    for key in SHARED:
        if any(getattr(c, key) != getattr(first, key) for c in configs):
            return f"the configurations differ in '{key}'"
    per_example = any(s.per_example and first.solver_params.get(s.name) for s in solvers.describe(first.solver))
    if not solvers.SOLVERS.cls(first.solver).vectorizes or per_example:  # per-example fields are vmapped already
        return f"solver '{first.solver}' has no vectorised form here"
    if first.shards > 1:
        return "sharded sampling"
    if any(c.player_optimizers or c.average or any(k > 1 for k in c.critic_steps.values()) for c in configs):
        return "per-player settings (optimizer.P, critic_steps.P, average.P) run one configuration at a time"
    for key, registry in METHOD_KEYS.items():
        for spec in registry.describe(getattr(first, key)):
            values = {getattr(c, f"{key}_params").get(spec.name, spec.default) for c in configs}
            if len(values) > 1 and spec.type is not float:
                return f"the configurations differ in {key}.{spec.name}, which shapes the computation"
    probe = TorchGame(game, batch=first.batch, dtype=first.dtype)
    parameters = sum(p.numel() for p in probe.parameters())
    if parameters >= VECTORISED_BELOW:
        return f"the game has {parameters:,} parameters (vectorising pays off below {VECTORISED_BELOW:,})"
    if len(list(probe.buffers())):
        return "the networks have buffers (batch norm, or spectral normalisation's power iteration)"
    layouts = {tuple(sorted(c.make_optimizer().init([torch.zeros(1)]))) for c in configs}
    if len(layouts) > 1:
        return "the optimizer keeps different state for different configurations"
    return None


def run(
    game: CheckedGame,
    configs: list[RunConfig],
    writers: list,
    metrics: Callable[[TorchGame, RunConfig], dict[str, float]],
    progress: Callable[[int], None] = lambda step: None,
    compile: bool = False,
) -> list[Outcome]:
    """Run every configuration for `configs[0].steps` steps; log each to its TensorBoard writer
    under the tags `gamedsl solve` uses. `metrics` gives the mixture metrics of one configuration.
    `compile` takes the vmapped step as one compiled graph (solvers/compiled.py explains why)."""
    first = configs[0]
    device = pick_device(first.device)
    games = [TorchGame(game, batch=c.batch, seed=c.seed, device=device, dtype=c.dtype) for c in configs]
    set_threads(first.threads, sum(p.numel() for g in games for p in g.parameters()))  # one step computes them all
    runs = [solvers.Run(g, c.make_solver(), c.make_optimizer()) for g, c in zip(games, configs)]
    base = games[0]
    slices = runs[0].engine.slices
    field = GameField(base)  # the one definition of v, evaluated at each configuration's tensors under vmap
    hyper, fixed = {}, {}
    for key in ("solver", "optimizer"):
        values = [dict(getattr(r.solver if key == "solver" else r.engine.optimizer, "__dict__")) for r in runs]
        hyper[key] = {
            name: torch.tensor([v[name] for v in values], dtype=base.dtype, device=device)
            for name in values[0]
            if len({v[name] for v in values}) > 1
        }
        fixed[key] = {name: value for name, value in values[0].items() if name not in hyper[key]}
    step = make_step(type(runs[0].solver), type(runs[0].engine.optimizer), field, fixed, getattr(base, "project", None))
    if compile:
        step = torch.compile(step, fullgraph=True, dynamic=False)

    def stack(lists):
        return [torch.stack([t.detach() for t in ts]) for ts in zip(*lists)]

    params = stack([r.engine.params for r in runs])
    opt_state = {k: stack([r.engine.opt_state[0][k] for r in runs]) for k in runs[0].engine.opt_state[0]}
    solver_state = {k: stack([r.state[k] for r in runs]) for k in runs[0].state}
    draws = runs[0].solver.batches_per_step(len(slices))
    outcomes = [Outcome() for _ in configs]
    player_names = runs[0].player_names
    start = last = time.perf_counter()
    logged = 0
    for k in range(1, first.steps + 1):
        drawn = [[g.sample() for _ in range(draws)] for g in games]
        batches = [{key: torch.stack([d[j][key] for d in drawn]) for key in drawn[0][j]} for j in range(draws)]
        clock = torch.tensor(k - 1, dtype=torch.int64, device=device)  # steps taken before this one
        params, opt_state, solver_state, utilities, field_ = step(params, opt_state, solver_state, hyper, batches, clock)
        if k % first.log_every == 0 or k == first.steps:
            now = time.perf_counter()
            speed = (k - logged) / (now - last) if now > last else None
            rates = [float(r.engine.optimizer.rate(k)) for r in runs]
            _record(k, utilities, field_, slices, player_names, rates, speed, outcomes, writers)
            last, logged = now, k
        if first.image_every and (k % first.image_every == 0 or k == first.steps):
            _load(runs, params)
            for c, (g, config) in enumerate(zip(games, configs)):
                values = metrics(g, config)
                _log(outcomes[c], writers[c], k, {f"mixture/{key}": v for key, v in values.items() if math.isfinite(v)})
        progress(k)
    _load(runs, params)
    seconds = time.perf_counter() - start
    for c, (g, config) in enumerate(zip(games, configs)):
        outcomes[c].seconds = seconds / len(configs)
        outcomes[c].game = g
        outcomes[c].final.update(metrics(g, config))
    return outcomes


def _load(runs, params) -> None:
    """Copy each configuration's slice of the stacked parameters into its own game."""
    with torch.no_grad():
        for c, r in enumerate(runs):
            for p, stacked in zip(r.engine.params, params):
                p.copy_(stacked[c])


def _log(outcome: Outcome, writer, step: int, row: dict[str, float]) -> None:
    for key, value in row.items():
        outcome.history.setdefault(key, []).append(value)
        outcome.history.setdefault(f"{key}@step", []).append(float(step))
        if writer is not None:
            writer.add_scalar(key, value, step)


def _record(step, utilities, field_, slices, player_names, rates, speed, outcomes, writers) -> None:
    """The scalars `gamedsl solve` logs at a recorded step, for every configuration."""
    norms = []
    for sl in slices:
        parts = [f.reshape(f.shape[0], -1).pow(2).sum(1) for f in field_[sl]]
        norms.append(torch.stack(parts).sum(0).sqrt())
    for c, outcome in enumerate(outcomes):
        row = {}
        for name, u, n in zip(player_names, utilities, norms):
            row[f"utility/{name}"] = float(u[c])
            row[f"grad_norm/{name}"] = float(n[c])
        row["grad_norm_sq"] = sum(float(n[c]) ** 2 for n in norms)
        row["consensus_L"] = row["grad_norm_sq"] / 2
        if not all(math.isfinite(v) for v in row.values()) and outcome.status == "finished":
            outcome.status, outcome.message = "diverged", f"non-finite values by step {step}"
        outcome.final.update(row)
        extra = {"optimizer/learning_rate": rates[c]} | ({"speed/steps_per_second": speed} if speed else {})
        _log(outcome, writers[c], step, row | extra)
