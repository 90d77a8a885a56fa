"""The checked game: what the compilers build from. Produced only by `checker.check`."""

from __future__ import annotations

from dataclasses import dataclass, field
from math import prod
from typing import Any

from gamedsl.errors import GameWarning, Source
from gamedsl.nets.builders import BUILDERS, Footprint
from gamedsl.semantics import ir
from gamedsl.syntax import ast

Shape = tuple[int, ...]


@dataclass(frozen=True)
class ParamInfo:
    name: str
    shape: Shape
    init: tuple  # ("fill", x) | ("values", (..)) | ("normal", mean, std) | ("uniform", low, high)
    decl: ast.ParamDecl


@dataclass(frozen=True)
class NetworkInfo:
    name: str
    builder: str
    args: dict[str, Any]
    input: Shape
    output: Shape
    decl: ast.NetworkDecl


@dataclass(frozen=True)
class SampleInfo:
    name: str
    kind: str  # "data" or "latent"
    source: str
    args: dict[str, Any]
    shape: Shape
    decl: ast.SampleDecl


@dataclass(frozen=True)
class PlayerInfo:
    name: str
    controls: tuple[str, ...]
    maximize: bool
    utility: ir.Node  # to be maximised (already negated for `minimizes`)
    decl: ast.PlayerDecl


@dataclass(frozen=True)
class CheckedGame:
    name: str
    description: str | None
    params: dict[str, ParamInfo]
    networks: dict[str, NetworkInfo]
    samples: dict[str, SampleInfo]
    players: tuple[PlayerInfo, ...]
    settings: dict[str, ast.Setting]
    aliases: dict[str, str]  # divergence alias -> resolved divergence, after overrides
    comparison: tuple[ir.Node, ir.Node] | None  # (real, fake) of the first divergence call: data vs model
    source: Source
    file: ast.GameFile
    warnings: tuple[GameWarning, ...] = field(default=())

    def controllables(self) -> dict[str, str]:
        """Parameter or network name -> the player that controls it."""
        return {name: p.name for p in self.players for name in p.controls}

    def parameter_count(self, player: PlayerInfo) -> int:
        """Number of scalars a player controls."""
        return sum(self.size_of(name) for name in player.controls)

    def size_of(self, name: str) -> int:
        """Scalars in the parameter or network `name`."""
        if name in self.params:
            return prod(self.params[name].shape)
        return network_footprint(self.networks[name]).parameters


def network_footprint(net: NetworkInfo) -> Footprint:
    """The network's exact parameter and activation counts, from its builder's arguments:
    nothing is built, so any size is counted (and refused in `budget`) without torch."""
    return BUILDERS[net.builder].footprint(net.args)


def without_batch_norm(net: NetworkInfo) -> str:
    """The argument of the network's builder that leaves batch norm out (for hints)."""
    from gamedsl.nets.builders import BUILDERS

    names = {arg.name for arg in BUILDERS[net.builder].signature.args}
    return "norm=layer or norm=none" if "norm" in names else "batchnorm=false"
