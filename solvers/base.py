"""What every solver method is: hyperparameters, `init`, and one `step`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from solvers.engine import Engine, Evaluation, Vec
from solvers.registry import Registry


@dataclass
class Step:
    """What one step saw: each player's utility and the field v (both detached)."""

    utilities: list[torch.Tensor]
    field: Vec
    extras: dict[str, torch.Tensor] = field(default_factory=dict)

    @staticmethod
    def of(ev: Evaluation, **extras: torch.Tensor) -> "Step":
        return Step([ev.utilities[i] for i in ev.players], ev.v, extras)


class Solver:
    """A method for finding local Nash equilibria. Subclasses are registered dataclasses."""

    name: ClassVar[str]
    summary: ClassVar[str]  # one line for `gamedsl solvers` and the docs
    polls: ClassVar[bool] = False  # calls engine.poll() inside a step, before it changes anything
    # What the method is defined for, declared so that a game can be checked before it runs
    # (`gamedsl check`); the parameters' own ranges are declared with `param`.
    players: ClassVar[int | None] = None  # the number of players; None: any
    optimizers: ClassVar[tuple[str, ...] | None] = None  # the optimizers it can step with; None: any
    optimizer_hint: ClassVar[str | None] = None  # why the others are refused, and what to do instead

    def init(self, engine: Engine) -> dict[str, Any]:
        """Per-run state (momentum buffers, previous fields). Tensors only, for checkpoints."""
        return {}

    def step(self, engine: Engine, state: dict[str, Any]) -> Step:
        raise NotImplementedError

    def batches_per_step(self, players: int) -> int:
        """How many batches one step draws (vectorised sweeps draw them in advance)."""
        return 1

    def check(self) -> None:
        """Validate relations between hyperparameters (each one's range is declared); raise SolverError."""


SOLVERS: Registry[Solver] = Registry("solver")


def player_index(engine: Engine, name: str, default: int) -> int:
    """Resolve a player parameter given by name ("" means `default`)."""
    from solvers.errors import SolverError

    if not name:
        return default
    names = [p.name for p in engine.players]
    if name not in names:
        raise SolverError(f"no player named '{name}'", "players: " + ", ".join(names))
    return names.index(name)
