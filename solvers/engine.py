"""The eager engine: the vector field, its derivatives and the steps, by autograd on the game's tensors.

A solver is an algorithm written against this small interface:

    ev = engine.evaluate(batch, create_graph=True)    # v (eq. 5), keeping its graph
    jtv = engine.vjp(ev, ev.v)                         # v'(x)^T u by double backprop
    jv = engine.jvp(ev, ev.v)                          # v'(x) u, from the same graph
    engine.apply(direction)                            # optimizer step along it
    saved = engine.snapshot(); ...; engine.restore(saved)   # step from a point and come back

Vectors are flat lists of tensors aligned with `engine.params` (all players' tensors in
player order); `engine.slices[i]` is player i's part (solvers/layout.py).

This engine differentiates the game's own leaf tensors with autograd, which is the fastest
way when nothing is compiled; `FunctionalEngine` (solvers/functional.py) computes the same
quantities from the functional definition in solvers/field.py, for vmapped and compiled
steps. Tests hold the two to each other and to finite differences.

Data parallelism lives here too: `reduce` averages a vector across processes. `evaluate`
reduces v before any solver sees it, and `vjp` and `jvp` reduce their results, so a solver
that forms v - gamma J^T v (or J v, for SGA and CGD) from these pieces computes exactly
J-bar^T v-bar (J-bar v-bar) without knowing it runs distributed.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from solvers.field import Evaluation
from solvers.layout import Layout, Reduce, Vec, groups_of, identity, slices_of
from solvers.optimizers.base import Optimizer
from solvers.protocol import Game, utility


class Engine(Layout):
    def __init__(
        self, game: Game, optimizer: Optimizer | Sequence[Optimizer], reduce: Reduce | None = None, world: int = 1
    ):
        """`optimizer`: one for every player, or one per player (in player order)."""
        self.game = game
        self.reduce = reduce or identity
        self.world = world  # processes whose batches `reduce` averages over
        self.players = list(game.players)
        tensors = [list(player.params) for player in self.players]
        self.slices = slices_of(tensors)
        self.params: Vec = [p for group in tensors for p in group]
        self.optimizers = list(optimizer) if isinstance(optimizer, (list, tuple)) else [optimizer] * len(self.players)
        self.groups = groups_of(self.optimizers)
        self.opt_state = [opt.init(self.params_of(members)) for opt, members in self.groups]
        self.project = getattr(game, "project", None)

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
