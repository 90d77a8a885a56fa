"""Typed argument lists for builders, sources, initialisers, solvers and optimizers.

A `Signature` binds the arguments of a call such as `mlp(2 -> 1, hidden=[16, 16])` to
Python values, and on any mistake (unknown keyword, missing or repeated argument, wrong
type, out of range) raises a `GameCheckError` that points at the offending argument.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from gamedsl.errors import GameCheckError, Span, did_you_mean
from gamedsl.syntax import ast

REQUIRED = object()


def close_match(name: str, choices) -> str | None:
    """'did you mean X?' when one of `choices` is close to `name`, else None."""
    hint = did_you_mean(name, choices)
    return hint if hint and hint.startswith("did you mean") else None


def suggest(name: str, choices, what: str = "choices") -> str | None:
    """A close match if there is one, and the list of choices when it is short (up to 12):
    "did you mean 'mlp'? builders: linear, mlp", or "initialisers: normal, uniform"."""
    choices = sorted(set(choices))
    close = close_match(name, choices)
    listing = f"{what}: " + ", ".join(choices) if choices and len(choices) <= 12 else None
    return " ".join(p for p in (close, listing) if p) or None

Shape = tuple[int, ...]


def normalize_shape(shape: Shape) -> Shape:
    """Size-1 vectors are scalars: `linear(1 -> 1)` maps a number to a number."""
    return () if tuple(shape) in ((), (1,)) else tuple(shape)


def show_shape(shape: Shape) -> str:
    if not shape:
        return "a scalar"
    if len(shape) == 1:
        return f"a vector of size {shape[0]}"
    return "shape [" + ", ".join(map(str, shape)) + "]"


class Kind:
    """How one argument is read from the AST. Subclasses convert or raise."""

    label = "a value"

    def convert(self, value: ast.Value) -> Any:
        raise NotImplementedError

    example: str | None = None  # shown as the hint when a value of the wrong kind is given

    def wrong(self, value: ast.Value, extra: str = "") -> GameCheckError:
        return GameCheckError(f"expected {self.label}, got {describe_value(value)}{extra}", span=value.span, hint=self.example)


def describe_value(value: ast.Value) -> str:
    match value:
        case ast.NumberValue(text=text):
            return f"the number {text if len(text) <= 30 else text[:27] + '...'}"
        case ast.BoolValue(value=b):
            return "true" if b else "false"
        case ast.StringValue(value=s):
            return f'the string "{s if len(s) <= 30 else s[:27] + "..."}"'
        case ast.IdentValue(name=n):
            return f"the name '{n}'"
        case ast.ListValue(items=items):
            return "a list" if items else "an empty list"
        case ast.ArrowValue():
            return "an arrow IN -> OUT"
        case ast.CallValue(name=n):
            return f"a call of '{n}'"
    return "a value"


@dataclass(frozen=True)
class Int(Kind):
    minimum: int | None = None
    label: str = "a whole number"
    maximum: int | None = None

    def convert(self, value):
        if not (isinstance(value, ast.NumberValue) and value.is_int):
            raise self.wrong(value)
        number = int(value.value)
        if self.minimum is not None and number < self.minimum:
            raise GameCheckError(f"expected a whole number of at least {self.minimum}, got {number}", span=value.span)
        if self.maximum is not None and number > self.maximum:
            raise GameCheckError(f"expected a whole number of at most {self.maximum}, got {number}", span=value.span)
        return number


LARGEST = 1e15  # builder, source and initialiser numbers: larger ones overflow float32 tensors in use


@dataclass(frozen=True)
class Float(Kind):
    minimum: float | None = None
    positive: bool = False
    label: str = "a number"
    maximum: float | None = None

    def convert(self, value):
        if not isinstance(value, ast.NumberValue):
            raise self.wrong(value)
        number = float(value.value)
        if abs(number) > LARGEST:
            raise GameCheckError(
                f"the number {value.text} is too large here (at most {LARGEST:g} in size)",
                span=value.span,
                hint="a network's, a source's or an initialiser's number this large would overflow float32",
            )
        if self.positive and not number > 0:
            raise GameCheckError(f"expected a positive number, got {value.text}", span=value.span)
        if self.minimum is not None and number < self.minimum:
            raise GameCheckError(f"expected a number of at least {self.minimum:g}, got {value.text}", span=value.span)
        if self.maximum is not None and number > self.maximum:
            raise GameCheckError(f"expected a number of at most {self.maximum:g}, got {value.text}", span=value.span)
        return number


@dataclass(frozen=True)
class Bool(Kind):
    label: str = "true or false"

    def convert(self, value):
        if not isinstance(value, ast.BoolValue):
            raise self.wrong(value)
        return value.value


@dataclass(frozen=True)
class Choice(Kind):
    choices: tuple[str, ...] = ()

    @property
    def label(self) -> str:  # type: ignore[override]
        return "one of " + ", ".join(self.choices)

    def convert(self, value):
        if isinstance(value, (ast.IdentValue, ast.StringValue)):
            name = value.name if isinstance(value, ast.IdentValue) else value.value
            if name in self.choices:
                return name
            raise GameCheckError(f"unknown choice '{name}'", span=value.span, hint=suggest(name, self.choices))
        raise self.wrong(value)


@dataclass(frozen=True)
class Text(Kind):
    label: str = "a string"

    def convert(self, value):
        if isinstance(value, ast.StringValue):
            return value.value
        raise self.wrong(value)


@dataclass(frozen=True)
class IntList(Kind):
    minimum: int = 1
    label: str = "a list of whole numbers"
    example = "write a list in square brackets, such as [16, 16]"

    def convert(self, value):
        if not isinstance(value, ast.ListValue):
            raise self.wrong(value)
        return tuple(Int(self.minimum).convert(item) for item in value.items)


@dataclass(frozen=True)
class ShapeKind(Kind):
    """A shape: `16` or `[3, 32, 32]`."""

    label: str = "a size such as 16 or [3, 32, 32]"

    def convert(self, value):
        if isinstance(value, ast.NumberValue):
            return (Int(1).convert(value),)
        if isinstance(value, ast.ListValue) and value.items:
            return tuple(Int(1).convert(item) for item in value.items)
        raise self.wrong(value)


@dataclass(frozen=True)
class Arrow(Kind):
    """`IN -> OUT`: the shapes a network maps between."""

    label: str = "an arrow such as 2 -> 1"

    def convert(self, value):
        if not isinstance(value, ast.ArrowValue):
            raise self.wrong(value, "; write the input and output sizes as IN -> OUT")
        return ShapeKind().convert(value.source), ShapeKind().convert(value.target)


@dataclass(frozen=True)
class Numeric(Kind):
    """A number or a flat list of numbers (means, values of a Dirac distribution)."""

    label: str = "a number or a list of numbers"

    def convert(self, value):
        if isinstance(value, ast.NumberValue):
            return float(value.value)
        if isinstance(value, ast.ListValue) and value.items:
            return tuple(Float().convert(item) for item in value.items)
        raise self.wrong(value)


@dataclass(frozen=True)
class Arg:
    name: str
    kind: Kind
    default: Any = REQUIRED
    doc: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


@dataclass(frozen=True)
class Signature:
    """The arguments of one named callable, in positional order."""

    name: str
    args: tuple[Arg, ...]
    doc: str = ""
    validate: Callable[[dict, dict], None] | None = field(default=None, compare=False)

    def usage(self) -> str:
        parts = []
        for arg in self.args:
            if isinstance(arg.kind, Arrow):
                parts.append("IN -> OUT")
            elif arg.required:
                parts.append(arg.name)
            else:
                parts.append(f"{arg.name}={format_default(arg.default)}")
        return f"{self.name}({', '.join(parts)})"

    def bind(self, call: ast.CallValue, what: str) -> dict[str, Any]:
        """Match positional and keyword arguments, convert them, and fill defaults.

        `self.validate(values, spans)` may raise for constraints between arguments.
        """
        by_name = {arg.name: arg for arg in self.args}
        values: dict[str, Any] = {}
        spans: dict[str, Span] = {}
        positional = [a for a in call.args if a.name is None]
        if len(positional) > len(self.args):
            extra = positional[len(self.args)]
            raise GameCheckError(
                f"{what} '{self.name}' takes at most {len(self.args)} arguments, got {len(positional)}",
                span=extra.span,
                hint=f"usage: {self.usage()}",
            )
        for arg, given in zip(self.args, positional):
            values[arg.name] = arg.kind.convert(given.value)
            spans[arg.name] = given.span
        for given in call.args:
            if given.name is None:
                continue
            if given.name not in by_name:
                raise GameCheckError(
                    f"{what} '{self.name}' has no argument '{given.name}'",
                    span=given.span,
                    hint=close_match(given.name, by_name) or f"usage: {self.usage()}",
                )
            if given.name in values:
                raise GameCheckError(f"argument '{given.name}' is given twice", span=given.span)
            values[given.name] = by_name[given.name].kind.convert(given.value)
            spans[given.name] = given.span
        missing = [arg.name for arg in self.args if arg.required and arg.name not in values]
        if missing:
            raise GameCheckError(
                f"{what} '{self.name}' needs the argument '{missing[0]}'",
                span=call.span,
                hint=f"usage: {self.usage()}",
            )
        for arg in self.args:
            values.setdefault(arg.name, arg.default)
        if self.validate is not None:
            self.validate(values, spans | {"": call.span})
        return values


def format_default(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(format_default(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
