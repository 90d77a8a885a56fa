"""Is a stationary point a local Nash equilibrium? Second-order conditions, and Lemma 1 /
Corollary 2 for zero-sum games.

Player i's own Hessian is the diagonal block d v_i / d x_i of v' (its utility's Hessian in
its own parameters). At a stationary point:

- strict local Nash equilibrium: every player's own Hessian is negative definite
  (sufficient);
- non-strict: every own Hessian is negative semi-definite and one has a zero eigenvalue,
  the second-order test is inconclusive (necessary conditions hold);
- not a local Nash equilibrium: some player's own Hessian has a positive eigenvalue, so
  that player gains by moving.

For two-player zero-sum games (u_2 = -u_1 up to a constant), Lemma 1 says v' is negative
(semi-)definite iff both own Hessians are, and Corollary 2 follows: v' is negative
semi-definite at every local Nash equilibrium, and a stationary point with v' negative
definite is one. "Definite" refers to w^T v' w, i.e. to the symmetric part of v'. For games
that are not zero-sum Corollary 2 does not hold: a local Nash equilibrium can have a v'
that is not negative semi-definite.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from gamedsl.errors import LimitError
from gamedsl.symbolic import limits
from gamedsl.symbolic.field import blocks_of
from gamedsl.symbolic.stability import tidy

try:
    from sympy.matrices.exceptions import MatrixError
except ImportError:  # sympy < 1.13
    from sympy.matrices.common import MatrixError

STRICT = "strict local Nash equilibrium"
NON_STRICT = "non-strict: second-order test inconclusive"
NOT_NASH = "not a local Nash equilibrium"


@dataclass
class Definiteness:
    eigenvalues: list[float]  # of the symmetric matrix, ascending
    exact: list[sp.Expr] | None
    kind: str  # "negative definite", "negative semi-definite", "indefinite", "positive semi-definite", ...

    @property
    def nsd(self) -> bool:
        return self.kind in ("negative definite", "negative semi-definite", "zero")


@dataclass
class PlayerCheck:
    name: str
    hessian: Definiteness


@dataclass
class ZeroSum:
    kind: str  # "zero-sum", "constant-sum" or "general-sum"
    method: str  # "exact" or "numerical"

    @property
    def zero_sum(self) -> bool:
        return self.kind in ("zero-sum", "constant-sum")


@dataclass
class NashResult:
    classification: str
    players: list[PlayerCheck]
    symmetric_part: Definiteness  # of (v' + v'^T) / 2: is v' negative (semi-)definite?
    notes: list[str] = field(default_factory=list)  # Lemma 1 / Corollary 2 consequences


def zero_sum(utilities, symbols, seconds: float = 3.0, seed: int = 0) -> ZeroSum:
    """simplify(sum of utilities) == 0, or its gradient == 0 (constant-sum: the same game)."""
    total = sp.Add(*utilities)
    if total == 0:
        return ZeroSum("zero-sum", "exact")
    degree = limits.polynomial_degree(total, set(symbols))
    small = limits.node_count(total, 2001) <= 2000 and (degree is None or degree <= 24)
    try:
        if not small:  # simplify would expand (x + 1)^100000: decide numerically
            raise LimitError("too large to simplify")
        with limits.time_limit(seconds, "checking whether the game is zero-sum"):
            if sp.simplify(total) == 0:
                return ZeroSum("zero-sum", "exact")
            if all(sp.simplify(sp.diff(total, s)) == 0 for s in symbols):
                return ZeroSum("constant-sum", "exact")
            return ZeroSum("general-sum", "exact")
    except LimitError:
        pass
    # numerically: the gradient of the sum at random points
    from gamedsl.symbolic.field import lambdify

    grad = lambdify(symbols, [sp.diff(total, s) for s in symbols])
    rng = np.random.default_rng(seed)
    with np.errstate(all="ignore"):
        for _ in range(5):
            values = np.array(grad(*rng.normal(0, 1, len(symbols))), dtype=float)
            if np.all(np.isfinite(values)) and np.max(np.abs(values), initial=0.0) > 1e-9:
                return ZeroSum("general-sum", "numerical")
    return ZeroSum("constant-sum", "numerical")


def definiteness(matrix: np.ndarray, exact: sp.Matrix | None = None, seconds: float = 2.0) -> Definiteness:
    """Classify a symmetric matrix by the signs of its (real) eigenvalues."""
    matrix = (matrix + matrix.T) / 2
    values = np.sort(np.linalg.eigvalsh(matrix)) if matrix.size else np.zeros(0)
    scale = max(1.0, float(np.max(np.abs(values), initial=0.0)))
    signs = [0 if abs(x) <= 1e-10 * scale else (1 if x > 0 else -1) for x in values]
    exact_values = None
    if exact is not None and exact.shape[0] <= limits.MAX_EXACT_EIGEN_SIZE:
        try:
            with limits.time_limit(seconds, "exact Hessian eigenvalues"):
                sym = (exact + exact.T) / 2
                found = []
                for value, multiplicity in sym.eigenvals().items():
                    found.extend([tidy(value)] * int(multiplicity))
                found.sort(key=lambda e: float(sp.re(sp.N(e))))
                exact_signs = []
                for value in found:
                    real = sp.re(value)
                    s = -1 if real.is_negative else 1 if real.is_positive else 0 if real.is_zero else None
                    exact_signs.append(s)
                if None not in exact_signs and len(found) == len(values):
                    signs, exact_values = exact_signs, found
        except (LimitError, NotImplementedError, TypeError, ValueError, MatrixError):
            pass
    return Definiteness([float(x) for x in values], exact_values, _kind(signs))


def _kind(signs: list[int]) -> str:
    if not signs:
        return "zero"
    if all(s < 0 for s in signs):
        return "negative definite"
    if all(s <= 0 for s in signs):
        return "zero" if all(s == 0 for s in signs) else "negative semi-definite"
    if all(s > 0 for s in signs):
        return "positive definite"
    if all(s >= 0 for s in signs):
        return "positive semi-definite"
    return "indefinite"


def classify(J: np.ndarray, J_exact: sp.Matrix | None, blocks, players: list[str], game_kind: ZeroSum) -> NashResult:
    exact_blocks = blocks_of(J_exact, blocks) if J_exact is not None else [None] * len(blocks)
    checks = [PlayerCheck(name, definiteness(H, E)) for name, H, E in zip(players, blocks_of(J, blocks), exact_blocks)]
    kinds = [c.hessian.kind for c in checks]
    if all(k == "negative definite" for k in kinds):
        label = STRICT
    elif all(c.hessian.nsd for c in checks):
        label = NON_STRICT
    else:
        label = NOT_NASH
    sym = definiteness(J, J_exact)
    result = NashResult(label, checks, sym)
    result.notes.extend(_corollary2(result, game_kind, len(players)))
    return result


def _corollary2(result: NashResult, game: ZeroSum, n_players: int) -> list[str]:
    sym = result.symmetric_part.kind
    offenders = [c.name for c in result.players if not c.hessian.nsd]
    if not (game.zero_sum and n_players == 2):
        why = "the game is not zero-sum" if not game.zero_sum else f"the game has {n_players} players"
        notes = [f"Corollary 2 does not apply ({why}): the definiteness of v' does not decide the Nash property"]
        if result.classification != NOT_NASH and sym not in ("negative definite", "negative semi-definite", "zero"):
            notes.append(f"v' is {sym} although the point passes the Nash test: impossible in a zero-sum game")
        if result.classification == NOT_NASH:
            notes.append(f"not Nash: the own Hessian of {', '.join(offenders)} has a positive eigenvalue")
        return notes
    notes = [f"Lemma 1 (zero-sum): v' is negative (semi-)definite iff both players' own Hessians are; here v' is {sym}"]
    if sym == "negative definite":
        notes.append("Corollary 2: v' is negative definite at a stationary point, so this is a local Nash equilibrium")
    elif sym in ("negative semi-definite", "zero"):
        notes.append("Corollary 2: v' is negative semi-definite, as at every local Nash equilibrium; "
                     "the converse needs definiteness, so second-order information does not decide")  # fmt: skip
    else:
        notes.append(
            "Corollary 2: v' is not negative semi-definite, so this is not a local Nash equilibrium"
            + (f" ({', '.join(offenders)} can improve)" if offenders else "")
        )
    return notes
