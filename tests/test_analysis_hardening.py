"""`gamedsl analyze` and `gamedsl spectrum` on the inputs of issue 11: strongly repelling points
verified on every seed alike, families of stationary points, exact zeros, the consensus
Jacobian's name, and numeric flags outside their range."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import sympy as sp

import gamedsl
import solvers
from gamedsl.errors import ExitCode
from gamedsl.numeric import verify
from gamedsl.symbolic import linearize, stationary
from gamedsl.symbolic.analyze import Options, analyze

# ---- item 4: --verify on a strongly repelling point ---------------------------------------------

SEEDS = range(4)


@pytest.fixture(scope="module")
def saddle_at_h5():
    """several_stationary's saddle (0, 0) at h = 5: every solver's F' has rho between 1.7 and 97,
    so a plain run from 1e-7 left the linear regime after 2 to 17 steps and the fitted rate
    depended on the random direction (seeds 0-3 each gave a DISAGREE before the fix)."""
    analysis = analyze(gamedsl.load("games/several_stationary.game"), Options(h=5.0))
    (saddle,) = [p for p in analysis.points if np.allclose(p.point.x, 0)]
    return analysis, saddle


def test_verify_gives_every_seed_the_same_verdict_on_a_strongly_repelling_point(saddle_at_h5):
    analysis, saddle = saddle_at_h5
    known = [lin for lin in saddle.linearizations if lin.known]
    assert all(lin.prediction == linearize.DIVERGES for lin in known)
    assert max(lin.radius for lin in known) > 25  # the regime of the report: rho 25.8, observed 15.4
    for lin in known:
        verdicts = set()
        for seed in SEEDS:
            obs = verify.observe(analysis.spec, saddle.point.x, lin.solver, lin.params, 5.0, seed=seed)
            verdict = verify.compare(lin, obs)
            where = f"{lin.solver}, seed {seed}: {verdict.reason} (rho {lin.radius}, observed {obs.rate})"
            assert verdict.agree, where
            assert obs.fitted >= verify.MIN_FITTED, where
            assert abs(math.log(obs.rate) - math.log(lin.radius)) <= 0.1 * math.log(lin.radius), where
            verdicts.add((verdict.agree, obs.trend))
        assert len(verdicts) == 1, f"{lin.solver}: {verdicts}"


def test_verify_rescales_the_memory_of_solvers_with_state(saddle_at_h5):
    """Momentum, optimistic and past extragradient carry a vector besides x; a rescaling of x
    alone would break the linear map on (x, memory), and their rates would not match F'."""
    analysis, saddle = saddle_at_h5
    carrying = [name for name in solvers.available() if solvers.SOLVERS.cls(name).carries != "x"]
    assert {"momentum", "optimistic", "past_extragradient"} <= set(carrying)
    for name in carrying:
        lin = next(lin for lin in saddle.linearizations if lin.solver == name)
        assert lin.state != "x"
        obs = verify.observe(analysis.spec, saddle.point.x, name, lin.params, 5.0, seed=1)
        assert obs.rate == pytest.approx(lin.radius, rel=1e-3), name


def test_a_short_verification_is_undecided_unless_the_run_left_the_linear_regime(saddle_at_h5):
    """Ten steps of a transient say nothing: smoothing on the bilinear game grows over its first
    10 steps although rho = 0.954 (a DISAGREE before). Ten steps that grow by 1e4 do decide."""
    analysis = analyze(gamedsl.load("games/bilinear.game"))
    (point,) = analysis.points
    lin = next(lin for lin in point.linearizations if lin.solver == "smoothing")
    assert lin.prediction == linearize.CONVERGES
    obs = verify.observe(analysis.spec, point.point.x, "smoothing", lin.params, analysis.settings.h, steps=10)
    assert obs.fitted < verify.MIN_FITTED and obs.status not in ("converged", "diverged")
    verdict = verify.compare(lin, obs)
    assert verdict.agree is None and "undecided" in verdict.reason
    analysis, saddle = saddle_at_h5
    lin = next(lin for lin in saddle.linearizations if lin.solver == "consensus")
    obs = verify.observe(analysis.spec, saddle.point.x, "consensus", lin.params, 5.0, steps=10)
    assert obs.status == "diverged" and obs.fitted < verify.MIN_FITTED
    verdict = verify.compare(lin, obs)
    assert verdict.agree and verdict.rate_error is None and "too few for a rate" in verdict.reason


def test_cli_verify_with_few_steps_exits_0_and_says_undecided(cli):
    result = cli("analyze", "games/bilinear.game", "--verify", "--steps", 10)
    assert result.code == 0, result.stdout + result.stderr
    assert "DISAGREE" not in result.stdout
    assert "10 undecided (too few steps: raise --steps)" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_cli_verify_agrees_on_every_seed_at_a_large_step(cli, seed):
    result = cli("analyze", "games/several_stationary.game", "--verify", "--h", "1", "--seed", seed)
    assert result.code == 0 and "DISAGREE" not in result.stdout, result.stdout


# ---- item 8: families of stationary points, exact zeros -------------------------------------------

LINE = """game line "v = 0 on the line a = b = c"
param a = 1
param b = 0
param c = 0.5
player P controls a maximizes -(a - b)^2 - (a - c)^2
player Q controls b, c maximizes -(b - c)^2 - (a - b)^2
"""
CIRCLE = """game circle "v = 0 on the unit circle, and at the origin"
param a = 1
param b = 1
player P controls a maximizes -(a^2 + b^2 - 1)^2
player Q controls b maximizes -(a^2 + b^2 - 1)^2
"""
PLANE = """game diagonal "v = 0 on the line a = b"
param a = 1
param b = 0
player P controls a maximizes -(a - b)^2
player Q controls b maximizes -(a - b)^2
"""


def test_a_line_of_stationary_points_is_a_family_not_isolated_points(cli, tmp_path):
    analysis = analyze(gamedsl.loads(LINE))
    assert analysis.points == []  # the numerical search lands on the line; none of it is analysed alone
    (family,) = analysis.search.continua
    assert family.kind == "a line" and [str(s) for s in family.free] == ["c"]
    assert family.found >= 1
    for c in (-2.0, 0.0, 3.5):  # every point of the family is stationary
        x = np.array([float(v.subs(family.free[0], c)) for v in family.values])
        np.testing.assert_allclose(x, [c, c, c])
        np.testing.assert_allclose(analysis.field.v_at(x), 0, atol=1e-12)
    J = analysis.field.J_at(np.zeros(3))
    exact = sorted(complex(e).real for e in family.eigenvalues)
    np.testing.assert_allclose(exact, sorted(np.linalg.eigvals(J).real), atol=1e-12)
    path = tmp_path / "line.game"
    path.write_text(LINE)
    result = cli("analyze", path)
    assert result.code == 0, result.stderr
    assert "a line of stationary points: a = b = c, for every c" in result.stdout, result.stdout
    assert "c = c" not in result.stdout and "Point 1" not in result.stdout
    assert "eigenvalues of v' on it: -6, -4, 0" in result.stdout
    data = json.loads(cli("analyze", path, "--json").stdout)
    assert data["points"] == []
    assert data["stationary"]["continua"] == ["a line of stationary points: a = b = c, for every c"]


def test_isolated_points_beside_a_curve_are_still_analysed():
    analysis = analyze(gamedsl.loads(CIRCLE))
    assert sorted(f.kind for f in analysis.search.continua) == ["a curve", "a curve"]  # b = +-sqrt(1 - a^2)
    (origin,) = analysis.points  # the only stationary point off the circle
    np.testing.assert_allclose(origin.point.x, [0, 0])
    for family in analysis.search.continua:
        assert family.contains(np.array([0.6, 0.8])) != family.contains(np.array([0.6, -0.8]))
        assert not family.contains(np.zeros(2))


def test_an_exact_zero_eigenvalue_prints_as_0(cli, tmp_path, monkeypatch):
    """With the exact route off, the points of v' = [[-2, 2], [2, -2]] (eigenvalues -4 and 0) come
    from the numerical search, and numpy's 0 is round-off (4.4e-16): the report shows 0."""
    monkeypatch.setattr(stationary, "exact_guard", lambda fld: "switched off by the test")
    path = tmp_path / "diagonal.game"
    path.write_text(PLANE)
    result = cli("analyze", path)
    assert result.code == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if "eigenvalues of v':" in line]
    assert lines and all(line.strip() == "eigenvalues of v': -4, 0" for line in lines), result.stdout
    data = json.loads(cli("analyze", path, "--json").stdout)
    values = sorted(e["re"] for e in data["points"][0]["eigenvalues"])
    np.testing.assert_allclose(values, [-4, 0], atol=1e-12)  # the JSON keeps the float as computed


# ---- item 3: the consensus Jacobian is w', not v' ---------------------------------------------------


def test_the_consensus_bound_names_w_prime():
    """With gamma = 0, w' = v' - gamma v'^T v' is v': at the saddle of several_stationary both
    have the eigenvalue +sqrt(3)/2, and each bound names its own matrix."""
    analysis = analyze(gamedsl.load("games/several_stationary.game"), Options(gamma=0.0))
    (saddle,) = [p for p in analysis.points if np.allclose(p.point.x, 0)]
    assert sp.sqrt(3) / 2 in saddle.spectrum.exact
    assert saddle.simga.reason == "an eigenvalue of v' has positive real part"
    assert saddle.consensus.reason == "an eigenvalue of w' has positive real part"
    bilinear = analyze(gamedsl.load("games/bilinear.game"), Options(gamma=0.0)).points[0]
    assert bilinear.consensus.reason == "an eigenvalue of w' lies on the imaginary axis"


# ---- item 10: numeric flags ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "flag, value, shown",
    [
        ("--h", "inf", "--h must lie in (0, 1000], got inf"),
        ("--h", "nan", "--h must lie in (0, 1000], got nan"),
        ("--h", "0", "--h must lie in (0, 1000], got 0"),
        ("--gamma", "nan", "--gamma must lie in [0, 1e6], got nan"),
        ("--gamma", "inf", "--gamma must lie in [0, 1e6], got inf"),
        ("--beta", "1", "--beta must lie in (-1, 1), got 1"),
        ("--time-limit", "inf", "--time-limit must lie in (0, 86400], got inf"),
        ("--time-limit", "nan", "--time-limit must lie in (0, 86400], got nan"),
    ],
)
def test_analyze_refuses_numeric_flags_out_of_range(cli, flag, value, shown):
    result = cli("analyze", "games/bilinear.game", flag, value)
    assert result.code == ExitCode.USAGE, result.stdout + result.stderr
    assert shown in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
def test_spectrum_refuses_a_gamma_out_of_range(cli, tmp_path, value):
    result = cli("spectrum", "games/bilinear.game", "--gamma", value, "--out", tmp_path)
    assert result.code == ExitCode.USAGE, result.stdout + result.stderr
    assert f"--gamma must lie in [0, 1e6], got {value}" in result.stderr
    assert not any(tmp_path.iterdir())


def test_arnoldi_with_more_eigenvalues_than_it_can_find_falls_back_to_dense(cli, tmp_path):
    result = cli("spectrum", "games/bilinear.game", "--method", "arnoldi", "--k", 5, "--gamma", 2, "--out", tmp_path)
    assert result.code == 0, result.stdout + result.stderr
    assert "dense, all 2 eigenvalues (--k 5: Arnoldi finds at most n - 2 of n >= 4)" in result.stderr
    data = np.load(tmp_path / "spectrum.npz")
    np.testing.assert_allclose(np.sort_complex(data["v_0"]), [-1j, 1j], atol=1e-6)  # v' = [[0, 1], [-1, 0]]
    np.testing.assert_allclose(np.sort_complex(data["w_0"]), [-2 - 1j, -2 + 1j], atol=1e-6)  # v' - 2 v'^T v'


def test_arnoldi_beyond_the_dense_size_refuses_an_impossible_k(cli, tmp_path, monkeypatch):
    from gamedsl.numeric import spectrum

    monkeypatch.setattr(spectrum, "DENSE_LIMIT", 3)  # as if 4 parameters were too many for the dense method
    path = tmp_path / "four.game"
    path.write_text(
        "game four\nparam a[2] = 1\nparam b[2] = 1\n"
        "player P controls a maximizes dot(a, b)\nplayer Q controls b minimizes dot(a, b)\n"
    )
    result = cli("spectrum", path, "--method", "arnoldi", "--k", "5", "--out", tmp_path / "out")
    assert result.code == ExitCode.USAGE, result.stdout + result.stderr
    assert "--k must be at most 2 for this game's 4 parameters, got 5" in result.stderr
    assert "Traceback" not in result.stderr
