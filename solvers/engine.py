"""The mechanism under every solver: the vector field, its derivatives, and the steps.

A solver is an algorithm written against this small interface:

    ev = engine.evaluate(batch, create_graph=True)    # v (eq. 5), keeping its graph
    jtv = engine.vjp(ev, ev.v)                         # v'(x)^T u by double backprop
    jv = engine.jvp(ev, ev.v)                          # v'(x) u, from the same graph
    engine.apply(direction)                            # optimizer step along it
    saved = engine.snapshot(); ...; engine.restore(saved)   # step from a point and come back

Vectors are flat lists of tensors aligned with `engine.params` (all players' tensors in
player order); `engine.slices[i]` is player i's part.

Data parallelism lives here too: `reduce` averages a vector across processes. `evaluate`
reduces v before any solver sees it, and `vjp` and `jvp` reduce their results, so a solver
that forms v - gamma J^T v (or J v, for SGA and CGD) from these pieces computes exactly
J-bar^T v-bar (J-bar v-bar) without knowing it runs distributed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch

from solvers import vec
from solvers.optimizers.base import Optimizer
from solvers.protocol import Game, utility

Vec = list[torch.Tensor]
Reduce = Callable[[Vec], Vec]


def _identity(xs: Vec) -> Vec:
    return xs


@dataclass
class Evaluation:
    """The field of some players at the current parameters, on one batch."""

    players: tuple[int, ...]
    utilities: dict[int, torch.Tensor]  # local utilities of the evaluated players (detached)
    v: Vec  # the field of those players, reduced across processes, detached
    local: Vec | None = field(default=None, repr=False)  # graph-carrying local field, with create_graph
    linear: Any = field(default=None, repr=False)  # what the engine's jvp needs, built on first use


class Layout:
    """Where each player's tensors sit in the flat parameter list; shared by both engines."""

    slices: list[slice]
    params: Vec

    @staticmethod
    def poll() -> None:
        """Called by long work inside a step (GMRES); a runner may replace it with one that
        raises `solvers.Interrupted` when a stop was requested."""

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


class Engine(Layout):
    def __init__(self, game: Game, optimizer: Optimizer, reduce: Reduce | None = None, world: int = 1):
        self.game = game
        self.optimizer = optimizer
        self.reduce = reduce or _identity
        self.world = world  # processes whose batches `reduce` averages over
        self.players = list(game.players)
        self.params: Vec = []
        self.slices: list[slice] = []
        for player in self.players:
            own = list(player.params)
            self.slices.append(slice(len(self.params), len(self.params) + len(own)))
            self.params.extend(own)
        self.opt_state = optimizer.init(self.params)

    # ---- indexing helpers (Layout) and sampling
    def sample(self) -> Any:
        return self.game.sample()

    # ---- the field and its derivatives
    def evaluate(self, batch: Any, players: Sequence[int] | None = None, create_graph: bool = False) -> Evaluation:
        """v_i = grad of player i's utility with respect to its own parameters."""
        players = self.indices(players)
        if len(players) == len(self.players):
            us = list(self.game.utilities(batch))
        else:
            us = {i: utility(self.game, i, batch) for i in players}
        local: Vec = []
        for n, i in enumerate(players):
            own = self.params[self.slices[i]]
            keep = create_graph or n < len(players) - 1
            grads = _grad([us[i]], own, create_graph=create_graph, retain_graph=keep)
            local.extend(torch.zeros_like(p) if g is None else g for p, g in zip(own, grads))
        v = self.reduce([g.detach() for g in local] if create_graph else local)
        return Evaluation(players, {i: us[i].detach() for i in players}, v, local if create_graph else None)

    def vjp(
        self, ev: Evaluation, u: Vec, of: Sequence[int] | None = None, wrt: Sequence[int] | None = None, retain: bool = True
    ) -> Vec:
        """(d v_of / d x_wrt)^T u: a block of v'(x)^T applied to u, averaged across processes.

        With `of` = `wrt` = all players and u = v this is grad L for L = |v|^2 / 2 (eq. 13).
        `retain=False` lets backward free the graph as it goes: for a solver's last product.
        """
        assert ev.local is not None, "evaluate(..., create_graph=True) first"
        of = ev.players if of is None else tuple(of)
        outputs = self.split(ev.local, ev.players)
        outputs = [t for i in of for t in outputs[i]]
        inputs = self.params_of(self.indices(wrt))
        grads = _grad(outputs, inputs, u, retain_graph=retain)
        return self.reduce([torch.zeros_like(p) if g is None else g for p, g in zip(inputs, grads)])

    def jvp(self, ev: Evaluation, u: Vec, of: Sequence[int] | None = None, wrt: Sequence[int] | None = None) -> Vec:
        """(d v_of / d x_wrt) u: a block of v'(x) applied to u, averaged across processes.

        Reverse mode twice (the double-vjp trick): g(w) = v'(x)^T w is linear in a dummy w,
        and v'(x) u is the gradient of <g(w), u> with respect to w. g's graph is built once per
        evaluation, so each further product costs one backward pass through it.
        """
        assert ev.local is not None, "evaluate(..., create_graph=True) first"
        if ev.linear is None:
            dummy = [torch.zeros_like(t, requires_grad=True) for t in ev.local]
            ev.linear = (dummy, _grad(ev.local, self.params, dummy, create_graph=True))
        dummy, grads = ev.linear
        wrt = self.indices(wrt)
        of = ev.players if of is None else tuple(of)
        parts = self.split(dummy, ev.players)
        wanted = [d for i in of for d in parts[i]]  # only these rows: autograd skips the rest
        products = _grad([g for i in wrt for g in grads[self.slices[i]]], wanted, u, retain_graph=True)
        return self.reduce([torch.zeros_like(d) if p is None else p for d, p in zip(wanted, products)])


def _grad(outputs: Sequence, inputs: Vec, weights: Sequence | None = None, **kwargs) -> list[torch.Tensor | None]:
    """torch.autograd.grad of sum_k <outputs_k, weights_k> with respect to `inputs`; None where unused.

    Outputs that do not depend on any parameter (None, or the constant gradient of a linear
    utility such as a + b) contribute nothing to the product and are left out: autograd
    refuses a tensor without a graph, even if the answer is simply zero.
    """
    weights = [None] * len(outputs) if weights is None else weights
    pairs = [(o, w) for o, w in zip(outputs, weights, strict=True) if o is not None and o.requires_grad]
    if not pairs:
        return [None] * len(inputs)
    outs, ws = zip(*pairs)
    return list(torch.autograd.grad(outs, inputs, grad_outputs=ws, allow_unused=True, **kwargs))
