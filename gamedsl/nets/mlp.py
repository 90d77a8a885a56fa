"""Fully connected networks: `mlp(IN -> OUT, hidden=[...])` and `linear(IN -> OUT)`."""

from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS = ("relu", "leaky_relu", "tanh", "elu", "sigmoid", "maxout")
NORMS = ("none", "batch", "layer")


class Maxout(nn.Module):
    """The largest of each group of `pieces` consecutive units (Goodfellow et al. 2013): a
    layer of n maxout units is a linear layer of n * pieces units followed by this."""

    def __init__(self, pieces: int):
        super().__init__()
        self.pieces = pieces

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (-1, self.pieces)).amax(-1)

    def extra_repr(self) -> str:
        return f"pieces={self.pieces}"


def activation(name: str, slope: float, pieces: int = 2) -> nn.Module:
    if name == "leaky_relu":
        return nn.LeakyReLU(slope)
    if name == "maxout":
        return Maxout(pieces)
    return {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "sigmoid": nn.Sigmoid}[name]()


def mlp(
    inputs: int,
    outputs: int,
    hidden: tuple[int, ...],
    act: str,
    slope: float,
    bias: bool,
    init: str,
    norm: str = "none",
    pieces: int = 2,
) -> nn.Sequential:
    """Linear layers with `act` between them and a linear output, as in the paper's 2-D
    experiments. A hidden layer is linear, then [batch or layer norm], then the activation;
    with maxout its linear part has `pieces` units for each unit of the layer."""
    sizes = (inputs, *hidden, outputs)
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        last = i == len(sizes) - 2
        width = n_out * pieces if act == "maxout" and not last else n_out
        layers.append(nn.Linear(n_in, width, bias=bias))
        if not last:
            if norm == "batch":
                layers.append(nn.BatchNorm1d(width))
            elif norm == "layer":
                layers.append(nn.LayerNorm(width))
            layers.append(activation(act, slope, pieces))
    net = nn.Sequential(*layers)
    initialize(net, init)
    return net


def linear(inputs: int, outputs: int, bias: bool, init: str) -> nn.Linear:
    layer = nn.Linear(inputs, outputs, bias=bias)
    initialize(layer, init)
    return layer


def initialize(module: nn.Module, init: str) -> None:
    """`torch` keeps PyTorch's defaults; `xavier` is TensorFlow's default for dense layers
    (Glorot-uniform weights, zero biases), which the paper's code used; `zeros` and `ones`
    set every weight (and zero the biases), for small analytic games like the Dirac-GAN.
    Normalisation layers keep their identity start (scale 1, shift 0) in every case."""
    if init == "torch":
        return
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            if init == "xavier":
                nn.init.xavier_uniform_(layer.weight)
            elif init in ("zeros", "ones"):
                nn.init.constant_(layer.weight, 1.0 if init == "ones" else 0.0)
            if layer.bias is not None:
                with torch.no_grad():
                    layer.bias.zero_()
