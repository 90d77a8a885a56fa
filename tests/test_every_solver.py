"""Every solver on every catalog game, and the derivatives they need on every game shape.

The solvers are whatever `solvers.available()` lists and the games whatever games/*.game
holds, so a new solver or game is covered without editing this file. Image games run at
tiny widths (2 filters) on generated data, as tests/test_images.py does. The products the
solvers build on are held to finite differences and explicit Jacobians: SGA and CGD need
v'(x) u through the generator's transposed convolutions, and a field that does not
depend on the parameters (the gradient of a + b) must give a zero product, not an error.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import gamedsl
import solvers
from gamedsl.compile.torch_game import TorchGame
from gamedsl.data import images
from gamedsl.data.images import write_cifar10
from gamedsl.nets import dcgan
from solvers.field import Field
from solvers.functional import FunctionalEngine

ROOT = Path(__file__).resolve().parent.parent
GAMES = sorted(ROOT.glob("games/*.game"))
TINY_FILTERS = 2


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    """Generated data for the image games: tiny CIFAR-10 pickles and a folder of 160x160 images."""
    root = tmp_path_factory.mktemp("data")
    write_cifar10(root / "cifar-10-batches-py", per_batch=4)
    rng = np.random.default_rng(0)
    for spec in map(gamedsl.load, GAMES):
        for sample in spec.samples.values():
            if sample.source == "image_folder":
                folder = root / sample.args["path"]
                folder.mkdir(parents=True, exist_ok=True)
                for i in range(4):
                    Image.fromarray(rng.integers(0, 256, (160, 160, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GAMEDSL_CACHE", str(tmp_path_factory.mktemp("cache")))
        patch.setattr(images, "_data_root", root)
        yield root


def tiny(spec):
    """The game with every convolutional network cut to TINY_FILTERS filters."""
    networks = {
        name: dataclasses.replace(net, args={**net.args, "filters": TINY_FILTERS}) if "filters" in net.args else net
        for name, net in spec.networks.items()
    }
    return dataclasses.replace(spec, networks=networks)


@pytest.mark.parametrize("solver", solvers.available())
@pytest.mark.parametrize("path", GAMES, ids=lambda p: p.stem)
def test_every_solver_takes_two_steps_on_every_catalog_game(path, solver, data_root):
    game = TorchGame(tiny(gamedsl.load(path)), batch=4, seed=0)
    result = solvers.solve(game, solvers.get(solver), solvers.optimizers.get("sgd", lr=1e-3), steps=2)
    assert result.status == "finished", result.message
    assert result.steps == 2
    assert all(torch.isfinite(p).all() for p in game.parameters())


# ---- the generator's transposed convolutions ------------------------------------------------------


def test_transposed_convolution_equals_torchs_with_output_padding():
    torch.manual_seed(0)
    reference = nn.ConvTranspose2d(3, 2, 5, stride=2, padding=2, output_padding=1).double()
    ours = dcgan.ConvTranspose2d(3, 2, 5, stride=2, padding=2, output_padding=1).double()
    ours.load_state_dict(reference.state_dict())
    x = torch.randn(4, 3, 5, 6, dtype=torch.float64, requires_grad=True)
    expected, got = reference(x), ours(x)
    assert got.shape == expected.shape == (4, 2, 10, 12)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    cotangent = torch.randn_like(expected)
    by_torch = torch.autograd.grad(expected, [x, *reference.parameters()], cotangent)
    by_ours = torch.autograd.grad(got, [x, *ours.parameters()], cotangent)
    for a, b in zip(by_ours, by_torch):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


IMAGE_GAME = """game tiny
latent z ~ normal(3)
data x ~ normal(dim=2)
network D = dcgan_discriminator([1, 4, 4] -> 1, filters=2, layers=2, batchnorm=false)
network G = dcgan_generator(3 -> [1, 4, 4], filters=2, layers=2, batchnorm=false)
player D controls D maximizes -E[(D(G(z)) - 0.5)^2] + E[sum(x)]
player G controls G maximizes E[tanh(D(G(z)))]
"""


def flat_field(engine, batch) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in engine.evaluate(batch).v])


def test_jacobian_vector_products_through_the_generator_match_finite_differences():
    """v'(x) u (the double-vjp trick, as SGA and CGD use it) against central differences of v."""
    game = TorchGame(gamedsl.loads(IMAGE_GAME), batch=3, seed=1, dtype="float64")
    engine = solvers.Run(game, solvers.get("sga"), solvers.optimizers.get("sgd", lr=1.0)).engine
    batch = game.sample()
    torch.manual_seed(0)
    u = [torch.randn_like(p) for p in engine.params]
    ev = engine.evaluate(batch, create_graph=True)
    product = torch.cat([t.reshape(-1) for t in engine.jvp(ev, u)])
    eps = 1e-6
    start = engine.snapshot()
    shifted = []
    for sign in (1.0, -1.0):
        engine.restore([p + sign * eps * t for p, t in zip(start, u)])
        shifted.append(flat_field(engine, batch))
    engine.restore(start)
    finite = (shifted[0] - shifted[1]) / (2 * eps)
    torch.testing.assert_close(product, finite, rtol=1e-5, atol=1e-7)


# ---- a field that does not depend on the parameters -----------------------------------------------


def linear_game():
    """P controls (a, b) and maximises a + b (a constant field); Q controls c: -c^2 + a c.

    v = (1, 1, a - 2c); v' has the single non-zero row (1, 0, -2) for c."""
    a, b, c = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (0.5, -1.0, 2.0))
    game = solvers.make_game({"P": [a, b], "Q": [c]}, sample=lambda: None, utilities=lambda _: [a + b, -c * c + a * c])
    jacobian = torch.tensor([[0.0, 0, 0], [0, 0, 0], [1, 0, -2]], dtype=torch.float64)
    return game, (a, b, c), jacobian


def test_products_of_a_constant_field_are_its_explicit_jacobian():
    game, _, jacobian = linear_game()
    engine = solvers.Run(game, solvers.get("simga"), solvers.optimizers.get("sgd", lr=1.0)).engine
    ev = engine.evaluate(None, create_graph=True)
    u = [torch.tensor(x, dtype=torch.float64) for x in (0.3, -0.7, 1.1)]
    flat_u = torch.stack(u)
    torch.testing.assert_close(torch.stack(engine.jvp(ev, u)), jacobian @ flat_u)
    torch.testing.assert_close(torch.stack(engine.vjp(ev, u)), jacobian.T @ flat_u)
    # blocks: the rows of P (constant) are zero, Q's row restricted to P's columns is (1, 0)
    assert torch.equal(torch.stack(engine.jvp(ev, u[2:], of=[0], wrt=[1])), torch.zeros(2, dtype=torch.float64))
    torch.testing.assert_close(torch.stack(engine.jvp(ev, u[:2], of=[1], wrt=[0])), jacobian[2:, :2] @ flat_u[:2])


def test_functional_engine_agrees_on_a_constant_field():
    """The vmapped sweeps' engine (torch.func) against the autograd engine on the same game."""
    game, params, jacobian = linear_game()

    def utilities(ps, batch, player=None):
        a, b, c = ps
        both = [a + b, -c * c + a * c]
        return both if player is None else both[player]

    optimizer = solvers.optimizers.get("sgd", lr=1.0)
    field = Field(utilities, [slice(0, 2), slice(2, 3)])
    engine = FunctionalEngine(field, [p.detach() for p in params], optimizer, {}, [None])
    ev = engine.evaluate(None, create_graph=True)
    u = [torch.tensor(x, dtype=torch.float64) for x in (0.3, -0.7, 1.1)]
    torch.testing.assert_close(torch.stack(engine.jvp(ev, u)), jacobian @ torch.stack(u))
    torch.testing.assert_close(torch.stack(engine.vjp(ev, u)), jacobian.T @ torch.stack(u))


def test_cgd_step_on_a_constant_field_is_the_nash_move():
    """d_P = h v_P (B = 0), d_Q = h (v_Q + C d_P) with C = (1, 0): the local game's equilibrium."""
    game, (a, b, c), _ = linear_game()
    h = 0.1
    a0, b0, c0 = (float(t.detach()) for t in (a, b, c))
    result = solvers.solve(game, solvers.get("cgd"), solvers.optimizers.get("sgd", lr=h), steps=1)
    assert result.status == "finished"
    d_p = (h, h)
    d_q = h * ((a0 - 2 * c0) + d_p[0])
    assert tuple(float(t.detach()) for t in (a, b, c)) == pytest.approx((a0 + h, b0 + h, c0 + d_q), rel=1e-12)


def test_sga_step_on_a_constant_field_follows_v_plus_lambda_a_v():
    game, (a, b, c), jacobian = linear_game()
    h, lam = 0.1, 0.5
    x0 = torch.stack([a.detach().clone(), b.detach().clone(), c.detach().clone()])
    v = torch.stack([torch.tensor(1.0), torch.tensor(1.0), x0[0] - 2 * x0[2]]).double()
    antisymmetric = (jacobian - jacobian.T) / 2
    expected = x0 + h * (v + lam * antisymmetric @ v)
    solvers.solve(game, solvers.get("sga", lam=lam), solvers.optimizers.get("sgd", lr=h), steps=1)
    torch.testing.assert_close(torch.stack([a, b, c]).detach(), expected, rtol=1e-12, atol=1e-12)
