"""`gamedsl analyze` against independent truths: closed forms from the paper and its successor (Mescheder et al. 2018),
finite differences of the solvers' actual steps, and runs of the solvers themselves."""

from __future__ import annotations

import functools
import json
import math
import time
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
import torch

import gamedsl
import solvers
from gamedsl.symbolic import limits, linearize
from gamedsl.symbolic.analyze import Options, analyze, verify
from gamedsl.symbolic.nash import NON_STRICT, NOT_NASH, STRICT
from tests.helpers.step_jacobian import step_jacobian
from gamedsl.errors import ExitCode, LimitError

ROOT = Path(__file__).resolve().parent.parent
GAMES = ROOT / "games"
ANALYSABLE = ["bilinear", "dirac_gan", "dirac_gan_nonsat", "quadratic_fig1b", "not_nash", "several_stationary"]


@functools.lru_cache(maxsize=None)
def _run(name: str, options: tuple):
    return analyze(gamedsl.load(GAMES / f"{name}.game"), Options(**dict(options)))


def run(name: str, **options):
    """The analysis of a catalog game, computed once per process and options."""
    return _run(name, tuple(sorted(options.items())))


def only_point(analysis):
    assert len(analysis.points) == 1
    return analysis.points[0]


def radius(point, solver: str) -> float:
    return next(lin for lin in point.linearizations if lin.solver == solver).radius


# ---- closed forms -----------------------------------------------------------------------------


def test_bilinear_eigenvalues_are_plus_minus_i_and_simga_diverges_at_every_h():
    a = run("bilinear")
    p = only_point(a)
    assert p.point.method == "exact" and a.search.exact == "complete"
    assert p.spectrum.exact == [-sp.I, sp.I]
    assert not p.simga.stable and math.isinf(p.simga.q)
    for h in (1e-4, 0.01, 0.1, 1.0, 10.0):
        lin = linearize.linearize("simga", p.J, a.field.blocks, list(a.game.players), h, {})
        assert lin.prediction == linearize.DIVERGES
        assert lin.radius == pytest.approx(math.sqrt(1 + h * h), rel=1e-12)  # eq. (20): |x|^2 grows by 1 + h^2


@pytest.mark.parametrize("gamma", [0.5, 1.0, 3.0])
def test_bilinear_consensus_eigenvalues_and_step_bound(gamma):
    p = only_point(run("bilinear", gamma=gamma))
    np.testing.assert_allclose(p.consensus_spectrum.values, [-gamma - 1j, -gamma + 1j], atol=1e-12)
    assert p.consensus.h_max == pytest.approx(2 * gamma / (1 + gamma**2), rel=1e-12)
    g = sp.Symbol("gamma", positive=True)
    assert set(p.consensus_formula.eigenvalues) == {-g - sp.I, -g + sp.I}
    assert sp.simplify(p.consensus_formula.h_max - 2 * g / (1 + g**2)) == 0


def test_dirac_gan_eigenvalues_are_plus_minus_half_i():
    for name in ("dirac_gan", "dirac_gan_nonsat"):
        p = only_point(run(name))
        np.testing.assert_allclose(p.point.x, [0.0, 0.0])
        assert p.spectrum.exact == [-sp.I / 2, sp.I / 2], name  # +-f'(0) i, f'(0) = 1/2


@pytest.mark.parametrize("gamma", [0.3, 1.0, 4.0])
def test_dirac_gan_consensus_eigenvalues(gamma):
    p = only_point(run("dirac_gan", gamma=gamma))
    np.testing.assert_allclose(p.consensus_spectrum.values, [-gamma / 4 - 0.5j, -gamma / 4 + 0.5j], atol=1e-12)
    g = sp.Symbol("gamma", positive=True)
    assert set(p.consensus_formula.eigenvalues) == {-g / 4 - sp.I / 2, -g / 4 + sp.I / 2}  # -gamma f'(0)^2 +- f'(0) i


def test_quadratic_fig1b_needs_a_tiny_step():
    a = run("quadratic_fig1b")
    p = only_point(a)
    eps, b = 0.02, 2.0
    assert p.nash.classification == STRICT and a.zero_sum.zero_sum
    assert p.spectrum.exact == [-sp.Rational(1, 50) - 2 * sp.I, -sp.Rational(1, 50) + 2 * sp.I]
    assert p.simga.stable and p.simga.q == pytest.approx(b / eps)
    assert p.simga.h_max == pytest.approx(2 * eps / (eps**2 + b**2), rel=1e-12)
    assert p.simga.h_max_exact == sp.Rational(100, 10001)
    assert radius(p, "simga") > 1 and radius(p, "consensus") < 0.7  # at the game's h = 0.1


def test_not_nash_is_stable_but_not_a_nash_equilibrium():
    a = run("not_nash")
    p = only_point(a)
    assert a.zero_sum.kind == "general-sum"
    assert sorted(p.spectrum.exact, key=lambda e: complex(e).imag) == [
        -1 - sp.sqrt(2) * sp.I,
        -2,
        -1 + sp.sqrt(2) * sp.I,
    ]
    assert p.simga.stable and p.simga.h_max_exact == sp.Rational(2, 3)
    assert p.nash.classification == NOT_NASH
    assert [c.hessian.kind for c in p.nash.players] == ["indefinite", "negative definite"]
    assert any("Corollary 2 does not apply" in n for n in p.nash.notes)
    assert all(lin.prediction == linearize.CONVERGES for lin in p.linearizations if lin.known)


def test_several_stationary_points_exactly():
    a = run("several_stationary")
    assert a.search.exact == "complete" and len(a.points) == 3
    r3 = sp.sqrt(3)
    by_x = {p.point.exact: p for p in a.points}
    assert set(by_x) == {(0, 0), (r3 / 2, -r3 / 4), (-r3 / 2, r3 / 4)}
    saddle = by_x[(0, 0)]
    assert saddle.nash.classification == NOT_NASH and set(saddle.spectrum.exact) == {-r3 / 2, r3 / 2}
    assert any("Corollary 2" in n and "not a local Nash" in n for n in saddle.nash.notes)
    for key in ((r3 / 2, -r3 / 4), (-r3 / 2, r3 / 4)):
        p = by_x[key]
        assert p.nash.classification == STRICT and p.nash.symmetric_part.kind == "negative definite"
        assert set(p.spectrum.exact) == {
            -sp.Rational(9, 8) - sp.sqrt(15) * sp.I / 8,
            -sp.Rational(9, 8) + sp.sqrt(15) * sp.I / 8,
        }


def test_corollary_2_fails_for_a_game_that_is_not_zero_sum():
    """u_1 = -x^2/2 + 10 x y, u_2 = -y^2/2: a strict Nash equilibrium whose v' is not negative
    semi-definite, which Corollary 2 rules out for zero-sum games."""
    spec = gamedsl.loads(
        "game g\nparam x = 1\nparam y = 1\n"
        "player A controls x maximizes -x^2 / 2 + 10 * x * y\nplayer B controls y maximizes -y^2 / 2\n"
    )
    p = only_point(analyze(spec))
    assert p.nash.classification == STRICT
    assert p.nash.symmetric_part.kind == "indefinite"
    assert any("impossible in a zero-sum game" in n for n in p.nash.notes)


def test_non_strict_and_zero_sum_lemma_notes():
    p = only_point(run("bilinear"))
    assert p.nash.classification == NON_STRICT
    assert any(n.startswith("Lemma 1") for n in p.nash.notes)


def test_constant_sum_counts_as_zero_sum():
    spec = gamedsl.loads(
        "game g\nparam x = 1\nparam y = 1\n"
        "player A controls x maximizes x * y - x^2 + 3\nplayer B controls y maximizes x^2 - x * y - 1\n"
    )
    kind = analyze(spec).zero_sum
    assert kind.kind == "constant-sum" and kind.zero_sum


# ---- linearisations against the solvers' actual steps --------------------------------------


NO_MAP = {name for name in solvers.available() if solvers.SOLVERS.cls(name).formula is None}  # declared without one


def test_acgd_declares_no_fixed_map_and_says_why():
    """ACGD's step sizes follow its running mean of v^2, which vanishes at a stationary point."""
    assert "acgd" in NO_MAP and NO_MAP < set(solvers.available())
    lin = linearize.linearize("acgd", np.eye(2), [slice(0, 1), slice(1, 2)], ["A", "B"], 0.1, {})
    assert not lin.known and "no fixed one-step map" in lin.note and lin.formula == "—"


@pytest.mark.parametrize("name", ANALYSABLE)
def test_every_linearisation_is_the_jacobian_of_the_real_step(name):
    a = run(name)
    for p in a.points:
        for lin in p.linearizations:
            if lin.solver in NO_MAP:
                assert not lin.known and lin.note  # the report says why
                continue
            assert lin.known, lin.note
            numeric = step_jacobian(a.spec, p.point.x, lin.solver, lin.params, a.settings.h)
            np.testing.assert_allclose(lin.matrix, numeric, atol=1e-7, err_msg=f"{name} {lin.solver}")


@pytest.mark.parametrize("h", [0.01, 0.1, 0.5])
def test_new_solvers_on_the_bilinear_game_in_closed_form(h):
    """|x|^2 factors per step: extragradient 1 - h^2 + h^4, CGD 1 / (1 + h^2), SGA (1 - h lambda)^2 + h^2;
    optimistic and past extragradient: the larger root of mu^2 - (1 + 2 h i) mu + h i = 0."""
    a = run("bilinear")
    p = only_point(a)
    players = list(a.game.players)

    def rho(solver, **params):
        return linearize.linearize(solver, p.J, a.field.blocks, players, h, params).radius

    assert rho("extragradient") ** 2 == pytest.approx(1 - h**2 + h**4, rel=1e-12)
    assert rho("cgd") ** 2 == pytest.approx(1 / (1 + h**2), rel=1e-12)
    for lam in (0.5, 1.0, 2.0):
        assert rho("sga", lam=lam) ** 2 == pytest.approx((1 - h * lam) ** 2 + h**2, rel=1e-12)
    mu = max(abs(r) for r in np.roots([1, -(1 + 2j * h), 1j * h]))
    assert mu < 1  # at h = 0.5 the root is double: the eigenvalues of a Jordan block carry sqrt(eps) errors
    assert rho("optimistic") == pytest.approx(mu, rel=1e-7)
    assert rho("past_extragradient") == pytest.approx(mu, rel=1e-7)


def test_cgd_linearisation_needs_two_players():
    lin = linearize.linearize("cgd", np.eye(3), [slice(0, 1), slice(1, 2), slice(2, 3)], ["A", "B", "C"], 0.1, {})
    assert not lin.known and "two players" in lin.note and lin.prediction == linearize.UNKNOWN


def test_altga_is_eq_45_for_two_players():
    rng = np.random.default_rng(0)
    J = rng.normal(size=(3, 3))
    blocks, h = [slice(0, 2), slice(2, 3)], 0.3
    G1, G2 = np.zeros_like(J), np.zeros_like(J)
    G1[:2], G2[2:] = J[:2], J[2:]
    expected = np.eye(3) + h * G1 + h * G2 + h * h * G2 @ G1
    lin = linearize.linearize("altga", J, blocks, ["A", "B"], h, {})
    np.testing.assert_allclose(lin.matrix, expected, atol=1e-14)


def test_a_solver_without_linearisation_gets_a_note_not_a_crash():
    lin = linearize.linearize("newsolver", np.eye(2), [slice(0, 1), slice(1, 2)], ["A", "B"], 0.1, {})
    assert not lin.known and lin.note == "no linearisation known for solver newsolver"
    assert lin.prediction == linearize.UNKNOWN and lin.radius is None


# ---- predictions against observations ---------------------------------------------------------


@pytest.mark.parametrize("name", ANALYSABLE)
def test_predictions_agree_with_runs_at_the_configured_steps(name):
    a = run(name)
    verify(a)
    for p in a.points:
        for lin in p.linearizations:
            if lin.solver in NO_MAP:
                assert p.verdicts[lin.solver].agree is None and lin.solver not in p.observations
                continue
            obs, verdict = p.observations[lin.solver], p.verdicts[lin.solver]
            where = f"{name} at {p.point.x} with {lin.solver}: {verdict.reason}"
            where += f" (rho {lin.radius}, observed {obs.rate}, {obs.status})"
            assert verdict.agree, where
            if lin.prediction == linearize.CONVERGES:
                assert verdict.rate_error is not None and verdict.rate_error <= 0.10, where
        assert p.torch_check is not None and p.torch_check < 1e-9


# ---- limits and hostile input --------------------------------------------------------------------


def test_time_limit_interrupts_and_nests():
    start = time.monotonic()
    with pytest.raises(LimitError, match="busy took longer than 0.2 s"):
        with limits.time_limit(0.2, "busy"):
            while True:
                pass
    assert time.monotonic() - start < 2
    # the outer limit is the one that passes: the inner block does not swallow it
    with pytest.raises(LimitError, match="outer"):
        with limits.time_limit(0.3, "outer"):
            try:
                with limits.time_limit(10, "inner"):
                    while True:
                        pass
            except LimitError:
                pytest.fail("the inner block must not report the outer limit")
    # an inner limit that passes first is caught inside, and the outer one still holds
    with limits.time_limit(5, "outer"):
        with pytest.raises(LimitError, match="inner"):
            with limits.time_limit(0.1, "inner"):
                while True:
                    pass
    assert limits.remaining() == math.inf


DEGREE_200 = """game degree200
param x = 0.5
param y = 0.5
player P controls x maximizes -x^200 + x * y
player Q controls y maximizes -y^200 - x * y
"""
FIFTY = """game fifty
param a[25] = 0.1
param b[25] = 0.1
player A controls a maximizes -sum(a^200) + dot(a, b)
player B controls b maximizes -sum(b^2) / 2 - dot(a, b) * (1 + sum(a))^3
"""


def test_degree_200_polynomial_is_answered_numerically():
    start = time.monotonic()
    a = analyze(gamedsl.loads(DEGREE_200), Options(time_limit=60))
    assert time.monotonic() - start < 60
    assert a.search.exact == "skipped" and any("degree 199" in n for n in a.search.notes)
    p = only_point(a)  # the only real stationary point; degenerate in each own Hessian
    assert p.point.method == "numerical" and np.allclose(p.point.x, 0)
    np.testing.assert_allclose(sorted(p.spectrum.values, key=lambda z: z.imag), [-1j, 1j], atol=1e-9)


def test_fifty_parameters_end_within_the_limit():
    start = time.monotonic()
    try:
        a = analyze(gamedsl.loads(FIFTY), Options(time_limit=40))
    except LimitError as exc:  # a clear message is an acceptable answer
        assert "took longer than" in exc.message and "--time-limit" in exc.hint
    else:
        assert len(a.game.symbols) == 50
        for p in a.points:
            assert np.max(np.abs(a.field.v_at(p.point.x))) < 1e-8
    assert time.monotonic() - start < 60


def test_a_tight_time_limit_gives_exit_7():
    with pytest.raises(LimitError) as info:
        analyze(gamedsl.loads(DEGREE_200), Options(time_limit=0.001))
    assert info.value.code == ExitCode.LIMIT
    assert "--time-limit" in info.value.hint


# ---- the command line -----------------------------------------------------------------------------


def test_cli_report_and_json(cli):
    result = cli("analyze", "games/bilinear.game")
    assert result.code == 0, result.stderr
    for text in (
        "v[phi] = theta",
        "eigenvalues of v': -i, i",
        "SimGA (Lemma 4): not locally convergent",
        "h < 2*gamma/(gamma^2 + 1)",
    ):
        assert text in result.stdout, result.stdout
    result = cli("analyze", "games/bilinear.game", "--json", "--gamma", "2", "--h", "0.05")
    data = json.loads(result.stdout)
    assert data["ok"] and data["settings"]["h"] == 0.05 and data["settings"]["gamma"] == 2.0
    (point,) = data["points"]
    assert point["x_exact"] == {"phi": "0", "theta": "0"}
    assert [e["exact"] for e in point["eigenvalues"]] == ["-I", "I"]
    assert point["consensus"]["h_max"] == pytest.approx(0.8)
    solvers_ = {s["solver"]: s for s in point["solvers"]}
    assert solvers_["simga"]["prediction"] == "diverges"
    assert solvers_["simga"]["spectral_radius"] == pytest.approx(math.sqrt(1 + 0.05**2))
    assert set(solvers_) == set(solvers.available())


def test_cli_out_of_reach(cli):
    result = cli("analyze", "games/mog.game")
    assert result.code == ExitCode.OUT_OF_REACH
    assert "out of symbolic reach" in result.stderr and "gamedsl spectrum games/mog.game" in result.stderr
    assert "Traceback" not in result.stderr
    data = json.loads(cli("analyze", "games/mog.game", "--json").stdout)
    assert data["ok"] is False and data["error"]["kind"] == "OutOfReach"


def test_cli_verify_exit_codes(cli, monkeypatch):
    result = cli("analyze", "games/not_nash.game", "--verify")
    assert result.code == 0, result.stdout + result.stderr
    assert "agree" in result.stdout and "DISAGREE" not in result.stdout
    # a wrong linearisation must be caught by --verify
    wrong = lambda self, J, blocks, players, h: torch.eye(len(J), dtype=J.dtype) - h * J  # noqa: E731
    monkeypatch.setattr(solvers.SOLVERS.cls("simga"), "linearization", wrong)
    result = cli("analyze", "games/not_nash.game", "--verify", "--steps", "300")
    assert result.code == ExitCode.FAILURE, result.stdout
    known = sum(1 for name in solvers.available() if name not in NO_MAP)
    assert f"{known - 1} of {known} predictions agree" in result.stdout and "DISAGREE" in result.stdout, result.stdout


def test_cli_notes_a_non_sgd_optimizer(cli, tmp_path):
    text = (GAMES / "bilinear.game").read_text().replace("sgd(lr=0.1)", "adam(lr=0.01)")
    path = tmp_path / "adam.game"
    path.write_text(text)
    result = cli("analyze", path)
    assert result.code == 0
    assert "the analysis assumes plain steps sgd(lr=0.01)" in result.stdout
