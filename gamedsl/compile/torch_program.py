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
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from gamedsl.semantics import ir

Slot = int
Closure = Callable[[list, dict], torch.Tensor]  # (slot values, batch) -> value

ELEMENTWISE: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "log": torch.log,
    "exp": torch.exp,
    "sqrt": torch.sqrt,
    "softplus": F.softplus,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
    "abs": torch.abs,
}
REDUCTIONS = ("sum", "mean", "norm", "dot")
BINARY = {"+": torch.add, "-": torch.sub, "*": torch.mul, "/": torch.div, "^": torch.pow}


class Program:
    """Slots computed in order by closures; `run(env)` returns the requested outputs."""

    def __init__(
        self,
        leaf: Callable[[ir.Node], Closure],
        apply: Callable[[str], Callable],
        dtype: torch.dtype,
        device: torch.device,
    ):
        self.leaf = leaf  # closure for Param / Sample nodes
        self.apply = apply  # network name -> callable module
        self.dtype, self.device = dtype, device  # of the constants
        self.steps: list[Closure] = []
        self.slots: dict[ir.Node, Slot] = {}

    def add(self, node: ir.Node) -> Slot:
        if node in self.slots:
            return self.slots[node]
        folded = fold(node)
        if isinstance(folded, ir.Const):
            value = torch.tensor(folded.value, dtype=self.dtype, device=self.device)
            slot = self._emit(lambda vals, env: value)
        else:
            slot = self._emit(self._closure(folded))
        self.slots[node] = slot
        return slot

    def _emit(self, closure: Closure) -> Slot:
        self.steps.append(closure)
        return len(self.steps) - 1

    def _closure(self, node: ir.Node) -> Closure:
        match node:
            case ir.Param() | ir.Sample():
                return self.leaf(node)
            case ir.Neg(operand=x):
                a = self.add(x)
                return lambda vals, env: torch.neg(vals[a])
            case ir.Bin(op=op, left=x, right=y):
                (a, va), (b, vb), f = self._operand(x, node), self._operand(y, node), BINARY[op]
                if va is None and vb is None:
                    return lambda vals, env: f(vals[a], vals[b])
                return lambda vals, env: f(_view(vals[a], va), _view(vals[b], vb))
            case ir.Fn(name=name, args=(x,)) if name in ELEMENTWISE:
                a, f = self.add(x), ELEMENTWISE[name]
                return lambda vals, env: f(vals[a])
            case ir.Fn(name=name, args=args) if name in REDUCTIONS:
                return self._reduction(name, args)
            case ir.Apply(network=net, arg=x):
                return self._apply(net, x, node.shape)
            case ir.Mean(body=x):
                a = self.add(x)
                return lambda vals, env: vals[a].mean(0)
            case ir.Index(operand=x, index=i):
                a = self.add(x)
                return lambda vals, env: vals[a][..., i]
        raise AssertionError(f"cannot compile {node!r}")

    def _operand(self, x: ir.Node, parent: ir.Node) -> tuple[Slot, tuple[int, ...] | None]:
        """A sampled scalar combined with a vector needs trailing unit axes: (B,) -> (B, 1)."""
        slot = self.add(x)
        if x.sampled and not x.shape and parent.shape:
            return slot, (-1,) + (1,) * len(parent.shape)
        return slot, None

    def _reduction(self, name: str, args: tuple[ir.Node, ...]) -> Closure:
        shape = args[0].shape
        dims = tuple(range(-len(shape), 0))
        slots = [self.add(a) for a in args]
        if name == "dot":
            a, b = slots
            if not dims:
                return lambda vals, env: vals[a] * vals[b]
            return lambda vals, env: (vals[a] * vals[b]).sum(dims)
        (a,) = slots
        if not dims:
            return (lambda vals, env: vals[a].abs()) if name == "norm" else (lambda vals, env: vals[a])
        if name == "norm":
            return lambda vals, env: torch.linalg.vector_norm(vals[a], dim=dims)
        reduce = torch.sum if name == "sum" else torch.mean
        return lambda vals, env: reduce(vals[a], dims)

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
        case ir.Fn(name=name, args=(x,)) if name in ELEMENTWISE and isinstance(f := fold(x), ir.Const):
            return ir.const(_evaluate(ELEMENTWISE[name], f.value))
    return node


def _evaluate(f: Callable[..., torch.Tensor], *values: float) -> float:
    return float(f(*(torch.tensor(v, dtype=torch.float64) for v in values)))
