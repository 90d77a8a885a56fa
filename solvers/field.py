"""The game's vector field v(x) and its derivatives: the one definition that consumers share.

v(x) = (grad_{x_1} u_1(x), ..., grad_{x_n} u_n(x)), the paper's eq. (5): each player's
gradient of its own utility with respect to its own parameters. `Field` computes it, the
products v'(x) u and v'(x)^T u, per-example fields and dense Jacobians, as pure functions
of explicit parameter tensors (torch.func). That is what lets the same definition run
eagerly, under `vmap` (sweeps, per-example fields of debiased consensus), compiled by
`torch.compile` (solvers/compiled.py) and on flat vectors (spectra, analyze --verify).
Results are averaged across processes by one `reduce` hook (data parallelism).

The eager engine (solvers/engine.py) computes the same quantities with autograd on the
game's own leaf tensors, which is faster when nothing is compiled; tests hold the two to
each other and both to finite differences (tests/test_field.py).

A game's utilities enter as a function `utilities(params, batch, player)` of explicit
parameters: player i's utility, or every player's (a list) when `player` is None. For an
nn.Module game, `module_utilities` builds it with functional_call.
"""

from __future__ import annotations

from dataclasses import dataclass, field as dataclass_field
from typing import Any, Callable, Sequence

import torch
from torch.func import functional_call, grad, jvp, vjp, vmap
from torch.utils._pytree import tree_leaves, tree_map

from solvers.layout import Reduce, Vec, flatten, identity, names_in, slices_of, unflatten

Utilities = Callable[[Vec, Any, "int | None"], Any]


@dataclass
class Evaluation:
    """The field of some players at the current parameters, on one batch (both engines)."""

    players: tuple[int, ...]
    utilities: dict[int, torch.Tensor]  # local utilities of the evaluated players (detached)
    v: Vec  # the field of those players, reduced across processes, detached
    local: Any = dataclass_field(default=None, repr=False)  # what the engine's vjp needs (with create_graph)
    linear: Any = dataclass_field(default=None, repr=False)  # what the engine's jvp needs, built on first use


@dataclass
class PerExample:
    """sum_i J_i^T v_i = grad of (1/2) sum_i |v_i|^2, and the sum itself, over a batch."""

    correction: Vec
    sum_sq: torch.Tensor
    mean_field: Vec
    count: int


def module_utilities(game: torch.nn.Module, names: Sequence[str]) -> Utilities:
    """The utilities of an nn.Module game whose `forward(batch, player=None)` returns them,
    as a function of explicit tensors for its parameters `names` (buffers stay the module's)."""

    def utilities(params: Vec, batch: Any, player: int | None = None):
        kwargs = {} if player is None else {"player": player}
        return functional_call(game, dict(zip(names, params)), (batch,), kwargs)

    return utilities


class Field:
    def __init__(self, utilities: Utilities, slices: Sequence[slice], reduce: Reduce = identity):
        self.utilities = utilities
        self.slices = list(slices)
        self.reduce = reduce

    @property
    def players(self) -> tuple[int, ...]:
        return tuple(range(len(self.slices)))

    # ---- v itself
    def value(self, params: Vec, batch: Any, players: Sequence[int] | None = None) -> tuple[Vec, list[torch.Tensor]]:
        """(v of `players`, their utilities) at `params`, on this process's batch (not reduced).

        One forward pass for all the players; then one pullback per player, of its own
        utility, read off at its own parameters (compiled, the other blocks are never computed)."""
        players = self.players if players is None else tuple(players)
        groups = [list(params[self.slices[i]]) for i in players]

        def utilities_of(*own):
            full = list(params)
            for i, mine in zip(players, own):
                full[self.slices[i]] = mine
            if len(players) == 1:
                return (self.utilities(full, batch, players[0]),)
            every = self.utilities(full, batch, None)
            return tuple(every[i] for i in players)

        us, pullback = vjp(utilities_of, *groups)
        v: Vec = []
        for k in range(len(players)):
            cotangent = tuple(torch.ones_like(u) if j == k else torch.zeros_like(u) for j, u in enumerate(us))
            v.extend(pullback(cotangent)[k])
        return v, list(us)

    # ---- the engine interface: evaluate, then products at the evaluated point
    def evaluate(self, params: Vec, batch: Any, players: Sequence[int] | None = None, create_graph: bool = False) -> Evaluation:
        players = self.players if players is None else tuple(players)

        def field(p: Vec):
            return self.value(p, batch, players)

        if create_graph:
            v, pullback, us = vjp(field, list(params), has_aux=True)
            return Evaluation(players, dict(zip(players, us)), self.reduce(list(v)), pullback, (field, list(params)))
        v, us = field(list(params))
        return Evaluation(players, dict(zip(players, us)), self.reduce(v))

    def vjp(self, ev: Evaluation, u: Vec, of: Sequence[int] | None, wrt: Sequence[int]) -> Vec:
        """(d v_of / d x_wrt)^T u at the evaluated point, averaged across processes."""
        of = set(ev.players if of is None else of)
        given = iter(u)
        sizes = {i: self.slices[i].stop - self.slices[i].start for i in ev.players}
        start, cotangent = 0, []
        for i in ev.players:
            for t in ev.v[start : start + sizes[i]]:
                cotangent.append(next(given) if i in of else torch.zeros_like(t))
            start += sizes[i]
        (grads,) = ev.local(cotangent)
        return self.reduce([grads[k] for i in wrt for k in range(self.slices[i].start, self.slices[i].stop)])

    def jvp(self, ev: Evaluation, u: Vec, of: Sequence[int] | None, wrt: Sequence[int]) -> Vec:
        """(d v_of / d x_wrt) u at the evaluated point (forward over reverse), averaged across processes."""
        field, at = ev.linear
        tangent = [torch.zeros_like(p) for p in at]
        given = iter(u)
        for i in wrt:
            for k in range(self.slices[i].start, self.slices[i].stop):
                tangent[k] = next(given)
        _, (products, _) = jvp(field, (at,), (tangent,))
        sizes, start, parts = {i: self.slices[i].stop - self.slices[i].start for i in ev.players}, 0, {}
        for i in ev.players:
            parts[i] = products[start : start + sizes[i]]
            start += sizes[i]
        return self.reduce([t for i in (ev.players if of is None else of) for t in parts[i]])

    # ---- flat views: spectra and the analysis see one vector x
    def flat(self, x: torch.Tensor, batch: Any, like: Vec) -> torch.Tensor:
        """v(x) as a flat vector, x the flat parameters (shaped like `like`)."""
        return torch.cat([t.reshape(-1) for t in self.value(unflatten(x, like), batch)[0]])

    def flat_jvp(self, x: torch.Tensor, batch: Any, like: Vec, u: torch.Tensor) -> torch.Tensor:
        return jvp(lambda y: self.flat(y, batch, like), (x,), (u,))[1]

    def flat_vjp(self, x: torch.Tensor, batch: Any, like: Vec, u: torch.Tensor) -> torch.Tensor:
        return vjp(lambda y: self.flat(y, batch, like), x)[1](u)[0]

    def block_jvp(self, x: torch.Tensor, batch: Any, like: Vec, bounds: tuple[int, int], u: torch.Tensor) -> torch.Tensor:
        """v'(x) applied to a tangent that lives in one player's parameters x[a:b] only:
        forward mode then skips what does not depend on them."""
        a, b = bounds
        return jvp(lambda own: self.flat(torch.cat([x[:a], own, x[b:]]), batch, like), (x[a:b],), (u,))[1]

    def jacobian(
        self, x: torch.Tensor, batches, like: Vec, bounds: Sequence[tuple[int, int]], chunk: int = 128,
        poll: Callable[[], None] = lambda: None,
    ) -> torch.Tensor:  # fmt: skip
        """v'(x) in float64, averaged over `batches`: column blocks of one player's parameters,
        `chunk` basis vectors at a time under vmap. `poll` is called between blocks."""
        n = x.numel()
        total, count = torch.zeros(n, n, dtype=torch.float64), 0
        for batch in batches:
            count += 1
            for a, b in bounds:
                columns = vmap(lambda u, batch=batch, a=a, b=b: self.block_jvp(x, batch, like, (a, b), u))
                eye = torch.eye(b - a, dtype=x.dtype, device=x.device)
                for start in range(0, b - a, chunk):
                    poll()
                    stop = min(start + chunk, b - a)
                    total[:, a + start : a + stop] += columns(eye[start:stop]).T.double().cpu()
        return total / max(count, 1)

    # ---- per-example fields (supplement Lemma 15)
    def per_example(self, params: Vec, batch: Any) -> PerExample:
        """Each example evaluated as a batch of one, under vmap; the utilities must be means
        over examples for the mean of these fields to be v (checked by the caller)."""

        def field_at(p, example):
            return self.value(p, tree_map(lambda t: t.unsqueeze(0), example))[0]

        def half_sum_sq(p):
            fields = vmap(field_at, in_dims=(None, 0))(p, batch)
            total = sum((f * f).sum() for f in fields)
            return 0.5 * total, (total.detach(), [f.detach().mean(0) for f in fields])

        detached = [t.detach() for t in params]
        correction, (sum_sq, mean_field) = grad(half_sum_sq, has_aux=True)(detached)
        return PerExample(list(correction), sum_sq, mean_field, tree_leaves(batch)[0].shape[0])


class GameField(Field):
    """The field of an nn.Module game, bound to its players' tensors: the flat vector x of
    all their parameters (players in order), v(x) and v'(x) on it, for spectra and the
    analysis. Nothing here changes the game's tensors except `load`."""

    def __init__(self, game: torch.nn.Module, reduce: Reduce = identity):
        groups = [list(player.params) for player in game.players]
        self.params = [p for group in groups for p in group]
        names = names_in(game, self.params)
        if names is None:
            raise ValueError("a GameField needs a game module that owns every player's parameters")
        super().__init__(module_utilities(game, names), slices_of(groups), reduce)
        self.game = game
        sizes = [sum(p.numel() for p in group) for group in groups]
        starts = [sum(sizes[:k]) for k in range(len(sizes))]
        self.bounds = [(a, a + n) for a, n in zip(starts, sizes)]
        self.dim = sum(sizes)

    def x(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """The current parameters as one flat vector."""
        return flatten(self.params, dtype)

    def load(self, x) -> None:
        """Copy a flat vector into the game's parameters."""
        x = torch.as_tensor(x, dtype=self.params[0].dtype, device=self.params[0].device)
        with torch.no_grad():
            for p, part in zip(self.params, unflatten(x, self.params)):
                p.copy_(part)

    def __call__(self, x: torch.Tensor, batch: Any) -> torch.Tensor:
        return self.flat(x, batch, self.params)

    def jvp_at(self, x: torch.Tensor, batch: Any, u: torch.Tensor) -> torch.Tensor:
        return self.flat_jvp(x, batch, self.params, u)

    def vjp_at(self, x: torch.Tensor, batch: Any, u: torch.Tensor) -> torch.Tensor:
        return self.flat_vjp(x, batch, self.params, u)

    def dense(self, x: torch.Tensor, batches, poll: Callable[[], None] = lambda: None) -> torch.Tensor:
        """v'(x) in float64, averaged over `batches` (see Field.jacobian)."""
        return self.jacobian(x, batches, self.params, self.bounds, poll=poll)
