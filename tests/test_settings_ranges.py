"""Solver and optimizer parameters have declared ranges; values and `--set` text are checked
before anything runs, and their errors are messages, not tracebacks (issue 11: items 1, 3
and the red team's "hyperparameter ranges" and "--set numbers").
"""

from __future__ import annotations

import math

import pytest
import torch

import gamedsl
import solvers
from gamedsl.errors import ExitCode, GameCheckError, GameError, GameSyntaxError, LimitError, UsageError
from gamedsl.semantics.settings import parse_override, resolve
from gamedsl.sweep.grid import parse_seeds
from gamedsl.syntax.messages import LOOKALIKES

BILINEAR = """game bilinear
param phi = 1
param theta = 1
player P controls phi maximizes phi * theta
player Q controls theta minimizes phi * theta
"""

REGISTRIES = {"solver": solvers.SOLVERS, "optimizer": solvers.optimizers.OPTIMIZERS}
NUMERIC = [
    (family, name, spec)
    for family, registry in REGISTRIES.items()
    for name in registry.available()
    for spec in registry.describe(name)
    if spec.type in (int, float)
]


def bilinear_game(dtype: torch.dtype):
    phi = torch.tensor(1.0, dtype=dtype, requires_grad=True)
    theta = torch.tensor(1.0, dtype=dtype, requires_grad=True)
    return solvers.make_game({"P": [phi], "Q": [theta]}, lambda: None, lambda _: [phi * theta, -phi * theta])


def _next(value: float, direction: float, kind: type) -> float:
    """The closest number of `kind` after `value` towards `direction`."""
    if kind is int:
        return int(value) + (1 if direction > 0 else -1)
    return math.nextafter(value, direction)


def inside_ends(spec) -> list[float]:
    """The extreme values a parameter's range admits: its finite ends, or the closest
    numbers inside an open end."""
    r, out = spec.within, []
    if math.isfinite(r.low):
        out.append(_next(r.low, math.inf, spec.type) if r.low_open else spec.type(r.low))
    if math.isfinite(r.high):
        out.append(_next(r.high, -math.inf, spec.type) if r.high_open else spec.type(r.high))
    return out


def outside_ends(spec) -> list[float]:
    """The closest values beyond each finite end of the range."""
    r, out = spec.within, []
    if math.isfinite(r.low):
        out.append(spec.type(r.low) if r.low_open else _next(r.low, -math.inf, spec.type))
    if math.isfinite(r.high):
        out.append(spec.type(r.high) if r.high_open else _next(r.high, math.inf, spec.type))
    return out


@pytest.mark.parametrize("family, name, spec", NUMERIC, ids=[f"{f}-{n}-{s.name}" for f, n, s in NUMERIC])
def test_every_number_has_a_range_holding_its_default(family, name, spec):
    assert spec.within is not None, f"{family} '{name}': declare a range for '{spec.name}' with param(..., within)"
    assert spec.default in spec.within
    assert math.isfinite(spec.within.low) or math.isfinite(spec.within.high), "a range without an end protects nothing"


@pytest.mark.parametrize("family, name, spec", NUMERIC, ids=[f"{f}-{n}-{s.name}" for f, n, s in NUMERIC])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_the_ends_of_every_range_run(family, name, spec, dtype):
    """No value a range admits may crash a step: it may diverge, which is a clean exit 6.
    Before ranges, adam(beta1=1) divided by zero and sga(lam=1e308) overflowed float32."""
    for value in inside_ends(spec):
        chosen = {spec.name: value}
        solver = solvers.get(name, **chosen) if family == "solver" else solvers.get("simga")
        optimizer = solvers.optimizers.get(name, **chosen) if family == "optimizer" else solvers.optimizers.get("sgd")
        result = solvers.solve(bilinear_game(dtype), solver, optimizer, steps=2)
        assert result.status in ("finished", "diverged"), (value, result.message)


@pytest.mark.parametrize("family, name, spec", NUMERIC, ids=[f"{f}-{n}-{s.name}" for f, n, s in NUMERIC])
def test_values_beyond_the_range_are_refused_naming_it(family, name, spec):
    registry = REGISTRIES[family]
    for value in outside_ends(spec):
        with pytest.raises(solvers.SolverError) as caught:
            registry.get(name, **{spec.name: value})
        assert f"{spec.name} must " in caught.value.message
        shown = caught.value.message.rpartition("got ")[2]
        assert float(shown) == value, "the value is shown as it is, never rounded into the range"
        assert caught.value.hint.startswith(spec.within.inequality(spec.name))


@pytest.mark.parametrize(
    "text, range_text, wrong",
    [
        ("optimizer = adam(beta1=1)", "[0, 1)", "1"),
        ("optimizer = adam(beta1=-1)", "non-negative", "-1"),
        ("optimizer = adam(beta2=1, eps=0)", "[0, 1)", "1"),
        ("optimizer = adam(beta2=0.5, eps=0)", "positive", "0"),
        ("solver = sga(lam=1e308)", "[0, 1e6]", "1e308"),
        ("solver = consensus(gamma=1e308)", "[0, 1e6]", "1e308"),
        ("optimizer = sgd(lr=1e308)", "(0, 1000]", "1e308"),
        ("optimizer = rmsprop(alpha=1)", "[0, 1)", "1"),
    ],
)
def test_the_red_team_values_are_refused_by_check_and_by_set(text, range_text, wrong):
    """Before: each of these passed `check` and raised ZeroDivisionError or a float overflow in `solve`."""
    with pytest.raises(GameCheckError) as caught:
        gamedsl.loads(BILINEAR + "solve {\n  " + text + "\n}\n")
    error = caught.value
    assert range_text in error.message and error.span.line == 7
    assert error.source.line(7)[error.span.column - 1 : error.span.end_column - 1] == wrong
    key, _, value = text.partition(" = ")
    with pytest.raises(UsageError) as caught:
        resolve({}, [parse_override(f"{key}={value}")], {})
    error = caught.value
    assert range_text in error.message and error.code == ExitCode.USAGE
    assert error.source.text[error.span.column - 1 : error.span.end_column - 1] == wrong


def test_a_dotted_set_is_checked_against_the_range_too():
    with pytest.raises(UsageError) as caught:
        resolve({}, [parse_override("solver=momentum"), parse_override("solver.beta=1")], {})
    assert caught.value.message == "solver 'momentum': beta must lie in (-1, 1), got 1"
    assert caught.value.hint.startswith("-1 < beta < 1")
    assert caught.value.span.column == len("solver.beta=") + 1


def test_a_repeated_parameter_is_refused_where_it_is_repeated():
    with pytest.raises(GameCheckError) as caught:
        gamedsl.loads(BILINEAR + "solve { solver = consensus(gamma=1, gamma=2) }\n")
    assert caught.value.message == "parameter 'gamma' is given twice"
    assert caught.value.source.line(caught.value.span.line)[caught.value.span.column - 1 :].startswith("gamma=2")
    with pytest.raises(UsageError, match="parameter 'gamma' is given twice"):
        resolve({}, [parse_override("solver=consensus(gamma=1, gamma=2)")], {})
    with pytest.raises(GameCheckError, match="repeats the parameter gamma"):
        gamedsl.loads(BILINEAR + "solve {\n  solver = consensus(gamma=1)\n  solver.gamma = 2\n}\n")


@pytest.mark.parametrize("text", ["steps=1e999", "solver.gamma=1e999", "solver=consensus(gamma=1e999)", "x=[1e999]"])
def test_set_numbers_too_large_are_usage_errors(text):
    """Before: lark's VisitError escaped parse_value, a traceback."""
    with pytest.raises(UsageError) as caught:
        parse_override(text)
    error = caught.value
    assert error.code == ExitCode.USAGE and "too large" in error.message
    assert text[error.span.column - 1 : error.span.end_column - 1] == "1e999"


@pytest.mark.parametrize(
    "text, message, column",
    [
        ("optimizer=adam(lr=1e-3", "unclosed '('", 15),
        ("solver=consensus(gamma=[1, 2)", "')' does not match the '[' on line 1", 29),
        ("steps=", "missing value", 7),
        ("hidden=[1, 2", "unclosed '['", 8),
    ],
)
def test_set_syntax_errors_are_usage_errors_at_the_fault(text, message, column):
    with pytest.raises(UsageError) as caught:
        parse_override(text)
    error = caught.value
    assert error.message == message and error.span.column == column and error.code == ExitCode.USAGE


def test_cli_set_syntax_error_exits_2(cli, tmp_path):
    result = cli("solve", "games/bilinear.game", "--set", "optimizer=adam(lr=1e-3", "--out", tmp_path / "r")
    assert result.code == ExitCode.USAGE and "unclosed '('" in result.stderr and "Traceback" not in result.stderr
    result = cli("solve", "games/bilinear.game", "--set", "solver.gamma=1e999", "--out", tmp_path / "r")
    assert result.code == ExitCode.USAGE and "too large" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("char", sorted(LOOKALIKES), ids=[f"U+{ord(c):04X}" for c in sorted(LOOKALIKES)])
def test_lookalike_characters_name_the_ascii_they_imitate(char):
    with pytest.raises(GameSyntaxError) as caught:
        gamedsl.loads(BILINEAR + f"let a = phi {char} theta\n")
    hint = caught.value.hint
    assert caught.value.message == f"unexpected character {char!r}"
    if LOOKALIKES[char] == "'":
        assert "typographic quote" in hint and '"like this"' in hint
    else:
        assert f"U+{ord(char):04X}" in hint and f"looks like '{LOOKALIKES[char]}'" in hint
    with pytest.raises(UsageError) as caught:
        parse_override(f"solver.gamma={char}1")
    assert caught.value.hint == hint


@pytest.mark.parametrize("char, ascii_text", [("\uff08", "("), ("\uff0b", "+"), ("\u00b2", "^")])
def test_full_width_forms_and_superscripts_are_explained(char, ascii_text):
    with pytest.raises(GameSyntaxError) as caught:
        gamedsl.loads(BILINEAR + f"let a = phi {char} theta\n")
    assert f"'{ascii_text}'" in caught.value.hint


def test_invisible_characters_are_named():
    for char in ("\u00a0", "\u200b", "\ufeff"):
        with pytest.raises(GameSyntaxError) as caught:
            gamedsl.loads(BILINEAR + f"let a = phi *{char}theta\n")
        assert f"U+{ord(char):04X}" in caught.value.hint


def test_a_trailing_comma_in_a_solve_block_is_named_as_such():
    with pytest.raises(GameSyntaxError) as caught:
        gamedsl.loads(BILINEAR + "solve { steps = 1, }\n")
    assert caught.value.message == "settings are not separated by ','"
    assert caught.value.span.line == 6 and caught.value.span.column == len("solve { steps = 1") + 1


def test_an_attribute_of_a_network_is_explained():
    text = BILINEAR.replace("param theta = 1", "param theta = 1\nnetwork D = linear(1 -> 1)") + "let w = D.weight\n"
    with pytest.raises(GameSyntaxError) as caught:
        gamedsl.loads(text)
    assert "'D.weight'" in caught.value.message and "expected" not in caught.value.message
    assert "D(x)" in caught.value.hint


@pytest.mark.parametrize(
    "text, kind, message",
    [
        ("3-1", UsageError, "the range 3-1 is reversed"),
        ("0-99999999999999", LimitError, "--seeds names 100,000,000,000,000 seeds; a sweep runs at most 10,000"),
        ("0-4,7-2", UsageError, "the range 7-2 is reversed"),
        ("x", UsageError, "--seeds takes a range or a list"),
    ],
)
def test_seeds_that_cannot_be_run(text, kind, message):
    with pytest.raises(kind) as caught:
        parse_seeds(text)
    assert caught.value.message.startswith(message) and type(caught.value) is kind


def test_seeds_are_expanded_in_order():
    assert parse_seeds("0-2,7,4-5") == [0, 1, 2, 7, 4, 5]
    assert len(parse_seeds("0-9999")) == 10_000


def test_solvers_lists_ranges_and_meaningful_defaults(cli):
    result = cli("solvers")
    assert result.code == 0
    assert "player=(the first player)" in result.stdout and "player= " not in result.stdout
    for family, name, spec in NUMERIC:
        assert f"{spec.name}=" in result.stdout and f" in {spec.within}" in result.stdout
    import json

    data = json.loads(cli("solvers", "--json").stdout)
    assert data["optimizer"]["adam"]["parameters"]["beta1"]["range"] == "[0, 1)"
    assert data["solver"]["smoothing"]["parameters"]["player"]["default_means"] == "the first player"


def test_errors_of_set_are_game_errors_never_lark_errors():
    """Every malformed --set argument is a GameError: the CLI prints it and exits with its code."""
    for text in ["x=(", "x=)", "x=[", "x=]", "x=f(a=", "x=1 2", "x=->", "x=\"", "x=1e999 -> 2", "x=f(a=1, 2)"]:
        with pytest.raises(GameError):
            parse_override(text)
