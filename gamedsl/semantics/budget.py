"""How much memory a run of a game will need, estimated before anything is built.

`gamedsl check` refuses a game whose run could not fit, instead of letting `solve` fail
on allocation (or crash PyTorch itself, for sizes of 2^63 and more). Everything is counted
with Python integers from the checked game: parameters from their declared sizes and from
each builder's footprint rule (gamedsl/nets/builders.py), activations from the typed IR
times the batch. The estimate is deliberately generous, a bound to catch a mistyped size,
not a prediction to the byte; the limit is the `memory_limit` setting.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod

from gamedsl.errors import Span
from gamedsl.semantics import ir
from gamedsl.semantics.model import CheckedGame, network_footprint

GIB = 2**30
STATE_COPIES = 8  # per parameter: itself, its field, the direction, up to 3 optimizer and 2 solver buffers
BACKWARD_COPIES = 3  # per activation: the forward value, its gradient, a second backward (consensus, SGA, CGD)
GENERATOR_BYTES = 5056  # the state of a CPU torch.Generator; each shard of each sampled variable has one


@dataclass(frozen=True)
class Part:
    """One component of a run's memory, with what changes it: the settings (`keys`) and the
    declaration that weighs most in it (`span`)."""

    what: str  # a phrase: "3 parameters (...)"
    bytes: int
    keys: tuple[str, ...]
    span: Span | None
    advice: str


def estimate(game: CheckedGame, batch: int, eval_samples: int, shards: int, dtype: str) -> list[Part]:
    """The memory a run needs, in parts: parameters with their state, a step's activations,
    the end-of-run samples and the sample streams."""
    scalar = 8 if dtype == "float64" else 4
    parts = []

    sizes = {name: game.size_of(name) for p in game.players for name in p.controls}
    total = sum(sizes.values())
    if sizes:
        largest = max(sizes, key=sizes.get)
        decl = game.params[largest].decl if largest in game.params else game.networks[largest].decl
        kind = "parameter" if largest in game.params else "network"
        parts.append(
            Part(
                f"{total:,} parameters, most of them in {kind} '{largest}' ({sizes[largest]:,}), with their "
                "gradients and optimizer state",
                total * scalar * STATE_COPIES,
                (),
                decl.name_span,
                f"make {kind} '{largest}' smaller",
            )
        )

    per_example, heaviest = activations(game, [p.utility for p in game.players])
    parts.append(
        Part(
            f"a batch of {batch:,} examples with {per_example:,} intermediate values each",
            batch * per_example * scalar * BACKWARD_COPIES,
            ("batch",),
            heaviest.span if heaviest else None,
            "lower the batch" + (f", or make {heaviest.label} smaller" if heaviest else ""),
        )
    )

    drawn = sum(prod(sample.shape) for sample in game.samples.values())  # every variable is drawn, used or not
    if drawn:
        parts.append(
            Part(
                f"a batch of {batch:,} draws of the data and latent variables, {drawn:,} values each",
                batch * drawn * scalar,
                ("batch",),
                max(game.samples.values(), key=lambda sample: prod(sample.shape)).decl.name_span,
                "lower the batch",
            )
        )

    if game.comparison is not None:  # drawn in one pass without gradients: the widest layer and its input at once
        widest, heaviest = peak(game, game.comparison[1])
        widest = max(widest, prod(game.comparison[1].shape))  # the samples themselves, even of a constant
        parts.append(
            Part(
                f"{eval_samples:,} end-of-run samples, {widest:,} values each in the widest layer",
                eval_samples * 2 * widest * scalar,
                ("eval_samples",),
                heaviest.span if heaviest else None,
                "lower eval_samples" + (f", or make {heaviest.label} smaller" if heaviest else ""),
            )
        )

    streams = len(game.samples)
    if shards and streams:
        parts.append(
            Part(
                f"{shards:,} shards of {streams} sampled variable(s), each with a random generator of its own",
                shards * streams * GENERATOR_BYTES,
                ("shards",),
                None,
                "use fewer shards",
            )
        )
    return parts


@dataclass(frozen=True)
class Owner:
    """A declaration that values belong to: a network, or a data or latent variable."""

    label: str  # "network 'G'", "latent 'z'"
    span: Span


def _owner(game: CheckedGame, node: ir.Node) -> Owner | None:
    if isinstance(node, ir.Apply):
        return Owner(f"network '{node.network}'", game.networks[node.network].decl.name_span)
    if isinstance(node, ir.Sample):
        sample = game.samples[node.name]
        return Owner(f"{sample.kind} '{node.name}'", sample.decl.name_span)
    return None


def activations(game: CheckedGame, roots: list[ir.Node]) -> tuple[int, Owner | None]:
    """Values computed per example by the expressions `roots`, and the declaration that
    contributes most.

    Each shared node (a let used twice) is counted once, as the torch compiler shares it; a
    network counts the outputs of its layers at every application.
    """
    total, weights, seen = 0, {}, set()
    stack = list(roots)
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.extend(node.children())
        if isinstance(node, ir.Apply):
            size = network_footprint(game.networks[node.network]).activations
        elif node.sampled:
            size = prod(node.shape)
        else:
            continue
        total += size
        owner = _owner(game, node)
        if owner is not None:
            weights[owner] = weights.get(owner, 0) + size
    return total, max(weights, key=weights.get) if weights else None


def peak(game: CheckedGame, root: ir.Node) -> tuple[int, Owner | None]:
    """The most values one example holds at a time when `root` is evaluated without
    gradients (a network's widest layer, or a sampled value), and whose they are."""
    widest, where = 0, None
    for node in ir.walk(root):
        if isinstance(node, ir.Apply):
            size = network_footprint(game.networks[node.network]).widest
        elif node.sampled:
            size = prod(node.shape)
        else:
            continue
        if size > widest:
            widest, where = size, _owner(game, node) or where
    return widest, where


def human(count: int) -> str:
    """Bytes in the largest binary unit that keeps a number of at least 1: 3.2 GiB, 1.5 EiB."""
    value = float(count)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB"):
        if value < 1024 or unit == "ZiB":
            return f"{count:,} bytes" if unit == "bytes" else f"{value:,.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
