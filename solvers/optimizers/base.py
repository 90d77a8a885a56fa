"""The optimizer interface and registry."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from solvers.registry import Registry

if TYPE_CHECKING:  # the declarations are read without torch (`gamedsl check`)
    import torch

State = dict[str, list["torch.Tensor"]]


class Optimizer:
    name: ClassVar[str]
    summary: ClassVar[str]  # one line for `gamedsl solvers`
    lr: float

    def init(self, params: list[torch.Tensor]) -> State:
        return {}

    def step_(self, params: list[torch.Tensor], direction: list[torch.Tensor], state: State) -> None:
        """Move `params` in place along `direction` (ascent), updating `state` in place."""
        raise NotImplementedError


OPTIMIZERS: Registry[Optimizer] = Registry("optimizer")

