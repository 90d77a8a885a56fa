"""Solvers for smooth n-player games, usable from plain PyTorch.

    import solvers
    game = solvers.make_game({"D": D.parameters(), "G": G.parameters()}, sample, utilities)
    result = solvers.solve(game, solvers.get("consensus", gamma=10),
                           solvers.optimizers.get("rmsprop", lr=1e-4), steps=1000)

Each method is one module registered by name; all return a `Result`. This package
imports only torch and knows nothing of the .game language.
"""

from solvers import optimizers
from solvers.base import SOLVERS, Solver, Step
from solvers.engine import Engine, Evaluation
from solvers.errors import SolverError
from solvers.protocol import Game, Player, make_game
from solvers.registry import ParamSpec
from solvers.run import Interrupted, NonFinite, Result, Run, solve
from solvers import altga, cgd, consensus, extragradient, momentum, optimistic, sga, simga, smoothing  # noqa: F401  (registration)

__all__ = [
    "Engine", "Evaluation", "Game", "Interrupted", "NonFinite", "ParamSpec", "Player", "Result", "Run", "Solver",
    "SolverError", "Step", "available", "describe", "get", "make_game", "optimizers", "solve",
]  # fmt: skip

__version__ = "0.1.0"


def get(name: str, **params) -> Solver:
    """The solver `name` with `params`; unknown names or parameters raise SolverError with the choices."""
    return SOLVERS.get(name, **params)


def available() -> list[str]:
    return SOLVERS.available()


def describe(name: str) -> list[ParamSpec]:
    return SOLVERS.describe(name)
