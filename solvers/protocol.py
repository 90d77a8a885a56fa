"""The `Game` protocol: all a solver needs to know about a game.

A game is a list of players, each owning some tensors, a way to draw a batch, and the
utility of every player on a batch, which that player *maximises*. Nothing else: no
language, no files. Games written by hand in PyTorch satisfy it as easily as compiled
`.game` files (see `make_game`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence, runtime_checkable

if TYPE_CHECKING:  # a protocol needs no torch to be declared (`gamedsl check` imports none)
    import torch


@runtime_checkable
class Player(Protocol):
    name: str
    params: Sequence[torch.Tensor]  # leaf tensors with requires_grad; solvers update them in place


@runtime_checkable
class Game(Protocol):
    players: Sequence[Player]

    def sample(self) -> Any:
        """Draw one batch (any structure the utilities understand)."""

    def utilities(self, batch: Any) -> Sequence[torch.Tensor]:
        """One scalar per player, in the order of `players`, each to be maximised."""

    # Optional, looked up with getattr:
    #   project(i, tensors): put player i's tensors (its own, or explicit ones in the same order)
    #     back into its constraint set, in place; called after every move of player i
    #     (solvers/layout.py, `constrain`), by every solver, eager, compiled and vmapped.
    #   after_step(): called once after every completed solver step (solvers/run.py, `Run.step`),
    #     outside any compiled graph: e.g. one power iteration of spectral normalisation.


def utility(game: Game, index: int, batch: Any) -> torch.Tensor:
    """Player `index`'s utility, using the game's `utility(i, batch)` shortcut when it has one."""
    single = getattr(game, "utility", None)
    if single is not None:
        return single(index, batch)
    return game.utilities(batch)[index]


@dataclass
class SimplePlayer:
    name: str
    params: list[torch.Tensor]


@dataclass
class FunctionGame:
    """A game from plain functions: `make_game({"D": D.parameters(), "G": G.parameters()}, sample, utilities)`."""

    players: list[SimplePlayer]
    sample_fn: Callable[[], Any] = field(repr=False)
    utilities_fn: Callable[[Any], Sequence[torch.Tensor]] = field(repr=False)

    def sample(self):
        return self.sample_fn()

    def utilities(self, batch):
        return self.utilities_fn(batch)


def make_game(players: dict[str, Any], sample: Callable[[], Any], utilities: Callable[[Any], Sequence[torch.Tensor]]) -> FunctionGame:
    """Wrap plain PyTorch code as a `Game`. `players` maps names to iterables of parameters."""
    return FunctionGame([SimplePlayer(name, list(params)) for name, params in players.items()], sample, utilities)
