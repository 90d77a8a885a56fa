"""The gradient operator `grad(...)`: right at every derivative order the solvers use.

One game carries every use of the operator: R1 at the data, a WGAN-GP penalty at points
between data and samples, and the gradient of an expression with respect to a latent
variable. Its networks are small tanh MLPs, so the same utilities are easy to write by
hand: the input gradients there come from `torch.autograd.functional.jacobian`, one sample
at a time, and everything is then differentiated with `torch.autograd.functional` as well.
That hand-written game and central differences are the truth; gamedsl's compiled game is
checked against both, in float64, for

* the utilities and the field v (first derivatives in the parameters),
* v'u and v'^T u (second derivatives of the utilities: the third of the penalty, whose
  terms hold a first derivative in the inputs), which consensus, SGA and CGD differentiate,

through eager autograd (create_graph=True, as the eager engine computes them), through
torch.func (functional_call with grad, jvp and vjp, as the functional engine, sweeps and
spectra compute them), under vmap, compiled, and in whole solver steps.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.func import functional_call, jvp, vjp, vmap

import gamedsl
import solvers
from gamedsl.compile.torch_game import TorchGame

TEXT = """game penalties "every use of grad(...)"
data x ~ normal(2)
latent z ~ normal(2)
latent eps ~ uniform(low=0, high=1)
network D = mlp(2 -> 1, hidden=[3], activation=tanh)
network G = mlp(2 -> 2, hidden=[2], activation=tanh)
let xhat = eps * x + (1 - eps) * G(z)
player D controls D maximizes E[D(x)] - E[D(G(z))] - 5 * E[norm(grad(D, x))^2] - 2 * E[(norm(grad(D, xhat)) - 1)^2]
player G controls G maximizes E[D(G(z))] - 0.5 * E[sum(grad(D(G(z)), z)^2)]
"""
BATCH = 4
TOLERANCE = 1e-8  # the acceptance bound, against autograd.functional and central differences
STEP = 1e-5  # central differences in float64: truncation ~ STEP^2, round-off ~ 1e-16 / STEP


@pytest.fixture(scope="module")
def setup():
    spec = gamedsl.loads(TEXT, "penalties.game")
    game = TorchGame(spec, batch=BATCH, seed=3, dtype="float64")
    names = {id(p): n for n, p in game.named_parameters()}
    groups = [list(player.params) for player in game.players]
    params = [p for group in groups for p in group]
    return game, game.sample(), [names[id(p)] for p in params], [len(g) for g in groups], params


def flat(tensors) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def unflat(x: torch.Tensor, like) -> list[torch.Tensor]:
    out, start = [], 0
    for t in like:
        out.append(x[start : start + t.numel()].reshape(t.shape))
        start += t.numel()
    return out


def blocks(counts):
    start = 0
    for n in counts:
        yield slice(start, start + n)
        start += n


# ---- the truth: the same game by hand --------------------------------------------------------


def mlp(weights, t):
    """Linear, tanh, linear: what mlp(... hidden=[h], activation=tanh) builds."""
    w1, b1, w2, b2 = weights
    return torch.tanh(t @ w1.T + b1) @ w2.T + b2


def input_gradients(f, points):
    """The gradient of the scalar function f at each point, by autograd.functional (with graph)."""
    return torch.stack([torch.autograd.functional.jacobian(f, p, create_graph=True) for p in points])


def hand_utilities(tensors, batch):
    d, g = tensors[:4], tensors[4:]
    x, z, eps = batch["x"], batch["z"], batch["eps"]

    def critic(t):
        return mlp(d, t).squeeze(-1)

    fake = mlp(g, z)
    xhat = eps[:, None] * x + (1 - eps[:, None]) * fake
    r1 = input_gradients(critic, x).pow(2).sum(-1).mean()
    gp = (input_gradients(critic, xhat).norm(dim=-1) - 1).pow(2).mean()
    u_d = critic(x).mean() - critic(fake).mean() - 5 * r1 - 2 * gp
    latent = input_gradients(lambda t: critic(mlp(g, t)), z).pow(2).sum(-1).mean()
    u_g = critic(fake).mean() - 0.5 * latent
    return [u_d, u_g]


def hand_field(x: torch.Tensor, batch, like, counts) -> torch.Tensor:
    """v(x) by torch.autograd.functional.jacobian of each utility in its player's parameters."""
    parts = []
    for i, block in enumerate(blocks(counts)):
        start = sum(t.numel() for t in like[: block.start])
        stop = start + sum(t.numel() for t in like[block])

        def utility(own, i=i, start=start, stop=stop):
            full = torch.cat([x[:start], own, x[stop:]])
            return hand_utilities(unflat(full, like), batch)[i]

        parts.append(torch.autograd.functional.jacobian(utility, x[start:stop], create_graph=True))
    return torch.cat(parts)


def central(f, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    return (f(x + STEP * u) - f(x - STEP * u)) / (2 * STEP)


# ---- gamedsl's game, three ways ----------------------------------------------------------------


def eager_field(game, batch, params, counts, create_graph=True) -> list[torch.Tensor]:
    """v as the eager engine computes it: autograd on the game's own tensors, keeping the graph."""
    utilities = game.utilities(batch)
    v = []
    for u, block in zip(utilities, blocks(counts)):
        own = params[block]
        grads = torch.autograd.grad(u, own, create_graph=create_graph, retain_graph=True, allow_unused=True)
        v.extend(torch.zeros_like(p) if g is None else g for p, g in zip(own, grads))
    return v


def eager_products(game, batch, params, counts, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """v'u and v'^T u by double backward, the eager engine's way (v'u by the double-vjp trick)."""
    v = eager_field(game, batch, params, counts)
    weights = unflat(u, params)
    transpose = _grad(v, params, weights, retain_graph=True)
    dummy = [torch.zeros_like(t, requires_grad=True) for t in v]
    linear = _grad(v, params, dummy, create_graph=True)
    forward = _grad(linear, dummy, weights)
    return flat(forward), flat(transpose)


def _grad(outputs, inputs, weights, **kwargs) -> list[torch.Tensor]:
    """sum_k <outputs_k, weights_k> differentiated; outputs without a graph (a constant part of
    v, such as a bias's) contribute zero."""
    pairs = [(o, w) for o, w in zip(outputs, weights) if o.requires_grad]
    grads = torch.autograd.grad([o for o, _ in pairs], inputs, [w for _, w in pairs], allow_unused=True, **kwargs)
    return [torch.zeros_like(t) if g is None else g for g, t in zip(grads, inputs)]


def functional_field(game, batch, names, counts):
    """v as a function of explicit tensors: functional_call and torch.func.grad, per player."""

    named = dict(game.named_parameters())

    def field(x: torch.Tensor) -> torch.Tensor:
        tensors = unflat(x, [named[n] for n in names])
        parts = []
        for i, block in enumerate(blocks(counts)):

            def utility(own, i=i, block=block):
                full = list(tensors)
                full[block] = own
                return functional_call(game, dict(zip(names, full)), (batch,), {"player": i})

            parts.append(flat(torch.func.grad(utility)(tensors[block])))
        return torch.cat(parts)

    return field


@pytest.fixture(scope="module")
def point(setup):
    game, batch, names, counts, params = setup
    x = flat([p.detach() for p in params])
    g = torch.Generator().manual_seed(7)
    return x, torch.randn(x.numel(), generator=g, dtype=torch.float64)


def test_the_hand_written_game_is_the_compiled_game(setup, point):
    game, batch, names, counts, params = setup
    x, _ = point
    ours = functional_call(game, dict(zip(names, unflat(x, params))), (batch,))
    theirs = hand_utilities(unflat(x, params), batch)
    for a, b in zip(ours, theirs):
        assert abs(float((a - b).detach())) < 1e-12


def test_field_matches_autograd_functional_and_central_differences(setup, point):
    game, batch, names, counts, params = setup
    x, _ = point
    eager = flat(eager_field(game, batch, params, counts, create_graph=False)).detach()
    functional = functional_field(game, batch, names, counts)(x)
    truth = hand_field(x, batch, params, counts).detach()
    assert (eager - truth).abs().max() < 1e-12
    assert (functional - truth).abs().max() < 1e-12
    # central differences of each utility in each parameter
    for k in range(x.numel()):
        player = 0 if k < sum(p.numel() for p in params[: counts[0]]) else 1
        e = torch.zeros_like(x)
        e[k] = 1
        slope = central(lambda y: hand_utilities(unflat(y, params), batch)[player].detach(), x, e)
        assert abs(float(slope - eager[k])) < TOLERANCE


def test_jacobian_products_match_autograd_functional_and_central_differences(setup, point):
    """v'u and v'^T u: the second derivatives of the utilities, the third of the penalties."""
    game, batch, names, counts, params = setup
    x, u = point
    forward, transpose = eager_products(game, batch, params, counts, u)
    truth = lambda y: hand_field(y, batch, params, counts)  # noqa: E731
    values = lambda y: truth(y).detach()  # noqa: E731
    _, jv = torch.autograd.functional.jvp(truth, x, u)
    _, jtv = torch.autograd.functional.vjp(truth, x, u)
    assert (forward - jv).abs().max() < 1e-11
    assert (transpose - jtv).abs().max() < 1e-11
    # central differences: v'u directly; v'^T u column by column of the differenced Jacobian
    assert (forward - central(values, x, u)).abs().max() < TOLERANCE
    columns = torch.stack([central(values, x, e) for e in torch.eye(x.numel(), dtype=x.dtype)], dim=1)
    assert (transpose - columns.T @ u).abs().max() < TOLERANCE
    assert (columns - torch.autograd.functional.jacobian(truth, x)).abs().max() < TOLERANCE


def test_torch_func_products_match_eager_autograd(setup, point):
    game, batch, names, counts, params = setup
    x, u = point
    field = functional_field(game, batch, names, counts)
    forward, transpose = eager_products(game, batch, params, counts, u)
    assert (jvp(field, (x,), (u,))[1] - forward).abs().max() < 1e-12
    assert (vjp(field, x)[1](u)[0] - transpose).abs().max() < 1e-12
    # one order beyond what solvers need, by torch.func alone: the gradient of |v'^T u|^2
    # (a fourth derivative of the penalties), against differences, relative to its size (~350)
    square = lambda y: vjp(field, y)[1](u)[0].pow(2).sum()  # noqa: E731
    g = torch.func.grad(square)(x)
    e = torch.randn(x.numel(), generator=torch.Generator().manual_seed(1), dtype=x.dtype)
    difference = central(square, x, e)
    assert abs(float(g @ e - difference)) < TOLERANCE * abs(float(difference))


def test_vmapped_fields_match_one_at_a_time(setup, point):
    """Sweeps vmap the field over configurations: the per-sample gradient must not mix them."""
    game, batch, names, counts, params = setup
    x, u = point
    field = functional_field(game, batch, names, counts)
    xs = torch.stack([x, x + 0.1 * u, x - 0.2 * u])
    together = vmap(field)(xs)
    products = vmap(lambda y: jvp(field, (y,), (u,))[1])(xs)
    for k in range(3):
        assert (together[k] - field(xs[k])).abs().max() < 1e-12
        assert (products[k] - jvp(field, (xs[k],), (u,))[1]).abs().max() < 1e-12


def test_per_example_fields_under_vmap_sum_to_the_batch_field(setup, point):
    """Debiased consensus evaluates each example as a batch of one under vmap."""
    game, batch, names, counts, params = setup
    x, _ = point
    def one(example):
        return functional_field(game, {k: t.unsqueeze(0) for k, t in example.items()}, names, counts)(x)

    fields = vmap(one)(batch)
    assert (fields.mean(0) - functional_field(game, batch, names, counts)(x)).abs().max() < 1e-12


def test_the_field_compiles_as_one_graph(setup, point):
    """torch.compile(fullgraph=True) captures the operator whole (dynamo's capture alone: the
    code generation is tested below, slowly)."""
    game, batch, names, counts, params = setup
    x, _ = point
    field = functional_field(game, batch, names, counts)
    torch._dynamo.reset()
    compiled = torch.compile(field, fullgraph=True, backend="eager")
    assert (compiled(x) - field(x)).abs().max() < 1e-12


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["aot_eager", "inductor"])
def test_compiled_products_match_eager(setup, point, backend):
    game, batch, names, counts, params = setup
    x, u = point
    field = functional_field(game, batch, names, counts)
    torch._dynamo.reset()
    forward = torch.compile(lambda y, t: jvp(field, (y,), (t,))[1], fullgraph=True, backend=backend)
    transpose = torch.compile(lambda y, t: vjp(field, y)[1](t)[0], fullgraph=True, backend=backend)
    assert (forward(x, u) - jvp(field, (x,), (u,))[1]).abs().max() < 1e-12
    assert (transpose(x, u) - vjp(field, x)[1](u)[0]).abs().max() < 1e-12


# ---- whole solver steps ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, direction",
    [
        ("consensus", lambda v, J, h: v - 0.5 * J.T @ v),  # gamma = 0.5: w = v - gamma v'^T v (eq. 12)
        ("sga", lambda v, J, h: v + 0.5 * (J - J.T) @ v),  # lambda = 1: v + A v, A = (v' - v'^T) / 2
        ("cgd", lambda v, J, h: torch.linalg.solve(torch.eye(len(v), dtype=v.dtype) - h * _off(J), v)),
    ],
)
def test_solver_steps_match_the_hand_written_game(name, direction):
    """Three steps of consensus, SGA and CGD through the eager engine, against the same
    steps computed from the hand-written field and its Jacobian."""
    spec = gamedsl.loads(TEXT, "penalties.game")
    game = TorchGame(spec, batch=BATCH, seed=5, dtype="float64")
    params = [p for player in game.players for p in player.params]
    counts = [len(player.params) for player in game.players]
    state = game.rng_state()
    batches = [game.sample() for _ in range(3)]
    game.set_rng_state(state)
    x = flat([p.detach() for p in params])
    h = 0.05
    for batch in batches:
        field = lambda y, batch=batch: hand_field(y, batch, params, counts)  # noqa: E731
        v, J = field(x).detach(), torch.autograd.functional.jacobian(field, x)
        x = x + h * direction(v, J, h)
    options = {"consensus": {"gamma": 0.5}, "sga": {"lam": 1.0}, "cgd": {"tol": 1e-14, "max_iter": 200}}[name]
    result = solvers.solve(game, solvers.get(name, **options), solvers.optimizers.get("sgd", lr=h), steps=3)
    assert result.status == "finished"
    assert (flat([p.detach() for p in params]) - x).abs().max() < TOLERANCE


def _off(J: torch.Tensor) -> torch.Tensor:
    """The players' cross blocks of v' (CGD's local bilinear game); D's 13 parameters come first."""
    n = 13  # mlp(2 -> 1, hidden=[3]): 6 + 3 + 3 + 1
    out = J.clone()
    out[:n, :n] = 0
    out[n:, n:] = 0
    return out


# ---- the R1 penalty's closed form on a critic with a known gradient ---------------------------


def test_r1_of_a_linear_critic_is_its_squared_weight_norm():
    """For D(x) = w.x + b, grad D = w everywhere: R1 = |w|^2, whatever the data."""
    spec = gamedsl.loads(
        "game l\ndata x ~ normal(3)\nnetwork D = linear(3 -> 1)\nparam t = 1\n"
        "player D controls D maximizes E[D(x)] * t - E[norm(grad(D, x))^2]\n"
        "player T controls t maximizes -t^2\n",
        "l.game",
    )
    game = TorchGame(spec, batch=5, seed=0, dtype="float64")
    critic = game.networks["D"]
    batch = game.sample()
    expected = float(critic(batch["x"]).mean().detach()) - float(critic.weight.pow(2).sum().detach())
    assert math.isclose(float(game.utility(0, batch).detach()), expected, rel_tol=0, abs_tol=1e-12)


def test_a_gradient_of_a_gradient_is_the_second_derivative():
    """grad(norm(grad(D, x))^2, x) = 2 H(x) grad D(x), H the critic's input Hessian."""
    spec = gamedsl.loads(
        "game n\ndata x ~ normal(2)\nnetwork D = mlp(2 -> 1, hidden=[3], activation=tanh)\nparam t = 1\n"
        "player D controls D maximizes -E[sum(grad(norm(grad(D, x))^2, x))] * t\nplayer T controls t maximizes -t^2\n",
        "n.game",
    )
    game = TorchGame(spec, batch=3, seed=0, dtype="float64")
    critic = lambda p: game.networks["D"](p.unsqueeze(0)).squeeze()  # noqa: E731
    batch = game.sample()
    by_hand = [
        2 * torch.autograd.functional.hessian(critic, p) @ torch.autograd.functional.jacobian(critic, p)
        for p in batch["x"]
    ]
    expected = -float(torch.stack(by_hand).sum(1).mean())
    assert math.isclose(float(game.utility(0, batch).detach()), expected, rel_tol=0, abs_tol=1e-12)


# ---- symbolically: the Dirac-GAN analyses of Mescheder, Geiger and Nowozin (ICML 2018) ---------


def _dirac(name: str, gamma: str | None = None):
    import pathlib

    from gamedsl.compile.sympy_game import compile_game

    text = (pathlib.Path(__file__).parent.parent / "games" / f"{name}.game").read_text()
    if gamma is not None:
        text = text.replace("let gamma = 0.3", f"let gamma = {gamma}")
    game = compile_game(gamedsl.loads(text, f"{name}.game"))
    return game, {s: 0 for s in game.symbols}


@pytest.mark.parametrize("name", ["dirac_gan_r1", "dirac_gan_r2"])
@pytest.mark.parametrize("gamma", ["0.3", "1", "3"])
def test_zero_centred_penalties_give_the_lemmas_eigenvalues(name, gamma):
    """Lemma 3.3: -gamma/2 +- sqrt(gamma^2/4 - f'(0)^2), f'(0) = 1/2, at theta = psi = 0."""
    import sympy as sp

    game, zero = _dirac(name, gamma)
    g = sp.Rational(gamma)
    root = sp.sqrt(g**2 / 4 - sp.Rational(1, 4))
    expected = sorted([-g / 2 + root, -g / 2 - root], key=sp.default_sort_key)
    found = sorted(game.jacobian().subs(zero).eigenvals(multiple=True), key=sp.default_sort_key)
    assert len(found) == 2 and all(sp.simplify(a - b) == 0 for a, b in zip(found, expected))
    assert game.kinks(zero) == []


def test_wgan_gp_noise_drops_out_and_the_field_jumps_at_the_equilibrium():
    import sympy as sp

    game, zero = _dirac("dirac_gan_wgan_gp")
    psi, theta = game.symbols
    v = game.field()
    assert not v.free_symbols - {psi, theta}  # eps has dropped out of the expectation
    # -psi theta - (|psi| - 1)^2 / 2 for the critic: its derivative in psi, the sign taken as autograd does
    assert sp.simplify(v[0].subs(psi, sp.Rational(1, 3)) - (-theta + sp.Rational(2, 3))) == 0
    assert sp.simplify(v[0].subs(psi, -sp.Rational(1, 3)) - (-theta - sp.Rational(2, 3))) == 0
    assert game.kinks(zero) == [psi]


def test_instance_noise_is_out_of_symbolic_reach_at_the_noise():
    from gamedsl.compile.sympy_game import compile_game
    from gamedsl.errors import OutOfReach

    spec = gamedsl.loads(
        "game n\ndata x ~ dirac(0)\nlatent e ~ normal(1, std=0.5)\nparam theta = 1\n"
        "network D = linear(1 -> 1, bias=false)\n"
        "player D controls D maximizes gan(critic=D, real=x + e, fake=theta + e)\n"
        "player G controls theta minimizes gan(critic=D, real=x + e, fake=theta + e)\n",
        "n.game",
    )
    with pytest.raises(OutOfReach, match="latent 'e' is sampled from 'normal', and an expectation depends") as info:
        compile_game(spec)
    assert info.value.span.line == 3


def test_the_gradient_of_an_expression_symbolically():
    """grad(D(x)^2, x) = 2 (w x + b) w for D(x) = w x + b, at the constant data x = 2."""
    import sympy as sp

    from gamedsl.compile.sympy_game import compile_game

    game = compile_game(
        gamedsl.loads(
            "game s\ndata x ~ dirac(2)\nnetwork D = linear(1 -> 1)\nparam t = 1\n"
            "player D controls D maximizes E[grad(D(x)^2, x)] * t\nplayer T controls t maximizes -t^2\n",
            "s.game",
        )
    )
    w, b, t = game.symbols
    assert sp.expand(game.utilities[0] - 2 * (2 * w + b) * w * t) == 0


KINKED = "game k\nparam p = 1\nparam q = 1\nplayer P controls p maximizes {}\nplayer Q controls q maximizes {}\n"


@pytest.mark.parametrize(
    "text",
    [KINKED.format("-abs(p) * q - p^2", "-q^2 + p * q"), KINKED.format("min(p, 0) * q - p^2", "-q^2 + relu(p) * q")],
)
def test_analysis_of_fields_with_kinks_completes(cli, tmp_path, text):
    """|.|, relu and max put sign and step functions into v: their derivatives are 0, as
    autograd takes them, never Dirac deltas (which stopped the stationary-point search with a
    traceback). The analysis finds the stationary point at the origin."""
    path = tmp_path / "kinks.game"
    path.write_text(text)
    result = cli("analyze", path)
    assert result.code == 0, result.stderr
    assert "Point 1 [exact]: p = 0, q = 0" in result.stdout


def test_the_wgan_gp_dirac_gan_is_analysed(cli):
    result = cli("analyze", "games/dirac_gan_wgan_gp.game")
    assert result.code == 0, result.stderr
    assert "v[D_weight] = -theta - (Abs(D_weight) - 1)*sign(D_weight)" in result.stdout
