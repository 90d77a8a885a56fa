"""The abstract syntax tree: frozen dataclasses, each with the source span it came from.

Spans do not take part in equality or hashing, so two occurrences of `D(G(z))` are equal
nodes. The torch compiler relies on this to compute shared subexpressions once per step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from gamedsl.errors import Span

_NOWHERE = Span(0, 0, 0, 0)


def _span():
    return field(default=_NOWHERE, compare=False, hash=False, repr=False)


# ---- values: arguments of builders, sources, initialisers and solve settings ----------


@dataclass(frozen=True)
class NumberValue:
    value: float
    text: str
    span: Span = _span()

    @property
    def is_int(self) -> bool:
        return float(self.value).is_integer() and not any(c in self.text for c in ".eE")


@dataclass(frozen=True)
class BoolValue:
    value: bool
    span: Span = _span()


@dataclass(frozen=True)
class StringValue:
    value: str
    span: Span = _span()


@dataclass(frozen=True)
class IdentValue:
    name: str
    span: Span = _span()


@dataclass(frozen=True)
class ListValue:
    items: tuple["Value", ...]
    span: Span = _span()


@dataclass(frozen=True)
class ArrowValue:
    """`IN -> OUT` in a network builder: the input and output shapes."""

    source: "Value"
    target: "Value"
    span: Span = _span()


@dataclass(frozen=True)
class ValueArg:
    """One argument of a call value; `name` is None for a positional argument."""

    name: str | None
    value: "Value"
    span: Span = _span()


@dataclass(frozen=True)
class CallValue:
    name: str
    args: tuple[ValueArg, ...]
    span: Span = _span()
    name_span: Span = _span()


Value = Union[NumberValue, BoolValue, StringValue, IdentValue, ListValue, ArrowValue, CallValue]


# ---- expressions -----------------------------------------------------------------------


@dataclass(frozen=True)
class Number:
    value: float
    span: Span = _span()


@dataclass(frozen=True)
class Name:
    id: str
    span: Span = _span()


@dataclass(frozen=True)
class Unary:
    op: str  # "-" or "+"
    operand: "Expr"
    span: Span = _span()


@dataclass(frozen=True)
class Binary:
    op: str  # "+", "-", "*", "/", "^"
    left: "Expr"
    right: "Expr"
    span: Span = _span()


@dataclass(frozen=True)
class Keyword:
    name: str
    value: "Expr"
    span: Span = _span()


@dataclass(frozen=True)
class Call:
    """`f(a, b)`, `D(x)`, `js(critic=D, ...)` or `js.g1(t)` (then `attr` is "g1")."""

    func: Name
    attr: Name | None
    args: tuple["Expr", ...]
    kwargs: tuple[Keyword, ...]
    span: Span = _span()

    @property
    def callee(self) -> str:
        return f"{self.func.id}.{self.attr.id}" if self.attr else self.func.id


@dataclass(frozen=True)
class Index:
    value: "Expr"
    index: int
    span: Span = _span()


@dataclass(frozen=True)
class Expect:
    """`E[body]`: the mean over the batch of everything sampled inside `body`."""

    body: "Expr"
    span: Span = _span()


@dataclass(frozen=True)
class Vector:
    """`[a, b, c]`: a vector of scalars."""

    items: tuple["Expr", ...]
    span: Span = _span()


Expr = Union[Number, Name, Unary, Binary, Call, Index, Expect, Vector]


# ---- declarations ----------------------------------------------------------------------


@dataclass(frozen=True)
class Header:
    name: str
    description: str | None
    span: Span = _span()


@dataclass(frozen=True)
class ParamDecl:
    name: str
    size: int | None
    init: Value
    span: Span = _span()
    name_span: Span = _span()


@dataclass(frozen=True)
class NetworkDecl:
    name: str
    builder: CallValue
    span: Span = _span()
    name_span: Span = _span()


@dataclass(frozen=True)
class SampleDecl:
    """`data x ~ ring(...)` (kind "data") or `latent z ~ normal(16)` (kind "latent")."""

    kind: str
    name: str
    source: CallValue
    span: Span = _span()
    name_span: Span = _span()


@dataclass(frozen=True)
class Part:
    """One half of a divergence, e.g. `g1(t) = -softplus(t)`."""

    name: str
    params: tuple[str, ...]
    body: Expr
    span: Span = _span()


@dataclass(frozen=True)
class DivergenceDecl:
    name: str
    parts: tuple[Part, ...]
    span: Span = _span()
    name_span: Span = _span()


@dataclass(frozen=True)
class AliasDecl:
    """`divergence objective = gan`: a name that `--set divergence.objective=kl` can retarget."""

    name: str
    target: Name
    span: Span = _span()
    name_span: Span = _span()


@dataclass(frozen=True)
class LetDecl:
    name: str
    value: Expr
    span: Span = _span()
    name_span: Span = _span()


@dataclass(frozen=True)
class PlayerDecl:
    name: str
    controls: tuple[Name, ...]
    maximize: bool
    objective: Expr
    span: Span = _span()
    name_span: Span = _span()


@dataclass(frozen=True)
class Setting:
    key: str
    value: Value
    span: Span = _span()


@dataclass(frozen=True)
class SolveBlock:
    settings: tuple[Setting, ...]
    span: Span = _span()


Decl = Union[ParamDecl, NetworkDecl, SampleDecl, DivergenceDecl, AliasDecl, LetDecl, PlayerDecl, SolveBlock]


@dataclass(frozen=True)
class GameFile:
    """A parsed `.game` file: its header and declarations, in source order."""

    header: Header
    decls: tuple[Decl, ...]
    span: Span = _span()

    def of_type(self, kind) -> list:
        return [d for d in self.decls if isinstance(d, kind)]
