"""The convolutional networks of the paper's image experiments (§5 and supplement).

One generator and one discriminator cover all of the authors' models (facts.md, "Image
experiments"): 5x5 convolutions with stride 2 (transposed in the generator), leaky ReLU
0.2, a tanh output, and

* `filters` f with `doubling` (f, 2f, 4f, 8f: dcgan3/dcgan4) or constant (f, f, f, f:
  conv3/conv4, the `_cf` models);
* `batchnorm` after every hidden convolution but the discriminator's first (dcgan3/dcgan4;
  `_nobn` without);
* `dense` > 0: an extra fully connected layer of that many units next to the latent code
  and before the discriminator's logit (conv3/conv4 use 512);
* `resnet`: after each strided convolution a residual block
  h <- h + 0.1 conv3x3(lrelu(conv3x3(lrelu(h)))) (resnet, resnet_cf).

Modules see `(batch, *input_shape)`: the generator maps (B, Z) to (B, C, H, W), the
discriminator (B, C, H, W) to (B, OUT). The image side must be divisible by 2**layers;
the builders' validation says so at check time, with the position of the builder call.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def check_image_size(image: tuple[int, int, int], layers: int) -> None:
    """Each of `layers` stride-2 convolutions halves the side: the sides must be divisible by 2**layers."""
    if len(image) != 3 or any(side % 2**layers for side in image[1:]):
        raise ValueError(f"an image (C, H, W) with sides divisible by 2**{layers} is needed, got {tuple(image)}")


def widths(filters: int, layers: int, doubling: bool) -> list[int]:
    """Channels after each strided convolution of the discriminator: f, 2f, 4f, ... or f, f, ...

    The generator uses the same list reversed (its first feature map is the widest)."""
    return [filters * (2**i if doubling else 1) for i in range(layers)]


class Residual(nn.Module):
    """h + scale * conv3x3(lrelu(conv3x3(lrelu(h)))), the paper's ResNet block."""

    def __init__(self, channels: int, slope: float, scale: float = 0.1):
        super().__init__()
        self.slope, self.scale = slope, scale
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        act = nn.functional.leaky_relu
        return h + self.scale * self.conv2(act(self.conv1(act(h, self.slope)), self.slope))


class ConvTranspose2d(nn.ConvTranspose2d):
    """nn.ConvTranspose2d whose derivatives of every order exist.

    torch cannot differentiate a transposed convolution with `output_padding` three times:
    its double backward passes the output padding to a plain convolution ("output_padding is
    not supported for non-transposed convolutions"), and SGA's and CGD's Jacobian-vector
    products (the double-vjp trick in solvers/engine.py) need that third derivative. Output
    padding only lengthens the far end of the output, so the same output is the transposed
    convolution with `output_padding` less padding on each side, without its first
    `output_padding` rows and columns: the same parameters, state dict and values (torch
    refuses the negative padding that an output padding above the padding would need).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cut = self.output_padding
        padding = [p - o for p, o in zip(self.padding, cut)]
        out = F.conv_transpose2d(x, self.weight, self.bias, self.stride, padding, 0, self.groups, self.dilation)
        return out[..., cut[0] :, cut[1] :]


class Reshape(nn.Module):
    def __init__(self, *shape: int):
        super().__init__()
        self.shape = shape

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return t.reshape(t.shape[0], *self.shape)

    def extra_repr(self) -> str:
        return ", ".join(map(str, self.shape))


def _hidden(layers: list[nn.Module], channels: int, batchnorm: bool, resnet: bool, slope: float) -> None:
    """What follows a hidden strided convolution: [batch norm], [residual block], leaky ReLU."""
    if batchnorm:
        layers.append(nn.BatchNorm2d(channels))
    if resnet:
        layers.append(Residual(channels, slope))
    layers.append(nn.LeakyReLU(slope))


def generator(
    latent: int,
    image: tuple[int, int, int],
    filters: int = 64,
    layers: int = 4,
    doubling: bool = True,
    batchnorm: bool = True,
    dense: int = 0,
    resnet: bool = False,
    slope: float = 0.2,
    init: str = "xavier",
) -> nn.Sequential:
    """z (B, latent) -> image (B, C, H, W) in (-1, 1)."""
    check_image_size(image, layers)
    channels, height, width = image
    h, w = height >> layers, width >> layers
    chans = widths(filters, layers, doubling)[::-1]  # e.g. 8f, 4f, 2f, f
    net: list[nn.Module] = []
    size = latent
    if dense:
        net += [nn.Linear(latent, dense), nn.LeakyReLU(slope)]
        size = dense
    net += [nn.Linear(size, chans[0] * h * w), Reshape(chans[0], h, w)]
    if batchnorm:
        net.append(nn.BatchNorm2d(chans[0]))
    net.append(nn.LeakyReLU(slope))
    for c_in, c_out in zip(chans, chans[1:]):
        net.append(ConvTranspose2d(c_in, c_out, 5, stride=2, padding=2, output_padding=1))
        _hidden(net, c_out, batchnorm, resnet, slope)
    net += [ConvTranspose2d(chans[-1], channels, 5, stride=2, padding=2, output_padding=1), nn.Tanh()]
    module = nn.Sequential(*net)
    initialize(module, init)
    return module


def discriminator(
    image: tuple[int, int, int],
    outputs: int = 1,
    filters: int = 64,
    layers: int = 4,
    doubling: bool = True,
    batchnorm: bool = True,
    dense: int = 0,
    resnet: bool = False,
    slope: float = 0.2,
    init: str = "xavier",
) -> nn.Sequential:
    """image (B, C, H, W) -> logits (B, outputs). No batch norm on the first convolution (DCGAN)."""
    check_image_size(image, layers)
    channels, height, width = image
    chans = widths(filters, layers, doubling)
    net: list[nn.Module] = []
    c_in = channels
    for i, c_out in enumerate(chans):
        net.append(nn.Conv2d(c_in, c_out, 5, stride=2, padding=2))
        _hidden(net, c_out, batchnorm and i > 0, resnet, slope)
        c_in = c_out
    net.append(nn.Flatten())
    size = chans[-1] * (height >> layers) * (width >> layers)
    if dense:
        net += [nn.Linear(size, dense), nn.LeakyReLU(slope)]
        size = dense
    net.append(nn.Linear(size, outputs))
    module = nn.Sequential(*net)
    initialize(module, init)
    return module


def initialize(module: nn.Module, init: str) -> None:
    """`xavier`: Glorot-uniform weights and zero biases for every convolution and dense layer,
    TensorFlow-slim's defaults, which the authors' code used; `torch` keeps PyTorch's."""
    if init == "torch":
        return
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def has_batchnorm(module: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


class running_stats_frozen:
    """Within this block, batch-norm layers in training mode normalise with the batch's
    statistics (as always in training) but do not update their running averages.

    torch.func transforms (the spectrum's Jacobians, per-example gradients) cannot run the
    in-place running-average update, and pictures drawn from a fixed z should not change
    the statistics a checkpoint stores. The layers and their buffers are restored on exit.
    """

    def __init__(self, module: nn.Module):
        self.layers = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        self.saved: list[tuple] = []

    def __enter__(self):
        for m in self.layers:
            self.saved.append((m.track_running_stats, m.running_mean, m.running_var, m.num_batches_tracked))
            if m.training:
                m.track_running_stats = False
                m.running_mean = m.running_var = m.num_batches_tracked = None
        return self

    def __exit__(self, *exc):
        for m, (track, mean, var, count) in zip(self.layers, self.saved):
            m.track_running_stats = track
            m.running_mean, m.running_var, m.num_batches_tracked = mean, var, count
        self.saved.clear()
        return False
