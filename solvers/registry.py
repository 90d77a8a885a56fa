"""Name -> method registries for solvers and optimizers, with validated parameters.

Methods are dataclasses; their fields are their parameters, each declared with `param`:
a default, a one-line doc and the range of values that make sense. `get(name, **params)`
checks names, types and ranges and says what the choices are, like
`scipy.optimize.minimize(method=...)`. The declarations are the single source of truth:
`gamedsl check`, `--set`, `gamedsl solvers` and the docs all read them.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import math
import pkgutil
import typing
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from solvers.errors import SolverError

T = TypeVar("T")


@dataclass(frozen=True)
class Interval:
    """The values a numeric parameter may take: `[0, 1)`, `(0, 1e3]`, `[1, 1000]`.

    Both ends are finite or infinite; an open end excludes its value. NaN lies in no interval.
    """

    low: float
    high: float
    low_open: bool = False
    high_open: bool = False

    @classmethod
    def parse(cls, text: str) -> "Interval":
        """`"[0, 1)"`, `"(0, inf)"`: mathematical notation, read once when a method is declared."""
        body = text.strip()
        ends = body[:1] + body[-1:]
        low, _, high = body[1:-1].partition(",")
        if ends not in ("[]", "[)", "(]", "()") or not high:
            raise ValueError(f"not an interval: {text!r}; write for example '[0, 1)'")
        interval = cls(float(low), float(high), ends[0] == "(", ends[1] == ")")
        if not interval.low <= interval.high:
            raise ValueError(f"empty interval: {text!r}")
        return interval

    def __contains__(self, value: float) -> bool:
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return bool(above and below)

    def __str__(self) -> str:
        return f"{'(' if self.low_open else '['}{number(self.low)}, {number(self.high)}{')' if self.high_open else ']'}"

    def inequality(self, name: str) -> str:
        """`0 <= beta1 < 1`, or `lr > 0` when the upper end is infinite."""
        low = f"{number(self.low)} {'<' if self.low_open else '<='} " if math.isfinite(self.low) else ""
        high = f" {'<' if self.high_open else '<='} {number(self.high)}" if math.isfinite(self.high) else ""
        if not low and math.isfinite(self.high):
            return f"{name}{high}"
        if not high and low:
            return f"{name} {'>' if self.low_open else '>='} {number(self.low)}"
        return f"{low}{name}{high}"

    def requirement(self, value: float) -> str:
        """What `value` fails, in words: the lower end alone when it is too small (a sign
        slip, most often), the whole range otherwise."""
        too_small = not (value > self.low if self.low_open else value >= self.low)
        if too_small and math.isfinite(self.low):
            if self.low == 0:
                return "be positive" if self.low_open else "be non-negative"
            return f"be {'greater than' if self.low_open else 'at least'} {number(self.low)}"
        return f"lie in {self}"


def number(x: float) -> str:
    """A number as a person writes it: 1, 0.5, 1e-8, 1e6, inf."""
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if float(x).is_integer() and abs(x) < 1e5:
        return str(int(x))
    short = f"{x:g}"
    mantissa, _, exponent = (short if float(short) == x else repr(float(x))).partition("e")  # never round
    return f"{mantissa}e{int(exponent)}" if exponent else mantissa


def param(
    default: Any,
    doc: str,
    within: str | None = None,
    *,
    refers: str | None = None,
    per_example: bool = False,
    shown: str | None = None,
    choices: tuple[str, ...] | None = None,
) -> Any:
    """Declare a method parameter.

    `within` is the interval of allowed values of a number ("[0, 1)"): every number has
    one, so that no value can overflow or divide by zero inside a step. `refers="player"`
    says that a name is a player's; `per_example=True` that the value true needs
    per-example gradients (sampled data, a batch of two or more, no batch norm); `shown`
    describes a default that is not self-explanatory ("" meaning "the first player");
    `choices` lists the names a name parameter may take.
    """
    metadata = {
        "doc": doc,
        "within": Interval.parse(within) if within is not None else None,
        "refers": refers,
        "per_example": per_example,
        "shown": shown,
        "choices": choices,
    }
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class ParamSpec:
    name: str
    type: type
    default: Any
    doc: str
    within: Interval | None = None
    refers: str | None = None  # "player": the value names a player of the game ("" for the default)
    per_example: bool = False  # true needs per-example gradients
    shown: str | None = None  # words for the default, when its value says little ("" -> "the first player")
    choices: tuple[str, ...] | None = None  # the names a name parameter may take

    def coerce(self, value: Any, owner: str) -> Any:
        """`value` as this parameter's type (a whole float as an int, an int as a float)."""
        kind = self.type
        if kind is bool:
            if isinstance(value, bool):
                return value
        elif kind is int:
            whole = isinstance(value, int) and not isinstance(value, bool) or isinstance(value, float) and value.is_integer()
            if whole:
                return int(value)
        elif kind is float:
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
        elif kind is str:
            if isinstance(value, str):
                return value
        raise SolverError(f"{owner}: parameter '{self.name}' must be {_type_name(kind)}, got {value!r}", self.about())

    def check(self, value: Any, owner: str) -> Any:
        """`value` if it lies in the declared range; SolverError naming the range if not."""
        if self.within is not None and value not in self.within:
            shown = number(value) if isinstance(value, (int, float)) else repr(value)
            raise SolverError(f"{owner}: {self.name} must {self.within.requirement(value)}, got {shown}", self.about())
        if self.choices is not None and value not in self.choices:
            raise SolverError(f"{owner}: {self.name} must be one of {', '.join(self.choices)}, got {value!r}", self.about())
        return value

    def about(self) -> str:
        """The hint for a wrong value: the range as an inequality, and what the parameter is."""
        return f"{self.within.inequality(self.name) if self.within else self.name}: {self.doc}"


def register_modules(package: str, path: typing.Iterable[str]) -> None:
    """Import every module of `package` (whose `__path__` is `path`), so that each method class
    registers itself where it is defined: a new method touches only its own module, and no list
    of modules is kept by hand."""
    for module in pkgutil.iter_modules(path):
        importlib.import_module(f"{package}.{module.name}")


def _closest(name: str, choices) -> str:
    if not choices:
        return "it takes no parameters"
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    listing = ", ".join(sorted(choices)) or "none"
    return f"did you mean '{close[0]}'? choices: {listing}" if close else f"choices: {listing}"


def _type_name(kind: type) -> str:
    return {bool: "true or false", int: "a whole number", float: "a number", str: "a name"}[kind]


class Registry(Generic[T]):
    """Registered method classes of one family ("solver" or "optimizer")."""

    def __init__(self, family: str):
        self.family = family
        self._classes: dict[str, type[T]] = {}

    def register(self, cls: type[T]) -> type[T]:
        self._classes[cls.name] = cls
        return cls

    def available(self) -> list[str]:
        return sorted(self._classes)

    def in_order(self) -> list[str]:
        """The names in the order the classes declare with their `rank` (solvers: the paper's
        methods first), then by name; a family whose classes declare none is listed by name."""
        return sorted(self._classes, key=lambda name: (getattr(self._classes[name], "rank", 0), name))

    def cls(self, name: str) -> type[T]:
        if name not in self._classes:
            raise SolverError(f"unknown {self.family} '{name}'", _closest(name, self._classes))
        return self._classes[name]

    def describe(self, name: str) -> list[ParamSpec]:
        cls = self.cls(name)
        hints = typing.get_type_hints(cls)
        return [
            ParamSpec(
                f.name,
                hints[f.name],
                f.default,
                f.metadata.get("doc", ""),
                f.metadata.get("within"),
                f.metadata.get("refers"),
                f.metadata.get("per_example", False),
                f.metadata.get("shown"),
                f.metadata.get("choices"),
            )
            for f in dataclasses.fields(cls)
            if f.init
        ]

    def default(self, name: str, parameter: str) -> Any:
        """The declared default of one parameter; SolverError with the choices if there is no such parameter."""
        specs = {spec.name: spec for spec in self.describe(name)}
        if parameter not in specs:
            raise SolverError(f"{self.family} '{name}' has no parameter '{parameter}'", _closest(parameter, specs))
        return specs[parameter].default

    def validate(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        """Check parameter names, types and ranges; return them converted (ints to floats where needed)."""
        specs = {spec.name: spec for spec in self.describe(name)}
        owner = f"{self.family} '{name}'"
        out = {}
        for key, value in params.items():
            if key not in specs:
                raise SolverError(f"{owner} has no parameter '{key}'", _closest(key, specs))
            out[key] = specs[key].check(specs[key].coerce(value, owner), owner)
        return out

    def get(self, name: str, **params: Any) -> T:
        instance = self.cls(name)(**self.validate(name, params))
        check = getattr(instance, "check", None)
        if check is not None:
            check()
        return instance
