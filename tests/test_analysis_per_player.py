"""`gamedsl analyze` with a step size per player (H = diag(h_i)) and with critic steps, against
the solvers' own steps: the Jacobian of one step of `solvers.Run`, run with an sgd optimizer per
player and its `critic_steps`, taken by central differences in float64 (Run updates its tensors in
place under no_grad, so autograd cannot see through a step; the catalog games here are linear or
smooth at their equilibria, and a difference quotient with eps = 1e-6 is exact to about 1e-9)."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import numpy as np
import pytest

import gamedsl
import solvers
from gamedsl.symbolic import linearize
from gamedsl.symbolic.analyze import Options, analyze
from tests.helpers.step_jacobian import step_jacobian

ROOT = Path(__file__).resolve().parent.parent
GAMES = ROOT / "games"
# the solvers whose map is defined with unequal step sizes (cgd refuses them; acgd has no fixed map)
PER_PLAYER = ["simga", "altga", "momentum", "consensus", "smoothing", "extragradient", "past_extragradient",
              "optimistic", "sga"]  # fmt: skip


@functools.lru_cache(maxsize=None)
def catalog(name: str):
    """The analysis of a catalog game (its v' at its one stationary point), once per process."""
    return analyze(gamedsl.load(GAMES / f"{name}.game"))


def rates_for(analysis, *rates: float) -> dict[str, float]:
    return dict(zip(analysis.game.players, rates))


def radius(matrix: np.ndarray) -> float:
    return float(np.max(np.abs(np.linalg.eigvals(matrix))))


# ---- the one-step maps against the runs ------------------------------------------------------------


@pytest.mark.parametrize("game", ["bilinear", "dirac_gan"])
@pytest.mark.parametrize("solver", PER_PLAYER)
def test_per_player_step_sizes_give_the_jacobian_of_the_run_step(game, solver):
    a = catalog(game)
    (p,) = a.points
    rates = rates_for(a, 0.1, 0.03)
    lin = linearize.linearize(solver, p.J, a.field.blocks, list(a.game.players), rates, {})
    truth = step_jacobian(a.spec, p.point.x, solver, {}, rates)
    np.testing.assert_allclose(lin.matrix, truth, atol=1e-8)
    assert lin.radius == pytest.approx(radius(truth), rel=1e-8)
    # and it is not the map of one shared step size: the test tells the two apart
    shared = linearize.linearize(solver, p.J, a.field.blocks, list(a.game.players), 0.1, {})
    assert np.max(np.abs(shared.matrix - truth)) > 1e-4


@pytest.mark.parametrize("game", ["bilinear", "dirac_gan"])
@pytest.mark.parametrize("solver", ["simga", "altga"])
@pytest.mark.parametrize("k", [2, 3])
def test_critic_steps_compose_with_the_solver_step(game, solver, k):
    a = catalog(game)
    (p,) = a.points
    first, second = a.game.players
    players = list(a.game.players)
    for rates in (rates_for(a, 0.2, 0.2), rates_for(a, 0.2, 0.05)):
        for critic in ({first: k}, {second: k, first: 2}):  # two players' extra steps, in this order
            lin = linearize.linearize(solver, p.J, a.field.blocks, players, rates, {}, critic)
            truth = step_jacobian(a.spec, p.point.x, solver, {}, rates, critic)
            np.testing.assert_allclose(lin.matrix, truth, atol=1e-8, err_msg=f"{rates} {critic}")
            assert lin.radius == pytest.approx(radius(truth), rel=1e-8)
            assert lin.critic_steps == critic and "P_" in lin.formula


def test_a_solver_without_critic_steps_is_analysed_without_them_and_says_so():
    a = catalog("bilinear")
    (p,) = a.points
    players = list(a.game.players)
    lin = linearize.linearize("consensus", p.J, a.field.blocks, players, 0.1, {"gamma": 1.0}, {"P": 3})
    plain = linearize.linearize("consensus", p.J, a.field.blocks, players, 0.1, {"gamma": 1.0})
    np.testing.assert_array_equal(lin.matrix, plain.matrix)
    assert lin.critic_steps == {} and "takes no critic steps" in lin.remark


def test_cgd_refuses_per_player_step_sizes_with_a_reason():
    a = catalog("bilinear")
    (p,) = a.points
    lin = linearize.linearize("cgd", p.J, a.field.blocks, list(a.game.players), {"P": 0.1, "Q": 0.05}, {})
    assert not lin.known and "one step size for all players" in lin.note
    equal = linearize.linearize("cgd", p.J, a.field.blocks, list(a.game.players), {"P": 0.1, "Q": 0.1}, {})
    assert equal.known  # equal rates are one step size


# ---- the whole analysis of a file with per-player settings -------------------------------------------


def variant(tmp_path: Path, name: str, *lines: str, solver: str | None = None) -> Path:
    """A catalog game with extra solve-block lines (and another solver)."""
    text = (GAMES / f"{name}.game").read_text()
    if solver is not None:
        text = re.sub(r"solver = .*", f"solver = {solver}", text, count=1)
    head, tail = text.rsplit("steps =", 1)
    path = tmp_path / f"{name}_variant.game"
    path.write_text(head + "".join(f"{line}\n  " for line in lines) + "steps =" + tail)
    return path


def test_the_analysis_reads_each_players_learning_rate_and_critic_steps(tmp_path):
    path = variant(tmp_path, "dirac_gan", "optimizer.G.lr = 0.05", "critic_steps.D = 3", solver="simga")
    a = analyze(gamedsl.load(path))
    assert a.settings.steps == {"D": 0.2, "G": 0.05} and a.settings.h == 0.2 and a.settings.critic_steps == {"D": 3}
    (p,) = a.points
    for name in ("simga", "altga"):
        lin = next(lin for lin in p.linearizations if lin.solver == name)
        truth = step_jacobian(a.spec, p.point.x, name, {}, {"D": 0.2, "G": 0.05}, {"D": 3})
        np.testing.assert_allclose(lin.matrix, truth, atol=1e-8)


def test_step_bounds_are_on_the_common_scale_of_the_step_matrix(tmp_path):
    """Lemma 4 for D v' (SimGA) and D w' (consensus), H = s D: below the bound I + s D A is
    contractive, above it is not (checked on the matrices directly)."""
    path = variant(tmp_path, "not_nash", "optimizer.B.lr = 0.05")
    a = analyze(gamedsl.load(path))
    assert a.settings.per_player and a.settings.steps == {"A": 0.1, "B": 0.05}
    (p,) = a.points
    D, eye = np.diag([1.0, 1.0, 0.5]), np.eye(3)
    W = p.J - a.settings.gamma * p.J.T @ p.J
    for bound, A in ((p.simga, p.J), (p.consensus, W)):
        assert bound.stable
        assert radius(eye + 0.999 * bound.h_max * D @ A) < 1 < radius(eye + 1.001 * bound.h_max * D @ A)
    assert p.simga.h_max != pytest.approx(catalog("not_nash").points[0].simga.h_max, rel=1e-3)  # the ratio matters


def test_a_slower_player_can_make_simga_unstable_at_every_scale(tmp_path):
    """not_nash is stable for one shared step, but with B four times slower D v' has eigenvalues
    in the right half-plane: no common scale s makes I + s D v' contractive."""
    a = analyze(gamedsl.load(variant(tmp_path, "not_nash", "optimizer.B.lr = 0.025")))
    (p,) = a.points
    assert catalog("not_nash").points[0].simga.stable
    assert not p.simga.stable and "D v'" in p.simga.reason
    D = np.diag([1.0, 1.0, 0.25])
    assert all(radius(np.eye(3) + s * D @ p.J) > 1 for s in np.geomspace(1e-4, 10, 50))


def test_equal_learning_rates_per_player_change_nothing(tmp_path, cli):
    """optimizer.P = sgd(lr=0.1), the same as the game's one optimizer: the same report."""
    same = variant(tmp_path, "bilinear", "optimizer.P = sgd(lr=0.1)")
    plain = cli("analyze", "games/bilinear.game")
    result = cli("analyze", same)
    assert result.code == plain.code == 0
    assert result.stdout.split("\n", 1)[1] == plain.stdout.split("\n", 1)[1]  # all but the line with the path


def test_a_non_sgd_optimizer_of_one_player_is_noted(tmp_path, cli):
    path = variant(tmp_path, "bilinear", "optimizer.Q = adam(lr=0.01)")
    result = cli("analyze", path)
    assert result.code == 0
    assert "player Q's optimizer is adam; the analysis assumes plain steps sgd(lr=0.01)" in result.stdout
    assert "player P's optimizer" not in result.stdout


def test_cli_verify_agrees_with_per_player_rates_and_critic_steps(tmp_path, cli):
    path = variant(tmp_path, "not_nash", "optimizer.B.lr = 0.05", "critic_steps.A = 2", solver="altga")
    result = cli("analyze", path, "--verify", "--steps", "500", "--json")
    assert result.code == 0, result.stdout + result.stderr
    data = json.loads(result.stdout)
    assert data["verified"] and data["agree"] is True
    rates = {"A": 0.1, "B": 0.05}
    assert data["settings"]["steps"] == rates and data["settings"]["critic_steps"] == {"A": 2}
    (point,) = data["points"]
    entries = {e["solver"]: e for e in point["solvers"]}
    spec = gamedsl.load(path)
    x = np.array(list(point["x"].values()))
    for name, critic in (("simga", {"A": 2}), ("altga", {"A": 2}), ("extragradient", None)):
        truth = radius(step_jacobian(spec, x, name, entries[name]["params"], rates, critic))
        assert entries[name]["spectral_radius"] == pytest.approx(truth, rel=1e-8), name
        assert entries[name]["agree"] is True, entries[name]
    assert entries["cgd"]["spectral_radius"] is None and "one step size" in entries["cgd"]["note"]
    assert "takes no critic steps" in entries["extragradient"]["remark"]
