"""Solvers for smooth n-player games, usable from plain PyTorch.

    import solvers
    game = solvers.make_game({"D": D.parameters(), "G": G.parameters()}, sample, utilities)
    result = solvers.solve(game, solvers.get("consensus", gamma=10),
                           solvers.optimizers.get("rmsprop", lr=1e-4), steps=1000)

Each method is one module in solvers/methods/, found and registered by name when the package
is imported; all return a `Result`. This package imports only torch and knows nothing of the
.game language. Importing it imports no torch: the methods' declarations (names, parameters,
ranges, capabilities) are read without it, by `gamedsl check` in a fraction of a second; the
engine and the runs (`Engine`, `Run`, `solve`, ...) are loaded on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from solvers import methods, optimizers  # noqa: F401  (importing `methods` registers every method)
from solvers.base import SOLVERS, Solver, Step
from solvers.errors import SolverError
from solvers.protocol import Game, Player, make_game
from solvers.registry import ParamSpec

if TYPE_CHECKING:
    from solvers.engine import Engine, Evaluation
    from solvers.run import Interrupted, NonFinite, Result, Run, solve

LAZY = {  # name -> the module that defines it, imported (with torch) on first use
    "Engine": "solvers.engine",
    "Evaluation": "solvers.engine",
    "Interrupted": "solvers.run",
    "NonFinite": "solvers.run",
    "Result": "solvers.run",
    "Run": "solvers.run",
    "solve": "solvers.run",
}

__all__ = [
    "Engine", "Evaluation", "Game", "Interrupted", "NonFinite", "ParamSpec", "Player", "Result", "Run", "Solver",
    "SolverError", "Step", "available", "default", "describe", "get", "make_game", "optimizers", "solve",
]  # fmt: skip

__version__ = "0.1.0"


def get(name: str, **params) -> Solver:
    """The solver `name` with `params`; unknown names or parameters raise SolverError with the choices."""
    return SOLVERS.get(name, **params)


def available() -> list[str]:
    return SOLVERS.available()


def describe(name: str) -> list[ParamSpec]:
    return SOLVERS.describe(name)


def default(name: str, parameter: str) -> Any:
    """The declared default of solver `name`'s `parameter`: one value, wherever it is needed."""
    return SOLVERS.default(name, parameter)


def __getattr__(name: str) -> Any:
    """The engine and the runs, imported on first use (PEP 562): `solvers.Run` works as ever."""
    if name in LAZY:
        value = getattr(importlib.import_module(LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'solvers' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(LAZY))
