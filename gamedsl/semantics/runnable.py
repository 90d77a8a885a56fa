"""Whether a checked game can run with its settings: what `solve` would otherwise find late.

A game can be well formed and still not run: consensus with `debias=true` on a game
without samples, `shards` that do not divide the batch, a smoothing player that does not
exist, cgd with adam, or a network too large for memory. Each rule reads what the things
involved declare about themselves (a solver's `players` and `optimizers`, a parameter's
`refers` and `per_example` in solvers/registry.py, a builder's footprint) rather than
naming solvers here.

The checks run twice: by `gamedsl check` on the file's own settings, where errors point
into the solve block (exit 3, or 7 beyond a size limit), and by the commands that run
once the command line is merged, where an error points at the `--set` or flag that caused
it (exit 2, or 7).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import solvers
from gamedsl.errors import GameCheckError, GameError, LimitError, Span, UsageError
from gamedsl.library.signature import suggest
from gamedsl.semantics import budget, ir
from gamedsl.semantics.model import CheckedGame, network_footprint, without_batch_norm
from gamedsl.semantics.settings import MAX_MEMORY_LIMIT, Origin, RunConfig, resolve
from gamedsl.syntax import ast


@dataclass(frozen=True)
class Problem:
    message: str
    hint: str | None
    keys: tuple[str, ...]  # the settings that cause it, the most direct first
    span: Span | None = None  # the declaration at fault, when no setting is
    limit: bool = False  # beyond a safety limit (exit 7) rather than settings that do not fit together


def check_file(game: CheckedGame) -> None:
    """`gamedsl check`: the game with the settings of its own solve block."""
    check_run(game, resolve(game.settings, [], {}))


def check_run(game: CheckedGame, config: RunConfig) -> None:
    """Raise the first problem of running `game` with `config`, pointing at its cause."""
    for problem in problems(game, config):
        raise _report(problem, game, config.origins)


def problems(game: CheckedGame, config: RunConfig) -> Iterator[Problem]:
    yield from _solver_problems(game, config)
    if config.shards and config.batch % config.shards:
        divisors = [str(d) for d in range(1, min(config.batch, 64) + 1) if config.batch % d == 0]
        yield Problem(
            f"the batch ({config.batch:,}) must be divisible by the number of shards ({config.shards:,})",
            f"shards that divide {config.batch:,}: " + ", ".join(divisors) + (", ..." if config.batch > 64 else ""),
            ("shards", "batch"),
        )
    yield from _batch_norm_problems(game, config)
    yield from _memory_problems(game, config)


def _solver_problems(game: CheckedGame, config: RunConfig) -> Iterator[Problem]:
    """What the solver declares it needs: a number of players, an optimizer, named players,
    per-example gradients."""
    name = config.solver
    cls = solvers.SOLVERS.cls(name)
    players = [p.name for p in game.players]
    if cls.players is not None and len(players) != cls.players:
        yield Problem(
            f"solver '{name}' is defined for {cls.players} players; this game has {len(players)}",
            "choose another solver; `gamedsl solvers` lists them",
            ("solver",),
        )
    if cls.optimizers is not None and config.optimizer not in cls.optimizers:
        yield Problem(
            f"solver '{name}' needs optimizer {' or '.join(cls.optimizers)}, not {config.optimizer}",
            cls.optimizer_hint or f"write optimizer = {cls.optimizers[0]}(lr=...)",
            ("optimizer", "solver"),
        )
    yield from _player_setting_problems(game, config, cls)
    for spec in solvers.SOLVERS.describe(name):
        value, key = config.solver_params.get(spec.name, spec.default), f"solver.{spec.name}"
        if spec.refers == "player" and value and value not in players:
            yield Problem(f"solver '{name}': no player named '{value}'", suggest(value, players, "players"), (key,))
        if spec.per_example and value:
            yield from _per_example_problems(game, config, spec.name, key)


def _player_setting_problems(game: CheckedGame, config: RunConfig, cls) -> Iterator[Problem]:
    """Per-player settings name players of the game, and the solver must take them."""
    players = [p.name for p in game.players]
    for head, values in (("optimizer", config.player_optimizers), ("critic_steps", config.critic_steps), ("average", config.average)):
        for player in values:
            if player not in players:
                yield Problem(
                    f"'{head}.{player}': this game has no player '{player}'",
                    suggest(player, players, "players") or "players: " + ", ".join(players),
                    _keys_of(game, config, f"{head}.{player}"),
                )
    if config.player_optimizers and cls.one_optimizer:
        player = next(iter(config.player_optimizers))
        yield Problem(
            f"solver '{config.solver}' takes one optimizer for every player: its step size is part of the method",
            "drop the optimizer.PLAYER settings, or choose another solver",
            (*_keys_of(game, config, f"optimizer.{player}"), "solver"),
        )
    repeated = {player: k for player, k in config.critic_steps.items() if k > 1}
    if repeated and not cls.critic_steps:
        takers = [n for n in solvers.available() if solvers.SOLVERS.cls(n).critic_steps]
        player = next(iter(repeated))
        yield Problem(
            f"solver '{config.solver}' takes no critic steps (a player's extra steps between the others' steps)",
            "solvers that take them: " + ", ".join(takers),
            (*_keys_of(game, config, f"critic_steps.{player}"), "solver"),
        )


def _keys_of(game: CheckedGame, config: RunConfig, key: str) -> tuple[str, ...]:
    """`key` and the settings under it (`optimizer.D.lr` for optimizer.D) that the command line
    or the solve block gives, the command line's first: where an error about `key` points."""
    given = [*config.origins, *game.settings]
    return tuple(dict.fromkeys([k for k in given if k == key or k.startswith(key + ".")] or [key]))


def _per_example_problems(game: CheckedGame, config: RunConfig, param: str, key: str) -> Iterator[Problem]:
    """Per-example gradients need examples: sampled data, two of them, and networks that
    treat each example on its own."""
    what = f"solver '{config.solver}' with {param}=true"
    if not any(ir.samples(p.utility) for p in game.players):
        yield Problem(
            f"{what} needs sampled data, but no objective uses data or latent variables",
            f"write {param}=false: without samples, the estimate has no sampling bias to remove",
            (key,),
        )
    if config.batch < 2:
        yield Problem(
            f"{what} needs a batch of at least 2, got {config.batch}", "write batch = 2 or more", ("batch", key)
        )
    for net in game.networks.values():
        if network_footprint(net).couples_examples:
            yield Problem(
                f"{what} needs per-example gradients, which batch norm does not have: network '{net.name}' "
                "normalises each example with the statistics of the whole batch",
                f"write {param}=false, or build '{net.name}' with {without_batch_norm(net)}",
                (key,),
                net.decl.name_span,
            )


def _batch_norm_problems(game: CheckedGame, config: RunConfig) -> Iterator[Problem]:
    """Batch norm normalises each channel over the examples of a batch: it needs two values."""
    for net in game.networks.values():
        values = network_footprint(net).norm_values
        if not values:
            continue
        for examples, keys, what in (
            (config.batch // max(1, config.shards), ("batch", "shards"), "a training batch"),
            (config.eval_samples, ("eval_samples",), "the final evaluation"),
        ):
            if examples * values < 2:
                yield Problem(
                    f"network '{net.name}' uses batch norm, which needs several values per channel, but {what} "
                    f"gives it {examples} example(s) of {values} value(s) per channel",
                    f"use at least {-(-2 // values)} examples, or build '{net.name}' with {without_batch_norm(net)}",
                    keys,
                    net.decl.name_span,
                )


def _memory_problems(game: CheckedGame, config: RunConfig) -> Iterator[Problem]:
    parts = budget.estimate(game, config.batch, config.eval_samples, config.shards, config.dtype)
    total = sum(part.bytes for part in parts)
    limit = config.memory_limit * budget.GIB
    if total <= limit:
        return
    worst = max(parts, key=lambda part: part.bytes)
    needed = -(-total // budget.GIB)
    raise_it = (
        f"or raise the limit: memory_limit = {needed} (GiB) in the solve block, or --set memory_limit={needed}"
        if needed <= MAX_MEMORY_LIMIT
        else f"no memory_limit reaches that much (the largest is {MAX_MEMORY_LIMIT:,} GiB)"
    )
    yield Problem(
        f"the run would need about {budget.human(total)} of memory, more than memory_limit = "
        f"{config.memory_limit} GiB: {worst.what} take {budget.human(worst.bytes)}",
        f"{worst.advice}; {raise_it}",
        (*worst.keys, "memory_limit"),
        worst.span,
        limit=True,
    )


def _report(problem: Problem, game: CheckedGame, origins: dict[str, Origin]) -> GameError:
    """The problem as an error at its cause: the command line's setting if one is among its
    keys, else the solve block's, else the declaration at fault."""
    for key in problem.keys:
        origin = origins.get(key)
        if origin is not None:
            kind = LimitError if problem.limit else UsageError
            message = problem.message if origin.flag is None else f"{origin.flag}: {problem.message}"
            return kind(message, span=origin.span, source=origin.source, hint=problem.hint)
    kind = LimitError if problem.limit else GameCheckError
    spans = [setting_span(game.settings, key) for key in problem.keys]
    span = next((s for s in spans if s is not None), problem.span)
    return kind(problem.message, span=span, source=game.source, hint=problem.hint)


def setting_span(settings: dict[str, ast.Setting], key: str) -> Span | None:
    """Where the solve block gives `key`: `batch = 8`, `solver.player = X`, or `player=X` in
    `solver = smoothing(player=X)`."""
    if key in settings:
        return settings[key].value.span
    head, _, rest = key.partition(".")
    call = settings[head].value if head in settings else None
    if rest and isinstance(call, ast.CallValue):
        return next((arg.value.span for arg in call.args if arg.name == rest), None)
    return None
