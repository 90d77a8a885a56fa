"""Stationary points: v(x) = 0, exactly where sympy can, numerically otherwise.

1. Exact: `sympy.solve` on the system, under a time limit, and only when the system is
   small enough to have a chance (few unknowns, low polynomial degree, small trees). For a
   polynomial system a finished solve is complete: it lists every stationary point.
2. Numerical: Newton's method from several starting points (the game's own starting
   point, the origin, and random points at three scales): `sympy.nsolve` for small
   systems, scipy's hybrid Powell method with the exact Jacobian for larger ones. Points
   are deduplicated, and those already found exactly are kept in their exact form.

Each point records how it was found ("exact" or "numerical").

Where v vanishes on a curve or a surface (u = -(a - b)^2 makes every a = b stationary),
sympy answers with a parametric solution: some coordinates are expressions in the others,
which stay free. Such a family is a `Continuum`, shown as one, and never analysed point by
point: v' is singular all along it (v = 0 on the family, so its tangent directions are in
the kernel of v'), every solver's F' has the eigenvalue 1 there, and Proposition 3 cannot
decide. The points the numerical search finds on it are counted with it instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import sympy as sp
from sympy.polys.polyerrors import BasePolynomialError

from gamedsl.errors import LimitError
from gamedsl.symbolic import limits
from gamedsl.symbolic.field import Field

MAX_POINTS = 24
NSOLVE_MAX_UNKNOWNS = 8


@dataclass
class StationaryPoint:
    x: np.ndarray  # float64 coordinates, in the order of Field.symbols
    exact: tuple[sp.Expr, ...] | None  # exact coordinates when sympy found them
    method: str  # "exact" or "numerical"


@dataclass
class Continuum:
    """A family of stationary points: each coordinate an expression in the free ones."""

    symbols: tuple[sp.Symbol, ...]  # Field.symbols
    values: tuple[sp.Expr, ...]  # one per symbol; a free coordinate is its own symbol
    found: int = 0  # points of the numerical search that lay on it (and were dropped)
    eigenvalues: list[sp.Expr] | None = None  # of v' along the family, exactly, where sympy found them

    @property
    def free(self) -> tuple[sp.Symbol, ...]:
        """The parameters of the family, in symbol order."""
        used = set().union(*(getattr(v, "free_symbols", set()) for v in self.values))
        return tuple(s for s in self.symbols if s in used)

    @property
    def affine(self) -> bool:
        try:
            return all(sp.Poly(v, *self.free).total_degree() <= 1 for v in self.values)
        except sp.PolynomialError:
            return False

    @property
    def kind(self) -> str:
        """'a line', 'a surface', 'a 3-dimensional family', or 'every point'."""
        k = len(self.free)
        if k == len(self.symbols):
            return "every point"
        names = {1: ("a line", "a curve"), 2: ("a plane", "a surface")}
        if k in names:
            return names[k][0 if self.affine else 1]
        return f"a {k}-dimensional {'affine subspace' if self.affine else 'family'}"

    def equations(self, show=str) -> str:
        """'a = b = c': symbols with the same value chained, the free one last; free
        symbols that nothing else equals are left out (they are the 'for every' part)."""
        groups: dict[sp.Expr, list[sp.Symbol]] = {}
        for s, v in zip(self.symbols, self.values):
            groups.setdefault(v, []).append(s)
        parts = []
        for value, names in groups.items():
            if value in names:  # a free coordinate, and those equal to it
                if len(names) > 1:
                    parts.append(" = ".join([str(n) for n in names if n != value] + [str(value)]))
            else:
                parts.append(" = ".join([str(n) for n in names] + [show(value)]))
        return ", ".join(parts)

    def text(self, show=str) -> str:
        """'a line of stationary points: a = b = c, for every c'."""
        if self.kind == "every point":
            return "every point is stationary (v = 0 identically)"
        free = ", ".join(str(s) for s in self.free)
        return f"{self.kind} of stationary points: {self.equations(show)}, for every {free}"

    def contains(self, x: np.ndarray) -> bool:
        """Whether the point x lies on the family: its free coordinates determine the rest."""
        at = {s: sp.Float(float(t), 30) for s, t in zip(self.symbols, x) if s in self.free}
        expected = _real_point([v.xreplace(at) for v in self.values])
        return expected is not None and _same(x, expected)


@dataclass
class Search:
    points: list[StationaryPoint]
    exact: str  # "complete" (every point, a polynomial system solved), "solved", "skipped", "timed out", "failed"
    numerical_starts: int = 0
    notes: list[str] = field(default_factory=list)
    continua: list[Continuum] = field(default_factory=list)  # curves or surfaces of stationary points


def find(fld: Field, starts: Sequence[np.ndarray] = (), seconds: float = 10.0, seed: int = 0) -> Search:
    """Stationary points of the field, exact ones first."""
    search = Search([], "skipped")
    _exact(fld, search, seconds)
    if search.exact != "complete":
        _numerical(fld, search, starts, seconds, seed)
    _drop_continua(search)
    search.points.sort(key=lambda p: (p.method != "exact", tuple(np.round(p.x, 9))))
    if len(search.points) > MAX_POINTS:
        search.notes.append(f"{len(search.points)} stationary points found; the first {MAX_POINTS} are analysed")
        search.points = search.points[:MAX_POINTS]
    return search


# ---- exact --------------------------------------------------------------------------------


def exact_guard(fld: Field) -> str | None:
    """Why the exact route is not tried, or None."""
    n = fld.n
    if n > limits.MAX_EXACT_SOLVE_UNKNOWNS:
        return f"{n} unknowns (the exact route is tried up to {limits.MAX_EXACT_SOLVE_UNKNOWNS})"
    symbols = set(fld.symbols)
    bezout = 1
    for eq in fld.v:
        if limits.node_count(eq, limits.MAX_EXACT_NODES + 1) > limits.MAX_EXACT_NODES:
            return "the equations are too large for an exact solution"
        degree = limits.polynomial_degree(eq, symbols)
        if degree is not None:
            if degree > limits.MAX_EXACT_SOLVE_DEGREE:
                limit = limits.MAX_EXACT_SOLVE_DEGREE
                return f"an equation of degree {degree} (the exact route is tried up to degree {limit})"
            bezout *= max(degree, 1)
    if bezout > 10 * limits.MAX_EXACT_SOLVE_DEGREE:
        return f"up to {bezout} solutions (Bezout's bound)"
    return None


def _is_polynomial(fld: Field) -> bool:
    symbols = set(fld.symbols)
    return all(limits.polynomial_degree(eq, symbols) is not None for eq in fld.v)


def _exact(fld: Field, search: Search, seconds: float) -> None:
    reason = exact_guard(fld)
    if reason is not None:
        search.exact = "skipped"
        search.notes.append(f"exact solution not attempted: {reason}")
        return
    equations = [eq for eq in fld.v if eq != 0]
    symbols = list(fld.symbols)
    if not equations:
        search.exact = "complete"
        search.continua.append(Continuum(tuple(symbols), tuple(symbols)))
        return
    try:
        with limits.time_limit(seconds, "solving v = 0 exactly"):
            solutions = sp.solve(equations, symbols, dict=True)
            points, continua = [], []
            for sol in solutions:
                values = [sol.get(s, s) for s in symbols]
                if any(getattr(v, "free_symbols", set()) & set(symbols) for v in values):
                    continua.append(Continuum(tuple(symbols), tuple(values)))
                    continue
                x = _real_point(values)
                if x is not None:
                    points.append(StationaryPoint(x, tuple(values), "exact"))
    except LimitError:
        search.exact = "timed out"
        search.notes.append(f"exact solution timed out after {seconds:g} s; numerical search used")
        return
    except (NotImplementedError, ValueError, TypeError, ZeroDivisionError, BasePolynomialError) as exc:
        search.exact = "failed"
        search.notes.append(f"sympy could not solve v = 0 exactly ({type(exc).__name__}); numerical search used")
        return
    search.points.extend(points)
    search.continua.extend(continua)
    search.exact = "complete" if _is_polynomial(fld) and not continua else "solved"


def _drop_continua(search: Search) -> None:
    """Points on a known family are not isolated: count them with their family instead."""
    if not search.continua:
        return
    isolated = []
    for point in search.points:
        family = next((c for c in search.continua if c.contains(point.x)), None)
        if family is None:
            isolated.append(point)
        else:
            family.found += 1
    search.points = isolated


def _real_point(values: Sequence[sp.Expr]) -> np.ndarray | None:
    out = []
    for v in values:
        try:
            c = complex(sp.N(v, 30))
        except (TypeError, ValueError):
            return None
        if not np.isfinite(c.real) or abs(c.imag) > 1e-12 * max(1.0, abs(c.real)):
            return None
        out.append(c.real)
    return np.array(out, dtype=float)


# ---- numerical ----------------------------------------------------------------------------


def starting_points(n: int, given: Sequence[np.ndarray], seed: int, count: int | None = None) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    count = count if count is not None else (12 if n <= NSOLVE_MAX_UNKNOWNS else 6)
    starts = [np.asarray(x, dtype=float) for x in given]
    starts += [np.zeros(n), np.ones(n)]
    scales = (0.5, 2.0, 5.0)
    k = 0
    while len(starts) < count + len(given):
        starts.append(rng.normal(0.0, scales[k % len(scales)], n))
        k += 1
    return starts


def _numerical(fld: Field, search: Search, given: Sequence[np.ndarray], seconds: float, seed: int) -> None:
    n = fld.n
    starts = starting_points(n, given, seed)
    found = 0
    try:
        with limits.time_limit(seconds, "searching for stationary points numerically"):
            for x0 in starts:
                search.numerical_starts += 1
                x = _nsolve(fld, x0) if n <= NSOLVE_MAX_UNKNOWNS else _root(fld, x0)
                if x is None:
                    continue
                found += 1
                if not any(_same(x, p.x) for p in search.points):
                    search.points.append(StationaryPoint(x, None, "numerical"))
                if len(search.points) > MAX_POINTS:
                    break
    except LimitError:
        search.notes.append(
            f"numerical search stopped after {seconds:g} s ({search.numerical_starts} of {len(starts)} starts)"
        )
    method = "sympy.nsolve" if n <= NSOLVE_MAX_UNKNOWNS else "scipy hybrid Powell"
    search.notes.append(f"numerical search: {method} from {search.numerical_starts} starting points, {found} converged")


def _nsolve(fld: Field, x0: np.ndarray) -> np.ndarray | None:
    try:
        sol = sp.nsolve(list(fld.v), list(fld.symbols), [float(t) for t in x0], verify=True, prec=20)
    except (ValueError, TypeError, ArithmeticError):  # no convergence, a singular Jacobian, overflow
        return None
    x = _real_point(list(sol))
    return _polish(fld, x) if x is not None else None


def _root(fld: Field, x0: np.ndarray) -> np.ndarray | None:
    from scipy.optimize import root

    def fun(x):
        return fld.v_at(x), fld.J_at(x)

    try:
        res = root(fun, x0, jac=True, method="hybr", options={"maxfev": 50 * (fld.n + 1)})
    except (ValueError, FloatingPointError, np.linalg.LinAlgError):
        return None
    return _polish(fld, res.x)


def _polish(fld: Field, x: np.ndarray) -> np.ndarray | None:
    """A few Newton steps in float64, then accept only a true root.

    A small residual alone proves nothing near a degenerate root (x^199 is below 1e-59 at
    x = 1/2), so a point is accepted only where the Newton step itself, computed in mpmath
    (no underflow), is negligible, or where v vanishes exactly.
    """
    x = np.asarray(x, dtype=float)
    for _ in range(4):
        v = fld.v_at(x)
        if not np.all(np.isfinite(v)):
            return None
        try:
            step = np.linalg.lstsq(fld.J_at(x), -v, rcond=None)[0]
        except (np.linalg.LinAlgError, ValueError):
            break
        if not np.all(np.isfinite(step)) or np.max(np.abs(step), initial=0.0) == 0.0:
            break
        x = x + step
    if not np.all(np.isfinite(x)):
        return None
    return x if _is_root(fld, x) else None


def _is_root(fld: Field, x: np.ndarray) -> bool:
    import mpmath

    v, J = fld.precise(x)
    if all(t == 0 for t in v):
        return True
    if not all(mpmath.isfinite(t) for t in v):
        return False
    try:
        step = mpmath.lu_solve(mpmath.matrix(J), mpmath.matrix(v))
    except (ZeroDivisionError, ValueError):
        return False
    size = max(1.0, float(np.max(np.abs(x), initial=0.0)))
    return all(abs(t) <= 1e-9 * size for t in step)


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.linalg.norm(a - b) <= 1e-6 * max(1.0, np.linalg.norm(a), np.linalg.norm(b)))
