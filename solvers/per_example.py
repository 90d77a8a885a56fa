"""Per-example fields for the unbiased consensus regulariser (supplement Lemma 15).

They come from the one definition of the field (solvers/field.py) evaluated at explicit
parameters, so the game must be an `nn.Module` whose `forward(batch)` returns the
utilities (gamedsl's compiled games are). Each example is evaluated as a batch of one,
so the utilities must be averages over examples; consensus checks this against the batch
field on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch.utils._pytree import tree_leaves

from solvers.errors import SolverError
from solvers.field import Field, PerExample, module_utilities
from solvers.layout import names_in

if TYPE_CHECKING:
    from solvers.engine import Engine


def field_of(engine: Engine) -> Field:
    """The functional field of an engine's game; SolverError if the game is not a module
    that owns every player's parameters."""
    names = names_in(engine.game, engine.params)
    if names is None:
        raise SolverError(
            "per-example gradients need a game that is an nn.Module with forward(batch) -> utilities, owning every "
            "player's parameters",
            "gamedsl's compiled games are; wrap a hand-written game in an nn.Module",
        )
    return Field(module_utilities(engine.game, names), engine.slices)


def per_example(engine: Engine, batch) -> PerExample:
    if not tree_leaves(batch):
        raise SolverError("debias needs sampled data: this game's batch holds no examples", "use consensus without debias")
    return field_of(engine).per_example(engine.params, batch)
