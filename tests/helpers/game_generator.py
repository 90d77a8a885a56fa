"""Random `.game` files that are valid by construction, for the solve fuzzer.

The front-end fuzz (tests/test_fuzz.py) mutates tokens and stops at `check`; this generator
writes whole games that `check` accepts, so that `solve` is reached: random builders,
sources, initialisers, solvers, optimizers and settings, random names (Python and torch
attribute names among them), expressions with every built-in function, divergence calls
and parts, user-defined divergences and aliases, and now and then a hostile choice (a huge
size, a constant that folds to inf or NaN, a hyperparameter at the edge of its range).

Nothing here keeps its own copy of the language's vocabularies: builders, sources,
initialisers and their argument kinds come from their signatures (`gamedsl.library`),
settings from `gamedsl.semantics.settings.KEYS`, solvers and optimizers and their parameters from the
`solvers` registries, reserved words from the checker and the standard divergences from
the library file. Constraints between arguments (an image side divisible by 2^layers,
low < high, ...) are met by drawing again until the signature's own `validate` accepts.

A case is a function of `(seed, index)` alone: `generate(seed, index)` always returns the
same game and the same extra `solve` flags.
"""

from __future__ import annotations

import keyword
import math
import random
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

import solvers
from gamedsl.errors import GameCheckError, GameError, Source, Span
from gamedsl.library.functions import FUNCTIONS
from gamedsl.nets.builders import BUILDERS
from gamedsl.semantics.settings import KEYS
from gamedsl.library.signature import (
    Arrow, Bool, Choice, Float, Int, IntList, Numeric, Signature, Text, normalize_shape,
)  # fmt: skip
from gamedsl.data.sources import INITIALIZERS, SOURCES
from gamedsl.semantics.checker import RESERVED, library
from gamedsl.syntax.parser import parse_source

# What the sources that read files are given: the harness writes these files under the data
# root it passes as --data-dir (tests/helpers/fuzz_harness.py, prepare_data).
IMAGE_FOLDER = "faces"
IMAGE_FOLDER_SIDE = 24  # every image in the folder is at least this many pixels on each side
SCHEDULE = {"schedule", "until", "final", "at", "factor"}  # the schedule parameters every optimizer takes
POINT_FILES = ("points.npy", "points.npz", "points.csv")  # arrays of POINT_DIM columns
POINT_DIM = 2
DATA_ARGS: dict[str, dict[str, tuple]] = {
    "image_folder": {"path": (IMAGE_FOLDER,)},
    "points": {"path": POINT_FILES, "dim": (POINT_DIM,)},
}

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _identifiers(words) -> list[str]:
    return sorted({w for w in words if _NAME.match(w)} - RESERVED - set(FUNCTIONS) - set(library()))


def _parses(text: str) -> bool:
    """Whether the language under test parses `text`: for syntax newer than some checkouts."""
    try:
        parse_source(Source("<probe>", text))
        return True
    except GameError:
        return False


VECTOR_LITERALS = _parses("game probe\nlet v = [1, 2]\n")  # `[a, b]` in expressions, where the grammar has it

# Names a game may declare that are also attributes of what the compiler builds (modules,
# parameter and module dicts, tensors' owners) or Python words: `param train = 1` once broke solve.
HOSTILE_NAMES = _identifiers(
    dir(torch.nn.Module) + dir(torch.nn.ParameterDict) + dir(torch.nn.ModuleDict)
    + keyword.kwlist + dir(dict) + dir(object)
)
ORDINARY_NAMES = _identifiers(
    "phi theta psi w v u a b c s t k x y z D G critic gen disc noise real fake score weight bias scale shift "
    "alpha beta gamma lam lr eps mu sigma alice bob player1 player2 self torch nn os sys np cls main".split()
)
SENSES = [sorted(w for w in RESERVED if w.startswith(stem)) for stem in ("maxim", "minim")]  # every spelling

# Constant expressions that fold to inf, NaN or an error (the red team's constant-folding class).
HOSTILE_CONSTANTS = (
    "0 * exp(1000)", "log(0)", "sqrt(0 - 1)", "2^10000", "0^(0 - 1)", "(0 - 8)^0.5", "1 / 0", "exp(1000) - exp(1000)",
)  # fmt: skip
HOSTILE_COUNTS = (100_000, 10**9, 10**12, 2**31, 2**63 - 1, 2**63, 2**64)
HOSTILE_FLOATS = ("1e308", "1e-308", "1e-320", "1.7976931348623157e308", "0")
NUMBER_FORMS = ("3", "0.5", ".5", "2.", "1e-3", "2.5E+4", "1", "2", "10", "0.1", "0")

Shape = tuple[int, ...]
SCALAR: Shape = ()


@dataclass(frozen=True)
class Profile:
    """What a corpus may draw. `hostile` is the chance of each hostile choice in a game
    that has them (all but a `benign` share); `images` the image sources used (digits
    trains a classifier once, 15 s: left out of quick runs)."""

    hostile: float = 0.08
    benign: float = 0.35  # share of games with no hostile choice at all
    images: tuple[str, ...] = ("cifar10", "image_folder", "digits")


QUICK = Profile(images=("cifar10", "image_folder"))


@dataclass(frozen=True)
class Case:
    """One generated game: its text, extra `gamedsl solve` flags and the hostile features used."""

    seed: int
    index: int
    text: str
    args: tuple[str, ...] = ()
    features: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"s{self.seed}-{self.index}"


def generate(seed: int, index: int, profile: Profile = Profile()) -> Case:
    """The case number `index` of the corpus `seed`."""
    rng = random.Random(f"gamedsl-fuzz:{seed}:{index}")
    game = _Game(rng, profile, 0.0 if rng.random() < profile.benign else profile.hostile)
    text, args = game.build()
    return Case(seed, index, text, tuple(args), tuple(sorted(set(game.features))))


@dataclass(frozen=True)
class Expr:
    text: str
    sampled: bool  # varies over the batch: allowed only inside E[...] and divergence arguments


@dataclass
class _Net:
    name: str
    inp: Shape
    out: Shape
    batch_norm: bool = False  # normalises over the batch: a value that does not vary is a batch of one


@dataclass
class _Game:
    rng: random.Random
    profile: Profile
    level: float  # the chance of each hostile choice in this game
    names: set[str] = field(default_factory=set)
    decls: list[str] = field(default_factory=list)
    params: dict[str, Shape] = field(default_factory=dict)
    samples: dict[str, Shape] = field(default_factory=dict)
    nets: dict[str, _Net] = field(default_factory=dict)
    lets: dict[str, Expr] = field(default_factory=dict)
    let_shapes: dict[str, Shape] = field(default_factory=dict)
    divergences: list[str] = field(default_factory=lambda: sorted(library()))
    aliases: list[str] = field(default_factory=list)
    features: list[str] = field(default_factory=list)

    # ---- small random choices ---------------------------------------------------------------

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def hostile(self, feature: str, scale: float = 1.0) -> bool:
        if self.rng.random() < self.level * scale:
            self.features.append(feature)
            return True
        return False

    def fresh(self) -> str:
        """A new name: often a Python or torch attribute name, sometimes very long."""
        for _ in range(100):
            roll = self.rng.random()
            if roll < 1.2 * self.level:
                name = self.rng.choice(HOSTILE_NAMES)
            elif roll < 1.2 * self.level + 0.02:  # at the length limit
                name = "n" * self.rng.choice((199, 200))
            else:
                name = self.rng.choice(ORDINARY_NAMES) + self.rng.choice(("", "", str(self.rng.randrange(10))))
            if name not in self.names and name not in RESERVED and name not in FUNCTIONS:
                self.names.add(name)
                if name in HOSTILE_NAMES:
                    self.features.append("attribute-name")
                return name
        raise RuntimeError("no fresh name")  # pragma: no cover - the pools hold hundreds of names

    def number(self) -> str:
        if self.hostile("huge-number", 0.1):
            return self.rng.choice(HOSTILE_FLOATS)
        return self.rng.choice(NUMBER_FORMS)

    def count(self, low: int = 1, high: int = 4, feature: str = "huge-size") -> int:
        if self.hostile(feature):
            return self.rng.choice(HOSTILE_COUNTS)
        return self.rng.randint(low, high)

    # ---- values of argument kinds (builders, sources, initialisers) ----------------------------

    def kind_value(self, kind) -> tuple[str, Any] | None:
        """Text and Python value of an in-range (sometimes hostile) value of `kind`; None if unknown."""
        rng = self.rng
        if isinstance(kind, Bool):
            value = rng.random() < 0.5
            return ("true" if value else "false"), value
        if isinstance(kind, Choice):
            value = rng.choice(kind.choices)
            return value, value
        if isinstance(kind, Int):
            low = kind.minimum if kind.minimum is not None else 0
            high = kind.maximum if kind.maximum is not None else max(low, 1) + 7
            if kind.maximum is None and self.hostile("huge-size", 0.5):
                value = rng.choice(HOSTILE_COUNTS)
            else:
                value = rng.choice([v for v in (low, low + 1, 2, 3, 4, 8, 16) if low <= v <= high] or [low])
            return str(value), value
        if isinstance(kind, IntList):
            items = [self.count(kind.minimum, 16) for _ in range(rng.randint(0, 3))]
            return "[" + ", ".join(map(str, items)) + "]", tuple(items)
        if isinstance(kind, Float):
            if kind.positive or kind.minimum is not None and kind.minimum >= 0:
                small = ("0.01", "0.05", "0.1", "0.5", "1", "2", "1e-3")
                text = "1e300" if self.hostile("huge-number", 0.5) else rng.choice(small)
            else:
                text = rng.choice(("-1", "-0.5", "0", "0.5", "1", "2"))
            return text, float(text)
        if isinstance(kind, Numeric):
            if rng.random() < 0.6:
                text = rng.choice(("0", "1", "-1", "0.5", "2", "0.01"))
                return text, float(text)
            items = [rng.choice(("0", "1", "-1", "0.5", "2")) for _ in range(rng.randint(1, 3))]
            return "[" + ", ".join(items) + "]", tuple(float(i) for i in items)
        if isinstance(kind, Text):
            return None  # paths: chosen by the caller
        return None

    def call(
        self, signature: Signature, fixed: dict[str, tuple[str, Any]], tries: int = 30
    ) -> tuple[str, dict[str, Any]] | None:
        """`name(args)` for `signature`: the `fixed` arguments, random optional ones, some by
        position; drawn again until the signature's own `validate` accepts the values."""
        for _ in range(tries):
            chosen: dict[str, tuple[str, Any]] = dict(fixed)
            for arg in signature.args:
                if arg.name in chosen:
                    continue
                if arg.required or self.chance(0.5):
                    value = self.kind_value(arg.kind)
                    if value is None:
                        if arg.required:
                            return None
                        continue
                    chosen[arg.name] = value
            values = {arg.name: chosen[arg.name][1] if arg.name in chosen else arg.default for arg in signature.args}
            if signature.validate is not None:
                spans = {name: Span.point(1, 1) for name in [*chosen, ""]}  # as Signature.bind: the given ones
                try:
                    signature.validate(values, spans)
                except (GameCheckError, TypeError, ValueError, OverflowError, KeyError):
                    continue
            return self.render_call(signature, chosen), values
        return None

    def render_call(self, signature: Signature, chosen: dict[str, tuple[str, Any]]) -> str:
        order = [arg.name for arg in signature.args if arg.name in chosen]
        positional = 0
        while (
            positional < len(order)
            and order[positional] == signature.args[positional].name
            and self.chance(0.9 if isinstance(signature.args[positional].kind, Arrow) else 0.5)
        ):
            positional += 1
        parts = [chosen[n][0] for n in order[:positional]]
        rest = order[positional:]
        self.rng.shuffle(rest)
        parts += [f"{n}={chosen[n][0]}" for n in rest]
        return f"{signature.name}({', '.join(parts)})"

    # ---- declarations -----------------------------------------------------------------------

    def declare(self, line: str) -> None:
        self.decls.append(line)

    def param(self, shape: Shape | None = None) -> str:
        name = self.fresh()
        size = shape[0] if shape else None
        if shape is None and self.chance(0.4):
            size = self.count(2, 4)
        rng = self.rng
        roll = rng.random()
        if roll < 0.3:
            init = self.rng.choice(("0", "1", "-0.5", "0.5", "2"))
        elif roll < 0.5 and (size is None or size <= 6):
            n = size or rng.randint(1, 3)
            init = "[" + ", ".join(rng.choice(("1", "-2", "0.5", "0", "3")) for _ in range(n)) + "]"
            if size is None and n > 1:
                size = n
        else:
            signature = INITIALIZERS[rng.choice(sorted(INITIALIZERS))]
            made = self.call(signature, {})
            init = made[0] if made else "0"
        sized = f"[{size}]" if size is not None and (not init.startswith("[") or self.chance(0.5)) else ""
        self.params[name] = normalize_shape((size,) if size is not None else ())
        self.declare(f"param {name}{sized} = {init}")
        return name

    def source(self, kind: str, image: bool) -> str | None:
        """`data NAME ~ source(...)` (or latent) with a random source of that kind."""
        images = set(self.profile.images)
        choices = [
            n for n, s in SOURCES.items()
            if kind in s.kinds and (n in images if image else not _makes_images(s))
        ]  # fmt: skip
        made = None
        for _ in range(10 if choices else 0):
            name = self.rng.choice(sorted(choices))
            src = SOURCES[name]
            made = self.call(src.signature, self.source_fixed(name, src))
            if made is not None:
                break
        if made is None:
            return self.source(kind, image=False) if image else None
        text, values = made
        var = self.fresh()
        self.samples[var] = normalize_shape(src.shape(values))
        self.declare(f"{kind} {var} ~ {text}")
        if image:
            self.features.append(f"image:{name}")
        return var

    def source_fixed(self, name: str, src) -> dict[str, tuple[str, Any]]:
        """Arguments the harness's data decide: paths, and image sides a small network can take."""
        fixed: dict[str, tuple[str, Any]] = {}
        args = {a.name: a for a in src.signature.args}
        for arg, values in DATA_ARGS.get(name, {}).items():
            value = self.rng.choice(values)
            fixed[arg] = (f'"{value}"' if isinstance(value, str) else str(value), value)
        if "path" in args and self.hostile("bad-path", 0.5):
            path = self.rng.choice(("/dev/null", "", "nowhere", "/proc/self", "../" * 8 + "etc"))
            fixed["path"] = (f'"{path}"', path)
        if "size" in args and isinstance(args["size"].kind, Int) and _makes_images(src):
            size = self.rng.choice((100_000, 2**31) if self.hostile("huge-image", 0.5) else (4, 8, 16))
            fixed["size"] = (str(size), size)
            if "crop" in args:
                crop = self.rng.choice((None, size, IMAGE_FOLDER_SIDE)) if size <= IMAGE_FOLDER_SIDE else None
                if crop is not None:
                    fixed["crop"] = (str(crop), crop)
        if "channels" in args:
            channels = self.rng.choice((1, 3))
            fixed["channels"] = (str(channels), channels)
        if "dim" in args and self.hostile("huge-size", 0.5):
            dim = self.rng.choice(HOSTILE_COUNTS)
            fixed["dim"] = (str(dim), dim)
        return fixed

    def network(self, inp: Shape, out: Shape) -> str | None:
        """`network NAME = builder(IN -> OUT, ...)` with a builder whose signature accepts this arrow."""
        io = (_arrow_text(inp) + " -> " + _arrow_text(out), (_io_shape(inp), _io_shape(out)))
        builders = sorted(BUILDERS)
        self.rng.shuffle(builders)
        for builder in builders:
            signature = BUILDERS[builder].signature
            io_arg = next((a.name for a in signature.args if isinstance(a.kind, Arrow)), None)
            if io_arg is None:
                continue
            made = self.call(signature, {io_arg: io} | self.network_fixed(signature))
            if made is not None:
                name = self.fresh()
                self.nets[name] = _Net(name, inp, out, _couples_examples(builder, made[1]))
                self.declare(f"network {name} = {made[0]}")
                return name
        return None

    def network_fixed(self, signature: Signature) -> dict[str, tuple[str, Any]]:
        """Small networks unless hostile: a few filters, few and small dense layers."""
        fixed = {}
        for arg in signature.args:
            if arg.name in ("filters", "dense") and isinstance(arg.kind, Int):
                value = self.rng.choice((1, 2, 4)) if arg.name == "filters" else self.rng.choice((0, 0, 4))
                if self.hostile("huge-network", 0.5):
                    value = self.rng.choice((10**6, 10**9))
                fixed[arg.name] = (str(value), value)
            elif isinstance(arg.kind, IntList):
                items = [self.rng.choice((2, 4, 8, 16)) for _ in range(self.rng.randint(0, 2))]
                if self.hostile("huge-network"):
                    items = [self.rng.choice((100_000, 10**9, 2**63))] * 2
                fixed[arg.name] = ("[" + ", ".join(map(str, items)) + "]", tuple(items))
        return fixed

    def divergence(self) -> str:
        """A user-defined divergence: two parts in one variable, elementwise functions only."""
        name = self.fresh()
        var = self.rng.choice(("t", "u", "s", "value"))
        parts = [f"g1({var}) = {self.part(var)}", f"g2({var}) = {self.part(var)}"]
        self.rng.shuffle(parts)
        self.declare(f"divergence {name} {{\n  " + "\n  ".join(parts) + "\n}")
        self.divergences.append(name)
        return name

    def alias(self) -> str:
        name = self.fresh()
        self.declare(f"divergence {name} = {self.rng.choice(self.divergences)}")
        self.divergences.append(name)
        self.aliases.append(name)
        return name

    def part(self, var: str) -> str:
        """A divergence part that depends on its variable (a constant part would leave the
        critic's objective independent of the critic: a check error, not a fuzz case)."""
        text = self.part_expr(var, 2)
        return text if re.search(rf"\b{var}\b", text) else f"{var} {self.rng.choice('+-*')} {text}"

    def part_expr(self, var: str, depth: int) -> str:
        rng = self.rng
        if depth == 0 or rng.random() < 0.3:
            return rng.choice((var, var, self.number(), f"-{var}"))
        roll = rng.random()
        if roll < 0.4:
            return f"{rng.choice(_elementwise())}({self.part_expr(var, depth - 1)})"
        if roll < 0.8:
            return f"({self.part_expr(var, depth - 1)} {rng.choice('+-*')} {self.part_expr(var, depth - 1)})"
        return f"{self.part_expr(var, depth - 1)}^2"

    # ---- expressions ------------------------------------------------------------------------

    def shapes(self) -> set[Shape]:
        return {SCALAR, *self.params.values(), *self.samples.values(), *(n.inp for n in self.nets.values()),
                *(n.out for n in self.nets.values()), *self.let_shapes.values()}  # fmt: skip

    def reachable(self) -> tuple[set[Shape], set[Shape]]:
        """Shapes some deterministic / some sampled expression has (a fixed point over networks)."""
        det = {SCALAR} | set(self.params.values()) | {self.let_shapes[n] for n, e in self.lets.items() if not e.sampled}
        smp = set(self.samples.values()) | {self.let_shapes[n] for n, e in self.lets.items() if e.sampled}
        changed = True
        while changed:
            before = (len(det), len(smp))
            for net in self.nets.values():
                if net.inp in det or net.inp in smp:
                    (det if net.inp in det else smp).add(net.out)
            if smp:
                smp.add(SCALAR)
            changed = before != (len(det), len(smp))
        return det, smp

    def expr(self, shape: Shape, inside: bool, depth: int = 2) -> Expr:
        """An expression of `shape`. `inside`: within E[...] or a divergence argument, where
        sampled values may appear; outside, sampled values are averaged by E[...]."""
        det, smp = self.reachable()
        if shape not in det and shape not in smp:
            raise ValueError(f"no expression of shape {shape}")
        rng = self.rng
        if depth <= 0 or rng.random() < 0.35:
            return self.atom(shape, inside, det, smp, depth)
        roll = rng.random()
        if roll < 0.25:
            a, b = self.expr(shape, inside, depth - 1), self.expr(shape, inside, depth - 1)
            return Expr(f"({a.text} {rng.choice('+-*')} {b.text})", a.sampled or b.sampled)
        if roll < 0.4:
            a, b = self.expr(SCALAR, inside, depth - 1), self.expr(shape, inside, depth - 1)
            op = rng.choice("*/") if shape == SCALAR else "*"
            return Expr(f"({b.text} {op} {a.text})", a.sampled or b.sampled)
        if roll < 0.55:  # a function entry by entry: one argument, or several of this shape or scalars
            fn = FUNCTIONS[rng.choice(_functions("elementwise", "broadcast"))]
            args = [self.expr(shape, inside, depth - 1)]
            args += [self.expr(rng.choice((shape, SCALAR)), inside, depth - 1) for _ in range((fn.arity or 1) - 1)]
            return Expr(f"{fn.name}({', '.join(a.text for a in args)})", any(a.sampled for a in args))
        if roll < 0.62:
            a = self.expr(shape, inside, depth - 1)
            return Expr(f"{rng.choice(self.divergences)}.{rng.choice(('g1', 'g2'))}({a.text})", a.sampled)
        if roll < 0.7:
            a = self.expr(shape, inside, depth - 1)
            return Expr(f"({a.text})^{rng.choice(('2', '3', '0.5', '-1', '2^-1'))}", a.sampled)
        if roll < 0.75:
            a = self.expr(shape, inside, depth - 1)
            return Expr(f"-({a.text})", a.sampled)
        if shape == SCALAR and roll < 0.9:
            return self.reduction(inside, depth - 1, det, smp)
        return self.atom(shape, inside, det, smp, depth)

    def reduction(self, inside: bool, depth: int, det, smp) -> Expr:
        """A scalar from vectors or images, by every kind of built-in FUNCTIONS declares for
        it: a reduction, a pair (dot), an index, a reduction of a concat or of a gradient."""
        rng = self.rng
        vectors = sorted(s for s in det | smp if s != SCALAR)
        if not vectors:
            return self.atom(SCALAR, inside, det, smp, depth)
        shape = rng.choice(vectors)
        reduce = rng.choice(_functions("reduce"))
        roll = rng.random()
        if len(shape) == 1 and roll < 0.2:
            a = self.expr(shape, inside, depth)
            return Expr(f"({a.text})[{rng.randrange(shape[0])}]", a.sampled)
        if len(shape) == 1 and roll < 0.35 and _functions("pair"):
            a, b = self.expr(shape, inside, depth), self.expr(shape, inside, depth)
            return Expr(f"{rng.choice(_functions('pair'))}({a.text}, {b.text})", a.sampled or b.sampled)
        if roll < 0.45 and _functions("concat"):
            flat = [SCALAR] + [s for s in vectors if len(s) == 1]
            parts = [self.expr(rng.choice(flat), inside, depth) for _ in range(rng.randint(1, 3))]
            inner = f"{rng.choice(_functions('concat'))}({', '.join(p.text for p in parts)})"
            return Expr(f"{reduce}({inner})", any(p.sampled for p in parts))
        critics = [c for c in self.critics() if self.level or not c.batch_norm]  # no per-sample gradient
        if roll < 0.55 and _functions("gradient") and critics:
            critic = rng.choice(critics)
            at = self.expr(critic.inp, inside, depth)
            return Expr(f"{reduce}({rng.choice(_functions('gradient'))}({critic.name}, {at.text}))", at.sampled)
        a = self.expr(shape, inside, depth)
        return Expr(f"{reduce}({a.text})", a.sampled)

    def atom(self, shape: Shape, inside: bool, det: set[Shape], smp: set[Shape], depth: int) -> Expr:
        """A name, a number or a constant (`base`), else a network applied, an expectation or
        a divergence call; at the depth limit only `base` when it has something of this shape."""
        base: list[Callable[[], Expr]] = []
        if shape == SCALAR:
            base += [lambda: Expr(self.number(), False), lambda: Expr(self.constant(), False)]
        base += [lambda n=n: Expr(n, False) for n, s in self.params.items() if s == shape]
        lets = [n for n, e in self.lets.items() if self.let_shapes[n] == shape and (inside or not e.sampled)]
        base += [lambda n=n: Expr(n, self.lets[n].sampled) for n in lets]
        if inside:
            base += [lambda n=n: Expr(n, True) for n, s in self.samples.items() if s == shape]
        if len(shape) == 1 and shape[0] <= 4 and VECTOR_LITERALS:
            base.append(lambda: self.vector_literal(shape[0], inside, depth))
        nested: list[Callable[[], Expr]] = []
        for net in self.nets.values():
            if net.out == shape and (net.inp in det or net.inp in smp) and (inside or not net.batch_norm or self.level):
                nested.append(lambda net=net: self.apply(net, inside, depth - 1))
        if not inside and shape in smp:
            nested.append(lambda: self.expectation(shape, depth - 1))
        if shape == SCALAR and not inside and depth > 0 and self.critics():
            nested.append(lambda: self.divergence_call(depth - 1))
        options = base if base and depth <= 0 else base + nested
        return self.rng.choice(options)()

    def vector_literal(self, size: int, inside: bool, depth: int) -> Expr:
        items = [self.expr(SCALAR, inside, depth - 1) for _ in range(size)]
        return Expr("[" + ", ".join(i.text for i in items) + "]", any(i.sampled for i in items))

    def constant(self) -> str:
        """A constant subexpression, hostile now and then: it folds to inf or NaN."""
        if self.hostile("constant-folding", 2):
            return "(" + self.rng.choice(HOSTILE_CONSTANTS) + ")"
        fn = self.rng.choice(_elementwise())
        return f"{fn}({self.number()})"

    def apply(self, net: _Net, inside: bool, depth: int) -> Expr:
        """`net(arg)`; a batch-norm network gets a sampled argument unless the game is hostile."""
        if net.batch_norm and inside and self.level == 0 and net.inp in self.reachable()[1]:
            arg = self.sampled(net.inp, depth)
        else:
            arg = self.expr(net.inp, inside, depth)
        if net.batch_norm and not arg.sampled:
            self.features.append("batch-norm-of-one")
        if net.inp == SCALAR and not arg.sampled and arg.text[:1].isdigit():
            self.features.append("network-of-constant")
        return Expr(f"{net.name}({arg.text})", arg.sampled)

    def expectation(self, shape: Shape, depth: int) -> Expr:
        body = self.sampled(shape, depth)
        if self.chance(0.4):
            other = self.expr(shape, True, depth - 1)
            body = Expr(f"{body.text} {self.rng.choice('+-*')} {other.text}", True)
        return Expr(f"E[{body.text}]", False)

    def sampled(self, shape: Shape, depth: int) -> Expr:
        """An expression of `shape` that is sampled (the body of an E[...] must be)."""
        rng = self.rng
        smp = self.reachable()[1]
        direct = [lambda n=n: Expr(n, True) for n, s in self.samples.items() if s == shape]
        if direct and depth <= 0:
            return rng.choice(direct)()
        options = list(direct)
        for net in self.nets.values():
            if net.out == shape and net.inp in smp:
                options.append(lambda net=net: Expr(f"{net.name}({self.sampled(net.inp, depth - 1).text})", True))
        if shape == SCALAR:
            for s in sorted(smp - {SCALAR}):
                reducer = rng.choice(("sum", "mean", "norm"))
                options.append(lambda s=s, r=reducer: Expr(f"{r}({self.sampled(s, depth - 1).text})", True))
        if not options:
            raise ValueError(f"nothing sampled of shape {shape}")
        return rng.choice(options)()

    def critics(self) -> list[_Net]:
        det, smp = self.reachable()
        return [n for n in self.nets.values() if n.out == SCALAR and (n.inp in det or n.inp in smp)]

    def divergence_call(self, depth: int, critic: _Net | None = None, fake: Expr | None = None) -> Expr:
        """`div(critic=D, real=..., fake=...)`, by name, by position or mixed."""
        critic = critic or self.rng.choice(self.critics())
        batch = critic.batch_norm and self.level == 0 and critic.inp in self.reachable()[1]
        draw = (lambda: self.sampled(critic.inp, depth)) if batch else (lambda: self.expr(critic.inp, True, depth))
        real = draw()
        fake = fake or draw()
        name = self.rng.choice(self.divergences)
        args = [("critic", critic.name), ("real", real.text), ("fake", fake.text)]
        positional = self.rng.randint(0, 3)
        parts = [v for _, v in args[:positional]] + [f"{k}={v}" for k, v in args[positional:]]
        return Expr(f"{name}({', '.join(parts)})", False)

    # ---- players ----------------------------------------------------------------------------

    def term(self, item: str) -> str:
        """A deterministic scalar term that depends on the parameter or network `item`."""
        rng = self.rng
        if item in self.params:
            shape = self.params[item]
            if shape == SCALAR:
                other = self.expr(SCALAR, False, 1).text
                fn = rng.choice(_elementwise())
                return rng.choice((f"{item} * {other}", f"-({item} - {other})^2", f"{fn}({item})", item))
            other = self.expr(shape, False, 1).text
            index = rng.randrange(shape[0])
            forms = (f"sum({item})", f"{item}[{index}]", f"norm({item})^2", f"dot({item}, {other})")
            forms += (f"mean({item} * {other})",)
            return rng.choice(forms)
        net = self.nets[item]
        users = [c for c in self.critics() if c.inp == net.out and c is not net]
        roll = rng.random()
        if net.out == SCALAR and roll < 0.45:
            return self.divergence_call(1, critic=net).text
        if users and roll < 0.8:
            critic = rng.choice(users)
            fake = self.apply(net, True, 1)
            if rng.random() < 0.5:
                return self.divergence_call(1, critic=critic, fake=fake).text
            inner = f"{critic.name}({fake.text})"
            if rng.random() < 0.5:
                inner = f"{rng.choice(self.divergences)}.{rng.choice(('g1', 'g2'))}({inner})"
            return f"E[{inner}]" if fake.sampled else inner
        applied = self.apply(net, True, 1)
        text = applied.text if net.out == SCALAR else f"{rng.choice(('sum', 'mean', 'norm'))}({applied.text})"
        return f"E[{text}]" if applied.sampled else text

    def player(self, name: str, items: list[str]) -> None:
        terms = [self.term(item) for item in items]
        if self.chance(0.4):
            terms.append(self.expr(SCALAR, False, 2).text)
        objective = terms[0]
        for t in terms[1:]:
            objective += f" {self.rng.choice('+-')} {self.rng.choice(('', '0.1 * ', '2 * '))}{t}"
        sense = self.rng.choice(self.rng.choice(SENSES))
        self.declare(f"player {name} controls {', '.join(items)} {sense} {objective}")

    # ---- the game ---------------------------------------------------------------------------

    def build(self) -> tuple[str, list[str]]:
        families = ["gan", "params", "dirac"] + (["image"] if self.profile.images else [])
        family = self.rng.choice(families)
        owners = getattr(self, f"family_{family}")()
        self.features.append(f"family:{family}")
        if self.chance(0.3):
            self.let()
        players: list[str] = []
        for items in owners:
            shared = items[0] in self.nets and items[0] not in players and self.chance(0.5)  # named as its network
            name = items[0] if shared else self.fresh_player(players)
            players.append(name)
            self.player(name, items)
        decls = list(self.decls)
        if self.chance(0.3):
            self.rng.shuffle(decls)
        heavy = family == "image" or any(f.startswith("huge-") for f in self.features)
        settings = Settings(self.rng, self.level, players, self.features, heavy)
        block = settings.block()
        name = self.fresh_player([])
        header = f"game {name}" + (' "a generated game"' if self.chance(0.5) else "")
        text = "\n".join([header, *decls, *([block] if block else [])]) + "\n"
        return text, settings.flags(self.aliases, self.divergences)

    def fresh_player(self, taken: list[str]) -> str:
        while True:
            name = self.rng.choice(HOSTILE_NAMES + ORDINARY_NAMES)
            if name not in taken and name not in self.nets:
                return name

    def let(self) -> None:
        det, smp = self.reachable()
        shape = self.rng.choice(sorted(self.shapes() & (det | smp)))
        inside = self.chance(0.5) and shape in smp
        value = self.expr(shape, inside, 2)
        name = self.fresh()
        self.declare(f"let {name} = {value.text}")
        self.lets[name] = value
        self.let_shapes[name] = shape

    def vector_shape(self) -> Shape:
        return normalize_shape((self.rng.choice((1, 2, 2, 3)),))

    def extra_divergences(self) -> None:
        if self.chance(0.3):
            self.divergence()
        if self.chance(0.3):
            self.alias()

    def family_gan(self) -> list[list[str]]:
        """data x, latent z, a critic and a generator (mlp or linear), plus parameters."""
        self.extra_divergences()
        x = self.source("data", image=False)
        z = self.source("latent", image=False)
        critic = self.network(self.samples[x], SCALAR)
        gen = self.network(self.samples[z], self.samples[x])
        owners = [[critic], [gen]]
        if self.chance(0.3):
            owners[self.rng.randrange(2)].append(self.param())
        return owners

    def family_image(self) -> list[list[str]]:
        """Tiny images from an image source, a convolutional critic and generator."""
        self.extra_divergences()
        x = self.source("data", image=True)
        z = self.source("latent", image=False)
        critic = self.network(self.samples[x], SCALAR)
        gen = self.network(self.samples[z], self.samples[x])
        if critic is None or gen is None:  # the image side fits no network: a vector game instead
            self.features.append("image-fallback")
            gen = gen or self.network(self.samples[z], SCALAR)
            critic = critic or self.network(SCALAR, SCALAR)
        return [[critic], [gen]]

    def family_dirac(self) -> list[list[str]]:
        """The Dirac-GAN shape: data at a point, the generator a parameter, a small critic."""
        self.extra_divergences()
        shape = self.vector_shape()
        points = [self.rng.choice(("0", "1", "-1")) for _ in range(shape[0] if shape else 0)]
        value = "[" + ", ".join(points) + "]" if points else "0"
        x = self.fresh()
        self.samples[x] = shape
        self.declare(f"data {x} ~ dirac({value})")
        theta = self.param(shape if shape else None)
        critic = self.network(shape, SCALAR)
        return [[critic], [theta]]

    def family_params(self) -> list[list[str]]:
        """Two or three players over parameters, with small networks, data or latents now and then."""
        self.extra_divergences()
        if self.chance(0.4):
            self.source(self.rng.choice(("data", "latent")), image=False)
        items = [self.param() for _ in range(self.rng.randint(2, 4))]
        for _ in range(self.rng.choice((0, 0, 1, 2))):
            shape = self.rng.choice(sorted(self.shapes()))
            net = self.network(shape, self.rng.choice((SCALAR, self.vector_shape())))
            if net:
                items.append(net)
        self.rng.shuffle(items)
        players = 3 if len(items) >= 3 and self.chance(0.2) else 2
        owners = [[item] for item in items[:players]]
        for item in items[players:]:
            owners[self.rng.randrange(players)].append(item)
        return owners


class Settings:
    """The solve block and extra `solve` flags: every key of gamedsl.semantics.settings.KEYS may appear,
    with in-range values mostly and out-of-range or hostile ones sometimes; solvers and
    optimizers with random parameters from their registries."""

    def __init__(self, rng: random.Random, level: float, players: list[str], features: list[str], heavy: bool):
        self.rng = rng
        self.level = level
        self.heavy = heavy
        self.players = players
        self.features = features
        self.current = {key: spec.default for key, spec in KEYS.items() if spec.kind is None}  # solver, optimizer

    def hostile(self, feature: str, scale: float = 1.0) -> bool:
        if self.rng.random() < self.level * scale:
            self.features.append(feature)
            return True
        return False

    def block(self) -> str:
        rng = self.rng
        lines: list[str] = []
        for key, spec in KEYS.items():
            if spec.kind is None:
                if rng.random() < 0.6:
                    name, params = self.method(key)
                    self.current[key] = name
                    if params and rng.random() < 0.3:  # one as a dotted key: `solver.gamma = 1`
                        param, value = params.pop().split("=", 1)
                        lines.append(f"{key}.{param} = {value}")
                    call = f"({', '.join(params)})" if params or rng.random() < 0.2 else ""
                    lines.insert(0, f"{key} = {name}{call}")
            elif rng.random() < 0.3:
                lines.append(f"{key} = {self.value(key)}")
        spectra = any(re.fullmatch(r"spectrum_every = [1-9]\d{0,3}", line) for line in lines)
        if spectra and not any(line.startswith("spectrum_batches =") for line in lines):
            lines.append("spectrum_batches = 1")  # spectra are costly: one batch unless asked otherwise
        if not lines and rng.random() < 0.5:
            return ""
        rng.shuffle(lines)
        if rng.random() < 0.2:
            return "solve { " + "  ".join(lines) + " }"
        return "solve {\n" + "\n".join(f"  {line}" for line in lines) + "\n}"

    def choices(self, key: str) -> list[str]:
        """The solvers (or optimizers) to draw from: all in a hostile game; in a benign one,
        those whose declared needs the game meets (a number of players, an optimizer: class
        attributes, where the registry's classes have them)."""
        if key == "solver":
            fits = lambda cls: getattr(cls, "players", None) in (None, len(self.players))  # noqa: E731
            optimizer = self.current["optimizer"]
            return [
                n
                for n in solvers.available()
                if self.level or fits(solvers.SOLVERS.cls(n)) and optimizer in _optimizers(n)
            ]
        return [n for n in solvers.optimizers.available() if self.level or n in _optimizers(self.current["solver"])]

    def method(self, key: str, name: str | None = None) -> tuple[str, list[str]]:
        """A solver or optimizer (`name`, else one from `choices`) and some of its parameters, each `p=v`."""
        registry = solvers.SOLVERS if key == "solver" else solvers.optimizers.OPTIMIZERS
        name = name or self.rng.choice(self.choices(key))
        specs = registry.describe(name)
        chosen = [s for s in specs if s.name not in SCHEDULE and self.rng.random() < 0.5]
        params = [f"{s.name}={self.param_value(s)}" for s in chosen]
        if key == "optimizer" and self.rng.random() < 0.3:
            params += self.schedule()
        if chosen and self.hostile("duplicate-parameter", 0.5):
            params.append(params[0])
        return name, params

    def schedule(self) -> list[str]:
        """A learning-rate schedule: a whole one mostly, one missing its step when hostile."""
        rng = self.rng
        kind = rng.choice(("constant", "linear", "cosine", "step"))
        params = [f'schedule="{kind}"']
        if self.hostile("incomplete-schedule", 0.3):
            return params
        if kind in ("linear", "cosine"):
            params += [f"until={rng.choice((1, 2, 5, 100))}", f"final={rng.choice((0, 0.1, 1))}"]
        elif kind == "step":
            params += [f"at={rng.choice((1, 2, 50))}", f"factor={rng.choice((0, 0.1, 0.5))}"]
        return params

    def param_value(self, spec) -> str:
        """A value for a solver or optimizer parameter: its default, near it, at the edges of
        its range (any numeric bound the spec declares) or beyond."""
        rng = self.rng
        if spec.type is bool:
            return rng.choice(("true", "false"))
        if spec.type is str:
            return rng.choice(self.players + ['""', "nobody"]) if rng.random() < 0.9 else '"x"'
        bounds = _bounds(spec)
        default = spec.default if isinstance(spec.default, (int, float)) and not isinstance(spec.default, bool) else 1
        if spec.type is int:
            candidates = [default, default + 1, max(default - 1, 1)]
            if self.hostile("hyperparameter-range"):
                candidates = [0, -1, 10**9, 2**63, *bounds]
            value = rng.choice(candidates)
            return str(int(value))
        candidates = [default, default / 2, default / 10]
        if self.hostile("hyperparameter-range", 3):
            candidates = [0, 1, -1, 1e308, 2, -default, *bounds]
        return _float_text(rng.choice(candidates))

    def value(self, key: str) -> str:
        """A value for the setting `key`, in range mostly; kinds read from gamedsl.semantics.settings.KEYS."""
        rng = self.rng
        kind = KEYS[key].kind
        if self.hostile("bad-setting", 0.2):
            return rng.choice(("-1", "1.5", "nothing", '"text"', "[1, 2]", "1e999", "true"))
        if isinstance(kind, Int):
            low = kind.minimum if kind.minimum is not None else 0
            if self.hostile(f"huge-{key}"):
                return str(rng.choice(HOSTILE_COUNTS))
            small = {
                "eval_samples": (16, 50, 100),
                "batch": (1, 2, 4, 8),
                "threads": (0, 1, 1, 2),
                "spectrum_every": (0, 0, 1, 2),
            }.get(key, (low, low + 1, 2))
            if key == "spectrum_every" and self.heavy:
                small = (0,)  # the spectrum of a big or convolutional network takes minutes: slow, not a hang
            return str(max(low, rng.choice(small)))
        if isinstance(kind, Choice):
            return rng.choice(kind.choices)
        default = KEYS[key].default
        if key == "device":
            return rng.choice(("cuda", '"cuda:7"') if self.hostile("device") else ("cpu", "auto", "cpu"))
        return str(default)

    def flags(self, aliases: list[str], divergences: list[str]) -> list[str]:
        """Extra `solve` flags: --solver, --set of any setting, solver or optimizer parameter,
        divergence alias, sometimes with a value the parser must refuse."""
        rng = self.rng
        out: list[str] = []
        if rng.random() < 0.3:
            self.current["solver"] = rng.choice(self.choices("solver"))
            out += ["--solver", self.current["solver"]]
        for _ in range(rng.choice((0, 0, 1, 2))):
            roll = rng.random()
            if roll < 0.3:
                key = rng.choice([k for k, s in KEYS.items() if s.kind is not None])
                value = self.value(key)
            elif roll < 0.7:
                key = rng.choice(("solver", "optimizer"))
                name, params = self.method(key, self.current[key] if rng.random() < 0.85 else None)
                if params and rng.random() < 0.5:  # a parameter of the method in use, mostly
                    key, value = f"{key}.{params[0].split('=', 1)[0]}", params[0].split("=", 1)[1]
                else:
                    value = name + (f"({', '.join(params)})" if params else "")
            elif aliases and roll < 0.85:
                key, value = f"divergence.{rng.choice(aliases)}", rng.choice(divergences)
            elif self.hostile("hostile-set", 4):
                key = rng.choice(("steps", "solver.gamma", "optimizer.lr", "batch", "seed"))
                value = rng.choice(("1e999", "1e308", "-1", "2^63", "nan", "inf", "adam(lr=1e-3", "(", "1,"))
            else:
                key = rng.choice([k for k, s in KEYS.items() if s.kind is not None])
                value = self.value(key)
            out += ["--set", f"{key}={value}"]
        return out


def _couples_examples(builder: str, values: dict[str, Any]) -> bool:
    """Whether the network normalises over the batch (batch norm): from the builder's footprint
    rule where it has one, else from a `batchnorm` argument (checkouts before footprints)."""
    footprint = getattr(BUILDERS[builder], "footprint", None)
    if footprint is None:
        return values.get("batchnorm") is True
    try:
        return footprint(values).norm_values > 0
    except (TypeError, ValueError, KeyError, OverflowError):
        return False


def _optimizers(solver: str) -> list[str]:
    """The optimizers `solver` declares it can step with (`optimizers` on its class), else all."""
    return list(getattr(solvers.SOLVERS.cls(solver), "optimizers", None) or solvers.optimizers.available())


def _bounds(spec) -> list[float]:
    """The finite numbers a parameter's declaration holds besides its default: the ends of
    its range, whatever the registry calls them (a field, or the fields of a range object)."""
    found: list[float] = []
    for key, value in vars(spec).items():
        if key in ("name", "type", "default", "doc"):
            continue
        for v in vars(value).values() if hasattr(value, "__dict__") else (value,):
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                found.append(v)
    return found


def _functions(*kinds: str) -> list[str]:
    return [f.name for f in FUNCTIONS.values() if f.kind in kinds]


def _elementwise() -> list[str]:
    return _functions("elementwise")



def _makes_images(source) -> bool:
    """Whether a source yields images: its shape for the defaults (and stand-ins for required
    arguments) has three axes."""
    values = {a.name: (a.default if not a.required else _stand_in(a.kind)) for a in source.signature.args}
    try:
        return len(source.shape(values)) == 3
    except (TypeError, KeyError, ValueError):
        return False


def _stand_in(kind) -> Any:
    return {Text: "x", Numeric: 0.0, Int: 1, Float: 1.0, Bool: True}.get(type(kind))


def _io_shape(shape: Shape) -> Shape:
    return shape if shape else (1,)


def _arrow_text(shape: Shape) -> str:
    shape = _io_shape(shape)
    return str(shape[0]) if len(shape) == 1 else "[" + ", ".join(map(str, shape)) + "]"


def _float_text(value: float) -> str:
    return repr(float(value)) if abs(value) < 1e16 else f"{value:.17g}"
