"""The vector field v(x) of a compiled game as a pure function of one flat parameter vector.

torch.func needs functions of explicit tensors: `FlatField(game)(x, batch)` evaluates the
game at the flat parameters x (players in order, like `solvers.Engine`) with
`functional_call` and returns the flat field, each player's gradient of its own utility.
Its `jvp` and `vjp` give v'(x) u and v'(x)^T u without forming v'.
"""

from __future__ import annotations

import torch
from torch.func import functional_call, grad, jvp, vjp

from gamedsl.compile.torch_game import TorchGame


class FlatField:
    def __init__(self, game: TorchGame):
        self.game = game
        names = {id(p): name for name, p in game.named_parameters()}
        self.params = [p for player in game.players for p in player.params]
        self.names = [names[id(p)] for p in self.params]
        self.shapes = [p.shape for p in self.params]
        self.sizes = [p.numel() for p in self.params]
        bounds, start = [], 0
        for player in game.players:
            n = sum(p.numel() for p in player.params)
            bounds.append((start, start + n))
            start += n
        self.bounds = bounds
        self.dim = start

    def flat(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1) for p in self.params]).to(dtype)

    def _params(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        parts = torch.split(x, self.sizes)
        return {n: t.reshape(s) for n, t, s in zip(self.names, parts, self.shapes)}

    def __call__(self, x: torch.Tensor, batch) -> torch.Tensor:
        pieces = []
        for i, (a, b) in enumerate(self.bounds):

            def utility(own, i=i, a=a, b=b):
                full = torch.cat([x[:a], own, x[b:]])
                return functional_call(self.game, self._params(full), (batch,), {"player": i})

            pieces.append(grad(utility)(x[a:b]))
        return torch.cat(pieces)

    def jvp(self, x: torch.Tensor, batch, u: torch.Tensor) -> torch.Tensor:
        return jvp(lambda y: self(y, batch), (x,), (u,))[1]

    def block_jvp(self, x: torch.Tensor, batch, j: int, u: torch.Tensor) -> torch.Tensor:
        """v'(x) applied to a tangent that lives in player j's parameters only.

        Only player j's slice carries a tangent, so forward-mode skips everything that does
        not depend on it (e.g. the generator's forward pass for discriminator columns).
        """
        a, b = self.bounds[j]
        return jvp(lambda own: self(torch.cat([x[:a], own, x[b:]]), batch), (x[a:b],), (u,))[1]

    def vjp(self, x: torch.Tensor, batch, u: torch.Tensor) -> torch.Tensor:
        return vjp(lambda y: self(y, batch), x)[1](u)[0]
