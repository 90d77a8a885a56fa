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


class Layout:
    """Indexing shared by the engines: players' slices of `params`, and the steps that move them."""

    slices: list[slice]
    params: Vec

    @staticmethod
    def poll() -> None:
        """Called by long work inside a step (GMRES); a runner may replace it with one that
        raises `solvers.Interrupted` when a stop was requested."""

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
        """One optimizer step along `direction` for `players` (all by default)."""
        players = self.indices(players)
        if len(players) == len(self.slices):
            self.optimizer.step_(self.params, direction, self.opt_state)
            return
        idx = [k for i in players for k in range(self.slices[i].start, self.slices[i].stop)]
        self.optimizer.step_(
            [self.params[k] for k in idx], direction, {key: [v[k] for k in idx] for key, v in self.opt_state.items()}
        )
