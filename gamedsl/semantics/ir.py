"""The typed core that the checker produces and both compilers consume.

Lets are inlined, divergences expanded to E[g1(D(fake))] - E[g2(D(real))], `minimizes`
turned into a negation. Every node knows its shape (size-1 vectors are scalars) and whether
it is *sampled*, i.e. varies over the batch. The smart constructors below compute both, so
substituting into a template (a divergence part) re-derives the types.

Nodes compare structurally (spans are ignored), so the torch compiler can share equal
subexpressions within a step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

from gamedsl.errors import Span

Shape = tuple[int, ...]
_NOWHERE = Span(0, 0, 0, 0)


def _span():
    return field(default=_NOWHERE, compare=False, hash=False, repr=False)


@dataclass(frozen=True)
class Node:
    shape: Shape
    sampled: bool

    def children(self) -> tuple["Node", ...]:
        return ()


@dataclass(frozen=True)
class Const(Node):
    value: float
    span: Span = _span()


@dataclass(frozen=True)
class Param(Node):
    name: str
    span: Span = _span()


@dataclass(frozen=True)
class Sample(Node):
    name: str
    span: Span = _span()


@dataclass(frozen=True)
class Var(Node):
    """The variable of a divergence part such as `t` in `g1(t) = -softplus(t)`."""

    name: str
    span: Span = _span()


@dataclass(frozen=True)
class Neg(Node):
    operand: Node
    span: Span = _span()

    def children(self):
        return (self.operand,)


@dataclass(frozen=True)
class Bin(Node):
    op: str  # + - * / ^
    left: Node
    right: Node
    span: Span = _span()

    def children(self):
        return (self.left, self.right)


@dataclass(frozen=True)
class Fn(Node):
    name: str
    args: tuple[Node, ...]
    span: Span = _span()

    def children(self):
        return self.args


@dataclass(frozen=True)
class Apply(Node):
    network: str
    arg: Node
    span: Span = _span()

    def children(self):
        return (self.arg,)


@dataclass(frozen=True)
class Mean(Node):
    """E[...]: the mean over the batch."""

    body: Node
    span: Span = _span()

    def children(self):
        return (self.body,)


@dataclass(frozen=True)
class Index(Node):
    operand: Node
    index: int
    span: Span = _span()

    def children(self):
        return (self.operand,)


# ---- smart constructors ------------------------------------------------------------------


def broadcast(a: Shape, b: Shape) -> Shape | None:
    """Equal shapes, or a scalar with anything; None when incompatible."""
    if a == b or not b:
        return a
    if not a:
        return b
    return None


def const(value: float, span: Span = _NOWHERE) -> Const:
    return Const((), False, float(value), span)


def neg(x: Node, span: Span = _NOWHERE) -> Node:
    return Neg(x.shape, x.sampled, x, span)


def binary(op: str, a: Node, b: Node, span: Span = _NOWHERE) -> Node:
    shape = broadcast(a.shape, b.shape)
    assert shape is not None, "checked by the caller"
    return Bin(shape, a.sampled or b.sampled, op, a, b, span)


def fn(name: str, kind: str, args: tuple[Node, ...], span: Span = _NOWHERE) -> Node:
    shape = args[0].shape if kind == "elementwise" else ()
    return Fn(shape, any(a.sampled for a in args), name, tuple(args), span)


def apply(network: str, output: Shape, arg: Node, span: Span = _NOWHERE) -> Node:
    return Apply(output, arg.sampled, network, arg, span)


def mean(body: Node, span: Span = _NOWHERE) -> Node:
    return Mean(body.shape, False, body, span)


def expectation(body: Node, span: Span = _NOWHERE) -> Node:
    """E[...] where it is meaningful: a deterministic body is its own expectation."""
    return mean(body, span) if body.sampled else body


def index(x: Node, i: int, span: Span = _NOWHERE) -> Node:
    return Index((), x.sampled, x, i, span)


def substitute(node: Node, var: str, value: Node) -> Node:
    """Replace `Var(var)` by `value`, re-deriving shapes and sampledness on the way up."""
    match node:
        case Var(name=name) if name == var:
            return value
        case Neg(operand=x, span=s):
            return neg(substitute(x, var, value), s)
        case Bin(op=op, left=a, right=b, span=s):
            return binary(op, substitute(a, var, value), substitute(b, var, value), s)
        case Fn(name=name, args=args, span=s):
            from gamedsl.library.functions import FUNCTIONS

            return fn(name, FUNCTIONS[name].kind, tuple(substitute(a, var, value) for a in args), s)
        case _:
            return node


def walk(node: Node) -> Iterator[Node]:
    """All nodes, parents before children (iterative: no recursion limit)."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children()))


def dependencies(node: Node) -> set[str]:
    """Names of the parameters and networks a node depends on."""
    out = set()
    for n in walk(node):
        if isinstance(n, Param):
            out.add(n.name)
        elif isinstance(n, Apply):
            out.add(n.network)
    return out


def samples(node: Node) -> set[str]:
    return {n.name for n in walk(node) if isinstance(n, Sample)}
