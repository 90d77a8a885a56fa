"""Sizes and what `check` can know (issue 11, red team classes "sizes and memory" and
"what check can know, check says"): a game that cannot run is refused by `gamedsl check`,
with a position, instead of failing on allocation or at the first step of `solve`.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest
import torch

import gamedsl
from gamedsl.errors import ExitCode, GameCheckError, LimitError, UsageError
from gamedsl.nets.builders import BUILDERS
from gamedsl.nets.dcgan import has_batchnorm
from gamedsl.semantics.runnable import check_run
from gamedsl.semantics.settings import parse_override, resolve

MOG = """game mog
data x ~ ring(modes=8, radius=1, std=0.01)
latent z ~ normal(16)
network D = mlp(2 -> 1, hidden=[16])
network G = mlp(16 -> 2, hidden=[16])
player D controls D maximizes gan(critic=D, real=x, fake=G(z))
player G controls G maximizes -E[gan.g2(D(G(z)))]
"""

GAMES = Path(__file__).resolve().parent.parent / "games"

BILINEAR = """game bilinear
param phi = 1
param theta = 1
player P controls phi maximizes phi * theta
player Q controls theta minimizes phi * theta
"""


# ---- the builders' footprints against the modules they describe ------------------------------


def _arguments(name: str, **given):
    values = {arg.name: arg.default for arg in BUILDERS[name].signature.args}
    return values | given


def _layer_outputs(module: torch.nn.Module, shape) -> list[int]:
    """Per-example sizes of what every leaf module outputs on a batch of two."""
    sizes = []
    leaves = [m for m in module.modules() if not list(m.children())]
    hooks = [m.register_forward_hook(lambda m, i, o: sizes.append(o.numel() // 2)) for m in leaves]
    module(torch.zeros(2, *shape))
    for hook in hooks:
        hook.remove()
    return sizes


BOTH = (True, False)
CASES = [("mlp", _arguments("mlp", io=((3,), (2,)), hidden=h, bias=b)) for h in [(), (4,), (5, 1, 7)] for b in BOTH]
CASES += [("linear", _arguments("linear", io=((4,), (3,)), bias=b)) for b in BOTH]
for layers, doubling, batchnorm, dense, resnet in itertools.product([1, 2, 3], BOTH, BOTH, [0, 7, 900], BOTH):
    common = dict(filters=3, layers=layers, doubling=doubling, batchnorm=batchnorm, dense=dense, resnet=resnet)
    CASES.append(("dcgan_generator", _arguments("dcgan_generator", io=((5,), (2, 16, 8)), **common)))
    CASES.append(("dcgan_discriminator", _arguments("dcgan_discriminator", io=((2, 16, 8), (2,)), **common)))


@pytest.mark.parametrize("name, args", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_a_footprint_counts_what_the_module_holds(name, args):
    """Counted from the arguments alone, checked against the torch module they build."""
    footprint = BUILDERS[name].footprint(args)
    module = BUILDERS[name].module(args)
    outputs = _layer_outputs(module, args["io"][0])
    assert footprint.parameters == sum(p.numel() for p in module.parameters())
    assert footprint.activations == sum(outputs)
    assert footprint.widest == max(outputs)
    assert footprint.couples_examples == has_batchnorm(module)


def test_check_builds_no_network(monkeypatch):
    """Parameters are counted, never built: a network of 2^63 parameters crashed `check` on the meta device."""
    for name, builder in BUILDERS.items():
        monkeypatch.setitem(BUILDERS, name, builder.__class__(**{**builder.__dict__, "module": _refuse}))
    game = gamedsl.load(GAMES / "cifar_dcgan.game")
    assert all(game.parameter_count(p) > 0 for p in game.players)


def _refuse(args):
    raise AssertionError("gamedsl check built a network")


# ---- sizes beyond memory: refused by check, with a position and exit 7 ------------------------


@pytest.mark.parametrize(
    "extra, points_at",
    [
        ("network H = mlp(2 -> 1, hidden=[100000, 100000])\nplayer H controls H maximizes E[H(x)]", "H"),
        ("param w[1000000000000] = 0\nplayer W controls w maximizes sum(w)", "w"),
        ("param w[9223372036854775808] = 0\nplayer W controls w maximizes sum(w)", "w"),
        ("network H = mlp(2 -> 1, hidden=[9223372036854775808])\nplayer H controls H maximizes E[H(x)]", "H"),
        ("solve { batch = 1000000000 }", "1000000000"),
        ("solve { eval_samples = 1000000000 }", "1000000000"),
        ("solve { batch = 1000000000 shards = 1000000000 }", "1000000000"),
    ],
)
def test_sizes_beyond_memory_are_limit_errors(extra, points_at):
    with pytest.raises(LimitError) as caught:
        gamedsl.loads(MOG + extra + "\n")
    error = caught.value
    assert error.code == ExitCode.LIMIT and "memory_limit" in error.message
    assert error.source.line(error.span.line)[error.span.column - 1 :].startswith(points_at)


def test_shards_beyond_the_batch_do_not_divide_it():
    message = r"the batch \(64\) must be divisible by the number of shards \(1,000,000,000\)"
    with pytest.raises(GameCheckError, match=message):
        gamedsl.loads(MOG + "solve { shards = 1000000000 }\n")


def _needed(error: LimitError) -> int:
    return int(re.search(r"memory_limit = (\d+)", error.hint).group(1))


def test_memory_limit_raises_the_limit_exactly_as_far_as_the_hint_says():
    text = MOG + "solve {\n  batch = 100000000\n%s}\n"
    with pytest.raises(LimitError) as caught:
        gamedsl.loads(text % "")
    needed = _needed(caught.value)
    with pytest.raises(LimitError):
        gamedsl.loads(text % f"  memory_limit = {needed - 1}\n")
    assert gamedsl.loads(text % f"  memory_limit = {needed}\n").settings["memory_limit"]


def test_the_estimate_grows_with_each_size():
    """Doubling the batch, a layer or the samples never lowers what the run needs."""

    def needed(extra: str) -> int:
        with pytest.raises(LimitError) as caught:
            gamedsl.loads(MOG.replace("hidden=[16]", "hidden=[%s]") % ("16", "16") + extra)
        return _needed(caught.value)

    assert needed("solve { batch = 400000000 }") > needed("solve { batch = 200000000 }")
    assert needed("solve { eval_samples = 40000000000 }") > needed("solve { eval_samples = 20000000000 }")


def test_the_catalog_fits_the_default_limit():
    paths = sorted(GAMES.glob("*.game"))
    assert paths
    for path in paths:
        gamedsl.load(path)


def test_check_cli_exits_7_without_a_traceback(cli, tmp_path):
    path = tmp_path / "big.game"
    path.write_text(BILINEAR + "param w[9223372036854775808] = 0\nplayer W controls w maximizes sum(w)\n")
    result = cli("check", path)
    assert result.code == ExitCode.LIMIT and "Traceback" not in result.stderr and "Overflow" not in result.stderr
    assert f"{path}:6:7: error: the run would need about" in result.stderr


def test_threads_are_bounded():
    with pytest.raises(GameCheckError, match="at most 1024, got 100000"):
        gamedsl.loads(BILINEAR + "solve { threads = 100000 }\n")
    with pytest.raises(UsageError, match="at most 1024"):
        resolve({}, [parse_override("threads=100000")], {})


# ---- what solve would find, found by check --------------------------------------------------

DIGITS_BN = """game digits
data x ~ digits(size=8)
latent z ~ normal(16)
network D = dcgan_discriminator([1, 8, 8] -> 1, filters=4, layers=2)
network G = dcgan_generator(16 -> [1, 8, 8], filters=4, layers=2)
player D controls D maximizes gan(critic=D, real=x, fake=G(z))
player G controls G maximizes -E[gan.g2(D(G(z)))]
"""

THREE = """game three
param a = 1
param b = 1
param c = 1
player P controls a maximizes a * b
player Q controls b maximizes b * c
player R controls c maximizes c * a
"""


@pytest.mark.parametrize(
    "game, block, message, points_at",
    [
        (BILINEAR, "solver = consensus(debias=true)", "with debias=true needs sampled data", "true"),
        (MOG, "solver = consensus(debias=true)\n  batch = 1", "needs a batch of at least 2, got 1", "1"),
        (DIGITS_BN, "solver = consensus(debias=true)", "which batch norm does not have: network 'D'", "true"),
        (MOG, "batch = 10\n  shards = 3", "the batch (10) must be divisible by the number of shards (3)", "3"),
        (MOG, "solver = smoothing(player=Q)", "solver 'smoothing': no player named 'Q'", "Q"),
        (MOG, "solver = smoothing\n  solver.player = Q", "solver 'smoothing': no player named 'Q'", "Q"),
        (MOG, "solver = cgd\n  optimizer = adam(lr=1e-3)", "solver 'cgd' needs optimizer sgd, not adam", "adam"),
        (MOG, "solver = acgd\n  optimizer = rmsprop", "solver 'acgd' needs optimizer sgd, not rmsprop", "rmsprop"),
        (THREE, "solver = cgd", "solver 'cgd' is defined for 2 players; this game has 3", "cgd"),
    ],
)
def test_check_finds_what_solve_would(game, block, message, points_at):
    with pytest.raises(GameCheckError) as caught:
        gamedsl.loads(game + "solve {\n  " + block + "\n}\n")
    error = caught.value
    assert message in error.message and error.code == ExitCode.INVALID_GAME
    assert error.source.line(error.span.line)[error.span.column - 1 :].startswith(points_at)


def test_the_smoothing_player_may_be_any_player():
    assert gamedsl.loads(MOG + "solve { solver = smoothing(player=G) }\n").settings["solver"]


@pytest.mark.parametrize(
    "game, sets, flags, kind, message, at",
    [
        (MOG, ["solver=cgd", "optimizer=adam"], {}, UsageError, "needs optimizer sgd, not adam", "adam"),
        (MOG, ["solver=smoothing(player=Q)"], {}, UsageError, "no player named 'Q'", "Q"),
        (MOG, ["shards=3"], {"batch": 10}, UsageError, "must be divisible", "3"),
        (MOG, ["solver=consensus(debias=true)"], {"batch": 1}, UsageError, "a batch of at least 2", None),
        (BILINEAR, ["solver.debias=true"], {"solver": "consensus"}, UsageError, "needs sampled data", "true"),
        (MOG, ["batch=1000000000"], {}, LimitError, "memory_limit = 16", "1000000000"),
        (MOG, ["eval_samples=1000000000000"], {}, LimitError, "memory_limit = 16", "1000000000000"),
    ],
)
def test_the_command_line_is_checked_once_merged(game, sets, flags, kind, message, at):
    """The last setting that makes the run impossible is blamed: a --set, or a flag."""
    checked = gamedsl.loads(game)
    config = resolve(checked.settings, [parse_override(s) for s in sets], flags)
    with pytest.raises(kind) as caught:
        check_run(checked, config)
    error = caught.value
    assert message in error.message and error.code == (ExitCode.LIMIT if kind is LimitError else ExitCode.USAGE)
    if at is None:
        assert error.message.startswith("--batch: ")
    else:
        assert error.source.path == "--set" and error.source.text[error.span.column - 1 :].startswith(at)


def test_a_game_with_a_command_line_that_fits_passes():
    checked = gamedsl.loads(MOG)
    check_run(checked, resolve(checked.settings, [parse_override("solver=consensus(debias=true)")], {"batch": 4}))
