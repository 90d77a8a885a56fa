"""What `gamedsl check` says of each file: a summary, or one JSON object, and the errors.

Kept apart from the typer command (`gamedsl/cli/check.py`) and free of typer, because
`gamedsl check FILE...` with nothing but files and `--json` runs this directly (see
`gamedsl/cli/quick.py`): the check runs on every save in editors and hooks, and typer's start-up
would be most of its time.
"""

from __future__ import annotations

import json
from pathlib import Path

from gamedsl.cli.output import err, out
from gamedsl.errors import ExitCode, GameError
from gamedsl.semantics.checker import check as check_game
from gamedsl.semantics.model import CheckedGame
from gamedsl.semantics.settings import resolve
from gamedsl.syntax import unparse
from gamedsl.syntax.parser import parse_file

JSON_FLAG = "--json"  # the one option; `check.py` declares it to typer, `quick.py` recognises it


def run(files: list[Path], as_json: bool) -> ExitCode:
    """Check every file, print what is found, and return the worst exit code: 3 if any file
    is invalid, 7 if one exceeds a safety limit."""
    reports, worst = [], ExitCode.OK
    for path in files:
        try:
            parsed, source = parse_file(path)
            game = check_game(parsed, source)
        except GameError as exc:
            worst = max(worst, exc.code)
            reports.append({"path": str(path), "ok": False, "error": exc.as_dict()})
            if not as_json:
                err.print(exc.render(), markup=False)
            continue
        reports.append(summary(game))
        if not as_json:
            for warning in game.warnings:
                err.print(warning.render(), markup=False)
            print_summary(game)
    if as_json:
        out.print_json(json.dumps(reports if len(reports) != 1 else reports[0]))
    return worst


def summary(game: CheckedGame) -> dict:
    """The JSON form of a checked game."""
    return {
        "path": game.source.path,
        "ok": True,
        "game": game.name,
        "description": game.description,
        "players": [
            {
                "name": p.name,
                "controls": list(p.controls),
                "parameters": game.parameter_count(p),
                "sense": "maximizes" if p.maximize else "minimizes",
                "objective": unparse.expr(p.decl.objective),
            }
            for p in game.players
        ],
        "data": {n: _sample(s) for n, s in game.samples.items() if s.kind == "data"},
        "latent": {n: _sample(s) for n, s in game.samples.items() if s.kind == "latent"},
        "networks": {n: unparse.value(net.decl.builder) for n, net in game.networks.items()},
        "params": {n: list(p.shape) for n, p in game.params.items()},
        "solve": {key: unparse.value(s.value) for key, s in game.settings.items()},
        "training": player_training(game),
        "warnings": [w.as_dict() for w in game.warnings],
    }


def player_training(game: CheckedGame) -> dict[str, dict]:
    """How each player trains under the file's settings: its optimizer, and its critic steps
    and averaging where the solve block gives them."""
    config = resolve(game.settings, [], {})
    out = {}
    for p in game.players:
        row: dict = {"optimizer": config.optimizer_text(p.name)}
        if p.name in config.critic_steps:
            row["critic_steps"] = config.critic_steps[p.name]
        if p.name in config.average:
            row["average"] = config.average[p.name]
        out[p.name] = row
    return out


def _training_line(row: dict) -> str:
    parts = [f"trains with {row['optimizer']}"]
    if row.get("critic_steps", 1) > 1:
        parts.append(f"{row['critic_steps']} steps for each of the others'")
    if "average" in row:
        parts.append(f"averaged with decay {row['average']:g}")
    return ", ".join(parts)


def _sample(s) -> dict:
    return {"source": unparse.value(s.decl.source), "shape": list(s.shape)}


def print_summary(game: CheckedGame) -> None:
    title = f"[bold]{game.source.path}[/]: ok — game [bold]{game.name}[/]"
    out.print(title + (f": {game.description}" if game.description else ""))
    training = player_training(game)
    # a line per player when the players train differently
    per_player = any(set(row) != {"optimizer"} for row in training.values()) or len({r["optimizer"] for r in training.values()}) > 1
    for p in game.players:
        count = game.parameter_count(p)
        sense = "maximizes" if p.maximize else "minimizes"
        controls = ", ".join(p.controls)
        out.print(f"  player [bold]{p.name}[/] controls {controls} ({count:,} parameter{'' if count == 1 else 's'}) {sense}", markup=True)
        out.print(f"      {unparse.expr(p.decl.objective)}", markup=False)
        if per_player:
            out.print(f"      {_training_line(training[p.name])}", markup=False)
    for s in game.samples.values():
        shape = "scalar" if not s.shape else "x".join(map(str, s.shape))
        out.print(f"  {s.kind:<6} {s.name} ~ {unparse.value(s.decl.source)}  [{shape}]", markup=False)
    if game.settings:
        settings = ", ".join(f"{k}={unparse.value(s.value)}" for k, s in game.settings.items())
        out.print(f"  solve  {settings}", markup=False)
