"""Per-example fields v_i with torch.func, for the unbiased consensus regulariser (Lemma 15).

The game must be an `nn.Module` whose `forward(batch)` returns the utilities, so that
`torch.func.functional_call` can evaluate it at explicit parameters; gamedsl's compiled
games are. Each example is evaluated as a batch of one, so the utilities must be averages
over examples; `PerExample` checks this against the batch field on first use.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.func import functional_call, grad, vmap
from torch.utils._pytree import tree_leaves, tree_map

from solvers.engine import Engine, Vec
from solvers.errors import SolverError


@dataclass
class PerExample:
    """sum_i J_i^T v_i = grad of (1/2) sum_i |v_i|^2, and the sum itself, over a batch."""

    correction: Vec
    sum_sq: torch.Tensor
    mean_field: Vec
    count: int


def parameter_names(engine: Engine) -> list[str]:
    game = engine.game
    if not isinstance(game, nn.Module):
        raise SolverError(
            "per-example gradients need a game that is an nn.Module with forward(batch) -> utilities",
            "gamedsl's compiled games are; wrap a hand-written game in an nn.Module",
        )
    by_id = {id(p): name for name, p in game.named_parameters()}
    missing = [i for i, p in enumerate(engine.params) if id(p) not in by_id]
    if missing:
        raise SolverError("per-example gradients need every player parameter to be a parameter of the game module")
    return [by_id[id(p)] for p in engine.params]


def per_example(engine: Engine, batch, names: list[str]) -> PerExample:
    game, slices = engine.game, engine.slices
    if not tree_leaves(batch):
        raise SolverError("debias needs sampled data: this game's batch holds no examples", "use consensus without debias")

    def utilities_at(params, example):
        one = tree_map(lambda t: t.unsqueeze(0), example)
        return functional_call(game, dict(zip(names, params)), (one,))

    def field_at(params, example):
        out = []
        for i, own in enumerate(slices):

            def u(mine, i=i, own=own):
                full = list(params)
                full[own] = mine
                return utilities_at(full, example)[i]

            out.extend(grad(u)(list(params[own])))
        return out

    def half_sum_sq(params):
        fields = vmap(field_at, in_dims=(None, 0))(params, batch)
        total = sum((f * f).sum() for f in fields)
        return 0.5 * total, (total.detach(), [f.detach().mean(0) for f in fields])

    params = [p.detach() for p in engine.params]
    correction, (sum_sq, mean_field) = grad(half_sum_sq, has_aux=True)(params)
    return PerExample(list(correction), sum_sq, mean_field, tree_leaves(batch)[0].shape[0])
