"""The optimizer interface and registry, and the learning-rate schedules every optimizer takes.

An optimizer is a dataclass of hyperparameters with `init(params) -> state` and
`step_(params, direction, state, lr)`, which moves `params` in place along `direction`
(ascent) at the learning rate `lr`. The engine asks `rate(clock)` for that rate: `lr`
itself, or `lr` times a schedule's factor at the run's step `clock` (a plain int eagerly,
a tensor in a compiled step, so that a schedule never triggers recompilation). The factor
depends on the step alone, so a resumed run follows its schedule exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from solvers.registry import Registry, param

if TYPE_CHECKING:  # the declarations are read without torch (`gamedsl check`)
    import torch

State = dict[str, list["torch.Tensor"]]
SCHEDULES = ("constant", "linear", "cosine", "step")


@dataclass
class Optimizer:
    name: ClassVar[str]
    summary: ClassVar[str]  # one line for `gamedsl solvers`
    lr: float = param(1e-4, "learning rate", "(0, 1e3]")
    schedule: str = param("constant", "learning-rate schedule over the run's steps", choices=SCHEDULES)
    until: int = param(0, "linear, cosine: the step the schedule ends at (0: the run's last step)", "[0, 1e12]")
    final: float = param(0.0, "linear, cosine: the factor reached at `until`", "[0, 1]")
    at: int = param(0, "step: the step from which the rate is multiplied by `factor`", "[0, 1e12]")
    factor: float = param(0.1, "step: the factor from step `at` on", "[0, 1]")

    def check(self) -> None:
        from solvers.errors import SolverError

        if self.schedule == "step" and self.at == 0:
            raise SolverError(
                f"optimizer '{self.name}': schedule 'step' needs at=STEP, the step it drops at",
                f"for example {self.name}(lr={self.lr:g}, schedule=step, at=40000, factor=0.1)",
            )
        if self.schedule in ("linear", "cosine") and self.until == 0:
            raise SolverError(
                f"optimizer '{self.name}': schedule '{self.schedule}' needs until=STEP, the step it ends at",
                "a .game file's solve block fills it in with the run's steps",
            )

    def init(self, params: list[torch.Tensor]) -> State:
        return {}

    def step_(self, params: list[torch.Tensor], direction: list[torch.Tensor], state: State, lr) -> None:
        """Move `params` in place along `direction` (ascent) at rate `lr`, updating `state` in place."""
        raise NotImplementedError

    def rate(self, clock):
        """The learning rate after `clock` completed steps of the run."""
        if self.schedule == "constant":
            return self.lr
        if self.schedule == "step":
            if isinstance(clock, int):
                return self.lr * (self.factor if clock >= self.at else 1.0)
            return self.lr * _where(clock >= self.at, self.factor)
        progress = _fraction(clock, self.until)
        if self.schedule == "linear":
            return self.lr * (1 - (1 - self.final) * progress)
        cosine = (1 + math.cos(math.pi * progress)) / 2 if isinstance(clock, int) else (1 + (math.pi * progress).cos()) / 2
        return self.lr * (self.final + (1 - self.final) * cosine)


def _fraction(clock, until: int):
    """clock / until, clipped to [0, 1]: a float eagerly, a tensor in a compiled step."""
    if isinstance(clock, int):
        return min(clock / until, 1.0) if until else 1.0
    return (clock / max(until, 1)).clamp(max=1.0)


def _where(condition, factor: float):
    import torch

    return torch.where(condition, factor, 1.0)


OPTIMIZERS: Registry[Optimizer] = Registry("optimizer")
