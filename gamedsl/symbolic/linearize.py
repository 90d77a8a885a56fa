"""The one-step map of each solver, linearised at a stationary point: F'(x-bar).

Every solver with plain steps (`sgd(lr=h)`) is a fixed-point iteration x <- F(x), and by
Proposition 3 it converges locally, at the linear rate rho(F'(x-bar)) (the spectral radius),
if rho < 1, and moves away from x-bar if rho > 1. Each solver declares its own F'(x-bar) in
its module (`Solver.formula`, `.carries` and `.linearization`, in solvers/base.py), built from
J = v'(x-bar), the players' blocks, the step h and the solver's parameters; this module asks
every registered solver for it, so a new solver is analysed as soon as it declares its map.

A solver without a map gets a Linearization whose `note` says so, as does one that finds
none for a game (CGD with three players, ACGD whose step sizes have no fixed value).

Players may step with different learning rates (`optimizer.P.lr`): the step matrix is then
H = diag(h_i on player i's block), handed to the solvers as a column (solvers/base.py). With
critic steps (`critic_steps.P = k`, for the solvers that take them) the run moves P alone
k - 1 times before each solver step, x_P <- x_P + h_P v_P(x), so the one-step map is
F_solver o F_P^(k-1) and its Jacobian the product F'_solver (I + h_P P_P v')^(k-1), composed
here for every such solver.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

import solvers
from solvers.base import own_step_jacobian

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
    remark: str | None = None  # said beside a known map (what it leaves out)
    critic_steps: dict[str, int] = field(default_factory=dict)  # the critic steps composed into the map

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


def linearize(
    solver: str,
    J: np.ndarray,
    blocks,
    players,
    h: float | dict[str, float],
    params: dict[str, Any],
    critic_steps: dict[str, int] | None = None,
) -> Linearization:
    """`solver`'s F'(x-bar) with `params` at J = v'(x-bar), and its eigenvalues; a note where it has none.

    `h`: one step size for every player, or each player's (by name); `critic_steps`: player ->
    k, its steps for each solver step, taken in this order before it (as `solvers.Run` does)."""
    if solver not in solvers.available():
        return Linearization(solver, dict(params), "—", note=f"no linearisation known for solver {solver}")
    method = solvers.get(solver, **params)
    J64 = torch.as_tensor(np.asarray(J, dtype=float), dtype=torch.float64)
    players, steps = list(players), step_sizes(h, list(blocks), list(players), len(J64))
    matrix = method.linearization(J64, list(blocks), players, steps)
    formula = method.formula or "—"
    if isinstance(matrix, str):
        return Linearization(solver, dict(params), formula, method.carries, note=matrix)
    repeats = {name: k for name, k in (critic_steps or {}).items() if k > 1}
    remark = None
    if repeats and method.critic_steps:
        matrix, formula = with_critic_steps(matrix, formula, J64, list(blocks), players, steps, repeats)
    elif repeats:
        remark, repeats = f"{solver} takes no critic steps: analysed without them", {}
    matrix = matrix.numpy()
    eigenvalues = np.linalg.eigvals(matrix) if matrix.size else np.zeros(0, dtype=complex)
    return Linearization(solver, dict(params), formula, method.carries, matrix, None, eigenvalues, remark, repeats)


def step_sizes(h: float | dict[str, float], blocks: list[slice], players: list[str], n: int) -> float | torch.Tensor:
    """What the solvers' `linearization` takes: one float when every player has the same step
    size, else a float64 column with player i's h_i on its block (H = diag of it)."""
    if not isinstance(h, dict):
        return float(h)
    rates = [float(h[name]) for name in players]
    if len(set(rates)) <= 1:
        return rates[0] if rates else 0.0
    column = torch.zeros(n, 1, dtype=torch.float64)
    for block, rate in zip(blocks, rates):
        column[block] = rate
    return column


def with_critic_steps(
    matrix: torch.Tensor, formula: str, J: torch.Tensor, blocks, players, h, repeats: dict[str, int]
) -> tuple[torch.Tensor, str]:
    """F'_solver (I + h_Q P_Q v')^(k_Q - 1) (I + h_P P_P v')^(k_P - 1) for critic steps P, then Q:
    the chain rule, each extra step fixing x-bar. A solver state beyond x (a memory) is left
    alone by the extra steps: they act as the identity on it."""
    before = torch.eye(len(J), dtype=J.dtype)
    factors = []
    for name, k in repeats.items():
        before = torch.linalg.matrix_power(own_step_jacobian(J, blocks[players.index(name)], h), k - 1) @ before
        power = f"^{k - 1}" if k > 2 else ""
        factors.insert(0, f"(I + h{'' if isinstance(h, float) else '_' + name} P_{name} v'){power}")
    extra = len(matrix) - len(J)
    if extra:
        before = torch.block_diag(before, torch.eye(extra, dtype=J.dtype))
    return matrix @ before, f"[{formula}] " + " ".join(factors)
