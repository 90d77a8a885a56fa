"""The associated gradient vector field v (eq. 5), its Jacobian v' (eq. 6), and their values.

`Field` holds both symbolically and as fast float64 functions. The numerical functions are
made by `sympy.lambdify` from the expression trees (never from text); every symbol is
renamed _x0, _x1, ... first, so no name from a .game file reaches the generated code.
Where float64 overflows (softplus of a large argument), values are recomputed with mpmath.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Callable, Sequence

import numpy as np
import sympy as sp

from gamedsl.compile.sympy_game import SymbolicGame


def lambdify(symbols: Sequence[sp.Symbol], exprs, modules: str = "numpy") -> Callable:
    """A float function of `symbols`. They are renamed _x0, _x1, ... first, in one pass over
    the trees (lambdify's own `dummify` makes one pass per symbol), so that no name from a
    .game file appears in the generated code."""
    safe = [sp.Symbol(f"_x{k}", real=True) for k in range(len(symbols))]
    rename = dict(zip(symbols, safe))

    def convert(e):
        if isinstance(e, (list, tuple)):
            return [convert(t) for t in e]
        return e.xreplace(rename) if isinstance(e, sp.Basic) else e

    if modules == "numpy":
        from sympy.printing.numpy import NumPyPrinter as Printer
    else:
        from sympy.printing.pycode import MpmathPrinter as Printer
    # order="none": printing large sums would otherwise sort their terms, the slowest part
    settings = {"fully_qualified_modules": False, "inline": True, "allow_unknown_functions": True, "order": "none"}
    return sp.lambdify(safe, convert(exprs), modules=modules, printer=Printer(settings), dummify=False)


@dataclass
class Field:
    game: SymbolicGame
    v: sp.Matrix  # column, one entry per symbol
    J: sp.Matrix  # v'
    _numeric: dict = dc_field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, game: SymbolicGame) -> "Field":
        v = game.field()
        return cls(game, v, v.jacobian(list(game.symbols)))

    @property
    def symbols(self) -> tuple[sp.Symbol, ...]:
        return self.game.symbols

    @property
    def n(self) -> int:
        return len(self.game.symbols)

    @property
    def blocks(self) -> tuple[slice, ...]:
        return self.game.blocks

    # ---- float64 evaluation
    def _fn(self, key: str, modules: str) -> Callable:
        if (key, modules) not in self._numeric:
            exprs = list(self.v) if key == "v" else self.J.tolist()
            self._numeric[key, modules] = lambdify(self.symbols, exprs, modules)
        return self._numeric[key, modules]

    def _eval(self, key: str, x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        args = list(np.asarray(x, dtype=np.float64).ravel())  # numpy scalars: overflow gives inf, not an error
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                out = _array(self._fn(key, "numpy")(*args), shape)
            except (OverflowError, ZeroDivisionError, ValueError, TypeError):
                out = np.full(shape, np.nan)
        if not np.isfinite(out).all() and self.n <= 10:  # float64 overflow inside (exp(800)): redo in mpmath
            try:
                out = _array(self._fn(key, "mpmath")(*(float(a) for a in args)), shape)
            except (OverflowError, ZeroDivisionError, ValueError, TypeError):
                pass
        return out

    def v_at(self, x: np.ndarray) -> np.ndarray:
        return self._eval("v", x, (self.n,))

    def J_at(self, x: np.ndarray) -> np.ndarray:
        return self._eval("J", x, (self.n, self.n))

    def precise(self, x: np.ndarray) -> tuple[list, list[list]]:
        """v and v' at x in mpmath (15 digits, no overflow or underflow), as mpf lists."""
        import mpmath

        args = [mpmath.mpf(float(t)) for t in np.asarray(x, dtype=float).ravel()]
        v = self._fn("v", "mpmath")(*args)
        J = self._fn("J", "mpmath")(*args)
        v = [mpmath.mpmathify(t) for t in v]
        J = [[mpmath.mpmathify(t) for t in row] for row in J]
        return v, J

    # ---- exact evaluation (callers bound the time)
    def J_exact(self, point: Sequence[sp.Expr]) -> sp.Matrix:
        subs = dict(zip(self.symbols, point))
        return self.J.xreplace(subs).applyfunc(sp.simplify)

    def v_exact(self, point: Sequence[sp.Expr]) -> sp.Matrix:
        return self.v.xreplace(dict(zip(self.symbols, point)))


def _array(value, shape: tuple[int, ...]) -> np.ndarray:
    try:
        return np.array(value, dtype=float).reshape(shape)
    except (TypeError, ValueError):
        pass

    def real(t) -> float:  # mpmath numbers, complex values
        try:
            c = complex(t)
        except (TypeError, ValueError, OverflowError):
            return float("nan")
        return c.real if abs(c.imag) <= 1e-12 * max(1.0, abs(c.real)) else float("nan")

    if len(shape) == 1:
        return np.array([real(t) for t in value], dtype=float).reshape(shape)
    return np.array([[real(t) for t in row] for row in value], dtype=float).reshape(shape)


class sigmoid(sp.Function):
    """Display only: logistic sigmoid, so that v reads -theta*sigmoid(D_weight*theta)."""


def _sigmoids(expr: sp.Expr) -> sp.Expr:
    """exp(c a) -> (sigmoid(a) / (1 - sigmoid(a)))^c: GAN fields are rational in sigmoids."""

    def rewrite(e):
        c, a = e.args[0].as_coeff_Mul()
        if c.is_Integer:
            s = sigmoid(a)
            return (s / (1 - s)) ** c
        s = sigmoid(e.args[0])
        return s / (1 - s)

    return expr.replace(lambda e: isinstance(e, sp.exp), rewrite)


def display_forms(exprs: Sequence[sp.Expr], seconds: float = 3.0) -> list[sp.Expr]:
    """Shorter equivalent forms for people, within `seconds` in all (then the rest as they are).

    Only expressions with exponentials are touched: softplus and sigmoid expand to exp, and
    sympy's simplify, after exp(a) is written with sigmoid(a), brings them back.
    """
    from gamedsl.errors import LimitError
    from gamedsl.symbolic import limits

    out = list(exprs)
    try:
        with limits.time_limit(seconds, "simplifying v and v' for display"):
            for k, e in enumerate(exprs):
                if not e.has(sp.exp):
                    continue
                candidates = [e, sp.simplify(_sigmoids(e))]
                out[k] = min(candidates, key=lambda c: len(sp.sstr(c)))
    except LimitError:
        pass
    return out


def blocks_of(matrix, blocks: Sequence[slice]):
    """The diagonal blocks: player i's own Hessian d^2 u_i / d x_i^2 = d v_i / d x_i."""
    return [matrix[b, b] for b in blocks]
