"""What the analysis says about networks under a Lipschitz constraint: it refuses them.

Weight clipping (`clip=c`) restricts a network's parameters to a box. Inside the box the game,
its field and every local result of `gamedsl analyze` are those of the unclipped game; on its
boundary the solvers follow the projected field, whose fixed points and rates the analysis does
not derive. Spectral normalisation (`spectral=true`) is a reparametrisation, W -> W / sigma(W),
sigma the largest singular value; its power-iteration estimate is state that the symbolic form
does not have. Both are refused with the position of the option and what can be done instead;
`gamedsl spectrum` handles both numerically.
"""

from __future__ import annotations

from gamedsl.errors import OutOfReach
from gamedsl.nets.builders import BUILDERS
from gamedsl.semantics.model import CheckedGame, NetworkInfo


def refuse_constrained(spec: CheckedGame) -> None:
    """OutOfReach at the first `clip=` or `spectral=true` of the game's networks."""
    spectrum = f"`gamedsl spectrum {spec.source.path}` computes the spectrum of v' numerically"
    for name, net in spec.networks.items():
        if net.args.get("clip") is not None:
            raise OutOfReach(
                f"the game is out of symbolic reach: network '{name}' is clipped to [-{net.args['clip']:g}, {net.args['clip']:g}], and symbolic "
                "analysis describes unconstrained games",
                span=_option_span(net, "clip"),
                hint="clipping is a constraint set: inside it the field and the local analysis are those of the "
                f"game without clip, which you can analyse by removing clip=...; on its boundary the projected "
                f"steps differ. {spectrum}",
                source=spec.source,
            )
        if net.args.get("spectral"):
            raise OutOfReach(
                f"the game is out of symbolic reach: network '{name}' is spectrally normalised (each weight W used as W / sigma(W)), which "
                "symbolic analysis does not expand",
                span=_option_span(net, "spectral"),
                hint=f"{spectrum}, through the normalised weights",
                source=spec.source,
            )


def _option_span(net: NetworkInfo, option: str):
    """Where the builder call gives `option`, by name or by position."""
    names = [arg.name for arg in BUILDERS[net.builder].signature.args]
    for k, arg in enumerate(net.decl.builder.args):
        if arg.name == option or (arg.name is None and k < len(names) and names[k] == option):
            return arg.span
    return net.decl.builder.span
