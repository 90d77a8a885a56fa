"""`gamedsl analyze FILE`: what each solver does near each stationary point, and why."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

import gamedsl
import solvers
from gamedsl.cli.output import err, out
from gamedsl.errors import ExitCode, GameError

MAX_VERIFY_STEPS = 1_000_000  # per verification run: a typo cannot start a run of days
GAMMA, BETA = solvers.default("consensus", "gamma"), solvers.default("momentum", "beta")  # the flags' defaults


def analyze(
    file: Annotated[Path, typer.Argument(help="The .game file.", show_default=False)],
    h: Annotated[
        Optional[float],
        typer.Option(
            "--h",
            help="Step size h of the predictions (with a step size per player: the largest one; the others keep "
            "their ratios). Default: the game's sgd learning rate.",
        ),
    ] = None,
    gamma: Annotated[
        Optional[float],
        typer.Option(
            "--gamma",
            help=f"Weight gamma for consensus and smoothing. Default: the game's solver.gamma, else {GAMMA:g}.",
        ),
    ] = None,
    beta: Annotated[
        Optional[float], typer.Option("--beta", help=f"Momentum beta. Default: the game's solver.beta, else {BETA:g}.")
    ] = None,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify", help="Also run every solver (torch, float64) near every stationary point and compare."
        ),
    ] = False,
    steps: Annotated[
        int, typer.Option("--steps", min=10, max=MAX_VERIFY_STEPS, help="At most this many steps per verification run.")
    ] = 2000,
    time_limit: Annotated[
        float,
        typer.Option("--time-limit", help="Seconds allowed for all symbolic work, up to 86,400 (exit 7 beyond)."),
    ] = 60.0,
    seed: Annotated[int, typer.Option(help="Seed of the numerical search and of the perturbations.", min=0)] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of the report.")] = False,
) -> None:
    """Analyse a game symbolically: v, v', stationary points, Nash test, and each solver's local behaviour.

    For games whose players control params and small linear networks, with constant data
    (dirac): the vector field v (eq. 5) and its Jacobian v' (eq. 6); the stationary points
    (exact where sympy can solve v = 0, numerical otherwise); at each, the eigenvalues of v',
    the Nash test (Lemma 1, Corollary 2 for zero-sum games), Lemma 4's largest SimGA step
    and q = max |Im/Re|, the consensus eigenvalues, and for every solver the one-step
    Jacobian F' with its spectral radius (Proposition 3). Sampled data or deep networks are
    out of symbolic reach (exit 8): use `gamedsl spectrum FILE`.

    With --verify every solver also runs from a small perturbation of each stationary point,
    and the measured rate is compared with the prediction; exit 1 if any disagrees.
    """
    from gamedsl.symbolic import analyze as pipeline
    from gamedsl.symbolic import report

    try:
        spec = gamedsl.load(file)
        for warning in spec.warnings:
            err.print(warning.render(), markup=False)
        analysis = pipeline.analyze(
            spec, pipeline.Options(h=h, gamma=gamma, beta=beta, time_limit=time_limit, seed=seed)
        )
        if verify:
            runs = sum(1 for pa in analysis.points for lin in pa.linearizations if lin.known)
            err.print(f"verifying: {runs} runs of at most {steps:,} steps", markup=False)
            from gamedsl.semantics.settings import resolve
            from gamedsl.training.threads import set_threads

            set_threads(resolve(spec.settings, [], {}).threads, sum(spec.parameter_count(p) for p in spec.players))
            pipeline.verify(analysis, steps=steps, seed=seed)
    except GameError as exc:
        if not as_json:
            raise
        out.print_json(json.dumps({"path": str(file), "ok": False, "error": exc.as_dict()}))
        raise typer.Exit(int(exc.code)) from None
    if as_json:
        out.print_json(json.dumps({"ok": True, **report.to_json(analysis)}))
    else:
        report.render(analysis, out)
    if verify and not analysis.agreed:
        raise typer.Exit(int(ExitCode.FAILURE))
