"""One game through every consumer of the field, each against finite differences in float64.

The field's one definition (solvers/field.py) feeds compiled and vmapped solver steps,
spectra (dense and Krylov), the analysis's Jacobian and the per-example fields of debiased
consensus; the eager engine (solvers/engine.py) computes the same quantities by autograd.
The independent truth here is central finite differences: of the players' utilities for
v, of v for J = v', of each example's utility for the per-example fields. (2 processes
on gloo equal 1 process to 1e-10: tests/test_parallel.py; 1 process is checked here.)
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gamedsl
import solvers
from gamedsl.compile.torch_game import TorchGame
from solvers.field import GameField

pytestmark = pytest.mark.usefixtures("float64_default")

GAME = """game small "a tiny GAN: every consumer of the field in float64"
data x ~ ring(modes=4, radius=1, std=0.1)
latent z ~ normal(2)
network D = mlp(2 -> 1, hidden=[3], activation=tanh)
network G = mlp(2 -> 2, hidden=[3], activation=tanh)
player D controls D maximizes gan(critic=D, real=x, fake=G(z))
player G controls G maximizes -E[gan.g2(D(G(z)))]
"""
H, GAMMA, EPS = 0.1, 0.7, 1e-6


def game(seed: int = 0, batch: int = 5) -> TorchGame:
    return TorchGame(gamedsl.loads(GAME), batch=batch, seed=seed, dtype="float64")


def utilities_at(g: TorchGame, x: torch.Tensor, batch) -> torch.Tensor:
    field = GameField(g)
    saved = field.x()
    field.load(x)
    try:
        with torch.no_grad():
            return torch.stack(list(g.utilities(batch)))
    finally:
        field.load(saved)


def reference_v(g: TorchGame, x: torch.Tensor, batch) -> torch.Tensor:
    """v by central differences: each player's utility along its own coordinates."""
    field = GameField(g)
    v = torch.zeros_like(x)
    for i, (a, b) in enumerate(field.bounds):
        for k in range(a, b):
            e = torch.zeros_like(x)
            e[k] = EPS
            v[k] = (utilities_at(g, x + e, batch)[i] - utilities_at(g, x - e, batch)[i]) / (2 * EPS)
    return v


def reference_J(g: TorchGame, x: torch.Tensor, batch) -> torch.Tensor:
    """J = v' by central differences of the eager engine's v (itself checked against reference_v)."""
    field = GameField(g)
    engine = solvers.Engine(g, solvers.optimizers.get("sgd", lr=H))
    saved = field.x()

    def v_at(y):
        field.load(y)
        return torch.cat([t.reshape(-1) for t in engine.evaluate(batch).v])

    columns = []
    for k in range(x.numel()):
        e = torch.zeros_like(x)
        e[k] = EPS
        columns.append((v_at(x + e) - v_at(x - e)) / (2 * EPS))
    field.load(saved)
    return torch.stack(columns, dim=1)


@pytest.fixture(scope="module")
def truth():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    g = game()
    batch = g.draw_batch("test")
    x = GameField(g).x()
    out = g, batch, x, reference_v(g, x, batch), reference_J(g, x, batch)
    torch.set_default_dtype(previous)
    return out


def test_the_eager_engine_and_the_field_give_v_as_finite_differences_do(truth):
    g, batch, x, v, _ = truth
    eager = torch.cat([t.reshape(-1) for t in solvers.Engine(g, solvers.optimizers.get("sgd", lr=H)).evaluate(batch).v])
    torch.testing.assert_close(eager, v, rtol=1e-7, atol=1e-8)
    torch.testing.assert_close(GameField(g)(x, batch), v, rtol=1e-7, atol=1e-8)


def test_dense_jacobian_of_spectra_and_analysis(truth):
    g, batch, x, _, J = truth
    torch.testing.assert_close(GameField(g).dense(x, [batch]), J, rtol=1e-6, atol=1e-7)
    from gamedsl.numeric.verify import torch_v_and_J

    fresh = game()
    _, J_verify = torch_v_and_J(fresh, x.numpy())  # on the batch the game draws first
    J_fd = reference_J(fresh, x, game().sample())
    np.testing.assert_allclose(J_verify, J_fd.numpy(), rtol=1e-6, atol=1e-7)


def test_krylov_products_are_the_jacobian_applied(truth):
    g, batch, x, _, J = truth
    field = GameField(g)
    u = torch.randn(x.numel(), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    torch.testing.assert_close(field.jvp_at(x, batch, u), J @ u, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(field.vjp_at(x, batch, u), J.T @ u, rtol=1e-6, atol=1e-7)


def test_krylov_eigenvalues_match_the_reference_jacobian(truth):
    g, *_ = truth
    from gamedsl.numeric.spectrum import spectrum

    field = GameField(g)
    batches = [g.draw_batch(f"spectrum-{i}") for i in range(2)]
    J = sum(reference_J(g, field.x(), b) for b in batches) / 2
    expected = np.linalg.eigvals(J.numpy())
    got = spectrum(g, GAMMA, batches=2, k=4, which="LM", dense=False)
    fourth = sorted(abs(expected))[-4]  # the 4 of largest magnitude (conjugate pairs tie)
    for value in got.v:
        assert min(abs(value - e) for e in expected) < 1e-6 and abs(value) >= fourth - 1e-9


def consensus_step(x, v, J, gamma=GAMMA, h=H):
    """x + h (v - gamma J^T v): Algorithm 2 with sgd(lr=h)."""
    return x + h * (v - gamma * J.T @ v)


@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "compiled"])
def test_a_consensus_step_of_solve(truth, compiled, monkeypatch):
    import solvers.compiled

    monkeypatch.setattr(solvers.compiled, "BACKEND", "aot_eager")  # what is computed; tests/test_compiled.py compiles
    g0, batch, x, v, J = truth
    g = game()
    notes = []
    run = solvers.Run(
        g, solvers.get("consensus", gamma=GAMMA), solvers.optimizers.get("sgd", lr=H), compile=compiled, note=notes.append
    )
    g.sample = lambda: batch  # the step's batch is the reference's
    run.step()
    assert (run.compiled is not None) == compiled, notes
    torch.testing.assert_close(GameField(g).x(), consensus_step(x, v, J), rtol=1e-7, atol=1e-8)


def test_the_vmapped_sweep_step_for_two_gammas(truth):
    from solvers.functional import make_step

    g, batch, x, v, J = truth
    field = GameField(g)
    consensus, sgd = type(solvers.get("consensus")), type(solvers.optimizers.get("sgd"))
    step = make_step(consensus, sgd, field, {"solver": {"debias": False}, "optimizer": {"lr": H}})
    gammas = torch.tensor([0.3, GAMMA])
    params = [torch.stack([p.detach()] * 2) for p in field.params]
    stacked = {k: torch.stack([t] * 2) for k, t in batch.items()}
    new_params, *_ = step(params, {}, {}, {"solver": {"gamma": gammas}, "optimizer": {}}, [stacked], torch.tensor(0))
    for c, gamma in enumerate(gammas.tolist()):
        got = torch.cat([p[c].reshape(-1) for p in new_params])
        torch.testing.assert_close(got, consensus_step(x, v, J, gamma), rtol=1e-7, atol=1e-8)


def test_debiased_consensus_uses_the_per_example_fields(truth):
    """L-hat's gradient needs sum_i J_i^T v_i: here from finite differences, example by example."""
    g, batch, x, v, J = truth
    n = next(iter(batch.values())).shape[0]
    correction = torch.zeros_like(x)
    for i in range(n):
        one = {k: t[i : i + 1] for k, t in batch.items()}
        correction += reference_J(g, x, one).T @ reference_v(g, x, one)
    ex = GameField(g).per_example(GameField(g).params, batch)
    torch.testing.assert_close(torch.cat([t.reshape(-1) for t in ex.correction]), correction, rtol=1e-6, atol=1e-7)
    run = solvers.Run(game(), solvers.get("consensus", gamma=GAMMA, debias=True), solvers.optimizers.get("sgd", lr=H))
    run.game.sample = lambda: batch
    run.step()
    grad_L = n / (n - 1) * J.T @ v - correction / (n * (n - 1))  # supplement Lemma 15
    torch.testing.assert_close(GameField(run.game).x(), x + H * (v - GAMMA * grad_L), rtol=1e-7, atol=1e-8)
