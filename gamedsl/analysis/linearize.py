"""The one-step map of each solver, linearised at a stationary point: F'(x-bar).

Every solver with plain steps (`sgd(lr=h)`) is a fixed-point iteration x <- F(x), and by
Proposition 3 it converges locally, at the linear rate rho(F'(x-bar)) (the spectral radius),
if rho < 1, and moves away from x-bar if rho > 1. Each entry of `REGISTRY` builds F'(x-bar)
from J = v'(x-bar), the players' blocks, the step h and the solver's parameters:

- simga:      I + h J                                         (eq. 9)
- altga:      (I + h P_n J) ... (I + h P_1 J), P_i = player i's rows   (eqs. 43-45)
- momentum:   [[I + h J, h beta I], [J, beta I]] on the state (x, m)   (heavy ball, cf. eqs. 35-36)
- consensus:  I + h (I - gamma J^T) J                          (Lemma 6); debias linearises the same
- smoothing:  I + h (J - gamma E_D J_OD^T J_O)                 (derived below)
- extragradient:       I + h J (I + h J)                      (Gidel et al. 2019)
- past_extragradient:  [[I + h J, h^2 J], [J, h J]] on the state (x, g), g the last look-ahead field
- optimistic:          [[I + 2h J, -I], [h J, 0]] on the state (x, s), s the last step
- sga:        I + h (I + lambda A) J, A = (J - J^T) / 2         (Balduzzi et al. 2018; also with align)
- cgd:        I + h (I - h J_off)^-1 J, J_off = J's off-diagonal blocks   (two players)

Smoothing: the regularised player D follows v_D - gamma grad_D (|v_O|^2 / 2), the others O
their plain field. grad_D (|v_O|^2 / 2) = J_OD^T v_O, and at a stationary point (v = 0) its
derivative is J_OD^T J_O: the D rows of the direction's Jacobian get -gamma J_OD^T J_O,
where J_OD = d v_O / d x_D and J_O = d v_O / d x.

Extrapolation from the past: x' = x + h g, g' = v(x'), x'' = x + h g'; at (x-bar, 0),
g' = J (x + h g) and x'' = x + h J x + h^2 J g. Optimistic: x' = x + 2 s_t - s, s_t = h v(x)
with s the previous step, so s' = h J x. Both have the characteristic equation
mu^2 - (1 + 2 h lambda) mu + h lambda = 0 for every eigenvalue lambda of J: the same spectrum.
SGA's sign rule multiplies lambda by sign(<v, J^T v> <A v, J^T v> / d + 1/10), which is +1
near x-bar (the product is of fourth order in x - x-bar). CGD moves by d = h (I - h J_off)^-1 v
(solvers/cgd.py); the derivative of the inverse is multiplied by v = 0 at x-bar.

A solver without an entry gets a Linearization whose `note` says so; new solvers register
their map with `@register("name", formula)`. A builder that finds no map for a game (CGD
with three players) returns the reason as a string instead of a matrix.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

CONVERGES, DIVERGES, MARGINAL, UNKNOWN = "converges", "diverges", "marginal", "unknown"
MARGIN = 1e-9  # |rho - 1| below this is "marginal": the linearisation does not decide


@dataclass
class Context:
    J: np.ndarray  # v'(x-bar)
    blocks: list[slice]
    players: list[str]
    h: float
    params: dict[str, Any]

    @property
    def n(self) -> int:
        return self.J.shape[0]

    def rows(self, i: int) -> np.ndarray:
        """P_i J: player i's rows of J, zero elsewhere."""
        out = np.zeros_like(self.J)
        out[self.blocks[i]] = self.J[self.blocks[i]]
        return out


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


Builder = Callable[[Context], "np.ndarray | str"]
REGISTRY: dict[str, tuple[str, str, Builder]] = {}  # solver -> (formula, state, builder)


def register(name: str, formula: str, state: str = "x") -> Callable[[Builder], Builder]:
    def decorate(builder: Builder) -> Builder:
        REGISTRY[name] = (formula, state, builder)
        return builder

    return decorate


def linearize(solver: str, J: np.ndarray, blocks, players, h: float, params: dict[str, Any]) -> Linearization:
    if solver not in REGISTRY:
        return Linearization(solver, dict(params), "—", note=f"no linearisation known for solver {solver}")
    formula, state, builder = REGISTRY[solver]
    matrix = builder(Context(np.asarray(J, dtype=float), list(blocks), list(players), float(h), dict(params)))
    if isinstance(matrix, str):
        return Linearization(solver, dict(params), formula, state, note=matrix)
    eigenvalues = np.linalg.eigvals(matrix) if matrix.size else np.zeros(0, dtype=complex)
    return Linearization(solver, dict(params), formula, state, matrix, None, eigenvalues)


@register("simga", "I + h v'")
def _simga(c: Context) -> np.ndarray:
    return np.eye(c.n) + c.h * c.J


@register("altga", "(I + h P_n v') ... (I + h P_1 v')  (eq. 45)")
def _altga(c: Context) -> np.ndarray:
    # Player i moves from the point its predecessors left: F = F_n o ... o F_1, each
    # F_i(x) = x + h P_i v(x) fixes x-bar, so F' = F_n' ... F_1' by the chain rule (eq. 44).
    out = np.eye(c.n)
    for i in range(len(c.blocks)):
        out = (np.eye(c.n) + c.h * c.rows(i)) @ out
    return out


@register("momentum", "[[I + h v', h beta I], [v', beta I]]", state="(x, m)")
def _momentum(c: Context) -> np.ndarray:
    # m' = beta m + v(x), x' = x + h m' = x + h beta m + h v(x); at (x-bar, 0):
    beta, eye = float(c.params.get("beta", 0.5)), np.eye(c.n)
    return np.block([[eye + c.h * c.J, c.h * beta * eye], [c.J, beta * eye]])


@register("consensus", "I + h (I - gamma v'^T) v'  (Lemma 6)")
def _consensus(c: Context) -> np.ndarray:
    gamma = float(c.params.get("gamma", 10.0))
    return np.eye(c.n) + c.h * (c.J - gamma * c.J.T @ c.J)


@register("smoothing", "I + h (v' - gamma E_D v'_OD^T v'_O)")
def _smoothing(c: Context) -> np.ndarray:
    gamma = float(c.params.get("gamma", 10.0))
    name = c.params.get("player") or ""
    d = c.players.index(name) if name in c.players else 0
    D = c.blocks[d]
    others = np.concatenate(
        [np.arange(b.start, b.stop) for i, b in enumerate(c.blocks) if i != d] or [np.zeros(0, int)]
    )
    J_O = c.J[others]  # d v_O / d x
    direction = c.J.copy()
    direction[D] -= gamma * J_O[:, D].T @ J_O
    return np.eye(c.n) + c.h * direction


@register("extragradient", "I + h v' (I + h v')")
def _extragradient(c: Context) -> np.ndarray:
    # look-ahead x' = x + h v(x), step x + h v(x'): d/dx v(x') = J (I + h J)
    return np.eye(c.n) + c.h * c.J @ (np.eye(c.n) + c.h * c.J)


@register("past_extragradient", "[[I + h v', h^2 v'], [v', h v']]", state="(x, g)")
def _past_extragradient(c: Context) -> np.ndarray:
    return np.block([[np.eye(c.n) + c.h * c.J, c.h * c.h * c.J], [c.J, c.h * c.J]])


@register("optimistic", "[[I + 2h v', -I], [h v', 0]]", state="(x, s)")
def _optimistic(c: Context) -> np.ndarray:
    return np.block([[np.eye(c.n) + 2 * c.h * c.J, -np.eye(c.n)], [c.h * c.J, np.zeros((c.n, c.n))]])


@register("sga", "I + h (I + lambda A) v', A = (v' - v'^T) / 2")
def _sga(c: Context) -> np.ndarray:
    lam = float(c.params.get("lam", 1.0))
    A = (c.J - c.J.T) / 2
    return np.eye(c.n) + c.h * (np.eye(c.n) + lam * A) @ c.J


@register("cgd", "I + h (I - h v'_off)^-1 v'  (v'_off: the players' cross blocks)")
def _cgd(c: Context) -> np.ndarray | str:
    if len(c.blocks) != 2:
        return f"cgd is defined for two players; this game has {len(c.blocks)}"
    off = c.J.copy()
    for b in c.blocks:
        off[b, b] = 0.0
    return np.eye(c.n) + c.h * np.linalg.solve(np.eye(c.n) - c.h * off, c.J)


@register("acgd", "—")
def _acgd(c: Context) -> str:
    return "acgd's step sizes depend on its running mean of v^2, which vanishes at a stationary point: no fixed one-step map"
