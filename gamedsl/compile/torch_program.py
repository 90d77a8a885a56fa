"""Typed IR to a straight-line program of torch closures, compiled once.

Each distinct subexpression becomes one slot computed by one closure; equal
subexpressions (e.g. `D(G(z))` in both players' utilities) share a slot, so a step
evaluates them once. Running the program is a loop over prebuilt closures: no AST is
interpreted per step. Constant subtrees are folded at compile time, with the run time's own
torch functions (see `fold`), and every constant is a tensor of the game's dtype and device,
so that whatever consumes it (a network, an elementwise function) sees what it would see
for any other value.

Runtime layout: a sampled value of shape S is a tensor (B, *S); a deterministic one is
(*S). Broadcasting between the two is resolved here, at compile time.

Built-in functions come from their rows in `library/functions.py`: one method here per kind
of function lays out the arguments and calls the row's torch form. A gradient `grad(...)`
is a program of its own (the body, a function of the points), differentiated with
`torch.func.grad` of its sum over the batch: per-sample gradients, because the checker lets
no E[...] or batch norm into a body. torch.func composes with everything that consumes the
utilities: autograd with create_graph (the eager engine, to any order), torch.func's own
transforms (vmapped sweeps, per-example fields, spectra) and torch.compile.
"""

from __future__ import annotations

from typing import Callable

import torch

from gamedsl.library.functions import FUNCTIONS, Lazy
from gamedsl.semantics import ir

Slot = int
Closure = Callable[[list, dict], torch.Tensor]  # (slot values, batch) -> value
BINARY = {"+": torch.add, "-": torch.sub, "*": torch.mul, "/": torch.div, "^": torch.pow}


class _Outer:
    """The key under which a gradient's body program finds the slot values of the program it
    is nested in: a body reuses what does not depend on its points. (An object, so that it
    never equals a sample's name.)"""


OUTER = _Outer()


class Program:
    """Slots computed in order by closures; `run(env)` returns the requested outputs."""

    def __init__(
        self,
        leaf: Callable[[ir.Node], Closure],
        apply: Callable[[str], Callable],
        dtype: torch.dtype,
        device: torch.device,
        parent: tuple["Program", str] | None = None,
    ):
        self.leaf = leaf  # closure for Param / Sample nodes
        self.apply = apply  # network name -> callable module
        self.dtype, self.device = dtype, device  # of the constants
        self.parent = parent  # (enclosing program, the variable this body is a function of)
        self.steps: list[Closure] = []
        self.slots: dict[ir.Node, Slot] = {}
        self.bound: dict[int, bool] = {}  # by identity: whether a node depends on the parent's variable

    def add(self, node: ir.Node) -> Slot:
        if node in self.slots:
            return self.slots[node]
        if self.parent is not None and not self._uses_variable(node):
            outer, at = self.parent[0].add(node), OUTER  # computed once, outside the gradient
            slot = self._emit(lambda vals, env: env[at][outer])
        else:
            folded = fold(node)
            if isinstance(folded, ir.Const):
                value = torch.tensor(folded.value, dtype=self.dtype, device=self.device)
                slot = self._emit(lambda vals, env: value)
            else:
                slot = self._emit(self._closure(folded))
        self.slots[node] = slot
        return slot

    def _uses_variable(self, node: ir.Node) -> bool:
        known = self.bound.get(id(node))
        if known is None:
            known = (isinstance(node, ir.Var) and node.name == self.parent[1]) or any(
                self._uses_variable(c) for c in node.children()
            )
            self.bound[id(node)] = known
        return known

    def _emit(self, closure: Closure) -> Slot:
        self.steps.append(closure)
        return len(self.steps) - 1

    def _closure(self, node: ir.Node) -> Closure:
        match node:
            case ir.Param() | ir.Sample():
                return self.leaf(node)
            case ir.Var(name=name):
                return lambda vals, env: env[name]
            case ir.Neg(operand=x):
                a = self.add(x)
                return lambda vals, env: torch.neg(vals[a])
            case ir.Bin(op=op, left=x, right=y):
                return self._broadcast(BINARY[op], (x, y), node)
            case ir.Fn(name=name, args=args):
                function = FUNCTIONS[name]
                form = function.torch.resolve() if isinstance(function.torch, Lazy) else function.torch
                return getattr(self, "_" + function.kind)(form, args, node)
            case ir.Apply(network=net, arg=x):
                return self._apply(net, x, node.shape)
            case ir.Mean(body=x):
                a = self.add(x)
                return lambda vals, env: vals[a].mean(0)
            case ir.Index(operand=x, index=i):
                a = self.add(x)
                return lambda vals, env: vals[a][..., i]
            case ir.Grad():
                return self._gradient(node)
        raise AssertionError(f"cannot compile {node!r}")

    # ---- the kinds of built-in functions (see library/functions.py)

    def _elementwise(self, f: Callable, args: tuple[ir.Node, ...], node: ir.Node) -> Closure:
        a = self.add(args[0])
        return lambda vals, env: f(vals[a])

    def _broadcast(self, f: Callable, args: tuple[ir.Node, ...], node: ir.Node) -> Closure:
        """Entry by entry; a sampled scalar combined with a vector needs trailing unit axes:
        (B,) -> (B, 1)."""
        slots = [self.add(x) for x in args]
        views = [(-1,) + (1,) * len(node.shape) if x.sampled and not x.shape and node.shape else None for x in args]
        if len(slots) == 2:  # the operators: the common case, without building argument lists per step
            (a, b), (va, vb) = slots, views
            if va is None and vb is None:
                return lambda vals, env: f(vals[a], vals[b])
            return lambda vals, env: f(_view(vals[a], va), _view(vals[b], vb))
        return lambda vals, env: f(*[_view(vals[s], v) for s, v in zip(slots, views)])

    def _reduce(self, f: Callable, args: tuple[ir.Node, ...], node: ir.Node) -> Closure:
        a, dims = self.add(args[0]), _trailing(args[0])
        return lambda vals, env: f(vals[a], dims)

    def _pair(self, f: Callable, args: tuple[ir.Node, ...], node: ir.Node) -> Closure:
        (a, b), dims = [self.add(x) for x in args], _trailing(args[0])
        return lambda vals, env: f(vals[a], vals[b], dims)

    def _concat(self, f: Callable, args: tuple[ir.Node, ...], node: ir.Node) -> Closure:
        """Scalars become vectors of size 1; deterministic parts are repeated along the batch
        of the sampled ones."""
        slots = [self.add(x) for x in args]
        if not node.shape:  # one scalar: size-1 vectors are scalars
            return lambda vals, env: vals[slots[0]]
        scalar = [not x.shape for x in args]
        deterministic = [not x.sampled for x in args] if node.sampled else [False] * len(args)
        reference = next((s for s, x in zip(slots, args) if x.sampled), None)

        def run(vals, env):
            parts = []
            for s, make_vector, repeat in zip(slots, scalar, deterministic):
                t = vals[s]
                if make_vector:
                    t = t.unsqueeze(-1)
                if repeat:
                    t = t.expand(vals[reference].shape[0], *t.shape)
                parts.append(t)
            return f(parts)

        return run

    # ---- networks and gradients

    def _apply(self, net: str, x: ir.Node, output: ir.Shape) -> Closure:
        """Modules see (batch, *input); scalars get a unit feature axis, unbatched inputs a unit batch."""
        a, module = self.add(x), self.apply(net)
        pre = [] if x.shape else [lambda t: t.unsqueeze(-1)]
        post = [] if output else [lambda t: t.squeeze(-1)]
        if not x.sampled:
            pre.append(lambda t: t.unsqueeze(0))
            post.insert(0, lambda t: t.squeeze(0))
        if not pre and not post:
            return lambda vals, env: module(vals[a])

        def run(vals, env):
            t = vals[a]
            for f in pre:
                t = f(t)
            t = module(t)
            for f in post:
                t = f(t)
            return t

        return run

    def _gradient(self, node: ir.Grad) -> Closure:
        """The body as a program of its own, a function of the points `env[var]`; what it
        shares with this program (weights, other samples) it reads from this program's slots."""
        at = self.add(node.at)
        body = Program(self.leaf, self.apply, self.dtype, self.device, parent=(self, node.var))
        value = body.runner([body.add(node.body)])
        var = node.var

        def total(points, vals, env):
            return value({**env, var: points, OUTER: vals})[0].sum()

        gradient = torch.func.grad(total)
        return lambda vals, env: gradient(vals[at], vals, env)

    def runner(self, outputs: list[Slot]) -> Callable[[dict], list[torch.Tensor]]:
        steps = tuple(self.steps)
        size = len(steps)

        def run(env) -> list[torch.Tensor]:
            vals = [None] * size
            for i, step in enumerate(steps):
                vals[i] = step(vals, env)
            return [vals[o] for o in outputs]

        return run


def _view(t: torch.Tensor, shape: tuple[int, ...] | None) -> torch.Tensor:
    return t if shape is None else t.reshape(shape)


def _trailing(x: ir.Node) -> tuple[int, ...]:
    """The axes of a value's own shape, counted from the end (a batch axis may come first)."""
    return tuple(range(-len(x.shape), 0))


def fold(node: ir.Node) -> ir.Node:
    """Evaluate constant subtrees (e.g. log(2) in the js divergence) at compile time.

    They are computed by the same torch functions as at run time, on float64 0-d tensors:
    IEEE semantics, so `log(0)` folds to -inf, `0 * exp(1000)` and `sqrt(0 - 1)` to NaN,
    exactly what the unfolded expression would give. A non-finite utility then stops the
    run as diverged, like any other.
    """
    match node:
        case ir.Neg(operand=x) if isinstance(f := fold(x), ir.Const):
            return ir.const(-f.value)
        case ir.Bin(op=op, left=x, right=y):
            a, b = fold(x), fold(y)
            if isinstance(a, ir.Const) and isinstance(b, ir.Const):
                return ir.const(_evaluate(BINARY[op], a.value, b.value))
        case ir.Fn(name=name, args=args) if FUNCTIONS[name].folds:
            folded = [fold(x) for x in args]
            if all(isinstance(f, ir.Const) for f in folded):
                return ir.const(FUNCTIONS[name].fold(*(f.value for f in folded)))
    return node


def _evaluate(f: Callable[..., torch.Tensor], *values: float) -> float:
    return float(f(*(torch.tensor(v, dtype=torch.float64) for v in values)))
