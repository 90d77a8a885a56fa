"""Lipschitz constraints of the network builders: weight clipping holds wherever a solver
evaluates or leaves the parameters; spectral normalisation divides by the largest singular
value, its field is the derivative through W / (uᵀWv) with u, v fixed (finite differences,
PyTorch's own spectral_norm), it steps the same compiled, and a resumed run continues its
power iteration bit for bit. All in float64.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrizations

import gamedsl
import solvers
import solvers.compiled
from gamedsl.compile.torch_game import TorchGame
from gamedsl.errors import ExitCode
from gamedsl.nets import dcgan, mlp
from gamedsl.nets.builders import BUILDERS
from gamedsl.nets.spectral import normalisations
from solvers.field import GameField
from solvers.functional import make_step
from tests.conftest import ROOT

pytestmark = pytest.mark.usefixtures("float64_default")

BOUND = 0.05
CLIPPED = f"""game clipped "a small WGAN whose critic is clipped"
data x ~ ring(modes=4, radius=1, std=0.05)
latent z ~ normal(3)
network D = mlp(2 -> 1, hidden=[8], activation=tanh, clip={BOUND})
network G = mlp(3 -> 2, hidden=[8], activation=tanh)
player D controls D maximizes wasserstein(critic=D, real=x, fake=G(z))
player G controls G minimizes wasserstein(critic=D, real=x, fake=G(z))
"""

SPECTRAL = """game normalised "a small GAN whose critic is spectrally normalised"
data x ~ ring(modes=4, radius=1, std=0.05)
latent z ~ normal(3)
network D = mlp(2 -> 1, hidden=[8, 8], activation=tanh, init=xavier, spectral=true)
network G = mlp(3 -> 2, hidden=[8], activation=tanh)
player D controls D maximizes gan(critic=D, real=x, fake=G(z))
player G controls G maximizes -E[gan.g2(D(G(z)))]
solve {
  solver = consensus(gamma=1)
  optimizer = rmsprop(lr=1e-2)
  dtype = float64
  steps = 10
  batch = 16
  log_every = 5
  checkpoint_every = 2
  eval_samples = 200
}
"""


def game(text: str, seed: int = 0) -> TorchGame:
    return TorchGame(gamedsl.loads(text, "test.game"), batch=16, seed=seed, dtype="float64")


def largest(net: nn.Module) -> float:
    return max(float(p.detach().abs().max()) for p in net.parameters())


@pytest.fixture
def aot_eager(monkeypatch):
    monkeypatch.setattr(solvers.compiled, "BACKEND", "aot_eager")


# ---- weight clipping ---------------------------------------------------------------------


def recording(g: TorchGame, seen: list[float]) -> None:
    """Note the critic's largest entry at every evaluation of the utilities (look-ahead points too)."""
    whole, single = g.utilities, g.utility

    def utilities(batch):
        seen.append(largest(g.networks["D"]))
        return whole(batch)

    def utility(index, batch):
        seen.append(largest(g.networks["D"]))
        return single(index, batch)

    g.utilities, g.utility = utilities, utility


@pytest.mark.parametrize("name", solvers.available())
def test_clipping_holds_wherever_a_solver_evaluates_and_after_every_step(name):
    """sgd(lr=0.5) moves the critic far beyond the bound each step, so the projection is active."""
    g = game(CLIPPED)
    assert largest(g.networks["D"]) <= BOUND  # the critic starts inside [-c, c]
    seen: list[float] = []
    recording(g, seen)
    run = solvers.Run(g, solvers.get(name), solvers.optimizers.get("sgd", lr=0.5))
    for _ in range(4):
        run.step()
        assert largest(g.networks["D"]) == BOUND  # in the box, and on its boundary: clipping acted
    assert seen and max(seen) <= BOUND
    assert largest(g.networks["G"]) > BOUND  # the generator is not clipped


@pytest.mark.parametrize("name", ["simga", "extragradient", "optimistic"])
def test_clipping_holds_in_compiled_steps_which_equal_eager_ones(aot_eager, name):
    runs = []
    for compile in (False, True):
        runs.append(solvers.Run(game(CLIPPED), solvers.get(name), solvers.optimizers.get("sgd", lr=0.5), compile=compile))
    for _ in range(4):
        for run in runs:
            run.step()
            assert largest(run.game.networks["D"]) == BOUND
    for p, q in zip(*(run.engine.params for run in runs)):
        torch.testing.assert_close(p, q, rtol=1e-12, atol=1e-13)
    assert runs[1].compiled.compiled


def test_clipping_holds_in_a_vectorised_step():
    """The sweep's vmapped step (gamedsl/sweep/vectorized.py) projects each configuration."""
    games = [game(CLIPPED, seed) for seed in (0, 1)]
    runs = [solvers.Run(g, solvers.get("extragradient"), solvers.optimizers.get("sgd", lr=0.5)) for g in games]
    field = GameField(games[0])
    fixed = {"solver": {}, "optimizer": dict(runs[0].engine.optimizer.__dict__)}
    step = make_step(type(runs[0].solver), type(runs[0].engine.optimizer), field, fixed, games[0].project)
    params = [torch.stack([a.detach(), b.detach()]) for a, b in zip(*(r.engine.params for r in runs))]
    empty = {"solver": {}, "optimizer": {}}
    for _ in range(3):
        batches = [{k: torch.stack([games[0].sample()[k], games[1].sample()[k]]) for k in ("x", "z")} for _ in range(2)]
        params, *_ = step(params, {}, {}, empty, batches, torch.tensor(0))
        critic = params[runs[0].engine.slices[0]]
        assert max(float(t.abs().max()) for t in critic) == BOUND


def test_only_constrained_games_have_the_hooks():
    plain = game(CLIPPED.replace(f", clip={BOUND}", ""))
    assert not hasattr(plain, "project") and not hasattr(plain, "after_step")
    assert hasattr(game(CLIPPED), "project") and hasattr(game(SPECTRAL), "after_step")


# ---- spectral normalisation --------------------------------------------------------------


def test_power_iteration_finds_the_largest_singular_value():
    g = game(SPECTRAL)
    layers = [m for m in g.networks["D"].modules() if isinstance(m, nn.Linear)]
    for _ in range(300):
        g.after_step()
    for layer in layers:
        original = layer.parametrizations.weight.original
        norm = layer.parametrizations.weight[0]
        exact = torch.linalg.matrix_norm(original.detach(), ord=2)
        torch.testing.assert_close(norm.sigma(original).detach(), exact, rtol=1e-10, atol=0)
        torch.testing.assert_close(torch.linalg.matrix_norm(layer.weight.detach(), ord=2), torch.ones(()), rtol=1e-10, atol=0)


def test_the_field_is_the_derivative_through_the_normalised_weights_by_central_differences():
    """u and v stay fixed while the utilities are evaluated: the field is d u_i / d W with σ = uᵀWv."""
    g = game(SPECTRAL)
    engine = solvers.Run(g, solvers.get("simga"), solvers.optimizers.get("sgd", lr=0.1)).engine
    batch = g.sample()
    v = engine.evaluate(batch).v
    eps = 1e-6
    for k in range(engine.slices[0].stop):  # every tensor of the critic, one entry each
        p = engine.params[k]
        index = (0,) * p.dim()
        with torch.no_grad():
            p[index] += eps
            up = float(g.utilities(batch)[0])
            p[index] -= 2 * eps
            down = float(g.utilities(batch)[0])
            p[index] += eps
        assert float(v[k][index]) == pytest.approx((up - down) / (2 * eps), rel=1e-6, abs=1e-9)


def reference(module: nn.Module, ours: nn.Module) -> nn.Module:
    """PyTorch's spectral_norm on every layer of an unnormalised twin, loaded with our state dict."""
    for layer in list(module.modules()):
        if isinstance(layer, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            parametrizations.spectral_norm(layer)
    module.load_state_dict(ours.state_dict())
    return module.double()


@pytest.mark.parametrize(
    "builder, twin, example",
    [
        ("mlp(3 -> 2, hidden=[5, 4], activation=tanh, init=xavier, spectral=true)",
         lambda: mlp.mlp(3, 2, (5, 4), "tanh", 0.2, True, "xavier"), (6, 3)),
        ("dcgan_generator(4 -> [1, 8, 8], filters=2, layers=2, batchnorm=false, spectral=true)",
         lambda: dcgan.generator(4, (1, 8, 8), 2, 2, True, False), (3, 4)),
        ("dcgan_discriminator([1, 8, 8] -> 1, filters=2, layers=2, batchnorm=false, spectral=true)",
         lambda: dcgan.discriminator((1, 8, 8), 1, 2, 2, True, False), (3, 1, 8, 8)),
    ],
    ids=["mlp", "dcgan_generator", "dcgan_discriminator"],
)  # fmt: skip
def test_networks_and_their_gradients_match_pytorchs_spectral_norm(builder, twin, example):
    players = "param t = 0\nparam s = 0\nplayer P controls N, t maximizes t\nplayer Q controls s maximizes s\n"
    spec = gamedsl.loads(f"game g\nnetwork N = {builder}\n{players}", "n.game")
    net = spec.networks["N"]
    torch.manual_seed(0)
    ours = BUILDERS[net.builder].module(net.args).double()
    theirs = reference(twin(), ours).eval()  # eval: PyTorch takes no power iteration in the forward pass
    x = torch.randn(*example)
    for _ in range(2):
        out, ref = ours(x), theirs(x)
        torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
        mine = torch.autograd.grad(out.square().sum(), list(ours.parameters()))
        names = dict(theirs.named_parameters())
        given = torch.autograd.grad(ref.square().sum(), [names[n] for n, _ in ours.named_parameters()])
        for a, b in zip(mine, given):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
        theirs.train()
        theirs(x)  # PyTorch's training-mode forward takes one power iteration ...
        theirs.eval()
        for norm, weight in normalisations(ours):  # ... as one of ours does
            norm.iterate(weight)
        for (n, a), b in zip(ours.named_buffers(), theirs.buffers()):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12, msg=n)


def test_one_power_iteration_per_step_the_same_eagerly_and_compiled(aot_eager):
    runs = [
        solvers.Run(game(SPECTRAL), solvers.get("extragradient"), solvers.optimizers.get("adam", lr=1e-2), compile=c)
        for c in (False, True)
    ]
    start = [b.clone() for b in runs[0].game.buffers()]
    for _ in range(3):
        for run in runs:
            run.step()
    assert runs[1].compiled.compiled
    for p, q in zip(*(run.engine.params for run in runs)):
        torch.testing.assert_close(p, q, rtol=1e-11, atol=1e-12)
    for a, b in zip(*(run.game.buffers() for run in runs)):
        torch.testing.assert_close(a, b, rtol=1e-11, atol=1e-12)
    assert not all(torch.equal(a, s) for a, s in zip(runs[0].game.buffers(), start))  # the power iteration advanced


def test_a_resumed_run_continues_the_power_iteration_bit_for_bit(cli, tmp_path):
    path = tmp_path / "normalised.game"
    path.write_text(SPECTRAL)
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert cli("solve", path, "--out", straight, "-q").code == 0
    assert cli("solve", path, "--steps", "5", "--out", split, "-q").code == 0
    halfway = torch.load(split / "checkpoint.pt", weights_only=True)["buffers"]
    result = cli("solve", "--resume", split, "--steps", "10", "-q")
    assert result.code == 0, result.stderr
    a, b = (torch.load(d / "checkpoint.pt", weights_only=True) for d in (straight, split))
    assert a["step"] == b["step"] == 10
    assert all(torch.equal(x, y) for x, y in zip(a["run"]["params"], b["run"]["params"]))
    assert a["buffers"].keys() == b["buffers"].keys() == halfway.keys() and a["buffers"]
    assert all(torch.equal(a["buffers"][k], b["buffers"][k]) for k in a["buffers"])
    assert not all(torch.equal(a["buffers"][k], halfway[k]) for k in halfway)  # u and v moved after step 5


# ---- the analysis -------------------------------------------------------------------------


@pytest.mark.parametrize("option, caret", [("clip=0.5", "^~~~~~~~"), ("spectral=true", "^~~~~~~~~~~~~")])
def test_analyze_refuses_constrained_networks_at_the_option(cli, tmp_path, option, caret):
    path = tmp_path / "dirac.game"
    source = (ROOT / "games" / "dirac_gan.game").read_text().replace("init=ones)", f"init=ones, {option})")
    path.write_text(source)
    result = cli("analyze", path)
    assert result.code == ExitCode.OUT_OF_REACH
    line = next(n for n, row in enumerate(source.splitlines(), 1) if option in row)
    column = source.splitlines()[line - 1].index(option) + 1
    assert f"dirac.game:{line}:{column}: error: the game is out of symbolic reach: network 'D' is " in result.stderr
    assert caret in result.stderr and "hint:" in result.stderr and "Traceback" not in result.stderr
