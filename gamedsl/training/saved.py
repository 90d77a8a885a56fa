"""A run's settings read back from its config.json, checked like user input.

config.json is data from disk: it may be damaged or edited by hand. Every setting goes
through the same `Kind` that checks it in a `solve { }` block, and the solver and
optimizer through their registries, so that a value such as `"dtype": "evil"`,
`"log_every": 0` or `"batch": "8"` is one CheckpointError (exit 5) naming the setting,
never a crash deep inside a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import solvers
from gamedsl.errors import CheckpointError, GameCheckError, GameError, Source
from gamedsl.semantics.model import CheckedGame
from gamedsl.semantics.settings import KEYS, METHOD_KEYS, PLAYER_KEYS, RunConfig
from gamedsl.syntax import ast
from gamedsl.training import rundir


@dataclass(frozen=True)
class SavedRun:
    """What config.json says about a run, checked: its raw object, settings and game."""

    meta: dict[str, Any]
    config: RunConfig
    game: CheckedGame


def load(directory: Path) -> SavedRun:
    """Read and check DIR/config.json: the settings as `run_config` does, the game's source
    through the checker (exit 5 if either is damaged)."""
    from gamedsl.semantics.checker import check_source

    where = Path(directory) / rundir.CONFIG
    meta = rundir.read_json(where)
    if not isinstance(meta, dict) or not all(isinstance(meta.get(k), str) for k in ("file", "source")):
        raise CheckpointError(f"{where} is damaged: it lacks the game's file name or source")
    config = run_config(meta.get("config"), where)
    try:
        game = check_source(Source(meta["file"], meta["source"]), config.divergences)
    except GameError as exc:
        raise CheckpointError(f"{where} is damaged: its game does not check ({exc.message})") from None
    return SavedRun(meta, config, game)

_JSON_TYPES = {dict: "an object", list: "a list", type(None): "null"}


def _as_value(value: Any) -> ast.Value | None:
    """The AST value a `solve { }` block would hold for a JSON scalar (None for others)."""
    if isinstance(value, bool):
        return ast.BoolValue(value)
    if isinstance(value, int):
        return ast.NumberValue(float(value), str(value))
    if isinstance(value, float):
        return ast.NumberValue(value, repr(value))
    if isinstance(value, str):
        return ast.IdentValue(value)
    return None


def _method(where: Path, key: str, method: dict) -> dict[str, Any]:
    """The checked parameters of a saved solver or optimizer {"name": ..., "params": {...}}."""
    registry = METHOD_KEYS[key]
    name, params = method["name"], method["params"]
    if not isinstance(name, str) or not isinstance(params, dict):
        raise _damaged(where, key, f"must be a {key} name with an object of parameters")
    try:
        params = registry.validate(name, params)
        registry.get(name, **params)
    except solvers.SolverError as exc:
        raise _damaged(where, key, f"is wrong: {exc.message}") from None
    return params


def _damaged(where: Path, key: str, message: str) -> CheckpointError:
    return CheckpointError(
        f"{where} is damaged: setting '{key}' {message}",
        hint="restore the file from the run's TensorBoard text 'config', or start the run again",
    )


def run_config(settings: Any, where: Path) -> RunConfig:
    """The RunConfig of config.json's "config" object; settings added to gamedsl since the
    run was written take their defaults, and unknown ones are refused."""
    if not isinstance(settings, dict):
        raise CheckpointError(f"{where} is damaged: 'config' is not an object")
    known = set(KEYS) | {f"{key}_params" for key in METHOD_KEYS} | {"divergences", "player_optimizers"} | set(PLAYER_KEYS)
    unknown = sorted(set(settings) - known)
    if unknown:
        raise _damaged(where, unknown[0], "is not a gamedsl setting")
    values: dict[str, Any] = {}
    for key, spec in KEYS.items():
        if spec.kind is None:
            continue
        raw = settings.get(key, spec.default)
        value = _as_value(raw)
        if value is None:
            raise _damaged(where, key, f"must be {spec.kind.label}, not {_JSON_TYPES.get(type(raw), 'that')}")
        try:
            values[key] = spec.kind.convert(value)
        except GameCheckError as exc:
            raise _damaged(where, key, f"is wrong: {exc.message}") from None
    for key in METHOD_KEYS:
        name = settings.get(key, KEYS[key].default)
        values[f"{key}_params"] = _method(where, key, {"name": name, "params": settings.get(f"{key}_params", {})})
        values[key] = name
    own = settings.get("player_optimizers", {})
    if not isinstance(own, dict):
        raise _damaged(where, "player_optimizers", "must map players to optimizers")
    values["player_optimizers"] = {}
    for player, optimizer in own.items():
        if not isinstance(optimizer, dict) or set(optimizer) != {"name", "params"}:
            raise _damaged(where, "player_optimizers", f"must give player {player!r} a name and parameters")
        values["player_optimizers"][player] = {"name": optimizer["name"], "params": _method(where, "optimizer", optimizer)}
    for key, spec in PLAYER_KEYS.items():
        given = settings.get(key, {})
        if not isinstance(given, dict):
            raise _damaged(where, key, "must map players to values")
        values[key] = {}
        for player, raw in given.items():
            value = _as_value(raw)
            if value is None:
                raise _damaged(where, f"{key}.{player}", f"must be {spec.kind.label}")
            try:
                values[key][player] = spec.kind.convert(value)
            except GameCheckError as exc:
                raise _damaged(where, f"{key}.{player}", f"is wrong: {exc.message}") from None
    divergences = settings.get("divergences", {})
    if not isinstance(divergences, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in divergences.items()):
        raise _damaged(where, "divergences", "must map divergence aliases to divergence names")
    return RunConfig(divergences=dict(divergences), **values)
