"""Solvers against independent truths: explicit Jacobians, closed forms, statistics.

All in float64. The games here are written in plain PyTorch through `solvers.make_game`,
so these tests also show the package works without the language.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import solvers



pytestmark = pytest.mark.usefixtures("float64_default")  # closed forms and second implementations in float64


class RandomGame(nn.Module):
    """Two players with coupled non-quadratic utilities and a sampled input.

    u_1 = E[a^T A a + a^T B b tanh(c^T x) + sum sin(a)],  u_2 = E[b^T C b - a^T B b + (d^T b)^3 x_0]
    Not zero-sum; the field's Jacobian is dense and non-symmetric.
    """

    def __init__(self, seed: int, batch: int = 8):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
        self.a = nn.Parameter(r(3))
        self.b = nn.Parameter(r(2))
        self.A, self.B, self.C, self.c, self.d = r(3, 3), r(3, 2), r(2, 2), r(2), r(2)
        self.batch, self.gen = batch, torch.Generator().manual_seed(seed + 1)
        self.players = [solvers.protocol.SimplePlayer("P1", [self.a]), solvers.protocol.SimplePlayer("P2", [self.b])]

    def sample(self):
        return torch.randn(self.batch, 2, generator=self.gen)

    def utilities_at(self, a, b, x):
        coupling = a @ self.B @ b
        u1 = (a @ self.A @ a + coupling * torch.tanh(x @ self.c) + torch.sin(a).sum()).mean()
        u2 = (b @ self.C @ b - coupling + (self.d @ b) ** 3 * x[:, 0]).mean()
        return [u1, u2]

    def utilities(self, x):
        return self.utilities_at(self.a, self.b, x)

    def forward(self, x):
        return self.utilities(x)

    def field(self, x_flat, batch):
        """v as an explicit function of the concatenated parameters (for autograd.functional)."""
        a, b = x_flat[:3], x_flat[3:]
        u1, u2 = self.utilities_at(a, b, batch)
        va = torch.autograd.grad(u1, a, create_graph=True)[0]
        vb = torch.autograd.grad(u2, b, create_graph=True)[0]
        return torch.cat([va, vb])


def flat(game) -> torch.Tensor:
    return torch.cat([game.a.detach(), game.b.detach()])


def one_step(game, solver, lr=1.0):
    """Parameters before, the batch the solver drew, and the displacement it made."""
    state = game.gen.get_state()
    batch = game.sample()
    game.gen.set_state(state)  # the solver draws the same batch
    before = flat(game)
    run = solvers.Run(game, solver, solvers.optimizers.get("sgd", lr=lr))
    run.step()
    return before, batch, flat(game) - before


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("gamma", [0.3, 10.0])
def test_consensus_direction_is_v_minus_gamma_J_transpose_v(seed, gamma):
    game = RandomGame(seed)
    x0, batch, step = one_step(game, solvers.get("consensus", gamma=gamma))
    v = game.field(x0.clone().requires_grad_(), batch).detach()
    J = torch.autograd.functional.jacobian(lambda x: game.field(x, batch), x0.clone())
    torch.testing.assert_close(step, v - gamma * J.T @ v, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_simga_step_is_h_v(seed):
    game = RandomGame(seed)
    x0, batch, step = one_step(game, solvers.get("simga"), lr=0.1)
    v = game.field(x0.clone().requires_grad_(), batch).detach()
    torch.testing.assert_close(step, 0.1 * v, rtol=1e-12, atol=1e-14)


def test_altga_second_player_sees_first_players_update():
    game = RandomGame(7)
    h = 0.05
    state = game.gen.get_state()
    b1, b2 = game.sample(), game.sample()
    game.gen.set_state(state)
    a0, b0 = game.a.detach().clone(), game.b.detach().clone()
    run = solvers.Run(game, solvers.get("altga"), solvers.optimizers.get("sgd", lr=h))
    run.step()
    # Independent computation: player 1 moves on batch 1, then player 2's gradient at the
    # *new* a, on a fresh batch 2.
    a = a0.clone().requires_grad_()
    a1 = a0 + h * torch.autograd.grad(game.utilities_at(a, b0, b1)[0], a)[0]
    b = b0.clone().requires_grad_()
    b_new = b0 + h * torch.autograd.grad(game.utilities_at(a1, b, b2)[1], b)[0]
    torch.testing.assert_close(game.a.detach(), a1)
    torch.testing.assert_close(game.b.detach(), b_new)
    # ... and it differs from taking player 2's gradient at the old a.
    b_old = b0.clone().requires_grad_()
    b_stale = b0 + h * torch.autograd.grad(game.utilities_at(a0, b_old, b2)[1], b_old)[0]
    assert not torch.allclose(game.b.detach(), b_stale)


def test_momentum_recursion():
    game = RandomGame(3)
    beta, h = -0.4, 0.05
    state = game.gen.get_state()
    batches = [game.sample() for _ in range(4)]
    game.gen.set_state(state)
    x = flat(game)
    m = torch.zeros_like(x)
    run = solvers.Run(game, solvers.get("momentum", beta=beta), solvers.optimizers.get("sgd", lr=h))
    for batch in batches:
        v = game.field(x.clone().requires_grad_(), batch).detach()
        m = beta * m + v
        x = x + h * m
        run.step()
        torch.testing.assert_close(flat(game), x, rtol=1e-11, atol=1e-13)


def test_smoothing_regularises_only_the_discriminator():
    game = RandomGame(11)
    gamma = 2.0
    x0, batch, step = one_step(game, solvers.get("smoothing", gamma=gamma, player="P1"))
    v = game.field(x0.clone().requires_grad_(), batch).detach()
    J = torch.autograd.functional.jacobian(lambda x: game.field(x, batch), x0.clone())
    v_g = v[3:]
    # grad of |v_G|^2/2 with respect to the discriminator's parameters only
    reg = J[3:, :3].T @ v_g
    torch.testing.assert_close(step[:3], v[:3] - gamma * reg, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(step[3:], v[3:], rtol=1e-12, atol=1e-14)  # the generator is untouched


def bilinear(h: float):
    phi = torch.tensor(1.0, requires_grad=True)
    theta = torch.tensor(1.0, requires_grad=True)
    game = solvers.make_game({"P": [phi], "Q": [theta]}, lambda: None, lambda _: [phi * theta, -phi * theta])
    return game, lambda: float(phi.detach() ** 2 + theta.detach() ** 2)


@pytest.mark.parametrize("h", [0.01, 0.1, 0.5])
def test_simga_on_bilinear_grows_by_one_plus_h_squared(h):
    game, norm2 = bilinear(h)
    run = solvers.Run(game, solvers.get("simga"), solvers.optimizers.get("sgd", lr=h))
    previous = norm2()
    for _ in range(20):
        run.step()
        assert norm2() / previous == pytest.approx(1 + h * h, rel=1e-12)
        previous = norm2()


@pytest.mark.parametrize("gamma", [0.5, 1.0, 3.0])
@pytest.mark.parametrize("margin", [0.9, 1.1])
def test_consensus_on_bilinear_contracts_iff_h_below_bound(gamma, margin):
    bound = 2 * gamma / (1 + gamma**2)
    h = margin * bound
    game, norm2 = bilinear(h)
    run = solvers.Run(game, solvers.get("consensus", gamma=gamma), solvers.optimizers.get("sgd", lr=h))
    start = norm2()
    for _ in range(200):
        run.step()
    # one-step map: eigenvalues 1 - h gamma +- i h, |.|^2 = (1 - h gamma)^2 + h^2 (exact here)
    factor = (1 - h * gamma) ** 2 + h * h
    assert norm2() == pytest.approx(start * factor**200, rel=1e-8)
    assert (norm2() < start) == (margin < 1)


def test_debiased_consensus_estimate_is_unbiased():
    """E[L-hat] = L exactly, while E[L_B] = L + Var[v_1] / (2B) (Lemma 15).

    The data take three values with equal probability, so the expectation over batches is an
    exact average over all 3^B batches: no Monte Carlo error.
    """
    import itertools

    support = torch.tensor([[1.0, 0.5], [-0.5, 2.0], [2.0, -1.0]])
    B = 3
    batches = [support[list(idx)] for idx in itertools.product(range(3), repeat=B)]

    class Discrete(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Parameter(torch.tensor([0.7, -0.3]))
            self.b = nn.Parameter(torch.tensor([0.2]))
            self.players = [solvers.protocol.SimplePlayer("A", [self.a]), solvers.protocol.SimplePlayer("B", [self.b])]
            self.queue = iter(())

        def sample(self):
            return {"x": next(self.queue)}

        def forward(self, batch):
            x = batch["x"]
            return [(torch.sin(self.a @ x.T) * self.b).mean() - (self.a**2).sum(), (-(self.b**2) * x[:, 0] ** 2).mean()]

        utilities = forward

    game = Discrete()

    def field(x):  # the field on a batch of one, by hand
        a, b = game.a.detach().clone().requires_grad_(), game.b.detach().clone().requires_grad_()
        ua = (torch.sin(a @ x.T) * b).mean() - (a**2).sum()
        ub = (-(b**2) * x[:, 0] ** 2).mean()
        return torch.cat([torch.autograd.grad(ua, a)[0], torch.autograd.grad(ub, b)[0]])

    per_example = torch.stack([field(support[i : i + 1]) for i in range(3)])
    v_true = per_example.mean(0)
    L_true = 0.5 * float(v_true @ v_true)
    variance = float(((per_example - v_true) ** 2).sum(1).mean())

    run = solvers.Run(game, solvers.get("consensus", gamma=1.0, debias=True), solvers.optimizers.get("sgd", lr=0.1))
    start = run.state_dict()
    game.queue = iter(batches)
    unbiased, naive = [], []
    for _ in batches:
        info = run.step()
        run.load_state_dict(start)  # every estimate at the same point x
        unbiased.append(float(info.extras["L_unbiased"]))
        naive.append(0.5 * sum(float((t * t).sum()) for t in info.field))
    assert sum(unbiased) / len(unbiased) == pytest.approx(L_true, rel=1e-12)
    assert sum(naive) / len(naive) == pytest.approx(L_true + variance / (2 * B), rel=1e-12)
    assert variance / (2 * B) > 0.01 * L_true  # the bias is not negligible here


def test_debiased_gradient_matches_finite_sample_formula():
    """grad L-hat = B/(B-1) J^T v-bar - 1/(B(B-1)) sum_i J_i^T v_i, against per-example Jacobians."""
    game = RandomGame(5, batch=6)
    x0, batch, step = one_step(game, solvers.get("consensus", gamma=1.0, debias=True))
    B = batch.shape[0]
    v_bar = game.field(x0.clone().requires_grad_(), batch).detach()
    J = torch.autograd.functional.jacobian(lambda x: game.field(x, batch), x0.clone())
    correction = torch.zeros_like(x0)
    for i in range(B):
        xi = batch[i : i + 1]
        vi = game.field(x0.clone().requires_grad_(), xi).detach()
        Ji = torch.autograd.functional.jacobian(lambda x: game.field(x, xi), x0.clone())
        correction += Ji.T @ vi
    grad_L = B / (B - 1) * J.T @ v_bar - correction / (B * (B - 1))
    torch.testing.assert_close(step, v_bar - grad_L, rtol=1e-9, atol=1e-11)


def test_debias_refuses_a_game_that_is_not_a_module():
    game, _ = bilinear(0.1)
    with pytest.raises(solvers.SolverError, match="nn.Module"):
        solvers.Run(game, solvers.get("consensus", debias=True), solvers.optimizers.get("sgd"))


def test_registry_errors_list_the_choices():
    with pytest.raises(solvers.SolverError, match="did you mean 'consensus'"):
        solvers.get("consensu")
    with pytest.raises(solvers.SolverError, match="choices: debias, gamma"):
        solvers.get("consensus", gama=1)
    with pytest.raises(solvers.SolverError, match="must be a number"):
        solvers.get("consensus", gamma="big")
    with pytest.raises(solvers.SolverError, match="beta must lie in"):
        solvers.get("momentum", beta=1.5)
    with pytest.raises(solvers.SolverError, match="unknown optimizer"):
        solvers.optimizers.get("adagrad")


def test_guard_names_step_and_player():
    w = torch.tensor(0.5, requires_grad=True)  # step 1 moves w to 1, where B's utility is log(0)
    u = torch.tensor(1.0, requires_grad=True)
    game = solvers.make_game({"A": [w], "B": [u]}, lambda: None, lambda _: [w * u, torch.log(1 - w) * u])
    result = solvers.solve(game, solvers.get("simga"), solvers.optimizers.get("sgd", lr=0.5), 10)
    assert result.status == "diverged"
    assert "player B" in result.message and "step 2" in result.message


@pytest.mark.parametrize("method", solvers.available())
def test_all_methods_return_the_same_result_type(method):
    game = RandomGame(2)
    result = solvers.solve(game, solvers.get(method), solvers.optimizers.get("sgd", lr=1e-3), 5)
    assert isinstance(result, solvers.Result) and result.steps == 5 and result.status == "finished"
    assert set(result.history) >= {"step", "utility/P1", "utility/P2", "grad_norm/P1", "grad_norm_sq"}


def test_rmsprop_matches_torch_on_a_descent_problem():
    """Our ascent RMSProp on v = -grad f equals torch.optim.RMSprop on f (second implementation)."""
    target = torch.tensor([1.0, -2.0, 0.5])
    p1 = torch.zeros(3, requires_grad=True)
    p2 = torch.zeros(3, requires_grad=True)
    ours = solvers.optimizers.get("rmsprop", lr=0.01, alpha=0.9, eps=1e-10, momentum=0.5, centered=True)
    state = ours.init([p1])
    ref = torch.optim.RMSprop([p2], lr=0.01, alpha=0.9, eps=1e-10, momentum=0.5, centered=True)
    for _ in range(50):
        (g1,) = torch.autograd.grad(((p1 - target) ** 4).sum(), [p1])
        ours.step_([p1], [-g1], state, ours.rate(0))
        ref.zero_grad()
        ((p2 - target) ** 4).sum().backward()
        ref.step()
    torch.testing.assert_close(p1, p2, rtol=1e-12, atol=1e-12)


def test_adam_matches_torch_on_a_descent_problem():
    target = torch.tensor([1.0, -2.0, 0.5])
    p1 = torch.zeros(3, requires_grad=True)
    p2 = torch.zeros(3, requires_grad=True)
    ours = solvers.optimizers.get("adam", lr=0.05, beta1=0.5, beta2=0.99)
    state = ours.init([p1])
    ref = torch.optim.Adam([p2], lr=0.05, betas=(0.5, 0.99))
    for _ in range(50):
        (g1,) = torch.autograd.grad(((p1 - target) ** 2).sum(), [p1])
        ours.step_([p1], [-g1], state, ours.rate(0))
        ref.zero_grad()
        ((p2 - target) ** 2).sum().backward()
        ref.step()
    torch.testing.assert_close(p1, p2, rtol=1e-10, atol=1e-12)


def test_solvers_package_imports_only_torch():
    import ast
    from pathlib import Path

    root = Path(solvers.__file__).parent
    allowed = {"types", "torch", "solvers", "__future__", "dataclasses", "typing", "math", "time", "difflib", "collections", "functools", "itertools", "abc", "os", "contextlib",
               "importlib", "pkgutil"}
    for path in root.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"
