"""Extragradient, optimistic, SGA and CGD against independent truths: closed forms on the
bilinear game and the Dirac-GAN, explicit dense Jacobians, and hand-written optimizer loops.

All in float64. Conventions: v is the players' own gradients (ascent), J = v'.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gamedsl
import solvers
from solvers.field import GameField
from gamedsl.numeric.verify import torch_game
from tests.conftest import ROOT
from tests.test_solvers import RandomGame, bilinear, flat, one_step


pytestmark = pytest.mark.usefixtures("float64_default")  # closed forms and second implementations in float64


def sgd(h):
    return solvers.optimizers.get("sgd", lr=h)


def dense(game, x, batch):
    """v and J = v' at x on `batch`, by autograd.functional on the explicit field."""
    v = game.field(x.clone().requires_grad_(), batch).detach()
    J = torch.autograd.functional.jacobian(lambda y: game.field(y, batch), x.clone())
    return v, J


def batches(game, n):
    """The next n batches the game will draw, without consuming them."""
    state = game.gen.get_state()
    out = [game.sample() for _ in range(n)]
    game.gen.set_state(state)
    return out


# ---- the engines' Jacobian-vector products ----------------------------------------------------------


def test_jvp_blocks_match_the_dense_jacobian_in_both_engines():
    """engine.jvp(ev, u, of, wrt) = (d v_of / d x_wrt) u, eagerly (double-vjp trick) and with torch.func."""
    from torch.func import functional_call

    from solvers.field import Field
    from solvers.functional import FunctionalEngine

    game = RandomGame(0)
    batch = game.sample()
    _, J = dense(game, flat(game), batch)
    eager = solvers.Engine(game, sgd(0.1))
    ev = eager.evaluate(batch, create_graph=True)

    def utilities(params, b, i=None):
        us = functional_call(game, {"a": params[0], "b": params[1]}, (b,))
        return us if i is None else us[i]

    field = Field(utilities, eager.slices)
    functional = FunctionalEngine(field, [p.detach() for p in eager.params], sgd(0.1), {}, [])
    fev = functional.evaluate(batch, create_graph=True)
    rows = {0: slice(0, 3), 1: slice(3, 5)}
    u = [torch.randn(3), torch.randn(2)]
    for of, wrt in [([1], [0]), ([0], [1]), ([0, 1], [0, 1]), ([1, 0], [1, 0])]:
        tangent = [u[i] for i in wrt]
        expected = torch.cat([J[rows[i]][:, torch.cat([torch.arange(5)[rows[j]] for j in wrt])] @ torch.cat(tangent) for i in of])
        for engine, evaluation in ((eager, ev), (functional, fev)):
            got = torch.cat(engine.jvp(evaluation, tangent, of=of, wrt=wrt))
            torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-13)


# ---- the bilinear game, closed forms -------------------------------------------------------------


@pytest.mark.parametrize("h", [0.01, 0.1, 0.5])
def test_extragradient_shrinks_bilinear_by_one_minus_h2_plus_h4(h):
    game, norm2 = bilinear(h)
    run = solvers.Run(game, solvers.get("extragradient"), sgd(h))
    for _ in range(20):
        before = norm2()
        run.step()
        assert norm2() / before == pytest.approx(1 - h**2 + h**4, rel=1e-12)


@pytest.mark.parametrize("h", [0.1, 0.5])
@pytest.mark.parametrize("lam", [0.5, 1.0])
def test_sga_on_bilinear_contracts_by_its_closed_form(h, lam):
    # v = (theta, -phi), A = v': the direction (I + lam v') v gives |x|^2 factor (1 - h lam)^2 + h^2
    game, norm2 = bilinear(h)
    run = solvers.Run(game, solvers.get("sga", lam=lam), sgd(h))
    for _ in range(20):
        before = norm2()
        run.step()
        assert norm2() / before == pytest.approx((1 - h * lam) ** 2 + h**2, rel=1e-12)


@pytest.mark.parametrize("h", [0.1, 0.5])
def test_cgd_on_bilinear_contracts_by_one_over_one_plus_h2(h):
    # F = (I - h v')^-1 on this game: eigenvalues 1 / (1 -+ i h)
    game, norm2 = bilinear(h)
    run = solvers.Run(game, solvers.get("cgd"), sgd(h))
    for _ in range(20):
        before = norm2()
        info = run.step()
        assert norm2() / before == pytest.approx(1 / (1 + h**2), rel=1e-12)
        assert float(info.extras["cgd_iterations"]) == 1  # a 1 x 1 system


@pytest.mark.parametrize("method", ["optimistic", "past_extragradient"])
@pytest.mark.parametrize("h", [0.1, 0.3])
def test_optimistic_methods_converge_on_bilinear_at_the_root_of_their_recursion(method, h):
    """x_{t+1} = x_t + 2h v_t - h v_{t-1}: each mode decays like the larger root of
    mu^2 - (1 + 2 h i) mu + h i = 0, which lies inside the unit circle."""
    game, norm2 = bilinear(h)
    run = solvers.Run(game, solvers.get(method), sgd(h))
    mu = max(abs(r) for r in np.roots([1, -(1 + 2j * h), 1j * h]))
    assert mu < 1
    start = norm2()
    for _ in range(300):
        run.step()
    before = norm2()
    run.step()
    assert norm2() < start * 0.5
    assert norm2() / before == pytest.approx(mu**2, rel=1e-6)


def test_simga_diverges_where_the_new_methods_converge():
    h = 0.1
    game, norm2 = bilinear(h)
    run = solvers.Run(game, solvers.get("simga"), sgd(h))
    run.step()
    assert norm2() == pytest.approx(2 * (1 + h * h), rel=1e-12)


# ---- the Dirac-GAN at the authors' demo settings --------------------------------------------------


def dirac_rates() -> dict[str, float]:
    """Analytic contraction per step at the equilibrium: v' = [[0, -1/2], [1/2, 0]], h = 0.2, h lam = 0.1 i."""
    z = 0.1j
    return {
        "extragradient": abs(1 + z * (1 + z)),
        "past_extragradient": max(abs(r) for r in np.roots([1, -(1 + 2 * z), z])),
        "optimistic": max(abs(r) for r in np.roots([1, -(1 + 2 * z), z])),
        "sga": abs(1 + 0.2 * (-0.25 + 0.5j)),  # (I + A) v' = v' + v'^2 has eigenvalues -1/4 +- i/2
        "cgd": abs(1 / (1 - z)),  # (I - h v')^-1: v' has no diagonal blocks here
    }


@pytest.mark.parametrize("method", sorted(dirac_rates()))
def test_every_new_method_converges_on_the_dirac_gan(method):
    """games/dirac_gan.game from (1, 1), h = 0.2, 500 steps (the authors' demo). Converging
    means: after 500 steps |x| is below 15 % of its start, and over the last 100 steps it
    contracts at the analytic rate rho(F'(0)) < 1 of the linearisation (to 1e-4)."""
    spec = gamedsl.load(ROOT / "games/dirac_gan.game")
    game = torch_game(spec)
    run = solvers.Run(game, solvers.get(method), sgd(0.2))
    start = float(GameField(game).x().norm())
    norms = []
    for _ in range(500):
        run.step()
        norms.append(float(GameField(game).x().norm()))
    rho = dirac_rates()[method]
    assert rho < 1
    assert norms[-1] < 0.15 * start, norms[-1]
    assert (norms[-1] / norms[-101]) ** (1 / 100) == pytest.approx(rho, rel=1e-4)


# ---- directions against explicit dense Jacobians --------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_extragradient_steps_with_the_field_at_the_look_ahead_point(seed):
    game, h = RandomGame(seed), 0.05
    b1, b2 = batches(game, 2)
    x0 = flat(game)
    run = solvers.Run(game, solvers.get("extragradient"), sgd(h))
    run.step()
    ahead = x0 + h * dense(game, x0, b1)[0]
    expected = x0 + h * dense(game, ahead, b2)[0]  # each half-step on its own batch
    torch.testing.assert_close(flat(game), expected, rtol=1e-12, atol=1e-13)


def test_past_extragradient_reuses_the_last_look_ahead_field():
    game, h = RandomGame(4), 0.05
    draws = batches(game, 4)
    x, g = flat(game), torch.zeros(5)
    run = solvers.Run(game, solvers.get("past_extragradient"), sgd(h))
    for batch in draws:
        ahead = x + h * g
        g = dense(game, ahead, batch)[0]
        x = x + h * g
        run.step()
        torch.testing.assert_close(flat(game), x, rtol=1e-12, atol=1e-13)


def test_optimistic_recursion():
    game, h = RandomGame(5), 0.05
    draws = batches(game, 4)
    x, previous = flat(game), torch.zeros(5)
    run = solvers.Run(game, solvers.get("optimistic"), sgd(h))
    for batch in draws:
        v = dense(game, x, batch)[0]
        x = x + h * (2 * v - previous)
        previous = v
        run.step()
        torch.testing.assert_close(flat(game), x, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("lam", [0.3, 2.0])
def test_sga_direction_is_v_plus_lambda_A_v(seed, lam):
    game = RandomGame(seed)
    x0, batch, step = one_step(game, solvers.get("sga", lam=lam))
    v, J = dense(game, x0, batch)
    A = (J - J.T) / 2
    torch.testing.assert_close(step, v + lam * A @ v, rtol=1e-10, atol=1e-12)


def balduzzi_aligned_step(v, J, lam):
    """Balduzzi et al.'s Algorithm 1 with ALIGN, written for losses: xi = -v, H = xi' = -J."""
    xi, H = -v, -J
    A_H = (H - H.T) / 2
    grad_ham = H.T @ xi  # grad of |xi|^2 / 2
    d = xi.numel()
    sign = torch.sign((xi @ grad_ham) * ((A_H.T @ xi) @ grad_ham) / d + 0.1)
    return -(xi + lam * sign * A_H.T @ xi), sign  # the ascent step


def test_sga_sign_alignment_follows_the_paper_in_both_directions():
    signs = set()
    for seed in range(12):
        game = RandomGame(seed)
        x0, batch, step = one_step(game, solvers.get("sga", lam=1.5, align=True))
        v, J = dense(game, x0, batch)
        expected, sign = balduzzi_aligned_step(v, J, 1.5)
        torch.testing.assert_close(step, expected, rtol=1e-10, atol=1e-12)
        signs.add(float(sign))
    assert signs == {-1.0, 1.0}  # the rule flips lambda for some of these games and keeps it for others


@pytest.mark.parametrize("seed", range(3))
def test_cgd_move_is_the_nash_of_the_local_bilinear_game(seed):
    """d = h (I - h J_off)^-1 v: both players' best responses hold at once."""
    game, h = RandomGame(seed), 0.2
    x0, batch, step = one_step(game, solvers.get("cgd", tol=1e-14), lr=h)
    v, J = dense(game, x0, batch)
    off = J.clone()
    off[:3, :3], off[3:, 3:] = 0, 0
    expected = h * torch.linalg.solve(torch.eye(5) - h * off, v)
    torch.testing.assert_close(step, expected, rtol=1e-10, atol=1e-12)
    # each player's move is its best response to the other's: d_1 = h (v_1 + B d_2), d_2 = h (v_2 + C d_1)
    d = step
    torch.testing.assert_close(d[:3], h * (v[:3] + J[:3, 3:] @ d[3:]), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(d[3:], h * (v[3:] + J[3:, :3] @ d[:3]), rtol=1e-10, atol=1e-12)


def test_acgd_scales_the_local_game_like_rmsprop():
    """First step: s = (1 - beta2) v^2, bias-corrected to v^2, so A = h / (|v| + eps)."""
    game, h, eps = RandomGame(8), 0.1, 1e-3
    x0, batch, step = one_step(game, solvers.get("acgd", beta2=0.9, eps=eps, tol=1e-14), lr=h)
    v, J = dense(game, x0, batch)
    A = torch.diag(h / (v.abs() + eps))
    off = J.clone()
    off[:3, :3], off[3:, 3:] = 0, 0
    expected = torch.linalg.solve(torch.eye(5) - A @ off, A @ v)
    torch.testing.assert_close(step, expected, rtol=1e-9, atol=1e-12)


# ---- CGD: iterations, refusals ------------------------------------------------------------------------


def test_cgd_reports_its_iterations_in_the_history():
    game = RandomGame(1)  # players of 3 and 2 parameters: the 2 x 2 system is exact in 2 iterations
    result = solvers.solve(game, solvers.get("cgd", tol=1e-14), sgd(0.2), 5)
    assert result.history["cgd_iterations"] == [2.0] * 5
    assert max(result.history["cgd_residual"]) < 1e-12
    capped = solvers.solve(RandomGame(1), solvers.get("cgd", tol=1e-14, max_iter=1), sgd(0.2), 3)
    assert capped.history["cgd_iterations"] == [1.0] * 3
    assert min(capped.history["cgd_residual"]) > 1e-14  # stopped by the cap, and says how far it got


def test_cgd_refuses_three_players_and_adaptive_optimizers():
    a, b, c = (torch.tensor(1.0, requires_grad=True) for _ in range(3))
    three = solvers.make_game({"A": [a], "B": [b], "C": [c]}, lambda: None, lambda _: [a * b, b * c, c * a])
    for name in ("cgd", "acgd"):
        with pytest.raises(solvers.SolverError, match="defined for two players; this game has 3"):
            solvers.Run(three, solvers.get(name), sgd(0.1))
        for optimizer in ("rmsprop", "adam"):
            game, _ = bilinear(0.1)
            with pytest.raises(solvers.SolverError, match=f"needs optimizer sgd, not {optimizer}"):
                solvers.Run(game, solvers.get(name), solvers.optimizers.get(optimizer))
    with pytest.raises(solvers.SolverError, match="max_iter must be at least 1"):
        solvers.get("cgd", max_iter=0)
    with pytest.raises(solvers.SolverError, match="beta2 must lie in"):
        solvers.get("acgd", beta2=1.0)


def test_cli_refuses_cgd_with_rmsprop_as_usage_error(cli):
    result = cli("solve", "games/mog.game", "--solver", "cgd", "--steps", "1", "-q")
    assert result.code == 2 and "needs optimizer sgd, not rmsprop" in result.stderr and "acgd" in result.stderr
    assert "Traceback" not in result.stderr


# ---- the optimizers inside the methods ---------------------------------------------------------------


def test_extragradient_with_adam_is_extra_adam():
    """Gidel et al.'s Algorithm 4 by hand (ascent): the moments advance at both half-steps,
    the bias corrections count half-steps, and both steps start from x_t."""
    game, lr, b1, b2, eps = RandomGame(6), 0.01, 0.5, 0.9, 1e-8
    draws = batches(game, 6)
    x, m, s = flat(game), torch.zeros(5), torch.zeros(5)
    run = solvers.Run(game, solvers.get("extragradient"), solvers.optimizers.get("adam", lr=lr, beta1=b1, beta2=b2, eps=eps))

    def adam(point, g, m, s, t):
        m, s = b1 * m + (1 - b1) * g, b2 * s + (1 - b2) * g * g
        return point + lr / (1 - b1**t) * m / ((s / (1 - b2**t)).sqrt() + eps), m, s

    for k in range(3):
        ahead, m, s = adam(x, dense(game, x, draws[2 * k])[0], m, s, 2 * k + 1)
        x, m, s = adam(x, dense(game, ahead, draws[2 * k + 1])[0], m, s, 2 * k + 2)
        run.step()
        torch.testing.assert_close(flat(game), x, rtol=1e-10, atol=1e-12)


def test_optimistic_with_adam_is_optimistic_adam():
    """Daskalakis et al.: x <- x + 2 s_t - s_{t-1}, s_t the Adam step along v_t."""
    game, lr = RandomGame(9), 0.01
    draws = batches(game, 4)
    x, m, s, last = flat(game), torch.zeros(5), torch.zeros(5), torch.zeros(5)
    run = solvers.Run(game, solvers.get("optimistic"), solvers.optimizers.get("adam", lr=lr))
    for t, batch in enumerate(draws, 1):
        g = dense(game, x, batch)[0]
        m, s = 0.9 * m + 0.1 * g, 0.999 * s + 0.001 * g * g
        step = lr / (1 - 0.9**t) * m / ((s / (1 - 0.999**t)).sqrt() + 1e-8)
        x, last = x + 2 * step - last, step
        run.step()
        torch.testing.assert_close(flat(game), x, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("method", solvers.available())
def test_every_method_returns_the_result_type_and_resumes_exactly(method):
    """Same Result as every solver; a checkpoint taken mid-run resumes bit for bit."""
    result = solvers.solve(RandomGame(2), solvers.get(method), sgd(1e-3), 4)
    assert isinstance(result, solvers.Result) and result.steps == 4 and result.status == "finished"
    straight = RandomGame(3)
    run = solvers.Run(straight, solvers.get(method), sgd(1e-3))
    for _ in range(6):
        run.step()
    game = RandomGame(3)
    first = solvers.Run(game, solvers.get(method), sgd(1e-3))
    for _ in range(3):
        first.step()
    saved = first.state_dict()
    gen = game.gen.get_state()
    fresh = RandomGame(3)
    second = solvers.Run(fresh, solvers.get(method), sgd(1e-3))
    second.load_state_dict(saved)
    fresh.gen.set_state(gen)
    for _ in range(3):
        second.step()
    torch.testing.assert_close(flat(fresh), flat(straight), rtol=0, atol=0)
