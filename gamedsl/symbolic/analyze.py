"""`gamedsl analyze`: the whole analysis of one game, from its checked form to a report.

compile (sympy) -> v, v' -> stationary points -> at each: spectrum of v', Nash test, Lemma 4
for SimGA and for consensus, each solver's F'(x-bar) and its spectral radius -> optionally,
runs of every solver near every point (gamedsl/numeric/verify.py). All symbolic work runs
under one overall time limit, and each step under its own, after which the analysis falls back
to numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import sympy as sp

import solvers
from solvers.registry import Interval
from solvers.registry import number as number_text
from gamedsl.compile.sympy_game import SymbolicGame, compile_game, number
from gamedsl.errors import LimitError, UsageError
from gamedsl.semantics.model import CheckedGame
from gamedsl.symbolic import limits, linearize, nash, stability, stationary
from gamedsl.symbolic.field import Field, display_forms


@dataclass
class Options:
    h: float | None = None
    gamma: float | None = None
    beta: float | None = None
    time_limit: float = 60.0  # seconds for all symbolic work
    seed: int = 0


@dataclass
class Settings:
    """The step, gamma and beta the predictions are made for, and each solver's parameters.

    Players may have step sizes of their own (`optimizer.P.lr`): `steps` holds each one, and
    `h` is the largest, the common scale s of H = s diag(h_i / h) that step bounds are on."""

    h: float
    gamma: float  # for the consensus section
    beta: float
    optimizer: str  # the file's optimizer (the analysis assumes sgd)
    solver: str  # the file's solver
    solver_params: dict[str, dict[str, Any]]  # every registered solver -> its parameters here
    notes: list[str] = field(default_factory=list)
    steps: dict[str, float] = field(default_factory=dict)  # player -> its sgd step size h_i
    critic_steps: dict[str, int] = field(default_factory=dict)  # player -> k > 1, its steps per solver step

    @property
    def per_player(self) -> bool:
        """Whether the players step with different sizes: H is not a multiple of I."""
        return len(set(self.steps.values())) > 1

    @property
    def step_arg(self) -> float | dict[str, float]:
        """The step sizes as linearize.linearize takes them."""
        return dict(self.steps) if self.per_player else self.h


@dataclass
class PointAnalysis:
    point: stationary.StationaryPoint
    J: np.ndarray
    J_exact: sp.Matrix | None
    spectrum: stability.Spectrum
    nash: nash.NashResult
    simga: stability.StepBound
    consensus_spectrum: stability.Spectrum
    consensus: stability.StepBound
    consensus_formula: stability.ConsensusFormula | None
    linearizations: list[linearize.Linearization]
    observations: dict[str, Any] = field(default_factory=dict)  # solver -> verify.Observation
    verdicts: dict[str, Any] = field(default_factory=dict)  # solver -> verify.Verdict
    torch_check: float | None = None  # max |v'_torch - v'_sympy| at the point (with --verify)
    kinks: list[str] = field(default_factory=list)  # where v is not differentiable at the point (|t| at t = 0, ...)


@dataclass
class Analysis:
    spec: CheckedGame
    game: SymbolicGame
    field: Field
    settings: Settings
    zero_sum: nash.ZeroSum
    search: stationary.Search
    points: list[PointAnalysis]
    notes: list[str] = field(default_factory=list)
    verified: bool = False
    v_display: list[sp.Expr] = field(default_factory=list)  # shorter forms of v and v' for people
    J_display: list[sp.Expr] = field(default_factory=list)  # row-major

    @property
    def agreed(self) -> bool:
        return all(v.agree is not False for p in self.points for v in p.verdicts.values())


MAX_TIME_LIMIT = 86400.0  # seconds: a day is plenty for a guard, and an infinite one cannot arm the timer


def require(option: str, value: float, within: Interval, hint: str | None = None) -> float:
    """`value` if it lies in `within`, else a UsageError (exit 2) naming the option and its
    range. NaN lies in no interval, and an infinite value in no finite one: a numeric flag
    never reaches the linear algebra (LinAlgError) or the timer (OverflowError) unchecked."""
    if value not in within:
        raise UsageError(f"{option} must lie in {within}, got {number_text(value)}", hint=hint)
    return value


def flag_for(option: str, value: float, registry, method: str, param: str) -> float:
    """A flag that stands for a method parameter (--h for sgd's lr) takes that parameter's declared range."""
    spec = next(s for s in registry.describe(method) if s.name == param)
    return require(option, float(value), spec.within, hint=f"{option} is {method}'s {param}: {spec.doc}")


def resolve_settings(spec: CheckedGame, options: Options) -> Settings:
    from gamedsl.semantics.settings import resolve

    config = resolve(spec.settings, [], {})
    notes = []
    opt = config.optimizer
    own = {p.name: config.player_optimizers.get(p.name) for p in spec.players}
    methods = {name: (o["name"], o["params"]) if o else (opt, config.optimizer_params) for name, o in own.items()}
    rates = {name: float(learning_rate(method, params)) for name, (method, params) in methods.items()}
    largest = max(rates.values())
    if options.h is None:
        h = largest
    else:  # --h sets the largest step size; players' own step sizes keep their ratios
        h = flag_for("--h", options.h, solvers.optimizers.OPTIMIZERS, "sgd", "lr")
    # exact ratios, so that D = diag(h_i / h) is exactly the 1/2 that 0.05 / 0.1 stands for
    steps = {name: float(number(h) * number(rate) / number(largest)) for name, rate in rates.items()}
    if not config.player_optimizers and opt != "sgd":
        notes.append(f"the game's optimizer is {opt}; the analysis assumes plain steps sgd(lr={h:g})")
    for name, (method, _) in methods.items():
        if config.player_optimizers and method != "sgd":
            assumed = f"sgd(lr={steps[name]:g})"
            notes.append(f"player {name}'s optimizer is {method}; the analysis assumes plain steps {assumed}")
    file_params = config.solver_params
    if options.gamma is not None:
        flag_for("--gamma", options.gamma, solvers.SOLVERS, "consensus", "gamma")
    if options.beta is not None:
        flag_for("--beta", options.beta, solvers.SOLVERS, "momentum", "beta")
    gamma = options.gamma if options.gamma is not None else file_params.get("gamma")
    beta = options.beta if options.beta is not None else file_params.get("beta")
    per_solver: dict[str, dict[str, Any]] = {}
    for name in solvers.SOLVERS.in_order():  # the order of every report: the paper's methods first
        params = {}
        for spec_ in solvers.describe(name):
            value = spec_.default
            if name == config.solver and spec_.name in file_params:
                value = file_params[spec_.name]
            if spec_.name == "gamma" and gamma is not None:
                value = float(gamma)
            elif spec_.name == "beta" and beta is not None:
                value = float(beta)
            params[spec_.name] = value
        per_solver[name] = params
    consensus_gamma = per_solver["consensus"]["gamma"]  # the flag's, else the file's, else the declared default
    momentum_beta = per_solver["momentum"]["beta"]
    critic = {name: k for name, k in config.critic_steps.items() if k > 1}
    return Settings(
        float(h), float(consensus_gamma), float(momentum_beta), opt, config.solver, per_solver, notes, steps, critic
    )


def learning_rate(optimizer: str, params: dict[str, Any]) -> float:
    """An optimizer's lr as written, else its declared default."""
    if "lr" in params:
        return params["lr"]
    return next(s.default for s in solvers.optimizers.OPTIMIZERS.describe(optimizer) if s.name == "lr")


def initial_point(spec: CheckedGame, seed: int) -> np.ndarray | None:
    """Where `gamedsl solve` starts: a natural first guess for the numerical search."""
    from gamedsl.numeric.verify import torch_game
    from solvers.field import GameField

    return GameField(torch_game(spec, seed)).x().numpy()


def analyze(spec: CheckedGame, options: Options | None = None) -> Analysis:
    options = options or Options()
    seconds = Interval(0.0, MAX_TIME_LIMIT, low_open=True)
    require("--time-limit", options.time_limit, seconds, hint="seconds for all symbolic work")
    settings = resolve_settings(spec, options)
    hint = f"allow more with --time-limit, or use `gamedsl spectrum {spec.source.path}` for the numerical spectrum"
    with limits.time_limit(options.time_limit, "the symbolic analysis", hint=hint):
        game = compile_game(spec)
        fld = Field.of(game)
        kind = nash.zero_sum(game.utilities, game.symbols, seconds=min(3.0, limits.remaining()))
        start = initial_point(spec, options.seed)
        budget = max(1.0, min(10.0, limits.remaining() / 3))
        search = stationary.find(fld, [start] if start is not None else [], seconds=budget, seed=options.seed)
        for family in search.continua:
            family.eigenvalues = eigenvalues_along(fld, family)
        points = [analyze_point(fld, p, settings, kind) for p in search.points]
        shown = display_forms([*fld.v, *fld.J], seconds=min(3.0, limits.remaining()))
    analysis = Analysis(spec, game, fld, settings, kind, search, points, list(settings.notes))
    analysis.v_display, analysis.J_display = shown[: fld.n], shown[fld.n :]
    if not points and not search.continua:
        analysis.notes.append("no stationary point was found, so there is nothing to linearise")
    return analysis


def eigenvalues_along(fld: Field, family: stationary.Continuum) -> list[sp.Expr] | None:
    """v''s eigenvalues along a family of stationary points, exactly (in its parameters), or None.

    The family's own directions give eigenvalues 0; the others say whether nearby points
    move towards the family or away from it."""
    try:
        with limits.time_limit(min(3.0, limits.remaining()), "v' along a family of stationary points"):
            J = fld.J_exact(family.values)
    except LimitError:
        return None
    return stability.exact_eigenvalues(J, seconds=min(3.0, limits.remaining()))


def analyze_point(
    fld: Field, point: stationary.StationaryPoint, settings: Settings, kind: nash.ZeroSum
) -> PointAnalysis:
    J_exact = None
    if point.exact is not None:
        try:
            with limits.time_limit(min(5.0, limits.remaining()), "v' at the point, exactly"):
                J_exact = fld.J_exact(point.exact)
        except LimitError:
            J_exact = None
    J = None
    if J_exact is not None:
        try:
            J = np.array(J_exact.evalf(20).tolist(), dtype=float)
        except (TypeError, ValueError):  # an entry that is not a real number (zoo, nan)
            J_exact = None
    if J is None or not np.all(np.isfinite(J)):
        J, J_exact = fld.J_at(point.x), None
    spec_v = stability.spectrum(J, J_exact, seconds=min(5.0, limits.remaining()))
    players = list(fld.game.players)
    result = nash.classify(J, J_exact, fld.blocks, players, kind)
    gamma = settings.gamma
    C = stability.consensus_matrix(J, gamma)
    C_exact = stability.consensus_matrix(J_exact, number(gamma)) if J_exact is not None else None
    spec_c = stability.spectrum(C, C_exact, seconds=min(5.0, limits.remaining()))
    formula = (
        stability.consensus_formula(J_exact, seconds=min(3.0, limits.remaining())) if J_exact is not None else None
    )
    coordinates = point.exact if point.exact is not None else tuple(sp.Float(x) for x in point.x)
    kinks = [str(k) for k in fld.game.kinks(dict(zip(fld.symbols, coordinates)))]
    if kinks:  # v' is autograd's convention there, which describes no neighbourhood: predict nothing
        note = f"v is not differentiable at this point ({', '.join(kinks)} = 0 there)"
        lins = [linearize.Linearization(name, dict(params), "—", note=note) for name, params in settings.solver_params.items()]
    else:
        lins = [
            linearize.linearize(name, J, fld.blocks, players, settings.step_arg, params, settings.critic_steps)
            for name, params in settings.solver_params.items()
        ]
    if settings.per_player:  # I + s D A: Lemma 4 for D A bounds the common scale s
        D, D_exact = step_ratios(settings, fld)
        seconds = min(5.0, limits.remaining())
        scaled_v = stability.spectrum(D @ J, D_exact * J_exact if J_exact is not None else None, seconds=seconds)
        scaled_c = stability.spectrum(D @ C, D_exact * C_exact if C_exact is not None else None, seconds=seconds)
        simga, consensus = stability.lemma4(scaled_v, "D v'"), stability.lemma4(scaled_c, "D w'")
        if formula is not None:  # its closed-form bound is for one step size: not this one
            formula.h_max = None
    else:
        simga, consensus = stability.lemma4(spec_v, "v'"), stability.lemma4(spec_c, "w'")
    return PointAnalysis(point, J, J_exact, spec_v, result, simga, spec_c, consensus, formula, lins, kinks=kinks)


def step_ratios(settings: Settings, fld: Field) -> tuple[np.ndarray, sp.Matrix]:
    """D = diag(h_i / max h) on each player's block, in floats and exactly: H = s D."""
    ratios: list[sp.Expr] = []
    for name, block in zip(fld.game.players, fld.blocks):
        ratios.extend([number(settings.steps[name]) / number(settings.h)] * (block.stop - block.start))
    return np.diag([float(r) for r in ratios]), sp.diag(*ratios)


def verify(analysis: Analysis, steps: int = 2000, seed: int = 0) -> None:
    """Run every solver near every stationary point and compare with the prediction."""
    from gamedsl.numeric import verify as check

    for pa in analysis.points:
        game = check.torch_game(analysis.spec, seed)
        _, J_torch = check.torch_v_and_J(game, pa.point.x)
        pa.torch_check = float(np.max(np.abs(J_torch - pa.J), initial=0.0))
        for lin in pa.linearizations:
            if not lin.known:  # nothing to compare with: no run
                pa.verdicts[lin.solver] = check.Verdict(None, None, lin.note or "no prediction")
                continue
            obs = check.observe(
                analysis.spec, pa.point.x, lin.solver, lin.params, analysis.settings.step_arg, steps, seed,
                critic_steps=lin.critic_steps,
            )  # fmt: skip
            pa.observations[lin.solver] = obs
            pa.verdicts[lin.solver] = check.compare(lin, obs)
    analysis.verified = True
