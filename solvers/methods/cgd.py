"""Competitive gradient descent (Schäfer and Anandkumar 2019) and its adaptive form ACGD
(Schäfer, Zheng and Anandkumar 2020, "Implicit competitive regularization in GANs").

Each step plays the Nash equilibrium of a local game instead of following v: each player
maximises the bilinear approximation of its utility around x, with a quadratic penalty on
its own move. With x = (x_1, x_2), utilities f, g, v = (grad_1 f, grad_2 g) and the
off-diagonal blocks B = d v_1 / d x_2, C = d v_2 / d x_1 of v', player 1 solves
max d_1^T v_1 + d_1^T B d_2 - |d_1|^2_{A_1^-1} / 2 and player 2 the same with C. The
equilibrium is

    d_1 = A_1 (v_1 + B d_2),  d_2 = A_2 (v_2 + C d_1),  i.e.  (I - A J_off) d = A v,

A = diag(A_1, A_2) the players' step sizes: h I for CGD, RMSProp's scaling for ACGD. Each
player reacts to the other's move, which removes the rotation of adversarial games without
changing the field's fixed points. Eliminating d_2 leaves one system for the smaller player
p (q the other), written with S = A_p^{1/2} so that it is symmetric positive definite in
zero-sum games (C = -B^T):

    (I - S J_pq A_q J_qp S) z = S (v_p + J_pq A_q v_q),  d_p = S z,  d_q = A_q (v_q + J_qp d_p).

Its matrix is only applied, by two Jacobian-vector products per iteration. Schäfer and
Anandkumar solve the zero-sum case with conjugate gradients; we use GMRES, which needs no
symmetry, so that general-sum games (the non-saturating GAN) are solved exactly too: for a
symmetric system it builds the same Krylov space. `tol` and `max_iter` bound it; every
step records its iterations (`cgd_iterations`) and relative residual (`cgd_residual`).

At a stationary point the one-step Jacobian of CGD is I + h (I - h J_off)^-1 v' (the
derivative of the inverse is multiplied by v = 0 there). GMRES takes its decisions on host
floats, so neither method runs vectorised under vmap. CGD needs
sgd: its step size h is part of the local game, and an adaptive optimizer would rescale the
equilibrium move coordinate by coordinate, which is what ACGD does inside the game instead.
ACGD keeps the running mean s of v^2 and uses A = h / (sqrt(s / (1 - beta2^t)) + eps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from solvers.base import SOLVERS, Solver, Step
from solvers.errors import SolverError
from solvers.registry import param


@SOLVERS.register
@dataclass
class CGD(Solver):
    name = "cgd"
    rank = 100
    summary = "competitive gradient descent: the Nash move of the local bilinear game (Schäfer & Anandkumar 2019)"
    players = 2  # the local game is a two-player game
    vectorizes = False  # GMRES decides on host-side floats (its iterations, its breakdown)
    compiles = False  # for the same reason: the step runs eagerly, and says so
    formula = "I + h (I - h v'_off)^-1 v'  (v'_off: the players' cross blocks)"
    optimizers = ("sgd",)
    one_optimizer = True
    optimizer_hint = (
        "its step size lr is part of the local game it solves; use acgd with sgd(lr=...) for RMSProp-style scaling"
    )
    tol: float = param(
        1e-6, "relative residual at which the linear solve (GMRES) stops (float32 resolves about 1e-7)", "(0, 1)"
    )
    max_iter: int = param(
        20, "at most this many GMRES iterations per step, each 2 Jacobian-vector products", "[1, 1000]"
    )

    polls = True  # GMRES polls between iterations; the state changes only after the solve

    def init(self, engine):
        if len(engine.players) != self.players:
            raise SolverError(
                f"is defined for two players; this game has {len(engine.players)}",
                "competitive gradient descent solves a two-player local game",
            )
        if engine.optimizer.name not in self.optimizers:
            raise SolverError(
                f"needs optimizer {' or '.join(self.optimizers)}, not {engine.optimizer.name}: its step size lr is "
                "part of the local game it solves, and an adaptive optimizer would rescale the equilibrium move",
                "use acgd with sgd(lr=...) for RMSProp-style scaling inside the local game",
            )
        return {}

    def steps(self, engine, v, state):
        """The diagonal of A, each coordinate's step size (h for CGD), and the solver state to
        store once the step is taken (none for CGD)."""
        import torch

        return [torch.full_like(t, engine.optimizer.rate(engine.clock)) for t in v], {}

    def step(self, engine, state):
        import torch

        from solvers import vec

        ev = engine.evaluate(engine.sample(), create_graph=True)
        sizes, update = self.steps(engine, ev.v, state)
        move, iterations, residual = nash_move(engine, ev, sizes, self.tol, self.max_iter)
        for key, tensors in update.items():  # after GMRES's last poll: an interrupted step changes nothing
            vec.copy_(state[key], tensors)
        h = engine.optimizer.rate(engine.clock)
        if h > 0:  # a schedule may bring the rate to 0: the Nash move is then 0 too
            engine.apply(vec.scale(move, 1.0 / h))  # sgd(lr=h) then moves by exactly `move`
        return Step.of(ev, cgd_iterations=torch.tensor(float(iterations)), cgd_residual=torch.tensor(residual))

    def linearization(self, J, blocks, players, h):
        import torch

        if len(blocks) != self.players:
            return f"{self.name} is defined for two players; this game has {len(blocks)}"
        if isinstance(h, torch.Tensor):  # per-player rates: refused by the solver itself (one_optimizer)
            return f"{self.name} takes one step size for all players: it is part of the local game it solves"
        off = J.clone()
        for b in blocks:
            off[b, b] = 0.0
        eye = torch.eye(len(J), dtype=J.dtype)
        return eye + h * torch.linalg.solve(eye - h * off, J)


@SOLVERS.register
@dataclass
class ACGD(CGD):
    name = "acgd"
    rank = 110
    summary = "adaptive CGD: RMSProp-style step sizes inside the local game (Schäfer et al. 2020)"
    formula = None
    optimizer_hint = "its step sizes adapt inside the local game already; write optimizer = sgd(lr=...)"
    beta2: float = param(0.99, "decay of the running mean of v^2", "[0, 1)")
    eps: float = param(1e-8, "added to the root of the running mean", "(0, 1]")

    def init(self, engine):
        import torch

        from solvers import vec

        super().init(engine)
        return {"square_avg": vec.zeros_like(engine.params), "count": [torch.zeros((), dtype=torch.float64)]}

    def steps(self, engine, v, state):
        from solvers import vec

        square_avg = [t.clone() for t in state["square_avg"]]
        vec.ema_square_(square_avg, v, self.beta2)
        count = state["count"][0] + 1.0
        correction = 1 - self.beta2 ** float(count)
        root = vec.root(vec.scale(square_avg, 1 / correction), self.eps)
        steps = vec.scale(vec.reciprocal(root), engine.optimizer.rate(engine.clock))
        return steps, {"square_avg": square_avg, "count": [count]}

    def linearization(self, J, blocks, players, h):
        return (
            "acgd's step sizes depend on its running mean of v^2, which vanishes at a stationary point: "
            "no fixed one-step map"
        )


def nash_move(engine, ev, steps, tol: float, max_iter: int):
    """The equilibrium move d of the local game with step sizes `steps` (the diagonal of A)."""
    from solvers import vec

    sizes = [sum(t.numel() for t in ev.v[sl]) for sl in engine.slices]
    p, q = (0, 1) if sizes[0] <= sizes[1] else (1, 0)
    v, a = engine.split(ev.v, ev.players), engine.split(steps, ev.players)
    root = vec.sqrt(a[p])

    def cross_qp(u):  # J_qp u
        return engine.jvp(ev, u, of=[q], wrt=[p])

    def cross_pq(w):  # J_pq w
        return engine.jvp(ev, w, of=[p], wrt=[q])

    def matrix(z):  # (I - S J_pq A_q J_qp S) z
        return vec.axpy(-1.0, vec.mul(root, cross_pq(vec.mul(a[q], cross_qp(vec.mul(root, z))))), z)

    rhs = vec.mul(root, vec.axpy(1.0, cross_pq(vec.mul(a[q], v[q])), v[p]))
    z, iterations, residual = gmres(matrix, rhs, tol, max_iter, engine.poll)
    move = {p: vec.mul(root, z)}
    move[q] = vec.mul(a[q], vec.axpy(1.0, cross_qp(move[p]), v[q]))
    return move[0] + move[1], iterations, residual


def gmres(matrix, b, tol: float, max_iter: int, poll=lambda: None):
    """Solve M z = b from z = 0 by GMRES (Saad and Schultz 1986), M given by its products.

    Returns z, the iterations and the relative residual |b - M z| / |b|. Scalars are plain
    floats: every process of a data-parallel run holds the same vectors, so it takes the
    same iterations. `poll` is called before each iteration (it raises to stop a step).
    """
    from solvers import vec

    beta = math.sqrt(float(vec.squared_norm(b)))
    if beta == 0.0:
        return vec.zeros_like(b), 0, 0.0
    basis = [vec.scale(b, 1.0 / beta)]
    columns, rotations, g = [], [], [beta]  # the triangular factor by columns, its Givens rotations, Q^T beta e_1
    residual = 1.0
    for j in range(max_iter):
        poll()
        w = matrix(basis[j])
        column = []
        for u in basis:  # modified Gram-Schmidt
            coefficient = float(vec.dot(w, u))
            column.append(coefficient)
            w = vec.axpy(-coefficient, u, w)
        norm = math.sqrt(float(vec.squared_norm(w)))
        column.append(norm)
        for i, (c, s) in enumerate(rotations):
            column[i], column[i + 1] = c * column[i] + s * column[i + 1], -s * column[i] + c * column[i + 1]
        r = math.hypot(column[j], column[j + 1])
        if r == 0.0:  # M is singular on the Krylov space: keep the solution so far
            break
        c, s = column[j] / r, column[j + 1] / r
        rotations.append((c, s))
        column[j] = r
        columns.append(column[: j + 1])
        g.append(-s * g[j])
        g[j] *= c
        residual = abs(g[j + 1]) / beta
        if residual <= tol or norm == 0.0:
            break
        basis.append(vec.scale(w, 1.0 / norm))
    k = len(columns)
    y = [0.0] * k
    for i in reversed(range(k)):  # back substitution
        y[i] = (g[i] - sum(columns[m][i] * y[m] for m in range(i + 1, k))) / columns[i][i]
    z = vec.zeros_like(b)
    for coefficient, u in zip(y, basis):
        vec.add_(z, u, alpha=coefficient)
    return z, k, residual
