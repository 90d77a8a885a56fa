"""A checked game compiled to sympy: exact utilities, the field v (eq. 5) and v' (eq. 6).

The compiler walks the typed IR that the checker produced, exactly as the torch compiler
does, and builds sympy objects with sympy's constructors: no text is ever parsed, so a
name in a .game file is only ever the name of a `sympy.Symbol`.

What it can compile is what `gamedsl analyze` can reason about exactly:

- `param`s become real symbols, one per component (`theta`, or `w_0, w_1, ...`);
- networks whose builder is marked `symbolic` (`linear`) become symbols for their weights
  and biases (`D_weight`, `D_weight_0_1`, `D_bias_0`), applied as W x + b;
- data and latent variables with a deterministic source (`dirac(...)`) become their
  constant value, so `E[...]` of a body that is then constant is the body itself;
- other data and latent variables become symbols of their own, and an `E[...]` over them is
  exact when they drop out of its body: `E[norm(grad(D, eps * x + (1 - eps) * theta))^2]`
  for a linear critic D does not depend on eps. An expectation that does depend on them
  (instance noise: E[softplus(psi (x + noise))]) has no closed form here;
- `grad(...)` is differentiated exactly: its body in fresh symbols for the points, then
  the points substituted.

Everything else (sampled data that an expectation depends on, deep networks) raises
`OutOfReach`, whose hint points to `gamedsl spectrum FILE`, the numerical spectrum. So does
a constant subexpression that is not a finite real number, exactly (`log(0)`, `sqrt(0 - 1)`)
or in the float64 arithmetic that a run folds it with (`2^10000`, `0 * exp(1000)`, see torch_program.fold): the torch
game's utilities are then not finite, and exact analysis would describe another game.

The symbols are ordered like the torch engine's flattened parameters (players in
declaration order, each player's controls in order, a network's tensors in
`module.parameters()` order, row-major), so that v and v' of both compilations can be
compared entry by entry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Callable, Union

import sympy as sp

from gamedsl.compile.torch_program import fold
from gamedsl.data.sources import SOURCES
from gamedsl.errors import LimitError, OutOfReach
from gamedsl.library.functions import FUNCTIONS
from gamedsl.nets.builders import BUILDERS
from gamedsl.semantics import ir
from gamedsl.semantics.model import CheckedGame
from gamedsl.symbolic.lipschitz import refuse_constrained

MAX_SYMBOLS = 100  # parameters of all players together
MAX_EXACT_BITS = 1 << 16  # exact rational constants up to this many bits (2^65536 would be too large a float anyway)

Value = Union[sp.Expr, tuple]  # a scalar expression or a tuple of them (a vector)

# ---- the compiled game ----------------------------------------------------------------------


@dataclass(frozen=True)
class Tensor:
    """One parameter tensor of a player: a `param`, or a network's weight or bias."""

    control: str  # the name the player controls
    name: str  # "theta", or "D.weight"
    shape: tuple[int, ...]
    symbols: tuple[sp.Symbol, ...]  # row-major


@dataclass(frozen=True)
class SymbolicGame:
    spec: CheckedGame
    players: tuple[str, ...]
    tensors: tuple[Tensor, ...]
    symbols: tuple[sp.Symbol, ...]  # every parameter, in the torch engine's order
    blocks: tuple[slice, ...]  # player i's symbols are symbols[blocks[i]]
    utilities: tuple[sp.Expr, ...]  # what each player maximises

    def field(self) -> sp.Matrix:
        """v = (grad of u_i with respect to player i's parameters)_i, as a column (eq. 5)."""
        parts = []
        for u, block in zip(self.utilities, self.blocks):
            parts.extend(derivative(u, s) for s in self.symbols[block])
        return sp.Matrix(parts)

    def jacobian(self, field: sp.Matrix | None = None) -> sp.Matrix:
        """v'(x), the Jacobian of the field (eq. 6 for zero-sum games)."""
        field = self.field() if field is None else field
        return sp.Matrix([[derivative(f, s) for s in self.symbols] for f in field])

    def player_of(self, index: int) -> int:
        return next(i for i, b in enumerate(self.blocks) if b.start <= index < b.stop)

    def kinks(self, point: dict[sp.Symbol, sp.Expr], field: sp.Matrix | None = None) -> list[sp.Expr]:
        """Where v is not differentiable at `point`: the arguments of |.|, sign, steps, max
        and min in v that are 0 there (a tie, for max and min). v' there is autograd's
        convention (see `derivative`), which describes no neighbourhood: the linearisation
        predicts nothing about runs started nearby."""
        field = self.field() if field is None else field
        found: list[sp.Expr] = []
        for entry in field:
            for node in sp.preorder_traversal(entry):
                if isinstance(node, (sp.Abs, sign, step)):
                    argument = node.args[0]
                elif isinstance(node, (sp.Max, sp.Min)) and len(node.args) == 2:
                    argument = node.args[0] - node.args[1]
                else:
                    continue
                if argument.xreplace(point) == 0 and argument not in found:
                    found.append(argument)
        return found


class sign(sp.Function):  # noqa: N801 (printed as sympy's sign, which it replaces in derivatives)
    """The sign as autograd uses it in the derivative of |t|: sign(0) = 0, and its own
    derivative is 0 everywhere (sympy's sign has a Dirac delta there, which nothing can
    evaluate, lambdify included)."""

    @classmethod
    def eval(cls, arg):
        if arg.is_zero:
            return sp.Integer(0)
        if arg.is_positive:
            return sp.Integer(1)
        if arg.is_negative:
            return sp.Integer(-1)
        return None

    def fdiff(self, argindex=1):
        return sp.Integer(0)

    _imp_ = staticmethod(lambda t: float(t > 0) - float(t < 0))  # numpy scalars, mpmath and floats alike


class step(sp.Function):  # noqa: N801 (named apart from sympy's Heaviside, which printers translate)
    """The step in the derivatives of max and min (sympy's Heaviside there): 1 above 0, 0
    below, 1/2 at 0, where autograd splits a tie evenly (torch.maximum); its derivative is 0
    everywhere."""

    @classmethod
    def eval(cls, arg):
        if arg.is_zero:
            return sp.Rational(1, 2)
        if arg.is_positive:
            return sp.Integer(1)
        if arg.is_negative:
            return sp.Integer(0)
        return None

    def fdiff(self, argindex=1):
        return sp.Integer(0)

    _imp_ = staticmethod(lambda t: 1.0 if t > 0 else 0.5 if t == 0 else 0.0)


_KINKS = {sp.sign: sign, sp.Heaviside: step}  # sympy's Heaviside(t, H0) may carry its value at 0: ours is 1/2


def derivative(expr: sp.Expr, symbol: sp.Symbol) -> sp.Expr:
    """d expr / d symbol with autograd's conventions at kinks, which are what a run computes:
    |t|' = sign(t) with sign(0) = 0, max(a, b)' splits a tie evenly, and the derivatives of
    these steps are 0 (where sympy's are Dirac deltas, which have no value at 0). Away from
    kinks this is the derivative itself; at a kink, v' is the Jacobian the solvers see, not
    that of a field that jumps there (WGAN-GP's penalty on the Dirac-GAN: its gradient
    -gamma (|psi| - 1) sign(psi) jumps at psi = 0)."""
    out = sp.diff(expr, symbol)
    for theirs, ours in _KINKS.items():
        out = out.replace(theirs, lambda t, *rest, ours=ours: ours(t))
    return out


def compile_game(spec: CheckedGame) -> SymbolicGame:
    """The sympy form of a checked game; OutOfReach if it has sampled data or deep networks."""
    check_reach(spec)
    names = _Names(spec)
    tensors: list[Tensor] = []
    env: dict[str, object] = {}  # param -> Value; network -> {tensor: [symbols]}
    blocks, start = [], 0
    for player in spec.players:
        for control in player.controls:
            if control in spec.params:
                shape = spec.params[control].shape
                symbols = names.make(control, shape)
                tensors.append(Tensor(control, control, shape, symbols))
                env[control] = symbols if shape else symbols[0]
            else:
                net = spec.networks[control]
                parts = {}
                for tensor, shape in BUILDERS[net.builder].symbolic.tensors(net.args):
                    shape = tuple(shape)
                    symbols = names.make(f"{control}_{tensor}", shape if math.prod(shape) > 1 else ())
                    tensors.append(Tensor(control, f"{control}.{tensor}", shape, symbols))
                    parts[tensor] = list(symbols)
                env[control] = parts
        count = sum(len(t.symbols) for t in tensors) - start
        blocks.append(slice(start, start + count))
        start += count
    compiler = _Compiler(spec, env)
    utilities = tuple(compiler.scalar(p.utility) for p in spec.players)
    symbols = tuple(s for t in tensors for s in t.symbols)
    return SymbolicGame(spec, tuple(p.name for p in spec.players), tuple(tensors), symbols, tuple(blocks), utilities)


def check_reach(spec: CheckedGame) -> None:
    """Raise OutOfReach, pointing at the declaration, for the networks and sizes symbolic
    analysis cannot handle. (Sampled data are refused while compiling, by the first
    expectation that depends on them.)"""
    refuse_constrained(spec)
    hint = _spectrum_hint(spec)
    for name, net in spec.networks.items():
        if BUILDERS[net.builder].symbolic is None:
            raise OutOfReach(
                f"the game is out of symbolic reach: network '{name}' is built with '{net.builder}', "
                "but symbolic analysis handles params and small linear(...) networks",
                span=net.decl.builder.span,
                hint=hint,
                source=spec.source,
            )
    total = 0
    for player in spec.players:
        total += spec.parameter_count(player) or 0
    if total > MAX_SYMBOLS:
        raise OutOfReach(
            f"the game is out of symbolic reach: it has {total:,} parameters; symbolic analysis handles "
            f"at most {MAX_SYMBOLS}",
            span=spec.file.header.span,
            hint=hint,
            source=spec.source,
        )


def _spectrum_hint(spec: CheckedGame) -> str:
    return f"`gamedsl spectrum {spec.source.path}` computes the spectrum of v' numerically for any game"


def _sampled_out_of_reach(spec: CheckedGame, name: str) -> OutOfReach:
    sample = spec.samples[name]
    return OutOfReach(
        f"the game is out of symbolic reach: {sample.kind} '{name}' is sampled from '{sample.source}', and an "
        "expectation depends on it; symbolic analysis needs deterministic data such as dirac(...), or noise that "
        "drops out of every expectation",
        span=sample.decl.source.span,
        hint=_spectrum_hint(spec),
        source=spec.source,
    )


class _Names:
    """Unique symbol names: `theta`, `w_0`, `D_weight_0_1`; a clash gets trailing underscores."""

    def __init__(self, spec: CheckedGame):
        self.taken: set[str] = set()

    def unique(self, name: str) -> str:
        while name in self.taken:
            name += "_"
        self.taken.add(name)
        return name

    def make(self, base: str, shape: tuple[int, ...]) -> tuple[sp.Symbol, ...]:
        if not shape:
            return (sp.Symbol(self.unique(base), real=True),)
        indices = _indices(shape)
        return tuple(sp.Symbol(self.unique(base + "_" + "_".join(map(str, ix))), real=True) for ix in indices)


def _indices(shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    out: list[tuple[int, ...]] = [()]
    for size in shape:
        out = [ix + (k,) for ix in out for k in range(size)]
    return out


def number(value: float | int) -> sp.Expr:
    """An exact sympy number for a literal: 2.0 -> 2, 0.1 -> 1/10 (the shortest fraction that
    rounds to the same float), anything else -> its exact binary value."""
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return sp.Integer(value)
    if not math.isfinite(value):
        raise LimitError(f"the number {value} is not finite", hint="symbolic analysis needs finite constants")
    if value.is_integer() and abs(value) < 2**63:
        return sp.Integer(int(value))
    short = Fraction(value).limit_denominator(10**12)
    if float(short) == value:
        return sp.Rational(short.numerator, short.denominator)
    exact = Fraction(value)
    return sp.Rational(exact.numerator, exact.denominator)


def _bits(r: sp.Rational) -> int:
    return max(int(r.p).bit_length(), int(r.q).bit_length(), 1)


def power(base: sp.Expr, exponent: sp.Expr) -> sp.Expr:
    """base ^ exponent without letting sympy compute astronomically large exact numbers:
    2^(2^100) would otherwise run out of memory. Such constants become floats, and
    floats that overflow are refused."""
    if base.is_Number and exponent.is_Number:
        if base.is_Rational and exponent.is_Integer and abs(int(exponent)) * _bits(base) <= MAX_EXACT_BITS:
            return sp.Pow(base, exponent)
        try:
            value = float(base) ** float(exponent)
        except OverflowError:
            raise LimitError(
                f"the constant {float(base):g} ^ {float(exponent):g} is too large", hint="use smaller constants"
            ) from None
        except ZeroDivisionError:
            return sp.zoo
        if isinstance(value, complex):
            return sp.nan
        if not math.isfinite(value):
            raise LimitError(
                f"the constant {float(base):g} ^ {float(exponent):g} is too large", hint="use smaller constants"
            )
        return sp.Float(value)
    return sp.Pow(base, exponent)


_BINARY = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
    "^": power,
}


class _Compiler:
    def __init__(self, spec: CheckedGame, env: dict[str, object]):
        self.spec = spec
        self.env = env
        self.memo: dict[int, tuple[ir.Node, Value]] = {}  # by identity: lets are shared subgraphs
        self.constant: dict[int, bool] = {}  # by identity: no param, network or random value below the node
        self.bound: dict[str, Value] = {}  # the symbols standing for the points of each grad(...)
        self.noise: dict[str, Value] = {}  # the symbols standing for each sampled (not constant) variable

    def scalar(self, node: ir.Node) -> sp.Expr:
        value = self.value(node)
        assert not isinstance(value, tuple), "utilities are scalars (checked)"
        return value

    def value(self, node: ir.Node) -> Value:
        hit = self.memo.get(id(node))
        if hit is not None:
            return hit[1]
        try:
            result = self._value(node)
        except LimitError as exc:
            if exc.span is None and getattr(node, "span", None) is not None and node.span.line:
                exc.span, exc.source = node.span, self.spec.source
            raise
        if self.is_constant(node) and not isinstance(node, ir.Const):
            self.require_finite(node, result)
        self.memo[id(node)] = (node, result)
        return result

    def is_constant(self, node: ir.Node) -> bool:
        """Free of params, networks, random values and bound variables: deterministic data
        (dirac) are constants."""
        known = self.constant.get(id(node))
        if known is None:
            leaf = isinstance(node, (ir.Param, ir.Apply, ir.Var)) or (
                isinstance(node, ir.Sample) and SOURCES[self.spec.samples[node.name].source].constant is None
            )
            known = not leaf and all(self.is_constant(c) for c in node.children())
            self.constant[id(node)] = known
        return known

    def require_finite(self, node: ir.Node, value: Value) -> None:
        folded = fold(node)
        ieee = folded.value if isinstance(folded, ir.Const) else 0.0
        for part in value if isinstance(value, tuple) else (value,):
            problem = _not_finite(part, ieee)
            if problem is not None:
                raise OutOfReach(
                    f"the game is out of symbolic reach: this constant is {problem}",
                    span=node.span if node.span.line else None,
                    hint="its utilities are not finite (a run stops at its first step); write a finite constant",
                    source=self.spec.source,
                )

    def _value(self, node: ir.Node) -> Value:
        match node:
            case ir.Const(value=v):
                return number(v)
            case ir.Param(name=name):
                return self.env[name]
            case ir.Sample(name=name):
                return self.sample(name)
            case ir.Var(name=name):
                return self.bound[name]
            case ir.Neg(operand=x):
                return _map(lambda t: -t, self.value(x))
            case ir.Bin(op=op, left=a, right=b):
                return _zip(_BINARY[op], self.value(a), self.value(b))
            case ir.Fn(name=name, args=args):
                function = FUNCTIONS[name]
                return getattr(self, "_" + function.kind)(function.sympy, [self.value(a) for a in args])
            case ir.Apply(network=net, arg=x):
                return self.apply(net, self.value(x))
            case ir.Mean(body=x):
                return self.expectation(x)
            case ir.Index(operand=x, index=i):
                value = self.value(x)
                return value[i] if isinstance(value, tuple) else value
            case ir.Grad():
                return self.gradient(node)
        raise AssertionError(f"cannot compile {node!r} to sympy")

    # ---- the kinds of built-in functions (see library/functions.py)

    @staticmethod
    def _elementwise(f, args: list[Value]) -> Value:
        return _map(f, args[0])

    @staticmethod
    def _broadcast(f, args: list[Value]) -> Value:
        size = next((len(a) for a in args if isinstance(a, tuple)), None)
        if size is None:
            return f(*args)
        columns = [a if isinstance(a, tuple) else (a,) * size for a in args]
        return tuple(f(*entries) for entries in zip(*columns))

    @staticmethod
    def _reduce(f, args: list[Value]) -> Value:
        return f(args[0])

    @staticmethod
    def _pair(f, args: list[Value]) -> Value:
        return f(*args)

    @staticmethod
    def _concat(f, args: list[Value]) -> Value:
        out = f(args)
        return out if len(out) > 1 else out[0]

    # ---- expectations, samples and gradients

    def expectation(self, body: ir.Node) -> Value:
        """Every constant sample is its own batch mean; random ones must drop out of `body`."""
        value = self.value(body)
        free = set().union(*(t.free_symbols for t in (value if isinstance(value, tuple) else (value,))))
        for name, symbols in self.noise.items():
            if free & set(symbols if isinstance(symbols, tuple) else (symbols,)):
                raise _sampled_out_of_reach(self.spec, name)
        return value

    def sample(self, name: str) -> Value:
        info = self.spec.samples[name]
        source = SOURCES[info.source]
        if source.constant is None:  # a random value: symbols, which expectations must lose
            if name not in self.noise:
                symbols = tuple(sp.Dummy(f"{name}_{k}", real=True) for k in range(math.prod(info.shape)))
                self.noise[name] = symbols if info.shape else symbols[0]
            return self.noise[name]
        value = source.constant(info.args)
        if isinstance(value, tuple):
            values = tuple(number(v) for v in value)
            return values if info.shape else values[0]
        return number(value)

    def gradient(self, node: ir.Grad) -> Value:
        """d body / d points, in fresh symbols for the points, then evaluated at `at`."""
        at = self.value(node.at)
        points = tuple(sp.Dummy(f"p{k}", real=True) for k in range(math.prod(node.at.shape)))
        self.bound[node.var] = points if node.at.shape else points[0]
        body = self.value(node.body)
        values = at if isinstance(at, tuple) else (at,)
        evaluate = dict(zip(points, values))
        out = tuple(derivative(body, p).xreplace(evaluate) for p in points)
        return out if node.at.shape else out[0]

    def apply(self, name: str, x: Value) -> Value:
        net = self.spec.networks[name]
        inputs = list(x) if isinstance(x, tuple) else [x]
        out = BUILDERS[net.builder].symbolic.apply(net.args, self.env[name], inputs)
        return tuple(out) if net.output else out[0]


def _not_finite(value: sp.Expr, ieee: float) -> str | None:
    """What is wrong with a constant, exactly or as float64 (`ieee`, 0 where not folded); None if nothing."""
    if value is sp.nan or math.isnan(ieee):
        return "not a number (NaN)"
    if not value.is_comparable:
        return "not a real number" if value.is_finite else "infinite"
    magnitude = ieee if not math.isfinite(ieee) else float(value)
    return None if math.isfinite(magnitude) else f"beyond the range of float64 ({magnitude:g})"


def _map(f, x: Value) -> Value:
    return tuple(f(t) for t in x) if isinstance(x, tuple) else f(x)


def _zip(f, a: Value, b: Value) -> Value:
    if isinstance(a, tuple) and isinstance(b, tuple):
        return tuple(f(s, t) for s, t in zip(a, b))
    if isinstance(a, tuple):
        return tuple(f(s, b) for s in a)
    if isinstance(b, tuple):
        return tuple(f(a, t) for t in b)
    return f(a, b)


def readable(expr: sp.Basic) -> str:
    """One line in the language's notation: `^` for powers."""
    return sp.sstr(expr).replace("**", "^")


__all__ = ["OutOfReach", "SymbolicGame", "compile_game", "check_reach", "readable"]
