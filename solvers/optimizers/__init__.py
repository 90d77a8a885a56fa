"""Optimizers that step *along* a solver's direction (ascent), optax-style.

An optimizer is a small dataclass of hyperparameters with two methods:
`init(params) -> state` and `step_(params, direction, state)`, which moves `params` in
place along `direction`. State is a dict of tensor lists aligned with `params`, so a solver
can step one player at a time by slicing the lists (alternating methods do). Each optimizer
is one module here, found and registered when the package is imported.
"""

from solvers.optimizers.base import OPTIMIZERS, Optimizer
from solvers.registry import register_modules

register_modules(__name__, __path__)  # every module of this package: each registers its optimizer

__all__ = ["OPTIMIZERS", "Optimizer", "get", "available"]


def get(name: str, **params) -> Optimizer:
    return OPTIMIZERS.get(name, **params)


def available() -> list[str]:
    return OPTIMIZERS.available()
