"""Games that `check` accepts compile and run: constants, constant folding, any valid name.

The truths: numpy's float64 (IEEE) arithmetic for folded constants, the network applied by
hand for a network of a constant, the sympy compilation beside the torch one, the
functional (torch.func) field beside the autograd one, and state dicts loaded back.
"""

from __future__ import annotations

import keyword
import math
import re

import numpy as np
import pytest
import sympy as sp
import torch
from torch import nn

import gamedsl
import solvers
from gamedsl.compile.sympy_game import compile_game
from gamedsl.compile.torch_game import TorchGame
from gamedsl.compile.torch_program import fold
from gamedsl.errors import ExitCode, OutOfReach
from gamedsl.semantics import ir
from gamedsl.semantics.checker import RESERVED
from solvers.field import GameField
from gamedsl.training.session import save_params

# ---- networks applied to constants ----------------------------------------------------------------

CONSTANT_INPUTS = """game g
param a = 0.5
network D = linear(1 -> 1)
network G = mlp(1 -> 2, hidden=[3], activation=tanh)
player P controls a maximizes -a^2 + a * D(INPUT) + a * sum(G(INPUT))
player Q controls D, G maximizes -D(INPUT)^2 - D(a)^2 - sum(G(INPUT)^2)
"""


@pytest.mark.parametrize("written, value", [("1", 1.0), ("0.5 + 0.5", 1.0), ("-(2 - 3) * 2", 2.0), ("log(1)", 0.0)])
def test_networks_apply_to_constants(written, value):
    spec = gamedsl.loads(CONSTANT_INPUTS.replace("INPUT", written))
    game = TorchGame(spec, batch=2, dtype="float64")
    D, G, a = game.networks["D"], game.networks["G"], game.variables["a"]
    x = torch.tensor([[value]], dtype=torch.float64)
    d, g = D(x)[0, 0], G(x)[0]
    expected = [-(a**2) + a * d + a * g.sum(), -(d**2) - D(a.reshape(1, 1))[0, 0] ** 2 - (g**2).sum()]
    for got, want in zip(game.utilities(game.sample()), expected):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    for name in ("sga", "cgd", "consensus"):  # products of v' (jvp, vjp) through the constant's path
        result = solvers.solve(game, solvers.get(name), solvers.optimizers.get("sgd", lr=1e-2), steps=2)
        assert result.status == "finished", result.message


def test_symbolic_and_torch_fields_agree_on_a_network_of_a_constant():
    spec = gamedsl.loads(
        "game g\nparam a = 0.5\nnetwork D = linear(1 -> 1)\n"
        "player P controls a maximizes -a^2 + a * D(0.5 + 0.5)\nplayer Q controls D maximizes -D(1)^2 - D(a)^2\n"
    )
    game = TorchGame(spec, batch=1, dtype="float64")
    engine = solvers.Run(game, solvers.get("simga"), solvers.optimizers.get("sgd", lr=1.0)).engine
    torch_v = torch.cat([t.reshape(-1) for t in engine.evaluate(game.sample()).v])
    symbolic = compile_game(spec)
    point = torch.cat([p.detach().reshape(-1) for p in engine.params])
    exact = symbolic.field().subs(dict(zip(symbolic.symbols, point.tolist())))
    np.testing.assert_allclose(np.array(exact, dtype=float).ravel(), torch_v.numpy(), rtol=1e-12, atol=1e-12)


def test_solve_runs_a_network_of_a_constant(cli, tmp_path):
    path = tmp_path / "g.game"
    path.write_text(CONSTANT_INPUTS.replace("INPUT", "1") + "solve {\n  optimizer = sgd(lr=0.01)\n}\n")
    result = cli("solve", path, "--steps", "2", "--out", tmp_path / "run", "-q")
    assert result.code == 0, result.stderr
    assert "Traceback" not in result.stderr


# ---- constant folding: IEEE float64, as at run time -------------------------------------------------

with np.errstate(all="ignore"):
    f64 = np.float64
    FOLDED = [
        ("0 * exp(1000)", 0 * np.exp(f64(1000))),
        ("log(0)", np.log(f64(0))),
        ("sqrt(0 - 1)", np.sqrt(f64(-1))),
        ("2^10000", f64(2) ** f64(10000)),
        ("0^(0-1)", f64(0) ** f64(-1)),
        ("(0-8)^0.5", f64(-8) ** f64(0.5)),
        ("1/0", f64(1) / f64(0)),
        ("0/0", f64(0) / f64(0)),
        ("-(1/0)", -(f64(1) / f64(0))),
        ("exp(1000) - exp(1000)", np.exp(f64(1000)) - np.exp(f64(1000))),
        ("softplus(1000)", np.logaddexp(f64(0), f64(1000))),
        ("sigmoid(0 - 1000)", 1 / (1 + np.exp(f64(1000)))),
        ("tanh(1000) + relu(0 - 2) + abs(0 - 3)", np.tanh(f64(1000)) + 0 + 3),
        ("log(2) * 2 ^ 0.5", np.log(f64(2)) * np.sqrt(f64(2))),
    ]
NON_FINITE = [(text, value) for text, value in FOLDED if not math.isfinite(value)]


def constant_game(expression: str) -> str:
    return (
        "game g\nparam a = 1\nparam b = 1\n"
        f"player P controls a maximizes a * ({expression}) - a^2\nplayer Q controls b maximizes -b^2\n"
    )


def folded(expression: str) -> float:
    utility = gamedsl.loads(constant_game(expression)).players[0].utility  # a * (EXPR) - a^2
    node = fold(utility.left.right)
    assert isinstance(node, ir.Const)
    return node.value


@pytest.mark.parametrize("expression, expected", FOLDED, ids=[t for t, _ in FOLDED])
def test_constants_fold_like_float64_arithmetic(expression, expected):
    value = folded(expression)
    if math.isnan(expected):
        assert math.isnan(value)
    else:
        assert value == pytest.approx(float(expected), rel=1e-15)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("expression, expected", FOLDED, ids=[t for t, _ in FOLDED])
def test_folded_constants_are_tensors_of_the_games_dtype_at_run_time(expression, expected, dtype):
    game = TorchGame(gamedsl.loads(constant_game(expression)), batch=1, dtype=dtype)
    u = game.utilities(game.sample())[0]  # a = 1: the constant minus 1
    assert u.dtype == game.dtype
    np.testing.assert_allclose(u.item(), np.asarray(expected - 1, dtype=dtype), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("expression, expected", NON_FINITE, ids=[t for t, _ in NON_FINITE])
def test_a_non_finite_constant_makes_the_run_diverge(expression, expected):
    game = TorchGame(gamedsl.loads(constant_game(expression)), batch=1)
    result = solvers.solve(game, solvers.get("simga"), solvers.optimizers.get("sgd", lr=0.1), steps=2)
    assert result.status == "diverged" and "non-finite utility of player P" in result.message


def test_solve_exits_6_on_a_non_finite_constant(cli, tmp_path):
    path = tmp_path / "g.game"
    path.write_text(constant_game("0 * exp(1000)"))
    result = cli("solve", path, "--steps", "2", "--out", tmp_path / "run", "-q")
    assert result.code == ExitCode.DIVERGED, result.stderr
    assert "Traceback" not in result.stderr and "diverged" in result.stderr


@pytest.mark.parametrize("expression, expected", NON_FINITE, ids=[t for t, _ in NON_FINITE])
def test_symbolic_analysis_refuses_a_non_finite_constant_at_its_position(expression, expected):
    spec = gamedsl.loads(constant_game(expression), path="g.game")
    with pytest.raises(OutOfReach) as info:
        compile_game(spec)
    line = constant_game(expression).splitlines()[3]
    assert info.value.span is not None and info.value.span.line == 4
    assert line.index("(") < info.value.span.column <= line.index(")")  # inside the constant
    assert "out of symbolic reach: this constant is" in info.value.message


def test_symbolic_analysis_keeps_finite_constants_exact():
    symbolic = compile_game(gamedsl.loads(constant_game("log(2) * 2 ^ 3 + 0 * exp(10) + sqrt(2)")))
    a = symbolic.symbols[0]
    assert sp.simplify(symbolic.utilities[0] - (a * (8 * sp.log(2) + sp.sqrt(2)) - a**2)) == 0


# ---- names that are attributes of torch modules -----------------------------------------------------

CANDIDATES = [*dir(nn.Module()), *dir(nn.ParameterDict()), *dir(nn.ModuleDict()), *keyword.kwlist, *keyword.softkwlist]
NAMES = sorted({n for n in CANDIDATES if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", n) and n not in RESERVED})


def balanced_sum(terms: list[str]) -> str:
    """a + b + c + ... as a balanced tree: a flat sum of hundreds of terms nests too deeply."""
    if len(terms) == 1:
        return terms[0]
    half = len(terms) // 2
    return f"({balanced_sum(terms[:half])} + {balanced_sum(terms[half:])})"


def named_game(kind: str) -> str:
    """Every name a param or a network of player P, played against Q's scalar b on sampled data."""
    if kind == "param":
        decls = "".join(f"param {n} = normal(0, 1)\n" for n in NAMES)
        uses = balanced_sum([f"({n} * b - {n}^2)" for n in NAMES])
    else:
        decls = "".join(f"network {n} = linear(1 -> 1)\n" for n in NAMES)
        uses = balanced_sum([f"E[{n}(x) * b - {n}(x)^2]" for n in NAMES])
    controls = ", ".join(NAMES)
    return (
        f"game g\ndata x ~ normal(1)\nparam b = 0.5\n{decls}player P controls {controls} maximizes {uses}\n"
        "player Q controls b maximizes -b^2 + E[x] * b\n"
    )


@pytest.mark.parametrize("kind", ["param", "network"])
def test_any_valid_name_compiles_and_solves(kind, tmp_path):
    everyday = {"train", "eval", "to", "float", "keys", "update", "forward", "training", "cuda", "half", "state_dict"}
    assert everyday <= set(NAMES)
    spec = gamedsl.loads(named_game(kind))
    game = TorchGame(spec, batch=4, dtype="float64")
    store = game.variables if kind == "param" else game.networks
    assert list(store) == (["b"] if kind == "param" else []) + NAMES and all(name in store for name in NAMES)
    owned = {id(t) for t in game.players[0].params}
    for name in NAMES:
        tensors = [store[name]] if kind == "param" else list(store[name].parameters())
        assert tensors and all(id(t) in owned for t in tensors)
        assert isinstance(store[name], nn.Parameter if kind == "param" else nn.Linear)

    # functional_call (spectra, verification, vmapped sweeps) finds every tensor by its name
    batch = game.sample()
    engine = solvers.Run(game, solvers.get("simga"), solvers.optimizers.get("sgd", lr=1.0)).engine
    autograd_v = torch.cat([t.reshape(-1) for t in engine.evaluate(batch).v])
    field = GameField(game)
    torch.testing.assert_close(field(field.x(), batch), autograd_v, rtol=1e-12, atol=1e-12)

    # state dicts load back into a differently seeded game; params/NAME.pt carry the user's names
    other = TorchGame(spec, batch=4, seed=1, dtype="float64")
    assert not all(torch.equal(p, q) for p, q in zip(game.parameters(), other.parameters()))
    other.load_state_dict(game.state_dict())
    assert all(torch.equal(p, q) for p, q in zip(game.parameters(), other.parameters()))
    save_params(game, tmp_path)
    if kind == "param":
        saved = torch.load(tmp_path / "params" / "variables.pt", weights_only=True)
        assert sorted(saved) == sorted(["b", *NAMES])
        assert all(torch.equal(saved[n], game.variables[n].detach()) for n in NAMES)
    else:
        for name in NAMES:
            module = nn.Linear(1, 1).double()
            module.load_state_dict(torch.load(tmp_path / "params" / f"{name}.pt", weights_only=True))
            assert torch.equal(module.weight, game.networks[name].weight)

    for solver in (solvers.get("sga"), solvers.get("consensus", gamma=0.5, debias=True)):  # debias: per-example calls
        result = solvers.solve(game, solver, solvers.optimizers.get("sgd", lr=1e-2), steps=2)
        assert result.status == "finished", result.message


def test_ordinary_names_keep_their_state_dict_keys():
    """Checkpoints store buffers and parameters by these keys: a name that worked keeps its key."""
    spec = gamedsl.loads(
        "game g\nparam w = 1\nnetwork D = linear(1 -> 1)\n"
        "player P controls w maximizes -w^2\nplayer Q controls D maximizes -D(w)^2\n"
    )
    assert set(TorchGame(spec, batch=1).state_dict()) == {"variables.w", "networks.D.weight", "networks.D.bias"}
