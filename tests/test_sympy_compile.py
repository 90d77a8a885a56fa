"""The sympy compiler against the torch compiler and against closed forms.

The two compilations of one file are independent implementations of the same IR: v and v'
from sympy (exact, then evaluated) and from torch (autograd, float64) must agree at random
points for every game of the catalog that is within symbolic reach.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

import gamedsl
from gamedsl.compile import sympy_game
from gamedsl.compile.sympy_game import compile_game, number, power
from gamedsl.errors import ExitCode, LimitError, OutOfReach
from gamedsl.library.functions import FUNCTIONS
from gamedsl.nets.builders import BUILDERS
from gamedsl.numeric.verify import torch_game, torch_v_and_J
from gamedsl.symbolic.field import Field

ROOT = Path(__file__).resolve().parent.parent
CATALOG = sorted((ROOT / "games").glob("*.game"))


def in_reach(path: Path) -> bool:
    try:
        compile_game(gamedsl.load(path))
    except OutOfReach:
        return False
    return True


REACHABLE = [p for p in CATALOG if in_reach(p)]


def test_every_builtin_function_has_a_sympy_form():
    """grad is an operator (its own IR node), not a function of values: it has no row form."""
    assert all(f.sympy is not None for f in FUNCTIONS.values() if f.kind != "gradient")


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("name", [name for name, builder in BUILDERS.items() if builder.symbolic is not None])
def test_every_symbolic_form_is_its_torch_modules_map(name, bias):
    """A builder's sympy form (nets/builders.py) against its nn.Module: the same tensors in
    parameters() order, and the same outputs at random weights and inputs."""
    import torch

    builder = BUILDERS[name]
    args = {a.name: a.default for a in builder.signature.args} | {"io": ((3,), (2,)), "bias": bias}
    module = builder.module(args).double()
    tensors = builder.symbolic.tensors(args)
    assert [(n, tuple(p.shape)) for n, p in module.named_parameters()] == [(n, tuple(s)) for n, s in tensors]
    rng = np.random.default_rng(0)
    values = {n: rng.normal(size=s) for n, s in tensors}
    x = rng.normal(size=3)
    symbols = {n: list(sp.symbols(f"{n}_0:{int(np.prod(s))}")) for n, s in tensors}
    inputs = list(sp.symbols("x_0:3"))
    outputs = builder.symbolic.apply(args, symbols, inputs)
    at = {sym: float(v) for n in tensors for sym, v in zip(symbols[n[0]], values[n[0]].reshape(-1))}
    at |= dict(zip(inputs, x.tolist()))
    with torch.no_grad():
        for n, p in module.named_parameters():
            p.copy_(torch.from_numpy(values[n]))
        expected = module(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose([float(o.subs(at)) for o in outputs], expected, rtol=1e-12)


def test_the_catalog_has_games_in_reach_and_out_of_it():
    names = {p.stem for p in REACHABLE}
    assert {"bilinear", "dirac_gan", "dirac_gan_nonsat", "quadratic_fig1b", "not_nash", "several_stationary"} <= names
    assert "mog" not in names


def _compare_at_random_points(spec, points: int = 4, scale: float = 1.0, seed: int = 0):
    fld = Field.of(compile_game(spec))
    game = torch_game(spec)
    rng = np.random.default_rng(seed)
    for _ in range(points):
        x = rng.normal(0.0, scale, fld.n)
        v_torch, J_torch = torch_v_and_J(game, x)
        np.testing.assert_allclose(fld.v_at(x), v_torch, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(fld.J_at(x), J_torch, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("path", REACHABLE, ids=[p.stem for p in REACHABLE])
def test_sympy_and_torch_agree_on_v_and_jacobian(path):
    _compare_at_random_points(gamedsl.load(path))


@pytest.mark.parametrize("path", [p for p in CATALOG if p not in REACHABLE], ids=lambda p: p.stem)
def test_out_of_reach_games_say_so_and_point_to_spectrum(path):
    with pytest.raises(OutOfReach) as info:
        compile_game(gamedsl.load(path))
    exc = info.value
    assert exc.code == ExitCode.OUT_OF_REACH
    assert "out of symbolic reach" in exc.message
    assert f"gamedsl spectrum {path}" in exc.hint
    assert exc.span is not None  # it points at the sampled source or the deep network


EVERYTHING = """game everything
data c ~ dirac([0.5, -1.5, 2])
latent s ~ dirac(0.25)
param w[3] = [0.1, 0.2, 0.3]
param k = 0.5
network D = linear(3 -> 1)
network G = linear(1 -> 3, bias=false)
player A controls w, D maximizes {a}
player B controls k, G maximizes {b}
"""
OBJECTIVES = [
    ("E[D(c * w)] - sum(w^2) + log(1 + k^2) * mean(w)", "-E[norm(G(s) - c)^2] + E[k * dot(w, c)]"),
    ("softplus(D(w)) - sigmoid(w[1] * k) + tanh(sum(w)) * exp(-w[2]^2)", "-(k - 1)^4 + E[relu(k * s) + abs(k - w[0])]"),
    ("-E[gan.g1(D(G(s)))] + E[js.g2(D(c))] - sqrt(1 + dot(w, w))", "E[gan.g2(D(G(s)))] - k^2 / 2 - sum(G(k) * w)"),
    ("-reverse_kl.g2(D(w)) + kl.g1(w[0]) - w[1] / (2 + k^2)", "-E[norm(G(s))] + E[mean(exp(G(s) - 1))] * 0.1"),
]


@pytest.mark.parametrize("a, b", OBJECTIVES)
def test_every_construct_compiles_alike(a, b):
    """Vectors, indexing, reductions, linear networks with and without bias, constant data
    and latents, divergence parts: sympy and torch agree on v and v'."""
    _compare_at_random_points(gamedsl.loads(EVERYTHING.format(a=a, b=b)), points=3, scale=0.7)


def test_symbols_follow_the_torch_parameter_order():
    spec = gamedsl.loads(EVERYTHING.format(a=OBJECTIVES[0][0], b=OBJECTIVES[0][1]))
    game = compile_game(spec)
    names = [str(s) for s in game.symbols]
    a = ["w_0", "w_1", "w_2", "D_weight_0_0", "D_weight_0_1", "D_weight_0_2", "D_bias"]
    b = ["k", "G_weight_0_0", "G_weight_1_0", "G_weight_2_0"]
    assert names == a + b
    assert [len(range(*b.indices(len(names)))) for b in game.blocks] == [7, 4]
    tg = torch_game(spec)
    sizes = [t.numel() for p in tg.players for t in p.params]
    assert sizes == [3, 3, 1, 1, 3]


def test_bilinear_closed_form():
    game = compile_game(gamedsl.load(ROOT / "games/bilinear.game"))
    phi, theta = game.symbols
    assert list(game.field()) == [theta, -phi]
    assert game.jacobian() == sp.Matrix([[0, 1], [-1, 0]])


def test_dirac_gan_closed_form():
    """u_D = -softplus(psi theta) - log 2: v = (-theta sigma(psi theta), psi sigma(psi theta))."""
    game = compile_game(gamedsl.load(ROOT / "games/dirac_gan.game"))
    psi, theta = game.symbols
    assert str(psi) == "D_weight" and str(theta) == "theta"
    sigma = 1 / (1 + sp.exp(-psi * theta))
    v = game.field()
    assert sp.simplify(v[0] - (-theta * sigma)) == 0
    assert sp.simplify(v[1] - psi * sigma) == 0
    assert game.jacobian().subs({psi: 0, theta: 0}) == sp.Matrix([[0, -sp.Rational(1, 2)], [sp.Rational(1, 2), 0]])


def test_names_are_only_symbol_names():
    """Names that mean something to sympy or Python (I, zeta, lambda, None) stay plain symbols."""
    spec = gamedsl.loads(
        "game g\nparam I = 1\nparam zeta = 2\nparam lambda = 3\nparam None = 4\n"
        "player A controls I, None maximizes -I^2 + I * zeta - None^2\n"
        "player B controls zeta, lambda maximizes -zeta^2 - lambda^2 * I\n"
    )
    game = compile_game(spec)
    assert [s.name for s in game.symbols] == ["I", "None", "zeta", "lambda"]
    assert all(isinstance(s, sp.Symbol) and s.is_real for s in game.symbols)
    x = np.array([1.0, 4.0, 2.0, 3.0])
    assert Field.of(game).v_at(x).tolist() == [-2 * 1.0 + 2.0, -8.0, -4.0, -6.0]
    _compare_at_random_points(spec)


def test_generated_names_never_clash():
    spec = gamedsl.loads(
        "game g\nparam w[2] = 1\nparam w_0 = 2\n"
        "player A controls w maximizes -sum(w^2) + w_0 * w[0]\nplayer B controls w_0 maximizes -w_0^2\n"
    )
    names = [s.name for s in compile_game(spec).symbols]
    assert len(set(names)) == 3 and "w_0" in names


def test_literals_become_exact_numbers():
    assert number(0.1) == sp.Rational(1, 10)
    assert number(2.0) == 2 and isinstance(number(2.0), sp.Integer)
    assert number(1e-300) != 0
    assert float(number(0.1 + 0.2)) == 0.1 + 0.2  # not the "nice" 3/10


def test_huge_constant_powers_are_refused_not_computed():
    assert power(sp.Integer(2), sp.Integer(10)) == 1024
    assert power(sp.Rational(1, 2), sp.Integer(5000)) == sp.Rational(1, 2**5000)  # exact while small
    assert isinstance(power(sp.Rational(3, 2), sp.Rational(1, 3)), (sp.Pow, sp.Float, sp.Mul))
    with pytest.raises(LimitError):
        power(sp.Integer(2), sp.Integer(2) ** 100)
    with pytest.raises(LimitError):
        power(sp.Integer(10), sp.Integer(100_000))
    spec = gamedsl.loads(
        "game g\nparam x = 1\nparam y = 1\n"
        "player A controls x maximizes -x^2 + 2^(2^(2^100))\nplayer B controls y maximizes -y^2\n"
    )
    with pytest.raises(LimitError) as info:
        compile_game(spec)
    assert info.value.span is not None and info.value.span.line == 4


def test_sampled_data_is_out_of_reach_with_a_position():
    spec = gamedsl.loads(
        "game g\ndata x ~ normal(2)\nparam w[2] = 0\nparam b = 0\n"
        "player A controls w maximizes E[dot(w, x)] - sum(w^2)\nplayer B controls b maximizes -b^2\n",
        path="g.game",
    )
    with pytest.raises(OutOfReach) as info:
        compile_game(spec)
    assert info.value.span.line == 2 and "gamedsl spectrum g.game" in info.value.hint


def test_deep_networks_are_out_of_reach():
    spec = gamedsl.loads(
        "game g\ndata x ~ dirac(1)\nnetwork D = mlp(1 -> 1, hidden=[4])\nparam t = 1\n"
        "player D controls D maximizes gan(critic=D, real=x, fake=t)\n"
        "player G controls t minimizes gan(critic=D, real=x, fake=t)\n"
    )
    with pytest.raises(OutOfReach, match="network 'D' is built with 'mlp'"):
        compile_game(spec)


FORBIDDEN = {"sympify", "parse_expr", "eval", "exec", "S", "parse", "simplify_text"}


def test_symbolic_code_never_parses_text():
    """No sympify/parse_expr/S(...)/eval in the sympy compiler and the analysis."""
    analysis = [path for folder in ("symbolic", "numeric") for path in sorted((ROOT / "gamedsl" / folder).glob("*.py"))]
    assert len(analysis) > 5  # the folders exist
    files = [Path(sympy_game.__file__), *analysis]
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
                assert name not in FORBIDDEN, f"{path.name}:{node.lineno} calls {name}"
