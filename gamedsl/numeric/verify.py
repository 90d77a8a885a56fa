"""Checking the predictions: run each solver near each stationary point and measure.

The torch compilation of the same file runs in float64 from x-bar + delta, with |delta| =
1e-7 max(1, |x-bar|) in a random direction, through `solvers.Run` with `sgd(lr=h)` (one per
player where the players' step sizes differ) and the file's critic steps: the very code
`gamedsl solve` uses. The rate is measured the way Lyapunov exponents are
(Benettin, Galgani, Giorgilli and Strelcyn, Meccanica 1980): after every step the size d_k of
the deviation from (x-bar, 0) is recorded, of x - x-bar together with the solver's memory
(momentum's buffer, the last step, the last look-ahead field: the state F' acts on, zero at
x-bar and linear in the deviation), and the whole deviation is scaled back to its starting
size. Every step so starts deep inside the linear regime, far above float64 round-off and
far below the scale where the quadratic terms of v matter, and the run can go on for as many
steps as the rate needs, however fast the point attracts or repels. (A plain run from 1e-7
leaves the linear regime within 3 steps at rho = 25, and the rate of so short a run depends
on the random direction: the other modes have not died out.)

The log-distance of the unscaled run is the running sum of the per-step log growth. The
empirical rate rho-hat is exp of its least-squares slope over the last two thirds of the
steps (the first third lets the slowest mode take over; with complex eigenvalues the
distance oscillates, and a long window averages the oscillation out). A run stops after the
step budget, on a non-finite value, on a single step that leaves [1e-12, 1e-3] max(1,
|x-bar|) (too fast to measure: it grew or shrank by a factor beyond 1e4 or 1e-5), or once the
fitted slope has settled (three checks 25 steps apart agree to 2 %: far inside the 10 %
that the comparison allows).

The status says what a plain run would have done: "converged" or "diverged" when its
distance has left the linear regime [1e-12, 1e-3] max(1, |x-bar|) (or on a non-finite
value), else "converging", "diverging" or "bounded" by the sign of the slope (|slope| <=
1e-4 per step is bounded).

Prediction and observation agree when they say the same thing (converges ~ converged or
converging, diverges ~ diverged or diverging, marginal ~ bounded): divergence is judged by
the sign of ln rho-hat. Where the point is attracting or repelling the rates must agree
too, |ln rho-hat - ln rho| <= 10 % of |ln rho|, once at least MIN_FITTED steps are fitted.
A shorter fit is judged by its sign alone where the plain run has left the linear regime (four
orders of magnitude are no transient), and is otherwise undecided: a handful of steps of
a transient says nothing (the bilinear game's smoothing run grows over its first 10 steps
although rho = 0.95), and it counts neither way.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

import solvers
from solvers.field import GameField
from gamedsl.compile.torch_game import TorchGame
from gamedsl.errors import GameError
from gamedsl.semantics.model import CheckedGame
from gamedsl.symbolic.linearize import CONVERGES, DIVERGES, MARGINAL, Linearization

START = 1e-7  # |delta| / max(1, |x-bar|), restored after every step
LOW, HIGH = 1e-12, 1e-3  # the linear regime, relative to max(1, |x-bar|)
BOUNDED = 1e-4  # |slope| per step below which a run neither converges nor diverges measurably
RATE_TOLERANCE = 0.10
MIN_FITTED = 30  # fewer fitted steps (a short --steps, a run cut short) are judged by the sign of ln rho-hat alone
MIN_STEPS, CHECK_EVERY, SETTLED = 50, 25, 0.02  # a run may stop when its fitted slope settles to 2 %


def torch_game(spec: CheckedGame, seed: int = 0, batch: int = 2) -> TorchGame:
    return TorchGame(spec, batch=batch, seed=seed, device="cpu", dtype="float64")


def torch_v_and_J(game: TorchGame, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """v(x) and v'(x) of the compiled game on one batch, from the field's one definition."""
    field = GameField(game)
    batch = game.sample()
    point = torch.as_tensor(np.asarray(x, dtype=float), dtype=torch.float64)
    return field(point, batch).detach().numpy(), field.dense(point, [batch]).numpy()


@dataclass
class Observation:
    solver: str
    status: str  # converged, diverged, converging, diverging, bounded, error
    rate: float | None  # rho-hat
    steps: int
    fitted: int  # steps in the fit
    start: float  # |x_0 - x-bar|
    end: float  # the distance the unscaled run would have reached (inf beyond float64)
    message: str = ""

    @property
    def trend(self) -> str:
        return {"converged": CONVERGES, "converging": CONVERGES, "diverged": DIVERGES, "diverging": DIVERGES}.get(
            self.status, MARGINAL if self.status == "bounded" else "error"
        )


@dataclass
class Verdict:
    agree: bool | None  # None: nothing to compare (no linearisation), or a run too short to decide
    rate_error: float | None  # |ln rho-hat - ln rho| / |ln rho|
    reason: str


def observe(
    spec: CheckedGame,
    point: np.ndarray,
    solver: str,
    params: dict[str, Any],
    h: float | dict[str, float],
    steps: int = 2000,
    seed: int = 0,
    critic_steps: dict[str, int] | None = None,
) -> Observation:
    """Run `solver` with sgd(lr=h) (h: one for all, or each player's) and `critic_steps` (player
    -> k) from a small random perturbation of `point`, rescaling the deviation back to its
    starting size after every step (see the module docstring)."""
    game = torch_game(spec, seed)
    sgd = functools.partial(solvers.optimizers.get, "sgd")
    optimizer = {name: sgd(lr=rate) for name, rate in h.items()} if isinstance(h, dict) else sgd(lr=h)
    try:
        run = solvers.Run(game, solvers.get(solver, **params), optimizer, critic_steps=critic_steps)
    except solvers.SolverError as exc:
        return Observation(solver, "error", None, 0, 0, 0.0, 0.0, exc.message)
    center = torch.as_tensor(np.asarray(point, dtype=float), dtype=torch.float64)
    scale = max(1.0, float(center.norm()))
    size = START * scale
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=center.numel())
    direction /= np.linalg.norm(direction) or 1.0
    field = GameField(game)
    field.load(center.numpy() + size * direction)
    start = _distance(run, field, center)
    logs = [math.log(start)]  # log distance of the unscaled run: the running sum of the log growth
    status, k, previous, settled = "", 0, None, 0
    try:
        for k in range(1, steps + 1):
            run.step()
            d = _distance(run, field, center)
            if not math.isfinite(d) or d > HIGH * scale:  # one step beyond the linear regime
                status = "diverged"
                break
            if d < LOW * scale:
                status = "converged"
                break
            logs.append(logs[-1] + math.log(d / size))
            _rescale(run, field, center, size / d)
            if k >= MIN_STEPS and k % CHECK_EVERY == 0:  # stop once the fitted rate has settled
                slope = _slope(logs)[0]
                if previous is not None and abs(slope - previous) <= SETTLED * abs(slope) + 1e-6:
                    settled += 1
                    if settled >= 2:
                        break
                else:
                    settled = 0
                previous = slope
    except (solvers.SolverError, GameError, ValueError, RuntimeError) as exc:  # the run failed: that is the observation
        return Observation(solver, "error", None, k, 0, start, 0.0, getattr(exc, "message", str(exc)))
    slope, fitted = _slope(logs)
    rate = math.exp(slope) if slope is not None else None
    end = math.exp(logs[-1]) if logs[-1] < 700 else math.inf  # where the unscaled run would be
    if not status:
        if logs[-1] > math.log(HIGH * scale) or logs[-1] < math.log(LOW * scale):
            status = "diverged" if logs[-1] > math.log(HIGH * scale) else "converged"
        else:
            status = "bounded" if abs(slope or 0.0) <= BOUNDED else ("converging" if slope < 0 else "diverging")
    return Observation(solver, status, rate, k, fitted, start, end)


def _memory(run: solvers.Run) -> list[torch.Tensor]:
    """The tensors a solver carries between steps (momentum's buffer, the last step, the last
    look-ahead field): the state its linearisation F' acts on besides x, zero at x-bar."""
    return [t for value in run.state.values() if isinstance(value, list) for t in value]


def _distance(run: solvers.Run, field: GameField, center: torch.Tensor) -> float:
    """|(x - x-bar, memory)|: the size of the deviation of the whole state F' acts on."""
    squares = float((field.x() - center).square().sum()) + sum(float(t.square().sum()) for t in _memory(run))
    return math.sqrt(squares)


def _rescale(run: solvers.Run, field: GameField, center: torch.Tensor, factor: float) -> None:
    """Scale the whole deviation from (x-bar, 0) by `factor`: F' is linear, so the direction,
    and with it every later step's growth, is unchanged."""
    field.load(center + factor * (field.x() - center))
    with torch.no_grad():
        for t in _memory(run):
            t.mul_(factor)


def _slope(logs: list[float]) -> tuple[float | None, int]:
    """Least-squares slope of the log-distance over the last two thirds of the steps, and how
    many steps that is."""
    y = np.asarray(logs, dtype=float)
    if len(y) < 2:
        return None, 0
    first = len(y) // 3 if len(y) >= 6 else 0  # a short run has no transient worth dropping
    k = np.arange(first, len(y), dtype=float)
    return float(np.polyfit(k, y[first:], 1)[0]), len(y) - first


def compare(lin: Linearization, obs: Observation) -> Verdict:
    if not lin.known:
        return Verdict(None, None, lin.note or "no prediction")
    if obs.status == "error":
        return Verdict(False, None, f"the run failed: {obs.message}")
    predicted, seen = lin.prediction, obs.trend
    rho = lin.radius
    short = obs.rate is None or obs.fitted < MIN_FITTED
    if short and obs.status not in ("converged", "diverged"):  # a few steps of a transient: no sign to judge
        return Verdict(None, None, f"undecided: {obs.fitted} steps fitted, {MIN_FITTED} needed (raise --steps)")
    if predicted == MARGINAL:
        ok = seen == MARGINAL
        return Verdict(ok, None, "ρ = 1, bounded" if ok else f"ρ = 1 predicted, but the run {obs.status}")
    if seen != predicted:
        return Verdict(False, None, f"predicted {predicted}, run {obs.status}")
    if short:
        return Verdict(True, None, f"{obs.status} in {obs.steps} steps, too few for a rate")
    error = abs(math.log(obs.rate) - math.log(rho)) / abs(math.log(rho))
    ok = error <= RATE_TOLERANCE
    return Verdict(ok, error, f"rate off by {100 * error:.1f} %" if ok else f"rate off by {100 * error:.0f} %")
