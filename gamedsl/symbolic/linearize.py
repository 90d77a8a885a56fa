"""The one-step map of each solver, linearised at a stationary point: F'(x-bar).

Every solver with plain steps (`sgd(lr=h)`) is a fixed-point iteration x <- F(x), and by
Proposition 3 it converges locally, at the linear rate rho(F'(x-bar)) (the spectral radius),
if rho < 1, and moves away from x-bar if rho > 1. Each solver declares its own F'(x-bar) in
its module (`Solver.formula`, `.carries` and `.linearization`, in solvers/base.py), built from
J = v'(x-bar), the players' blocks, the step h and the solver's parameters; this module asks
every registered solver for it, so a new solver is analysed as soon as it declares its map.

A solver without a map gets a Linearization whose `note` says so, as does one that finds
none for a game (CGD with three players, ACGD whose step sizes have no fixed value).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

import solvers

CONVERGES, DIVERGES, MARGINAL, UNKNOWN = "converges", "diverges", "marginal", "unknown"
MARGIN = 1e-9  # |rho - 1| below this is "marginal": the linearisation does not decide


@dataclass
class Linearization:
    solver: str
    params: dict[str, Any]
    formula: str
    state: str = "x"
    matrix: np.ndarray | None = None
    note: str | None = None
    eigenvalues: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=complex))

    @property
    def known(self) -> bool:
        return self.matrix is not None

    @property
    def radius(self) -> float | None:
        return float(np.max(np.abs(self.eigenvalues), initial=0.0)) if self.known else None

    @property
    def prediction(self) -> str:
        rho = self.radius
        if rho is None or not np.isfinite(rho):
            return UNKNOWN
        if rho < 1 - MARGIN:
            return CONVERGES
        if rho > 1 + MARGIN:
            return DIVERGES
        return MARGINAL


def linearize(solver: str, J: np.ndarray, blocks, players, h: float, params: dict[str, Any]) -> Linearization:
    """`solver`'s F'(x-bar) with `params` at J = v'(x-bar), and its eigenvalues; a note where it has none."""
    if solver not in solvers.available():
        return Linearization(solver, dict(params), "—", note=f"no linearisation known for solver {solver}")
    method = solvers.get(solver, **params)
    J64 = torch.as_tensor(np.asarray(J, dtype=float), dtype=torch.float64)
    matrix = method.linearization(J64, list(blocks), list(players), float(h))
    formula = method.formula or "—"
    if isinstance(matrix, str):
        return Linearization(solver, dict(params), formula, method.carries, note=matrix)
    matrix = matrix.numpy()
    eigenvalues = np.linalg.eigvals(matrix) if matrix.size else np.zeros(0, dtype=complex)
    return Linearization(solver, dict(params), formula, method.carries, matrix, None, eigenvalues)
