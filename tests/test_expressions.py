"""The expression pieces: min, max, clamp, vector literals, concat; mlp's sigmoid, norm and
maxout; the table of built-in functions; hints for names that are not in the language.

Values are checked against numbers computed here by hand (plain Python floats, or torch
written out), and the torch and sympy forms of every row against each other.
"""

from __future__ import annotations

import math
import random

import pytest
import torch

import gamedsl
from gamedsl.compile.sympy_game import compile_game
from gamedsl.compile.torch_game import TorchGame
from gamedsl.compile.torch_program import fold
from gamedsl.errors import GameCheckError
from gamedsl.library.functions import FUNCTIONS, NOT_BUILT_IN
from gamedsl.nets.builders import BUILDERS
from gamedsl.nets.dcgan import has_batchnorm
from gamedsl.semantics import ir

PLAYERS = "player P controls a, b maximizes u + 0 * (sum(a) + sum(b))\nplayer Q controls c maximizes -c^2 + c * a[0]\n"


def utility(lets: str, a, b, c) -> float:
    """The value of `let u = ...` (with params a[3], b[3], c) as compiled to torch."""
    text = f"game e\nparam a[3] = {list(a)}\nparam b[3] = {list(b)}\nparam c = {c}\n{lets}\n{PLAYERS}"
    game = TorchGame(gamedsl.loads(text, "e.game"), batch=2, dtype="float64")
    with torch.no_grad():
        return float(game.utility(0, game.sample()))


A, B, C = (0.5, -2.0, 1.5), (1.0, -3.0, 1.5), 0.25


@pytest.mark.parametrize(
    "expression, expected",
    [
        ("sum(min(a, b))", sum(min(x, y) for x, y in zip(A, B))),
        ("sum(max(a, b))", sum(max(x, y) for x, y in zip(A, B))),
        ("sum(max(a, c))", sum(max(x, C) for x in A)),  # a scalar with a vector
        ("min(c, 2)", min(C, 2)),
        ("sum(clamp(a, -1, 1))", sum(min(max(x, -1), 1) for x in A)),
        ("sum(clamp(b, a, 1))", sum(min(max(y, x), 1) for x, y in zip(A, B))),
        ("dot([1, 2, 3], a)", 1 * A[0] + 2 * A[1] + 3 * A[2]),
        ("[c, 2 * c, a[1]][2]", A[1]),
        ("sum(concat(a, c, b))", sum(A) + C + sum(B)),
        ("concat(a, [c])[3]", C),
        ("norm(concat(a, b))", math.sqrt(sum(t * t for t in A + B))),
        ("concat(c)", C),  # one scalar: a scalar
    ],
)
def test_values_are_the_hand_computed_ones(expression, expected):
    assert utility(f"let u = {expression}", A, B, C) == pytest.approx(expected, abs=1e-12)


def test_concat_repeats_deterministic_parts_along_the_batch():
    text = (
        "game e\ndata x ~ normal(2)\nparam c = 0.5\nnetwork D = linear(4 -> 1)\n"
        "player D controls D maximizes E[D(concat(x, [c, 1]))]\nplayer C controls c maximizes -c^2\n"
    )
    game = TorchGame(gamedsl.loads(text, "e.game"), batch=5, dtype="float64")
    batch = game.sample()
    by_hand = torch.cat([batch["x"], torch.tensor([[0.5, 1.0]], dtype=torch.float64).expand(5, 2)], dim=1)
    with torch.no_grad():
        assert float(game.utility(0, batch)) == pytest.approx(float(game.networks["D"](by_hand).mean()), abs=1e-12)


def test_torch_and_sympy_agree_on_values_and_fields_of_every_new_function():
    text = (
        "game e\nparam a[3] = [0.3, -0.7, 1.1]\nparam b[3] = [0.2, 0.4, -0.5]\nparam c = 0.1\n"
        "let u = sum(min(a, b) * max(a, c)) + dot(clamp(a, -0.5, b), [1, 2, 3]) + norm(concat(a, c, b))^2"
        " + [a[0], c][1] * sum(a)\n" + PLAYERS
    )
    spec = gamedsl.loads(text, "e.game")
    symbolic = compile_game(spec)
    game = TorchGame(spec, batch=2, dtype="float64")
    rng = random.Random(0)
    for _ in range(5):
        values = [rng.uniform(-1, 1) for _ in symbolic.symbols]
        with torch.no_grad():
            start = 0
            for p in (p for player in game.players for p in player.params):
                p.copy_(torch.tensor(values[start : start + p.numel()], dtype=torch.float64).reshape(p.shape))
                start += p.numel()
        at = dict(zip(symbolic.symbols, values))
        u = game.utilities(game.sample())
        for exact, numeric in zip(symbolic.utilities, u):
            assert float(exact.subs(at)) == pytest.approx(float(numeric.detach()), abs=1e-12)
        field = [float(e.subs(at)) for e in symbolic.field()]
        grads = [g for ui, p in zip(u, game.players) for g in torch.autograd.grad(ui, p.params, retain_graph=True)]
        assert torch.cat([g.reshape(-1) for g in grads]).tolist() == pytest.approx(field, abs=1e-12)


def test_ties_split_the_gradient_alike_in_torch_and_sympy():
    """max(t, t): torch gives each argument half the gradient, sympy's Heaviside(0) is 1/2."""
    spec = gamedsl.loads("game e\nparam a = 1\nparam b = 1\nplayer P controls a maximizes max(a, b)\n"
                         "player Q controls b maximizes min(a, b)\n", "e.game")  # fmt: skip
    exact = compile_game(spec).field().subs({s: 1 for s in compile_game(spec).symbols})
    game = TorchGame(spec, batch=1, dtype="float64")
    u = game.utilities(game.sample())
    numeric = [torch.autograd.grad(ui, p.params, retain_graph=True)[0] for ui, p in zip(u, game.players)]
    assert [float(t) for t in numeric] == [float(e) for e in exact] == [0.5, 0.5]


@pytest.mark.parametrize(
    "node, value",
    [
        (ir.fn("min", (ir.const(3.0), ir.const(-1.0))), -1.0),
        (ir.fn("clamp", (ir.const(5.0), ir.const(0.0), ir.const(1.0))), 1.0),
        (ir.fn("max", (ir.fn("log", (ir.const(0.0),)), ir.const(2.0))), 2.0),  # max(-inf, 2)
    ],
)
def test_constant_calls_fold_as_a_run_computes_them(node, value):
    assert fold(node) == ir.const(value)


def test_every_row_has_its_forms_and_a_documented_kind():
    for function in FUNCTIONS.values():
        assert function.kind in ("elementwise", "broadcast", "reduce", "pair", "concat", "gradient")
        assert (function.torch is None) == (function.sympy is None) == (function.kind == "gradient")
        assert (function.arity is None) == (function.kind == "concat")


def test_the_table_imports_neither_torch_nor_sympy():
    import subprocess
    import sys

    code = "import sys, gamedsl.library.functions; print('torch' in sys.modules, 'sympy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


# ---- names that are not in the language ---------------------------------------------------------


@pytest.mark.parametrize("name", sorted(NOT_BUILT_IN))
def test_names_users_try_get_what_to_write_instead(name):
    text = f"game e\nparam a = 1\nparam c = 1\nplayer P controls a maximizes {name}(a)\n" + (
        "player Q controls c maximizes -c^2\n"
    )
    with pytest.raises(GameCheckError) as info:
        gamedsl.loads(text, "e.game")
    assert info.value.message == f"'{name}' is not in the language"
    assert info.value.hint == NOT_BUILT_IN[name]
    assert info.value.span.line == 4


def test_no_hint_names_a_built_in_or_a_word_of_the_language():
    from gamedsl.semantics.checker import RESERVED

    assert not set(NOT_BUILT_IN) & (set(FUNCTIONS) | RESERVED)


# ---- mlp: sigmoid, normalisation, maxout ----------------------------------------------------------


def _arguments(**given):
    values = {arg.name: arg.default for arg in BUILDERS["mlp"].signature.args}
    return values | {"io": ((3,), (2,)), "hidden": (4, 5)} | given


def _layer_outputs(module: torch.nn.Module, inputs: int) -> list[int]:
    sizes = []
    leaves = [m for m in module.modules() if not list(m.children())]
    hooks = [m.register_forward_hook(lambda m, i, o: sizes.append(o.numel() // 2)) for m in leaves]
    module(torch.randn(2, inputs))
    for hook in hooks:
        hook.remove()
    return sizes


@pytest.mark.parametrize("activation", ["sigmoid", "maxout", "relu"])
@pytest.mark.parametrize("norm", ["none", "batch", "layer"])
@pytest.mark.parametrize("bias", [True, False])
def test_mlp_footprint_counts_what_the_module_holds(activation, norm, bias):
    args = _arguments(activation=activation, norm=norm, bias=bias, pieces=3)
    footprint = BUILDERS["mlp"].footprint(args)
    module = BUILDERS["mlp"].module(args)
    outputs = _layer_outputs(module, 3)
    assert footprint.parameters == sum(p.numel() for p in module.parameters())
    assert footprint.activations == sum(outputs)
    assert footprint.widest == max(outputs)
    assert footprint.couples_examples == has_batchnorm(module) == (norm == "batch")


def test_maxout_takes_the_largest_of_each_group_of_pieces():
    module = BUILDERS["mlp"].module(_arguments(activation="maxout", pieces=3, hidden=(4,)))
    x = torch.randn(6, 3)
    pre = module[0](x)  # 12 = 4 units x 3 pieces
    by_hand = torch.stack([pre[:, 3 * k : 3 * k + 3].max(dim=1).values for k in range(4)], dim=1)
    assert torch.equal(module[1](pre), by_hand)
    assert torch.allclose(module(x), module[2](by_hand))


def test_sigmoid_and_layer_norm_layers_are_what_they_say():
    module = BUILDERS["mlp"].module(_arguments(activation="sigmoid", norm="layer", hidden=(4,)))
    x = torch.randn(5, 3)
    h = module[0](x)
    normed = (h - h.mean(1, keepdim=True)) / torch.sqrt(h.var(1, unbiased=False, keepdim=True) + 1e-5)
    assert torch.allclose(module(x), module[3](torch.sigmoid(normed)), atol=1e-6)


def test_pieces_without_maxout_is_an_error():
    text = "game e\nnetwork D = mlp(2 -> 1, hidden=[4], pieces=3)\nparam t = 1\n" + (
        "player D controls D maximizes D([t, t])\nplayer T controls t maximizes -t^2\n"
    )
    with pytest.raises(GameCheckError, match="'pieces' is the number of linear pieces"):
        gamedsl.loads(text, "e.game")


def test_a_batch_norm_mlp_refuses_a_batch_of_one():
    text = "game e\nnetwork D = mlp(2 -> 1, hidden=[4], norm=batch)\nparam t = 1\n" + (
        "player D controls D maximizes D([t, t])\nplayer T controls t maximizes -t^2\n"
    )
    with pytest.raises(GameCheckError, match="uses batch norm"):
        gamedsl.loads(text, "e.game")


# ---- the catalog games built from these pieces ---------------------------------------------------


@pytest.mark.parametrize("name", ["r1_ring", "wgan_gp_ring", "pacgan2_ring"])
def test_catalog_games_check_and_solve_a_few_steps(cli, tmp_path, name):
    result = cli("solve", f"games/{name}.game", "--set", "steps=3", "--out", tmp_path / name)
    assert result.code == 0, result.stderr
    metrics = (tmp_path / name / "metrics.json").read_text()
    assert '"modes"' in metrics  # samples of the generator, 2-D, scored against the ring


def test_a_packed_critic_compares_the_generator_with_the_data():
    """PacGAN's divergence sees concat(x1, x2); pictures and metrics see x1 and G(z1)."""
    spec = gamedsl.load("games/pacgan2_ring.game")
    real, fake = spec.comparison
    assert real == ir.Sample((2,), True, "x1") and isinstance(fake, ir.Apply) and fake.network == "G"
