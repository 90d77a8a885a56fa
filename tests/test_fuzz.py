"""Fuzzing the front end: mutated valid games end in a checked game or a clean GameError.

Valid games are cut into crude tokens and mutated: a token deleted, duplicated, swapped
with another, replaced or preceded by a token from the file's vocabulary or from a list of
nasty ones; the text truncated; a whole line deleted, duplicated or swapped with another.
Whatever comes out, `gamedsl.loads` must either return a checked game or raise a
`GameError` that knows where the mistake is (a LimitError may not) and renders; any other
exception is a bug in the front end.
"""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gamedsl
from gamedsl.errors import GameError, LimitError
from gamedsl.semantics.model import CheckedGame

ROOT = Path(__file__).resolve().parent.parent

SNIPPETS = [
    # a user-defined divergence, an alias, lets, parts, indexing, vectors and every built-in
    """game snippet_one "lets, divergences and built-ins"
param w[3] = normal(0, 0.1)
param v[3] = [1, 2, 3]
param s = uniform(-1, 1)
divergence mine {
  g1(t) = log(2) - softplus(t) + 0 * (exp(t) + sqrt(abs(t) + 1) + sigmoid(t) + tanh(t) + relu(t))
  g2(t) = softplus(-t) - log(2)
}
divergence objective = mine
let inner = dot(w, v) + sum(w) * mean(v) - norm(w)^2
let first = w[0] + v[2]
player A controls w maximizes -(inner - s)^2 + first
player B controls v, s minimises inner * s + 1e-3 * norm(v)
solve {
  solver = smoothing(gamma=0.5)
  solver.player = A
  optimizer = adam(lr=1e-3, beta1=0.5)
  steps = 10
  device = cpu
  dtype = float64
}
""",
    # a GAN with a linear critic, uniform latent, grid data and the Wasserstein objective
    """game snippet_two
data x ~ grid(size=3, spacing=1.5, std=0.02)
latent z ~ uniform(dim=4, low=-1, high=1)
network D = linear(2 -> 1)
network G = mlp(4 -> 2, hidden=[8], activation=leaky_relu, slope=0.1, bias=false)
player D controls D maximizes wasserstein(critic=D, real=x, fake=G(z)) - 0.1 * E[D(x)^2]
player G controls G minimizes -E[D(G(z))] + E[wasserstein.g1(D(G(z)))]
""",
    # lets and players before the declarations they use; an alias before its divergence
    """game snippet_three
let fake = G(z)
let value = objective(critic=D, real=x, fake=fake)
player D controls D maximizes value
player G controls G, b maximizes -E[objective.g2(D(fake))] - b^2
divergence objective = mine
divergence mine {
  g1(t) = -exp(t - 1)
  g2(t) = -t
}
param b = 0.5
network D = mlp(2 -> 1, hidden=[4], activation=tanh, init=zeros)
network G = linear(3 -> 2, bias=true, init=xavier)
data x ~ normal(mean=[0, 1], std=[1, 0.5])
latent z ~ dirac([1, 2, 3])
solve { solver = momentum(beta=-0.5)  optimizer = rmsprop(lr=1e-3, centered=true)  batch = 8  eval_samples = 10 }
""",
]

GAMES = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "games").glob("*.game"))] + SNIPPETS

TOKEN = re.compile(
    r"""\s+ | \#[^\n]* | "(?:[^"\\\n]|\\.)*" | (?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)? | [A-Za-z_]\w* | -> | .""",
    re.VERBOSE | re.DOTALL,
)

NASTY = [
    "(", ")", "[", "]", "{", "}", "E", "E[", "->", "=", "~", ",", ".", "^", "-", "+", "*", "/",
    "1e999", "-1e999", "0", "-1", "1.5", "1e-400", "9" * 400, ".5", "1.", '"str"', '"', "'", "#",
    "\n", " ", "\t", "\x00", "\xa0", "θ", ";", ":", "@", "%", "\\",
    "game", "param", "network", "data", "latent", "divergence", "let", "player", "controls",
    "maximizes", "minimises", "solve", "true", "false", "solver", "solver.gamma", "g1", "g2", "t",
    "gan", "kl", "mlp", "linear", "ring", "normal", "dirac", "sum", "dot", "log", "D", "G", "x", "z",
    "critic", "real", "fake", "critic=D", "D(", "G(z)", "x[0]", "[1, 2]", "gan.g1(", "2 -> 1",
]  # fmt: skip


def tokenize(text: str) -> list[str]:
    return TOKEN.findall(text)


TOKEN_MUTATIONS = ["delete", "duplicate", "swap", "insert", "replace", "truncate"]
LINE_MUTATIONS = ["delete_line", "duplicate_line", "swap_lines"]  # whole declarations move


def mutate_lines(draw, tokens: list[str], how: str) -> list[str]:
    lines = "".join(tokens).splitlines(keepends=True)
    if lines:
        i, j = (draw(st.integers(0, len(lines) - 1)) for _ in range(2))
        if how == "delete_line":
            del lines[i]
        elif how == "duplicate_line":
            lines.insert(j, lines[i])
        else:
            lines[i], lines[j] = lines[j], lines[i]
    return tokenize("".join(lines))


@st.composite
def mutated_games(draw) -> str:
    tokens = tokenize(draw(st.sampled_from(GAMES)))
    vocabulary = sorted(set(tokens))
    for _ in range(draw(st.integers(1, 4))):
        if not tokens:
            break
        i = draw(st.integers(0, len(tokens) - 1))
        match draw(st.sampled_from(TOKEN_MUTATIONS + LINE_MUTATIONS)):
            case "delete_line" | "duplicate_line" | "swap_lines" as how:
                tokens = mutate_lines(draw, tokens, how)
            case "delete":
                del tokens[i]
            case "duplicate":
                tokens.insert(i, tokens[i])
            case "swap":
                j = draw(st.integers(0, len(tokens) - 1))
                tokens[i], tokens[j] = tokens[j], tokens[i]
            case "insert" | "replace" as how:
                new = draw(st.one_of(st.sampled_from(NASTY), st.sampled_from(vocabulary)))
                if how == "insert":
                    tokens.insert(i, new)
                else:
                    tokens[i] = new
            case "truncate":
                del tokens[i:]
    return "".join(tokens)


def assert_clean(text: str) -> None:
    try:
        game = gamedsl.loads(text, "fuzz.game")
    except LimitError as exc:
        assert exc.render()
    except GameError as exc:
        assert exc.span is not None, f"{type(exc).__name__} without a position: {exc.message}"
        lines = max(1, len(text.splitlines()))
        assert 1 <= exc.span.line <= lines, f"line {exc.span.line} of {lines}: {exc.message}"
        assert exc.span.column >= 1
        rendered = exc.render()
        assert rendered.startswith(f"fuzz.game:{exc.span.line}:{exc.span.column}: error: ")
        assert exc.as_dict()["exit_code"] == exc.code
    else:
        assert isinstance(game, CheckedGame)
        for warning in game.warnings:
            assert warning.render()


@settings(
    max_examples=2000,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
@given(mutated_games())
def test_mutated_games_fail_cleanly(text: str):
    assert_clean(text)


def test_the_unmutated_games_are_valid():
    for text in GAMES:
        assert isinstance(gamedsl.loads(text, "fuzz.game"), CheckedGame)
