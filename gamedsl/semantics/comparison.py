"""Which of a game's values are the data and which the model's samples.

Pictures, `samples.npy` and the mode metrics compare the model with the data. The first
divergence call names both: `gan(critic=D, real=x, fake=G(z))`. A game written without one
(a packed critic, a hand-written objective such as `E[log sigmoid(D(x))]`) still has them:
the generator is a network applied to latent variables alone whose output has the shape
of a data variable that the utilities use, and that variable is the data.
"""

from __future__ import annotations

from gamedsl.semantics import ir
from gamedsl.semantics.model import PlayerInfo, SampleInfo


def infer(players: tuple[PlayerInfo, ...] | list[PlayerInfo], samples: dict[str, SampleInfo]) -> tuple[ir.Node, ir.Node] | None:
    """(real, fake) found in the players' utilities, in declaration order, or None."""
    data: dict[str, ir.Sample] = {}
    fakes: list[ir.Apply] = []
    for player in players:
        for node in ir.walk(player.utility):
            if isinstance(node, ir.Sample) and samples[node.name].kind == "data":
                data.setdefault(node.name, node)
            elif isinstance(node, ir.Apply) and node.sampled and _latent_only(node.arg, samples) and node not in fakes:
                fakes.append(node)
    for fake in fakes:
        for real in data.values():
            if real.shape == fake.shape:
                return real, fake
    return None


def _latent_only(node: ir.Node, samples: dict[str, SampleInfo]) -> bool:
    names = ir.samples(node)
    return bool(names) and all(samples[name].kind == "latent" for name in names)
