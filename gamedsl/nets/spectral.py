"""Spectral normalisation (Miyato, Kataoka, Koyama and Yoshida, ICLR 2018): every weight W of a
network is used as W / σ(W), σ(W) its largest singular value, estimated by power iteration.

`spectral_norm(module)` registers the reparametrisation on every dense and convolutional layer
(torch.nn.utils.parametrize, so a layer's trainable tensor is `parametrizations.weight.original`
and the state dict has the same keys as torch.nn.utils.parametrizations.spectral_norm's: a
saved network loads into a module built with it). The estimate is σ = uᵀ W v with the buffers
u and v held constant: the layer's output, and so the game's field, is differentiated through
W / σ(W) with u and v fixed, which is what Miyato et al. and PyTorch do.

When the power iteration advances is the caller's decision, not the forward pass's: a forward
pass never changes u or v. That keeps every evaluation of a solver step (extragradient's two,
consensus's double backprop, a compiled or vmapped step) at the same σ, and keeps torch.func
transforms free of in-place updates. `advance(module)` takes one iteration; the compiled game
calls it once after every solver step (gamedsl/compile/torch_game.py, `after_step`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

WARM_UP = 15  # iterations at construction, as torch.nn.utils.parametrizations.spectral_norm takes
EPS = 1e-12  # F.normalize's floor on a norm, PyTorch's default for spectral norm
LAYERS = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)


class SpectralNorm(nn.Module):
    """The parametrisation W -> W / (uᵀ W v) of one weight; u, v: the power iteration's vectors.

    A weight of more than two dimensions is seen as a matrix with `dim` (the output channels:
    0, or 1 for a transposed convolution, as PyTorch chooses) as its rows."""

    def __init__(self, weight: torch.Tensor, dim: int, generator: torch.Generator):
        super().__init__()
        self.dim = dim
        with torch.no_grad():
            rows, columns = self.matrix(weight).shape
            start = [torch.randn(n, generator=generator).to(weight) for n in (rows, columns)]
            self.register_buffer("_u", F.normalize(start[0], dim=0, eps=EPS))
            self.register_buffer("_v", F.normalize(start[1], dim=0, eps=EPS))
        self.iterate(weight, WARM_UP)

    def matrix(self, weight: torch.Tensor) -> torch.Tensor:
        return (weight.movedim(self.dim, 0) if self.dim else weight).flatten(1)

    @torch.no_grad()
    def iterate(self, weight: torch.Tensor, times: int = 1) -> None:
        """u <- W v / |W v|, then v <- Wᵀ u / |Wᵀ u|, in place (PyTorch's order)."""
        mat = self.matrix(weight.detach())
        for _ in range(times):
            self._u.copy_(F.normalize(mat @ self._v, dim=0, eps=EPS))
            self._v.copy_(F.normalize(mat.T @ self._u, dim=0, eps=EPS))

    def sigma(self, weight: torch.Tensor) -> torch.Tensor:
        """The estimate uᵀ W v of the largest singular value, differentiable in W only."""
        return torch.vdot(self._u, self.matrix(weight) @ self._v)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight / self.sigma(weight)


def spectral_norm(module: nn.Module, generator: torch.Generator) -> nn.Module:
    """Normalise the weight of every dense and convolutional layer of `module`, in place.

    `generator` draws the power iteration's starting vectors, so that the global random
    stream, and with it the initial weights of every network, is the same with or without
    spectral normalisation."""
    for layer in list(module.modules()):
        if isinstance(layer, LAYERS):
            dim = 1 if isinstance(layer, nn.ConvTranspose2d) else 0
            parametrize.register_parametrization(layer, "weight", SpectralNorm(layer.weight, dim, generator))
    return module


def normalisations(module: nn.Module) -> list[tuple[SpectralNorm, nn.Parameter]]:
    """Each spectral normalisation in `module` with the weight it normalises."""
    out = []
    for layer in module.modules():
        if parametrize.is_parametrized(layer, "weight"):
            chain = layer.parametrizations["weight"]
            out += [(p, chain.original) for p in chain if isinstance(p, SpectralNorm)]
    return out


def advance(pairs: list[tuple[SpectralNorm, nn.Parameter]]) -> None:
    """One power iteration of each normalisation, at the weights as they are."""
    for norm, weight in pairs:
        norm.iterate(weight)
