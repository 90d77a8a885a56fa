"""How an analysis is shown: rich text for people, and a JSON object for programs.

The JSON form (`gamedsl analyze --json`) is documented in docs/analysis.md. Exact values
are sympy's text (`-1/2`, `sqrt(3)/2`, `-gamma + I`); numbers are floats; an infinite q or a
missing step bound is null.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import sympy as sp
from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table

from gamedsl.compile.sympy_game import readable
from gamedsl.symbolic.analyze import Analysis, PointAnalysis
from gamedsl.symbolic.stability import ZERO, StepBound
from gamedsl.symbolic.stationary import Continuum

MAX_SHOWN = 90  # characters of an exact value worth showing to a person
SCHEMA_VERSION = 1


# ---- formatting helpers ------------------------------------------------------------------------


def _num(x: float | None, digits: int = 6) -> str:
    if x is None:
        return "—"
    if isinstance(x, float) and math.isinf(x):
        return "∞"
    if x == 0:
        return "0"
    return f"{x:.{digits}g}"


def _complex(z: complex, digits: int = 6) -> str:
    re_, im = z.real, z.imag
    if abs(im) <= 1e-14 * max(1.0, abs(re_)):
        return _num(float(re_), digits)
    if abs(re_) <= 1e-14 * max(1.0, abs(im)):
        return f"{_num(float(im), digits)}i"
    return f"{_num(float(re_), digits)}{'+' if im >= 0 else '−'}{_num(abs(float(im)), digits)}i"


def _i(text: str) -> str:
    """sympy's imaginary unit I as i (eigenvalues hold no symbol named I)."""
    return re.sub(r"\bI\b", "i", text)


def _exact(expr: sp.Basic | None) -> str | None:
    if expr is None:
        return None
    text = _i(readable(expr))
    return text if len(text) <= MAX_SHOWN else None


def _grouped(texts: list[str], limit: int = 12) -> str:
    """'a, a, a, b' -> 'a (×3), b'; at most `limit` groups."""
    groups: list[list] = []
    for t in texts:
        if groups and groups[-1][0] == t:
            groups[-1][1] += 1
        else:
            groups.append([t, 1])
    shown = [t if k == 1 else f"{t} (×{k})" for t, k in groups[:limit]]
    if len(groups) > limit:
        shown.append(f"… {sum(k for _, k in groups[limit:])} more")
    return ", ".join(shown)


def _snapped(values) -> np.ndarray:
    """Round-off shown as 0: a real or imaginary part below stability.ZERO times the largest
    modulus (at least 1) is the 0 that Lemma 4's test takes it for (numpy gives a singular
    matrix the eigenvalue 4e-19, not 0). For people only: the JSON keeps every digit."""
    values = np.asarray(values, dtype=complex)
    tiny = ZERO * max(1.0, float(np.max(np.abs(values), initial=0.0)))
    return np.where(np.abs(values.real) <= tiny, 0.0, values.real) + 1j * np.where(
        np.abs(values.imag) <= tiny, 0.0, values.imag
    )


def _eigen_text(values: np.ndarray, exact: list | None) -> str:
    shown = _snapped(values)
    if exact is not None:
        texts = [_exact(e) for e in exact]
        if all(texts):
            return _grouped(texts) + "  (≈ " + _grouped([_complex(z, 4) for z in shown]) + ")"
    return _grouped([_complex(z) for z in shown])


def _bound_text(bound: StepBound, step: str = "h") -> str:
    """`h < 2/3 ≈ 0.666667`; `step` is s where the bound is on the common scale of H = s D."""
    if not bound.stable:
        return f"no step size works: {bound.reason}"
    exact = _exact(bound.h_max_exact)
    if exact and exact != _num(bound.h_max):
        return f"{step} < {exact} ≈ {_num(bound.h_max)}"
    return f"{step} < {_num(bound.h_max)}"


def _steps_text(settings) -> str:
    """`h_D = 0.1, h_G = 0.05`: each player's step size."""
    return ", ".join(f"h_{name} = {_num(rate)}" for name, rate in settings.steps.items())


def _q_text(bound: StepBound) -> str:
    exact = _exact(bound.q_exact)
    if exact and not math.isinf(bound.q) and exact != _num(bound.q):
        return f"q = {exact} ≈ {_num(bound.q)}"
    return f"q = {_num(bound.q)}"


def _point_text(analysis: Analysis, pa: PointAnalysis) -> str:
    names = [str(s) for s in analysis.game.symbols]
    if pa.point.exact is not None:
        values = [_exact(e) or _num(float(x)) for e, x in zip(pa.point.exact, pa.point.x)]
    else:
        values = [_num(float(x), 8) for x in pa.point.x]
    pairs = [f"{n} = {v}" for n, v in zip(names, values)]
    return (
        ", ".join(pairs)
        if len(pairs) <= 12
        else ", ".join(pairs[:12]) + f", … ({len(pairs)} coordinates; all with --json)"
    )


# ---- human output --------------------------------------------------------------------------------


def render(analysis: Analysis, console: Console) -> None:
    game, settings = analysis.game, analysis.settings
    spec = analysis.spec
    kind = analysis.zero_sum
    console.print(
        f"[bold]{escape(spec.source.path)}[/]: game [bold]{escape(spec.name)}[/] — {len(game.players)} players, "
        f"{len(game.symbols)} parameters, {kind.kind}" + (" (numerical check)" if kind.method == "numerical" else "")
    )
    for name, block in zip(game.players, game.blocks):
        symbols = ", ".join(str(s) for s in game.symbols[block])
        console.print(f"  player [bold]{escape(name)}[/] controls {escape(symbols)}", highlight=False)
    steps = f"h = {_num(settings.h)}"
    if settings.per_player:
        steps = f"{_steps_text(settings)} (H = s D, D = diag(h_i / s), s = {_num(settings.h)})"
    console.print(
        f"  predictions for sgd steps {steps}, consensus/smoothing gamma = {_num(settings.gamma)}, "
        f"momentum beta = {_num(settings.beta)}",
        markup=False,
    )
    if settings.critic_steps:
        extra = ", ".join(f"{name} ×{k}" for name, k in settings.critic_steps.items())
        console.print(
            f"  critic steps: {extra} (k − 1 steps of the player alone before each step of the solvers taking them)",
            markup=False,
        )
    for note in analysis.notes:
        console.print(f"  note: {note}", markup=False)

    console.print("\n[bold]Gradient vector field v[/] (eq. 5): v_i = d u_i / d x_i, each player's own gradient")
    owner = {k: game.players[game.player_of(k)] for k in range(len(game.symbols))}
    for k, (s, e) in enumerate(zip(game.symbols, analysis.v_display or analysis.field.v)):
        console.print(f"  v[{s}] = {readable(e)}    (player {owner[k]})", markup=False)
    console.print("\n[bold]Jacobian v'[/] (eq. 6): " + escape("v'[i, j] = d v_i / d x_j"))
    J = analysis.field.J
    if analysis.J_display:
        J = sp.Matrix(J.shape[0], J.shape[1], analysis.J_display)
    _print_matrix(J, list(game.symbols), console)

    search = analysis.search
    how = {
        "complete": "exact solution of a polynomial system: these are all of them",
        "solved": "sympy.solve, completed by a numerical search",
        "skipped": "numerical search",
        "timed out": "numerical search (the exact solve timed out)",
        "failed": "numerical search (sympy could not solve)",
    }[search.exact]
    count = f"{len(analysis.points)} isolated" if search.continua else str(len(analysis.points))
    console.print(f"\n[bold]Stationary points[/] (v = 0): {count} found by {how}")
    for note in search.notes:
        console.print(f"  note: {note}", markup=False)
    for family in search.continua:
        _render_family(family, console)

    for k, pa in enumerate(analysis.points, 1):
        _render_point(analysis, k, pa, console)
    if analysis.verified:
        verdicts = [v for pa in analysis.points for v in pa.verdicts.values() if v.agree is not None]
        bad = sum(1 for v in verdicts if not v.agree)
        undecided = sum(
            1 for pa in analysis.points for name, v in pa.verdicts.items() if v.agree is None and name in pa.observations
        )
        line = f"\nverification: {len(verdicts) - bad} of {len(verdicts)} predictions agree with the runs"
        if undecided:
            line += f"; {undecided} undecided (too few steps: raise --steps)"
        console.print(f"[bold]{line.strip()}[/]" if not bad else f"[bold red]{line.strip()}[/]")


def _render_family(family: Continuum, console: Console) -> None:
    console.print(f"  {family.text(readable)}", markup=False)
    if family.kind == "every point":
        return
    where = family.kind.split()[-1]  # line, plane, curve, ...
    console.print(
        f"    not analysed point by point: v = 0 all along the {where}, so its directions are in the kernel of v';\n"
        "    with the eigenvalue 0, every solver's F' has the eigenvalue 1 there, and Proposition 3 cannot decide",
        markup=False,
    )
    texts = [_exact(e) for e in _ordered(family.eigenvalues or [])]
    if texts and all(texts):
        console.print(f"    eigenvalues of v' on it: {_grouped(texts)}  (0 along the {where})", markup=False)
    if family.found:
        console.print(f"    the numerical search found {family.found} of its points", markup=False)


def _ordered(values: list) -> list:
    """Exact eigenvalues by (Re, Im) where they are numbers; as they came where they hold parameters."""
    try:
        return sorted(values, key=lambda e: (float(sp.re(e)), float(sp.im(e))))
    except TypeError:
        return values


def _print_matrix(J: sp.Matrix, symbols: list, console: Console) -> None:
    n = J.shape[0]
    texts = [[readable(J[i, j]) for j in range(n)] for i in range(n)]
    if n <= 6 and max((len(t) for row in texts for t in row), default=0) <= 24:
        width = max(len(t) for row in texts for t in row)
        for i, row in enumerate(texts):
            left, right = ("⎡", "⎤") if i == 0 else ("⎣", "⎦") if i == n - 1 else ("⎢", "⎥")
            if n == 1:
                left, right = "[", "]"
            console.print("  " + left + "  ".join(t.rjust(width) for t in row) + right, markup=False)
        return
    shown = 0
    for i in range(n):
        for j in range(n):
            if J[i, j] != 0:
                console.print(f"  v'[{symbols[i]}, {symbols[j]}] = {texts[i][j]}", markup=False)
                shown += 1
                if shown >= 60:
                    console.print("  … (the rest with --json)", markup=False)
                    return
    if not shown:
        console.print("  0", markup=False)


def _render_point(analysis: Analysis, k: int, pa: PointAnalysis, console: Console) -> None:
    console.print(
        f"\n[bold]Point {k}[/] " + escape(f"[{pa.point.method}]: {_point_text(analysis, pa)}"), highlight=False
    )
    console.print(f"  eigenvalues of v': {_eigen_text(pa.spectrum.values, pa.spectrum.exact)}", markup=False)
    nash = pa.nash
    console.print(f"  Nash: {nash.classification}", markup=False)
    for check in nash.players:
        values = _grouped([_num(float(x.real), 4) for x in _snapped(check.hessian.eigenvalues)])
        console.print(f"    own Hessian of {check.name}: {check.hessian.kind} (eigenvalues {values})", markup=False)
    for note in nash.notes:
        console.print(f"    {note}", markup=False)
    settings = analysis.settings
    h, step = settings.h, "s" if settings.per_player else "h"
    lemma = "Lemma 4 for I + s D v'" if settings.per_player else "Lemma 4"
    if settings.critic_steps:
        lemma += ", without critic steps"
    if pa.simga.stable:
        verdict = "converges" if pa.simga.converges_at(h) else "does not converge"
        where = "every Re λ(D v') < 0" if settings.per_player else "every Re λ < 0"
        console.print(
            f"  SimGA ({lemma}): {where}, locally convergent for {_bound_text(pa.simga, step)}; "
            f"{_q_text(pa.simga)}; at {step} = {_num(h)} it {verdict}",
            markup=False,
        )
    else:
        console.print(
            f"  SimGA ({lemma}): not locally convergent at any {step}: {pa.simga.reason}; {_q_text(pa.simga)}",
            markup=False,
        )
    gamma = analysis.settings.gamma
    console.print(
        f"  consensus, γ = {_num(gamma)}: eigenvalues of w' = v' − γ v'ᵀv': "
        f"{_eigen_text(pa.consensus_spectrum.values, pa.consensus_spectrum.exact)}",
        markup=False,
    )
    console.print(
        f"    {_bound_text(pa.consensus, step)}" + (" (Lemma 4 for D w')" if settings.per_player else "")
        + f"; {_q_text(pa.consensus)}",
        markup=False,
    )  # fmt: skip
    formula = pa.consensus_formula
    if formula is not None:
        eig = ", ".join(t for t in (_exact(e) for e in formula.eigenvalues) if t)
        bound = _exact(formula.h_max)
        if settings.per_player:
            bound_text = "; its Lemma 4 bound in γ is for one step size shared by all players: not shown"
        else:
            bound_text = f"; Lemma 4: h < {bound}" if bound else ""
        console.print(f"    in γ: eigenvalues {eig}" + bound_text, markup=False)

    if pa.kinks:
        console.print(
            f"  v is not differentiable at this point ({', '.join(pa.kinks)} = 0): no linearisation describes the runs "
            "started near it, so no solver is predicted or compared",
            markup=False,
        )
    at = f"with h v' read as H v', H = diag({_steps_text(settings)})" if settings.per_player else f"at h = {_num(h)}"
    console.print(
        f"  one-step maps F'(x̄) {at} (Proposition 3: converges iff ρ(F') < 1, at rate ρ per step):", markup=False
    )
    width = max((len(lin.solver) for lin in pa.linearizations), default=0)
    for lin in pa.linearizations:
        params = ", ".join(f"{k} = {v}" for k, v in lin.params.items() if v != "" and v is not False)
        state = f" on {lin.state}" if lin.state != "x" else ""
        what = f"F' = {lin.formula}{state}" if lin.known else lin.note
        extra = (f"; {params}" if params else "") + (f" ({lin.remark})" if lin.remark else "")
        console.print(f"    {lin.solver:<{width}} {what}{extra}", markup=False)
    table = Table(show_edge=False, pad_edge=False, box=None, padding=(0, 1))
    for col, justify in (("solver", "left"), ("ρ(F')", "right"), ("predicted", "left")):
        table.add_column(col, justify=justify, no_wrap=True)
    if analysis.verified:
        for col, justify in (("observed ρ̂", "right"), ("observed", "left"), ("steps", "right")):
            table.add_column(col, justify=justify, no_wrap=True)
        table.add_column("agree (rate error)", overflow="fold")
    for lin in pa.linearizations:
        row = [lin.solver, _num(lin.radius), lin.prediction]
        if analysis.verified:
            obs, verdict = pa.observations.get(lin.solver), pa.verdicts.get(lin.solver)
            if obs is None:
                row += ["—", "—", "—", "—"]
            else:
                row += [_num(obs.rate), obs.status, str(obs.steps), _agree_text(verdict)]
        table.add_row(*(escape(str(cell)) for cell in row))
    console.print(Padding(table, (0, 0, 0, 4)))
    if pa.torch_check is not None:
        console.print(
            f"  torch compilation: max |v'_torch − v'_sympy| = {pa.torch_check:.2e} at this point", markup=False
        )


def _agree_text(verdict) -> str:
    """The table's last cell, for a solver that ran (so agree None means undecided)."""
    if verdict.agree is None:
        return "undecided"
    if not verdict.agree:
        return f"DISAGREE: {verdict.reason}"
    if verdict.rate_error is not None:
        return f"agree ({100 * verdict.rate_error:.1f} %)"
    return "agree" + (" (bounded)" if "bounded" in verdict.reason else "")


# ---- JSON ----------------------------------------------------------------------------------------


def _f(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _c(z: complex) -> dict[str, float]:
    return {"re": float(z.real), "im": float(z.imag)}


def _s(expr) -> str | None:
    return None if expr is None else sp.sstr(expr)


def _bound(bound: StepBound) -> dict[str, Any]:
    return {
        "stable": bound.stable,
        "h_max": _f(bound.h_max),
        "h_max_exact": _s(bound.h_max_exact),
        "q": _f(bound.q),
        "q_exact": _s(bound.q_exact),
        "reason": bound.reason or None,
    }


def _spectrum(values: np.ndarray, exact) -> list[dict[str, Any]]:
    return [{**_c(z), "exact": _s(exact[k]) if exact else None} for k, z in enumerate(values)]


def to_json(analysis: Analysis) -> dict[str, Any]:
    game, settings = analysis.game, analysis.settings
    symbols = [str(s) for s in game.symbols]
    return {
        "schema": SCHEMA_VERSION,
        "path": analysis.spec.source.path,
        "game": analysis.spec.name,
        "players": [
            {"name": name, "parameters": [str(s) for s in game.symbols[block]]}
            for name, block in zip(game.players, game.blocks)
        ],
        "parameters": symbols,
        "game_kind": {"kind": analysis.zero_sum.kind, "method": analysis.zero_sum.method},
        "settings": {
            "h": settings.h,
            "steps": dict(settings.steps),
            "critic_steps": dict(settings.critic_steps),
            "gamma": settings.gamma,
            "beta": settings.beta,
            "optimizer": settings.optimizer,
            "solver": settings.solver,
            "solver_params": settings.solver_params,
        },
        "notes": list(analysis.notes),
        "field": {
            "utilities": [sp.sstr(u) for u in game.utilities],
            "v": [sp.sstr(e) for e in analysis.field.v],
            "jacobian": [[sp.sstr(e) for e in row] for row in analysis.field.J.tolist()],
        },
        "stationary": {
            "exact": analysis.search.exact,
            "notes": list(analysis.search.notes),
            "continua": [family.text() for family in analysis.search.continua],
        },
        "points": [_point_json(analysis, pa) for pa in analysis.points],
        "verified": analysis.verified,
        "agree": analysis.agreed if analysis.verified else None,
    }


def _point_json(analysis: Analysis, pa: PointAnalysis) -> dict[str, Any]:
    symbols = [str(s) for s in analysis.game.symbols]
    nash = pa.nash
    out: dict[str, Any] = {
        "x": dict(zip(symbols, (float(t) for t in pa.point.x))),
        "x_exact": dict(zip(symbols, (_s(e) for e in pa.point.exact))) if pa.point.exact is not None else None,
        "method": pa.point.method,
        "jacobian": pa.J.tolist(),
        "jacobian_exact": [[_s(e) for e in row] for row in pa.J_exact.tolist()] if pa.J_exact is not None else None,
        "eigenvalues": _spectrum(pa.spectrum.values, pa.spectrum.exact),
        "nash": {
            "classification": nash.classification,
            "players": [
                {"name": c.name, "hessian": c.hessian.kind, "eigenvalues": c.hessian.eigenvalues} for c in nash.players
            ],
            "symmetric_part": nash.symmetric_part.kind,
            "notes": list(nash.notes),
        },
        "simga": _bound(pa.simga),
        "consensus": {
            "gamma": analysis.settings.gamma,
            "eigenvalues": _spectrum(pa.consensus_spectrum.values, pa.consensus_spectrum.exact),
            **_bound(pa.consensus),
            "in_gamma": {
                "eigenvalues": [_s(e) for e in pa.consensus_formula.eigenvalues],
                "h_max": _s(pa.consensus_formula.h_max),
            }
            if pa.consensus_formula is not None
            else None,
        },
        "solvers": [],
        "torch_check": pa.torch_check,
        "kinks": pa.kinks,
    }
    for lin in pa.linearizations:
        entry: dict[str, Any] = {
            "solver": lin.solver,
            "params": lin.params,
            "jacobian": lin.formula if lin.known else None,
            "state": lin.state,
            "spectral_radius": _f(lin.radius),
            "prediction": lin.prediction,
            "note": lin.note,
            "remark": lin.remark,
        }
        obs, verdict = pa.observations.get(lin.solver), pa.verdicts.get(lin.solver)
        if obs is not None:
            entry["observed"] = {
                "status": obs.status,
                "rate": _f(obs.rate),
                "steps": obs.steps,
                "fitted_steps": obs.fitted,
                "start_distance": obs.start,
                "end_distance": _f(obs.end),  # where the run would be unscaled; null beyond float64
                "message": obs.message or None,
            }
        if verdict is not None:
            entry["agree"] = verdict.agree
            entry["rate_error"] = _f(verdict.rate_error)
            entry["verdict"] = verdict.reason
        out["solvers"].append(entry)
    return out
