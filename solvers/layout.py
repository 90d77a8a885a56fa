"""Where each player's tensors sit: in the flat parameter list, in one flat vector, by name.

Solvers see vectors as lists of tensors aligned with `params` (all players' tensors in
player order; `slices[i]` is player i's part). Spectra and the analysis see one flat
vector (`flatten`, `unflatten`, `bounds`). torch.func evaluates a game module at explicit
tensors by the names the module knows them under (`names_in`). This module is the one
place that knows these three views; both engines and every consumer of the field use it.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

Vec = list[torch.Tensor]
Reduce = Callable[[Vec], Vec]


def identity(xs: Vec) -> Vec:
    return xs


def slices_of(groups: Sequence[Sequence[torch.Tensor]]) -> list[slice]:
    """The slices of consecutive groups (each player's tensors) in the concatenated list."""
    out, start = [], 0
    for group in groups:
        out.append(slice(start, start + len(group)))
        start += len(group)
    return out


def names_in(module: torch.nn.Module, params: Vec) -> list[str] | None:
    """The name of each tensor in `module` (what functional_call takes), or None if some
    tensor is not one of the module's parameters (a game written with plain functions)."""
    by_id = {id(p): name for name, p in module.named_parameters()} if isinstance(module, torch.nn.Module) else {}
    names = [by_id.get(id(p)) for p in params]
    return None if any(n is None for n in names) else names


def flatten(xs: Vec, dtype: torch.dtype | None = None) -> torch.Tensor:
    flat = torch.cat([x.detach().reshape(-1) for x in xs]) if xs else torch.zeros(0)
    return flat if dtype is None else flat.to(dtype)


def unflatten(x: torch.Tensor, like: Vec) -> Vec:
    """Cut a flat vector into tensors shaped like `like` (views, differentiable)."""
    sizes = [t.numel() for t in like]
    return [part.reshape(t.shape) for part, t in zip(torch.split(x, sizes), like)]


def groups_of(optimizers: Sequence) -> list[tuple[object, tuple[int, ...]]]:
    """Players that share one optimizer object step together: (optimizer, players) in the
    order of each group's first player. One optimizer for all is one group."""
    out: list[tuple[object, list[int]]] = []
    for i, optimizer in enumerate(optimizers):
        for shared, members in out:
            if shared is optimizer:
                members.append(i)
                break
        else:
            out.append((optimizer, [i]))
    return [(optimizer, tuple(members)) for optimizer, members in out]


class Layout:
    """Indexing shared by the engines: players' slices of `params`, and the steps that move them.

    Each player has an optimizer (`optimizers[i]`); players that share one form a group
    (`groups`), which one call steps, with one state (`opt_state[g]`, aligned with the group's
    parameters). `clock` counts the run's completed steps (an int eagerly, a tensor in a
    compiled step): learning-rate schedules read it. `project(i, tensors)`, when the game has
    it, puts player i's tensors back into its constraint set (weight clipping) after every move."""

    slices: list[slice]
    params: Vec
    optimizers: list
    groups: list[tuple[object, tuple[int, ...]]]
    opt_state: list[dict[str, Vec]]
    clock: object = 0
    project: Callable[[int, Vec], None] | None = None

    @staticmethod
    def poll() -> None:
        """Called by long work inside a step (GMRES); a runner may replace it with one that
        raises `solvers.Interrupted` when a stop was requested."""

    @property
    def optimizer(self):
        """The one optimizer of every player (methods whose step size is part of the method need it)."""
        if len(self.groups) != 1:
            from solvers.errors import SolverError

            raise SolverError(
                "takes one optimizer for all players, but this run has an optimizer per player",
                "write a single optimizer = ... (no optimizer.PLAYER)",
            )
        return self.groups[0][0]

    @property
    def bounds(self) -> list[tuple[int, int]]:
        """Each player's (start, stop) in the flat vector of all parameters."""
        out, start = [], 0
        for sl in self.slices:
            n = sum(p.numel() for p in self.params[sl])
            out.append((start, start + n))
            start += n
        return out

    def indices(self, players: Sequence[int] | None) -> tuple[int, ...]:
        return tuple(range(len(self.slices))) if players is None else tuple(players)

    def params_of(self, players: Sequence[int]) -> Vec:
        return [p for i in players for p in self.params[self.slices[i]]]

    def split(self, vec: Vec, players: Sequence[int]) -> dict[int, Vec]:
        """Cut a vector over `players` into each player's part."""
        out, start = {}, 0
        for i in players:
            n = self.slices[i].stop - self.slices[i].start
            out[i] = vec[start : start + n]
            start += n
        return out

    def snapshot(self) -> Vec:
        """A copy of the parameters, for methods that step from a point and come back (extragradient)."""
        with torch.no_grad():
            return [p.clone() for p in self.params]

    def restore(self, saved: Vec) -> None:
        """Put back the parameters of a `snapshot`; the optimizer state is left as it is."""
        from solvers import vec

        with torch.no_grad():
            vec.copy_(self.params, saved)

    def apply(self, direction: Vec, players: Sequence[int] | None = None) -> None:
        """One step of each player's optimizer along its part of `direction` (`players`: all
        by default), at the scheduled learning rate, then each player's projection."""
        players = self.indices(players)
        if len(self.groups) == 1 and len(players) == len(self.slices):  # the common case, in one call
            optimizer = self.groups[0][0]
            optimizer.step_(self.params, direction, self.opt_state[0], optimizer.rate(self.clock))
        else:
            parts = self.split(direction, players)
            for (optimizer, members), state in zip(self.groups, self.opt_state):
                moving = [i for i in members if i in parts]
                if not moving:
                    continue
                params, along = self.params_of(moving), [t for i in moving for t in parts[i]]
                if len(moving) < len(members):  # the group's state, for the moving players' tensors only
                    offsets = dict(zip(members, slices_of([self.params[self.slices[i]] for i in members])))
                    idx = [k for i in moving for k in range(offsets[i].start, offsets[i].stop)]
                    state = {key: [v[k] for k in idx] for key, v in state.items()}
                optimizer.step_(params, along, state, optimizer.rate(self.clock))
        self.constrain(players)

    def constrain(self, players: Sequence[int] | None = None) -> None:
        """Put `players` back into their constraint sets (the game's `project`, if it has one)."""
        if self.project is not None:
            with torch.no_grad():
                for i in self.indices(players):
                    self.project(i, self.params[self.slices[i]])
