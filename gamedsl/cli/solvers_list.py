"""`gamedsl solvers`: the registered solvers and optimizers, with parameters and defaults."""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated

import typer
from rich.table import Table

import solvers
from gamedsl.cli.output import out
from gamedsl.library.signature import format_default
from solvers.registry import number


def list_solvers(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """List the solvers and optimizers with their parameters and defaults."""
    families = {
        "solver": (solvers.SOLVERS, lambda n: solvers.SOLVERS.cls(n).summary),
        "optimizer": (solvers.optimizers.OPTIMIZERS, lambda n: solvers.optimizers.OPTIMIZERS.cls(n).summary),
    }
    if as_json:
        data = {
            family: {
                name: {
                    "summary": summary(name),
                    "parameters": {
                        s.name: {
                            "default": s.default,
                            "type": s.type.__name__,
                            "range": str(s.within) if s.within else None,
                            "default_means": s.shown,
                            "doc": s.doc,
                        }
                        for s in registry.describe(name)
                    },
                }
                for name in registry.available()
            }
            for family, (registry, summary) in families.items()
        }
        out.print_json(json.dumps(data))
        return
    shared = {f.name for f in dataclasses.fields(solvers.optimizers.Optimizer)} - {"lr"}  # the schedule's
    for family, (registry, summary) in families.items():
        table = Table(title=f"{family}s", show_lines=False, title_justify="left")
        table.add_column(family, style="bold")
        table.add_column("parameters (defaults and ranges)")
        table.add_column("what it is")
        if family == "solver":
            table.add_column("takes")
        for name in registry.available():
            specs = [s for s in registry.describe(name) if family == "solver" or s.name not in shared]
            params = ", ".join(_parameter(s) for s in specs) or "—"
            table.add_row(name, params, summary(name), *([_capabilities(registry.cls(name))] if family == "solver" else []))
        out.print(table)
    schedule = [s for s in solvers.optimizers.OPTIMIZERS.describe("sgd") if s.name in shared]
    out.print("Every optimizer also takes a learning-rate schedule: " + ", ".join(_parameter(s) for s in schedule) + ".")
    out.print("Use them as `--solver NAME --set solver.PARAM=VALUE` or in a game's solve block: solver = consensus(gamma=10).")


def _capabilities(cls) -> str:
    """What a solver can be run with, from what it declares."""
    parts = ["any optimizer" if cls.optimizers is None else " or ".join(cls.optimizers) + " only"]
    if cls.one_optimizer:
        parts.append("one optimizer for all players")
    if cls.critic_steps:
        parts.append("critic steps")
    if cls.players is not None:
        parts.append(f"{cls.players} players")
    return ", ".join(parts)


def _parameter(spec: solvers.ParamSpec) -> str:
    """`gamma=10 in [0, 1e6]`; a default whose value says little is described: `player=(the first player)`."""
    if spec.shown:
        default = f"({spec.shown})"
    elif spec.type in (int, float):
        default = number(spec.default)
    else:
        default = format_default(spec.default)
    return f"{spec.name}={default}" + (f" in {spec.within}" if spec.within else "")
