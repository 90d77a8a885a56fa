"""Fully connected networks: `mlp(IN -> OUT, hidden=[...])` and `linear(IN -> OUT)`."""

from __future__ import annotations

import torch
from torch import nn

ACTIVATIONS = ("relu", "leaky_relu", "tanh", "elu")


def activation(name: str, slope: float) -> nn.Module:
    if name == "leaky_relu":
        return nn.LeakyReLU(slope)
    return {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU}[name]()


def mlp(inputs: int, outputs: int, hidden: tuple[int, ...], act: str, slope: float, bias: bool, init: str) -> nn.Sequential:
    """Linear layers with `act` between them and a linear output, as in the paper's 2-D experiments."""
    sizes = (inputs, *hidden, outputs)
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        if i:
            layers.append(activation(act, slope))
        layers.append(nn.Linear(n_in, n_out, bias=bias))
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
    set every weight (and zero the biases), for small analytic games like the Dirac-GAN."""
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
