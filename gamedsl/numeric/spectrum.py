"""Eigenvalues of v'(x) and of the consensus field's w'(x) = v' - gamma v'^T v'.

The spectra of the paper's Figure 3. The Jacobian is averaged over M minibatches, so that
one batch's noise does not move the eigenvalues. Small games get the dense Jacobian
(forward-over-reverse with torch.func, in chunks) and all its eigenvalues; large ones the k
eigenvalues of largest real part or magnitude by ARPACK's implicitly restarted Arnoldi
method on Jacobian-vector products, never forming v' (ARPACK finds at most n - 2 of n;
a request for more gets the dense method, or a usage error beyond its size).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator, eigs
from threadpoolctl import threadpool_limits

from gamedsl.errors import DivergedError, UsageError
from gamedsl.nets.dcgan import running_stats_frozen
from solvers.field import GameField

DENSE_LIMIT = 6000  # parameters; above this, Arnoldi


@dataclass
class Spectrum:
    v: np.ndarray  # eigenvalues of v'
    w: np.ndarray  # eigenvalues of v' - gamma v'^T v'
    gamma: float
    method: str  # "dense" or "arnoldi(k, which)"
    dim: int

    def summary(self) -> dict:
        return {"dim": self.dim, "method": self.method, "gamma": self.gamma, "v": describe(self.v), "w": describe(self.w)}


def describe(eigs_: np.ndarray) -> dict:
    """Max real part; the share of eigenvalues on the imaginary axis, |Re| < 1e-3 |lambda|max;
    and, because over-parametrised networks give many eigenvalues near 0 (in v' and w' alike),
    the same question for the *significant* ones (|lambda| > 1% of the largest): the share
    within 0.1 |lambda| of the imaginary axis, and their mean real part."""
    magnitude = float(np.abs(eigs_).max()) if len(eigs_) else 0.0
    near = np.abs(eigs_.real) < 1e-3 * magnitude
    significant = eigs_[np.abs(eigs_) > 1e-2 * magnitude]
    steep = np.abs(significant.real) < 0.1 * np.abs(significant)
    return {
        "significant": int(len(significant)),
        "significant_near_imaginary_axis": float(steep.mean()) if len(significant) else float("nan"),
        "significant_mean_real": float(significant.real.mean()) if len(significant) else float("nan"),
        "count": int(len(eigs_)),
        "max_real": float(eigs_.real.max()) if len(eigs_) else float("nan"),
        "min_real": float(eigs_.real.min()) if len(eigs_) else float("nan"),
        "max_abs": magnitude,
        "max_abs_imag": float(np.abs(eigs_.imag).max()) if len(eigs_) else float("nan"),
        "share_near_imaginary_axis": float(near.mean()) if len(eigs_) else float("nan"),
    }


def spectrum(
    game, gamma: float, batches: int = 10, k: int = 20, which: str = "LR", dense: bool | None = None,
    poll: Callable[[], None] = lambda: None,
) -> Spectrum:
    """Eigenvalues at the game's current parameters, averaged over `batches` minibatches.

    Products are taken in the game's own precision, on a copy of its parameters; the
    eigenvalue problems are solved in float64. The minibatches come from separate fixed
    streams, so computing a spectrum during training does not change the run. Batch-norm
    layers normalise with each minibatch's statistics, as in training, and their running
    averages are left untouched (torch.func cannot update them in place). `poll` is called
    between pieces of work, so that a stop request need not wait for the whole spectrum.
    """
    with running_stats_frozen(game):
        return _spectrum(game, gamma, batches, k, which, dense, poll)


def _spectrum(game, gamma: float, batches: int, k: int, which: str, dense: bool | None, poll: Callable[[], None]) -> Spectrum:
    field = GameField(game)
    use_dense = field.dim <= DENSE_LIMIT if dense is None else dense
    method = "dense"
    if not use_dense and not arnoldi_can(field.dim, k):
        if field.dim > DENSE_LIMIT:
            raise UsageError(
                f"--k must be at most {field.dim - 2} for this game's {field.dim:,} parameters, got {k}",
                hint=f"Arnoldi finds at most n - 2 eigenvalues; the dense method takes {DENSE_LIMIT:,} parameters",
            )
        use_dense = True
        method = f"dense, all {field.dim} eigenvalues (--k {k}: Arnoldi finds at most n - 2 of n >= 4)"
    if use_dense:
        draws = (game.draw_batch(f"spectrum-{i}") for i in range(batches))  # one at a time: each is used once
        J = field.dense(field.x(game.dtype), draws, poll=poll).numpy()
        _finite(J)
        # as many BLAS threads as torch uses: more than the free cores slows LAPACK down severalfold
        with threadpool_limits(torch.get_num_threads()):
            return Spectrum(np.linalg.eigvals(J), np.linalg.eigvals(J - gamma * J.T @ J), gamma, method, field.dim)
    draws = []
    for i in range(batches):
        poll()
        draws.append(game.draw_batch(f"spectrum-{i}"))
    return _arnoldi(field, draws, gamma, k, which, game.dtype, poll)


def _finite(values: np.ndarray) -> None:
    if not np.isfinite(values).all():
        raise DivergedError(
            "v'(x) has non-finite entries at these parameters, so it has no spectrum",
            hint="the field overflows here: look at an earlier checkpoint, or lower the learning rate",
        )


def arnoldi_can(n: int, k: int) -> bool:
    """ARPACK finds k < n - 1 eigenvalues, and needs a few dimensions to work in."""
    return n >= 4 and k <= n - 2


def _arnoldi(field: GameField, draws: list, gamma: float, k: int, which: str, dtype: torch.dtype, poll) -> Spectrum:
    x = field.x(dtype)
    n = field.dim

    def jv(u: np.ndarray) -> torch.Tensor:
        poll()
        t = torch.from_numpy(np.ascontiguousarray(u.real)).to(dtype)
        product = sum(field.jvp_at(x, b, t) for b in draws) / len(draws)
        _finite(product.numpy())
        return product

    def jtv(u: torch.Tensor) -> torch.Tensor:
        return sum(field.vjp_at(x, b, u) for b in draws) / len(draws)

    op_v = LinearOperator((n, n), matvec=lambda u: jv(u).double().numpy(), dtype=np.float64)

    def w_matvec(u):
        ju = jv(u)
        return (ju - gamma * jtv(ju)).double().numpy()

    op_w = LinearOperator((n, n), matvec=w_matvec, dtype=np.float64)
    ev = eigs(op_v, k=k, which=which, return_eigenvectors=False)
    ew = eigs(op_w, k=k, which=which, return_eigenvectors=False)
    return Spectrum(ev, ew, gamma, f"arnoldi(k={k}, which={which})", n)
