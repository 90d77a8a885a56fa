"""Spectra and step sizes: Lemma 4 (eq. 10) for SimGA and for consensus optimization.

For a matrix A whose eigenvalues all have negative real part, the eigenvalues of I + hA
lie in the unit disc iff, for every eigenvalue lambda = -a + bi,

    h < 2a / (a^2 + b^2) = (1/|Re lambda|) * 2 / (1 + (Im lambda / Re lambda)^2)      (10)

so the largest stable step is the minimum of these bounds, and it shrinks like q^-2 in
q = max |Im lambda / Re lambda|. A = v'(x) gives SimGA's bound; A = v' - gamma v'^T v' gives
consensus optimization's (Lemma 6: its one-step Jacobian is I + h (I - gamma v'^T) v').
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import sympy as sp

from gamedsl.errors import LimitError
from gamedsl.symbolic import limits

try:
    from sympy.matrices.exceptions import MatrixError
except ImportError:  # sympy < 1.13
    from sympy.matrices.common import MatrixError

ZERO = 1e-10  # |Re lambda| below ZERO * max(1, |lambda|max) counts as zero in floating point


@dataclass
class Spectrum:
    values: np.ndarray  # complex, sorted by (Re, Im)
    exact: list[sp.Expr] | None  # the same eigenvalues, exactly, when sympy found them

    @property
    def scale(self) -> float:
        return max(1.0, float(np.max(np.abs(self.values), initial=0.0)))


def spectrum(matrix: np.ndarray, exact: sp.Matrix | None = None, seconds: float = 5.0) -> Spectrum:
    """Eigenvalues of a square matrix; exact ones (under a time limit) when `exact` is given."""
    values = np.linalg.eigvals(matrix) if matrix.size else np.zeros(0, dtype=complex)
    values = np.array(sorted(values.astype(complex), key=lambda z: (round(z.real, 12), round(z.imag, 12))))
    listed = exact_eigenvalues(exact, seconds) if exact is not None else None
    if listed is None or len(listed) != len(values):
        return Spectrum(values, None)
    try:
        with limits.time_limit(seconds, "exact eigenvalues as numbers"):
            numbers = [complex(sp.N(v, 20)) for v in listed]
    except (LimitError, TypeError, ValueError):
        return Spectrum(values, None)
    order = sorted(range(len(listed)), key=lambda k: (round(numbers[k].real, 12), round(numbers[k].imag, 12)))
    return Spectrum(np.array([numbers[k] for k in order], dtype=complex), [listed[k] for k in order])


def exact_eigenvalues(matrix: sp.Matrix, seconds: float) -> list[sp.Expr] | None:
    """The eigenvalues with their multiplicities, exactly and readably, within `seconds`; else None.

    Also for a matrix of symbols: v' along a family of stationary points, in its parameters."""
    if matrix.shape[0] > limits.MAX_EXACT_EIGEN_SIZE:
        return None
    try:
        with limits.time_limit(seconds, "exact eigenvalues"):
            found = matrix.eigenvals()
            if any(len(sp.sstr(value)) > 100 for value in found):
                return None  # roots of a cubic in radicals: exact, but of no use to anyone
            listed = []
            for value, multiplicity in found.items():
                listed.extend([tidy(value)] * int(multiplicity))
    except (LimitError, NotImplementedError, TypeError, ValueError, MatrixError):
        return None
    return listed


def tidy(value: sp.Expr) -> sp.Expr:
    """simplify, but only where it can pay off: short values are left as sympy made them, and
    very long ones (the roots of a cubic) would stay unreadable anyway."""
    return sp.simplify(value) if 40 < len(sp.sstr(value)) <= 200 else value


@dataclass
class StepBound:
    """Lemma 4 applied to one matrix A: is I + hA contractive for small h, and up to which h?"""

    stable: bool  # every eigenvalue has Re < 0
    h_max: float | None  # the bound (10); None when no h > 0 works
    q: float  # max |Im / Re| (inf when an eigenvalue lies on the imaginary axis, off 0)
    h_max_exact: sp.Expr | None = None
    q_exact: sp.Expr | None = None
    reason: str = ""  # why not stable

    def converges_at(self, h: float) -> bool:
        return self.stable and self.h_max is not None and h < self.h_max


def _sign(value: complex, exact: sp.Expr | None, scale: float) -> int:
    """Sign of Re(lambda): exact when sympy can decide, otherwise with a tolerance."""
    if exact is not None:
        re = sp.re(exact)
        if re.is_negative:
            return -1
        if re.is_positive:
            return 1
        if re.is_zero:
            return 0
    if abs(value.real) <= ZERO * scale:
        return 0
    return -1 if value.real < 0 else 1


def lemma4(spec: Spectrum, matrix: str = "v'") -> StepBound:
    """Lemma 4 for the matrix whose spectrum is `spec`; `matrix` names it in the reason
    (v' for SimGA, w' for consensus), so that a report never blames the wrong Jacobian."""
    values, exact, scale = spec.values, spec.exact, spec.scale
    if len(values) == 0:
        return StepBound(True, math.inf, 0.0)
    signs = [_sign(z, exact[k] if exact else None, scale) for k, z in enumerate(values)]
    q = 0.0
    for z, s in zip(values, signs):
        if s == 0:
            q = math.inf if abs(z.imag) > ZERO * scale else max(q, 0.0)
        else:
            q = max(q, abs(z.imag / z.real))
    q_exact = _exact_q(exact, signs) if exact and all(s != 0 for s in signs) else None
    if any(s > 0 for s in signs):
        return StepBound(False, None, q, None, q_exact, f"an eigenvalue of {matrix} has positive real part")
    if any(s == 0 for s in signs):
        return StepBound(False, None, q, None, None, f"an eigenvalue of {matrix} lies on the imaginary axis")
    bounds = [2 * -z.real / abs(z) ** 2 for z in values]
    k = int(np.argmin(bounds))
    h_exact = None
    if exact:
        try:
            with limits.time_limit(2.0, "the exact step bound"):
                re, im = exact[k].as_real_imag()
                h_exact = sp.simplify(2 * -re / (re**2 + im**2))
        except LimitError:
            h_exact = None
    return StepBound(True, float(bounds[k]), q, h_exact, q_exact)


def _exact_q(exact: list[sp.Expr], signs: list[int]) -> sp.Expr | None:
    try:
        with limits.time_limit(2.0, "the exact ratio q"):
            ratios = []
            for value in exact:
                re, im = value.as_real_imag()
                ratios.append(sp.simplify(sp.Abs(im / re)))
            return max(ratios, key=lambda r: float(sp.N(r)))
    except (LimitError, TypeError, ValueError):
        return None


def consensus_matrix(J, gamma):
    """v' - gamma v'^T v': the Jacobian of w = v - gamma grad(|v|^2 / 2) at a stationary point."""
    if isinstance(J, sp.MatrixBase):
        return J - gamma * J.T * J
    return J - gamma * (J.T @ J)


@dataclass
class ConsensusFormula:
    """The consensus eigenvalues (and step bound) as functions of a symbolic gamma."""

    eigenvalues: list[sp.Expr]
    h_max: sp.Expr | None


GAMMA = sp.Symbol("gamma", positive=True)


def consensus_formula(J_exact: sp.Matrix, seconds: float = 3.0) -> ConsensusFormula | None:
    """Eigenvalues of v' - gamma v'^T v' in gamma, for exact 2 x 2 v' (e.g. -gamma +- i)."""
    if J_exact.shape[0] > 2:
        return None
    try:
        with limits.time_limit(seconds, "the consensus eigenvalues in gamma"):
            found = consensus_matrix(J_exact, GAMMA).eigenvals()
            values = []
            for value, multiplicity in found.items():
                values.extend([tidy(value)] * int(multiplicity))
            bound = None
            # Lemma 4 in closed form only where no square root's sign depends on gamma
            # (eigenvalues that turn from real to complex as gamma grows have no single formula)
            if not any(
                p.exp.is_Rational and not p.exp.is_Integer and p.base.has(GAMMA)
                for v in values
                for p in v.atoms(sp.Pow)
            ):
                bounds = set()
                for value in values:
                    re, im = value.as_real_imag()
                    bounds.add(sp.simplify(2 * -re / (re**2 + im**2)))
                bound = bounds.pop() if len(bounds) == 1 else None
    except (LimitError, NotImplementedError, TypeError, ValueError, MatrixError):
        return None
    return ConsensusFormula(values, bound)
