"""Checking the predictions: run each solver near each stationary point and measure.

The torch compilation of the same file runs in float64 from x-bar + delta, with |delta| =
1e-7 max(1, |x-bar|) in a random direction, through `solvers.Run` with `sgd(lr=h)`: the
very code `gamedsl solve` uses. The distance |x_k - x-bar| is recorded at every step while
it stays inside the linear regime, between 1e-12 and 1e-3 times max(1, |x-bar|) (far
above float64 round-off, far below the scale where the quadratic terms of v matter). The
empirical rate rho-hat is exp of the least-squares slope of log |x_k - x-bar| over the last
two thirds of those steps (the first third lets the slowest mode take over; with complex
eigenvalues the distance oscillates, and a long window averages the oscillation out).

A run is "converged" when it reaches the lower edge, "diverged" at the upper edge (or on a
non-finite value), and otherwise, after the step budget or once the fitted slope has
settled (after 300 steps, two checks 100 steps apart that agree to 0.5 %), "converging",
"diverging" or "bounded" by the sign of the slope (|slope| <= 1e-4 per step is bounded).

Prediction and observation agree when they say the same thing (converges ~ converged or
converging, diverges ~ diverged or diverging, marginal ~ bounded) and, where the point is
attracting or repelling, when the rates agree: |ln rho-hat - ln rho| <= 10 % of |ln rho|.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

import solvers
from gamedsl.analysis.linearize import CONVERGES, DIVERGES, MARGINAL, Linearization
from gamedsl.compile.torch_game import TorchGame
from gamedsl.errors import GameError
from gamedsl.semantics.model import CheckedGame

START = 1e-7  # |delta| / max(1, |x-bar|)
LOW, HIGH = 1e-12, 1e-3  # the linear regime, relative to max(1, |x-bar|)
BOUNDED = 1e-4  # |slope| per step below which a run neither converges nor diverges measurably
RATE_TOLERANCE = 0.10
MIN_STEPS, CHECK_EVERY, SETTLED = 300, 100, 0.005  # a run may stop when its fitted slope settles to 0.5 %


def torch_game(spec: CheckedGame, seed: int = 0, batch: int = 2) -> TorchGame:
    return TorchGame(spec, batch=batch, seed=seed, device="cpu", dtype="float64")


def player_tensors(game: TorchGame) -> list[list[torch.nn.Parameter]]:
    return [list(p.params) for p in game.players]


def flat(game: TorchGame) -> torch.Tensor:
    return torch.cat([t.detach().reshape(-1) for ts in player_tensors(game) for t in ts])


def set_flat(game: TorchGame, x) -> None:
    x = torch.as_tensor(np.asarray(x, dtype=float), dtype=game.dtype)
    start = 0
    with torch.no_grad():
        for ts in player_tensors(game):
            for t in ts:
                t.copy_(x[start : start + t.numel()].reshape(t.shape))
                start += t.numel()


def torch_field(game: TorchGame, batch: dict) -> Callable[[torch.Tensor], torch.Tensor]:
    """v as a differentiable function of the flattened parameters (engine order), on `batch`.

    For torch.autograd.functional.jacobian: v'(x) = jacobian(torch_field(game, batch), x).
    """
    from torch.func import functional_call

    by_id = {id(p): name for name, p in game.named_parameters()}
    layout = [[(by_id[id(t)], t.shape, t.numel()) for t in ts] for ts in player_tensors(game)]

    def field(x: torch.Tensor) -> torch.Tensor:
        params, own, start = {}, [], 0
        for tensors in layout:
            mine = []
            for name, shape, size in tensors:
                params[name] = x[start : start + size].reshape(shape)
                mine.append(params[name])
                start += size
            own.append(mine)
        utilities = functional_call(game, params, (batch,))
        parts = []
        for u, mine in zip(utilities, own):
            grads = torch.autograd.grad(u, mine, create_graph=True, allow_unused=True)
            parts.extend((torch.zeros_like(t) if g is None else g).reshape(-1) for t, g in zip(mine, grads))
        return torch.cat(parts)

    return field


def torch_v_and_J(game: TorchGame, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    batch = game.sample()
    fn = torch_field(game, batch)
    point = torch.as_tensor(np.asarray(x, dtype=float), dtype=torch.float64).requires_grad_(True)
    v = fn(point).detach().numpy()
    J = torch.autograd.functional.jacobian(fn, point.detach()).numpy()
    return v, J


@dataclass
class Observation:
    solver: str
    status: str  # converged, diverged, converging, diverging, bounded, error
    rate: float | None  # rho-hat
    steps: int
    fitted: int  # steps in the fit
    start: float  # |x_0 - x-bar|
    end: float  # last distance recorded
    message: str = ""

    @property
    def trend(self) -> str:
        return {"converged": CONVERGES, "converging": CONVERGES, "diverged": DIVERGES, "diverging": DIVERGES}.get(
            self.status, MARGINAL if self.status == "bounded" else "error"
        )


@dataclass
class Verdict:
    agree: bool | None  # None: nothing to compare (no linearisation)
    rate_error: float | None  # |ln rho-hat - ln rho| / |ln rho|
    reason: str


def observe(
    spec: CheckedGame,
    point: np.ndarray,
    solver: str,
    params: dict[str, Any],
    h: float,
    steps: int = 2000,
    seed: int = 0,
) -> Observation:
    """Run `solver` with sgd(lr=h) from a small random perturbation of `point`."""
    game = torch_game(spec, seed)
    try:
        run = solvers.Run(game, solvers.get(solver, **params), solvers.optimizers.get("sgd", lr=h))
    except solvers.SolverError as exc:
        return Observation(solver, "error", None, 0, 0, 0.0, 0.0, exc.message)
    center = torch.as_tensor(np.asarray(point, dtype=float), dtype=torch.float64)
    scale = max(1.0, float(center.norm()))
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=center.numel())
    direction /= np.linalg.norm(direction) or 1.0
    set_flat(game, center.numpy() + START * scale * direction)
    start = float((flat(game) - center).norm())
    distances: list[float] = [start]
    status, k, previous, settled = "", 0, None, 0
    try:
        for k in range(1, steps + 1):
            run.step()
            d = float((flat(game) - center).norm())
            if not math.isfinite(d) or d > HIGH * scale:
                status = "diverged"
                break
            distances.append(d)
            if d < LOW * scale:
                status = "converged"
                break
            if k >= MIN_STEPS and k % CHECK_EVERY == 0:  # stop once the fitted rate has settled
                rate = _fit(distances)[0]
                slope = math.log(rate) if rate else 0.0
                if previous is not None and abs(slope - previous) <= SETTLED * abs(slope) + 1e-6:
                    settled += 1
                    if settled >= 2:
                        break
                else:
                    settled = 0
                previous = slope
    except (solvers.SolverError, GameError, ValueError, RuntimeError) as exc:  # the run failed: that is the observation
        return Observation(solver, "error", None, k, 0, start, 0.0, getattr(exc, "message", str(exc)))
    rate, fitted = _fit(distances)
    if not status:
        slope = math.log(rate) if rate else 0.0
        status = "bounded" if abs(slope) <= BOUNDED else ("converging" if slope < 0 else "diverging")
    end = distances[-1] if distances else start
    return Observation(solver, status, rate, k, fitted, start, end)


def _fit(distances: list[float]) -> tuple[float | None, int]:
    d = np.asarray(distances, dtype=float)
    d = d[d > 0]
    if len(d) < 2:
        return None, 0
    first = len(d) // 3 if len(d) >= 6 else 0  # a short run has no transient worth dropping
    tail = np.log(d[first:])
    k = np.arange(first, len(d), dtype=float)
    if len(tail) < 2:
        return None, 0
    slope = np.polyfit(k, tail, 1)[0]
    return float(math.exp(slope)), len(tail)


def compare(lin: Linearization, obs: Observation) -> Verdict:
    if not lin.known:
        return Verdict(None, None, lin.note or "no prediction")
    if obs.status == "error":
        return Verdict(False, None, f"the run failed: {obs.message}")
    predicted, seen = lin.prediction, obs.trend
    rho = lin.radius
    if predicted == MARGINAL:
        ok = seen == MARGINAL
        return Verdict(ok, None, "ρ = 1, bounded" if ok else f"ρ = 1 predicted, but the run {obs.status}")
    if seen != predicted:
        return Verdict(False, None, f"predicted {predicted}, run {obs.status}")
    if obs.rate is None:
        return Verdict(True, None, f"{obs.status} in {obs.steps} steps, too fast for a rate")
    error = abs(math.log(obs.rate) - math.log(rho)) / abs(math.log(rho))
    ok = error <= RATE_TOLERANCE
    return Verdict(ok, error, f"rate off by {100 * error:.1f} %" if ok else f"rate off by {100 * error:.0f} %")
