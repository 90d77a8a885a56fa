"""The registry of network builders: `network NAME = builder(...)`.

A builder is a signature (checked at check time), a shape rule (so that `D(G(z))` is
shape-checked before anything runs), a footprint rule (its size, counted from the arguments
without building anything, so that `gamedsl check` can refuse a network that would not fit
in memory, and needs no torch), a factory for the `nn.Module` and, for networks small and
simple enough, their symbolic form for `gamedsl analyze`. New builders are added with
`register_builder`; the grammar does not change. Nothing here imports torch or sympy at
module level: the factories and the symbolic maps import them when called.

Every builder here takes the two Lipschitz constraints of WGAN critics: `clip=c` (weight
clipping, Arjovsky et al. 2017: a constraint set, applied by the compiled game after every
move of the network's player) and `spectral=true` (spectral normalisation, Miyato et al.
2018: a reparametrisation of each weight, built into the module; gamedsl/nets/spectral.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from gamedsl.errors import GameCheckError
from gamedsl.library.signature import REQUIRED, Arg, Arrow, Bool, Choice, Float, Int, IntList, Shape, Signature
from gamedsl.syntax import ast

INITS = ("torch", "xavier", "zeros", "ones")
MAX_PIECES = 64  # maxout pieces per unit; 2 to 5 are usual


@dataclass(frozen=True)
class Footprint:
    """The size of one network, counted exactly from its builder's arguments."""

    parameters: int  # trainable scalars: what `sum(p.numel() for p in module.parameters())` gives
    activations: int  # scalars its layers output for one example: what a forward pass keeps for backward
    widest: int  # the largest output of one layer for one example: what a pass without gradients holds at once
    norm_values: int = 0  # batch norm: values per channel of one example in its smallest normalised map; 0: none

    @property
    def couples_examples(self) -> bool:
        """Batch norm: an example's output depends on the others in its batch."""
        return self.norm_values > 0


@dataclass(frozen=True)
class SymbolicForm:
    """How a network becomes sympy (gamedsl/compile/sympy_game.py): its tensors, in the order of
    the module's `parameters()`, each a list of symbols in row-major order, and its map."""

    tensors: Callable[[dict[str, Any]], list[tuple[str, tuple[int, ...]]]]  # args -> [(tensor name, shape)]
    apply: Callable[[dict[str, Any], dict[str, list], list], list]  # (args, tensor symbols, inputs) -> outputs


@dataclass(frozen=True)
class Builder:
    signature: Signature
    shapes: Callable[[dict[str, Any]], tuple[Shape, Shape]]
    module: Callable[[dict[str, Any]], Any]  # args -> torch.nn.Module (torch imported lazily)
    footprint: Callable[[dict[str, Any]], Footprint]  # args -> its size, without torch
    symbolic: SymbolicForm | None = None  # its sympy form, where symbolic analysis handles it


BUILDERS: dict[str, Builder] = {}


def register_builder(builder: Builder) -> Builder:
    BUILDERS[builder.signature.name] = builder
    return builder


# ---- Lipschitz constraints: options of every builder ---------------------------------------


@dataclass(frozen=True)
class Bound(Float):
    """`clip=c`: a positive number, or `none` (the default: no clipping)."""

    label: str = "a positive number or none"
    positive: bool = True

    def convert(self, value):
        if isinstance(value, ast.IdentValue) and value.name == "none":
            return None
        try:
            return super().convert(value)
        except GameCheckError as exc:
            exc.hint = exc.hint or "clip=c keeps every parameter in [-c, c] (Arjovsky et al. used c = 0.01); clip=none clips nothing"
            raise


def _lipschitz_args() -> tuple[Arg, ...]:
    return (
        Arg(
            "clip",
            Bound(),
            None,
            "weight clipping: every parameter is projected onto [-clip, clip] after each move of its player",
        ),
        Arg("spectral", Bool(), False, "spectral normalisation: each weight divided by its largest singular value"),
    )


def _lipschitz_validate(values, spans):
    """Spectral normalisation divides by the largest singular value, which all-zero weights lack."""
    if values["spectral"] and values.get("init") == "zeros":
        raise GameCheckError(
            "spectral normalisation divides each weight by its largest singular value, which is 0 for init=zeros",
            span=spans.get("init", spans["spectral"]),
            hint="start from init=xavier, torch or ones, or remove spectral=true",
        )


def _constrained(factory):
    """The factory of a builder with the Lipschitz options: the module it builds, spectrally
    normalised when `spectral=true`. (Clipping is a projection after each move, which the
    compiled game applies: gamedsl/compile/torch_game.py.)"""

    def build(values):
        module = factory(values)
        if values["spectral"]:
            import torch

            from gamedsl.nets.spectral import spectral_norm

            spectral_norm(module, torch.Generator().manual_seed(torch.initial_seed()))
        return module

    return build


def _validations(*checks):
    def validate(values, spans):
        for check in checks:
            check(values, spans)

    return validate


def _vector_io(what: str):
    def validate(values, spans):
        source, target = values["io"]
        if len(source) != 1 or len(target) != 1:
            raise GameCheckError(
                f"{what} maps vectors to vectors; its sizes must be numbers, not lists",
                span=spans["io"],
                hint="images are generated by dcgan_generator(256 -> [3, 32, 32], ...) and judged by "
                "dcgan_discriminator([3, 32, 32] -> 1, ...)",
            )

    return validate


def _io(values) -> tuple[Shape, Shape]:
    return values["io"]


def _mlp(values):
    from gamedsl.nets.mlp import mlp

    (n_in,), (n_out,) = values["io"]
    keys = ("hidden", "activation", "slope", "bias", "init", "norm", "pieces")
    return mlp(n_in, n_out, *(values[k] for k in keys))


def _linear(values):
    from gamedsl.nets.mlp import linear

    (n_in,), (n_out,) = values["io"]
    return linear(n_in, n_out, values["bias"], values["init"])


def _dense(n_in: int, n_out: int, bias: bool = True) -> int:
    """Parameters of a fully connected layer."""
    return n_in * n_out + (n_out if bias else 0)


def _mlp_footprint(values) -> Footprint:
    """Linear layers with [a normalisation and] an activation between each two: every layer
    keeps its output. A maxout layer of h units is a linear layer of h * pieces units; batch
    and layer norm have a scale and a shift per unit. Batch norm normalises each unit over
    the batch: one value per example (norm_values=1), so a batch of one cannot be normalised."""
    (n_in,), (n_out,) = values["io"]
    pieces = values["pieces"] if values["activation"] == "maxout" else 1
    normed = values["norm"] != "none"
    parameters, activations, widest, size = 0, n_out, n_out, n_in
    for h in values["hidden"]:
        width = h * pieces
        parameters += _dense(size, width, values["bias"]) + (2 * width if normed else 0)
        activations += width * (2 if normed else 1) + h
        widest, size = max(widest, width), h
    parameters += _dense(size, n_out, values["bias"])
    return Footprint(parameters, activations, widest, norm_values=1 if values["norm"] == "batch" else 0)


def _mlp_validate(values, spans):
    _vector_io("mlp")(values, spans)
    if "pieces" in spans and values["activation"] != "maxout":
        raise GameCheckError(
            "'pieces' is the number of linear pieces of a maxout unit, but the activation is "
            f"{values['activation']}",
            span=spans["pieces"],
            hint="write activation=maxout, pieces=5, or remove pieces",
        )


def _linear_footprint(values) -> Footprint:
    (n_in,), (n_out,) = values["io"]
    return Footprint(_dense(n_in, n_out, values["bias"]), n_out, n_out)


def _linear_tensors(values) -> list[tuple[str, tuple[int, ...]]]:
    """nn.Linear's tensors: weight (out, in), then bias (out)."""
    (n_in,), (n_out,) = values["io"]
    return [("weight", (n_out, n_in))] + ([("bias", (n_out,))] if values["bias"] else [])


def _linear_apply(values, tensors: dict[str, list], x: list) -> list:
    """W x + b, one sympy sum per output."""
    import sympy as sp

    (n_in,), (n_out,) = values["io"]
    w = tensors["weight"]  # row-major (out, in)
    b = tensors.get("bias")
    return [sp.Add(*(w[j * n_in + i] * x[i] for i in range(n_in))) + (b[j] if b else 0) for j in range(n_out)]


register_builder(
    Builder(
        Signature(
            "mlp",
            (
                Arg("io", Arrow(), REQUIRED, "input size -> output size"),
                Arg("hidden", IntList(), (), "sizes of the hidden layers"),
                Arg(
                    "activation",
                    Choice(choices=("relu", "leaky_relu", "tanh", "elu", "sigmoid", "maxout")),
                    "relu",
                    "nonlinearity between layers",
                ),
                Arg("slope", Float(minimum=0.0, maximum=1e3), 0.2, "negative slope of leaky_relu"),
                Arg("bias", Bool(), True, "whether layers have biases"),
                Arg("init", Choice(choices=INITS), "torch", "weight initialisation: PyTorch's default, xavier (TensorFlow's), zeros or ones"),
                Arg(
                    "norm",
                    Choice(choices=("none", "batch", "layer")),
                    "none",
                    "normalisation of each hidden layer before its activation",
                ),
                Arg("pieces", Int(2, maximum=MAX_PIECES), 2, "linear pieces per unit of a maxout layer"),
                *_lipschitz_args(),
            ),
            "A fully connected network with a linear output layer.",
            validate=_validations(_mlp_validate, _lipschitz_validate),
        ),
        _io,
        _constrained(_mlp),
        _mlp_footprint,
    )
)

register_builder(
    Builder(
        Signature(
            "linear",
            (
                Arg("io", Arrow(), REQUIRED, "input size -> output size"),
                Arg("bias", Bool(), True, "whether the layer has a bias"),
                Arg("init", Choice(choices=INITS), "torch", "weight initialisation"),
                *_lipschitz_args(),
            ),
            "An affine map W x + b. Small ones are analysed symbolically by `gamedsl analyze`.",
            validate=_validations(_vector_io("linear"), _lipschitz_validate),
        ),
        _io,
        _constrained(_linear),
        _linear_footprint,
        symbolic=SymbolicForm(_linear_tensors, _linear_apply),
    )
)


# ---- the paper's convolutional image models (gamedsl/nets/dcgan.py) ----------------------

MAX_CONV_LAYERS = 8


def _image_io(what: str, generator: bool):
    """The generator maps a vector to an image [C, H, W]; the discriminator an image to a
    vector (a logit). Each of the `layers` stride-2 convolutions halves the image side."""

    def validate(values, spans):
        source, target = values["io"]
        image, other = (target, source) if generator else (source, target)
        usage = f"{what}(256 -> [3, 32, 32], ...)" if generator else f"{what}([3, 32, 32] -> 1, ...)"
        if len(image) != 3:
            side = "output" if generator else "input"
            raise GameCheckError(
                f"the {side} of {what} is an image, written [channels, height, width]",
                span=spans["io"],
                hint=f"for example {usage}",
            )
        if len(other) != 1:
            side = "input (the latent code)" if generator else "output"
            raise GameCheckError(
                f"the {side} of {what} must be a size such as {256 if generator else 1}, not a list",
                span=spans["io"],
                hint=f"for example {usage}",
            )
        layers = values["layers"]
        step = 2**layers
        bad = [side for side in image[1:] if side % step]
        if bad:
            raise GameCheckError(
                f"{what} with {layers} stride-2 layers needs image sides divisible by 2^{layers} = {step}, "
                f"but the image is {image[1]}x{image[2]}",
                span=spans.get("layers", spans["io"]),
                hint="each strided convolution halves the side: choose fewer layers, or resize the data "
                "(digits(size=32), image_folder(..., size=64))",
            )

    return validate


def _image_args() -> tuple[Arg, ...]:
    return (
        Arg("io", Arrow(), REQUIRED, "latent size -> [channels, height, width], or the reverse for the discriminator"),
        Arg("filters", Int(1), 64, "filters f of the first (discriminator) or last (generator) strided convolution"),
        Arg("layers", Int(1, maximum=MAX_CONV_LAYERS), 4, "number of 5x5 stride-2 convolutions (3 or 4 in the paper)"),
        Arg("doubling", Bool(), True, "filters double with depth (f, 2f, 4f, 8f: dcgan); false keeps f (conv, _cf)"),
        Arg("batchnorm", Bool(), True, "batch norm after the hidden convolutions (dcgan); false for _nobn"),
        Arg("dense", Int(0), 0, "units of an extra dense layer next to the latent code / before the logit (conv3/conv4: 512); 0: none"),
        Arg("resnet", Bool(), False, "a residual block h + 0.1 conv3x3(lrelu(conv3x3(lrelu(h)))) after each strided convolution"),
        Arg("slope", Float(minimum=0.0, maximum=1e3), 0.2, "negative slope of the leaky ReLUs"),
        Arg("init", Choice(choices=("xavier", "torch")), "xavier", "weight initialisation: xavier (TensorFlow's, the paper's) or torch"),
        *_lipschitz_args(),
    )


def _conv_kwargs(values) -> dict[str, Any]:
    keys = ("filters", "layers", "doubling", "batchnorm", "dense", "resnet", "slope", "init")
    return {k: values[k] for k in keys}


def _dcgan_generator(values):
    from gamedsl.nets.dcgan import generator

    (latent,), image = values["io"]
    return generator(latent, image, **_conv_kwargs(values))


def _dcgan_discriminator(values):
    from gamedsl.nets.dcgan import discriminator

    image, (outputs,) = values["io"]
    return discriminator(image, outputs, **_conv_kwargs(values))


KERNEL = 5 * 5  # the strided convolutions' 5x5 kernels (gamedsl/nets/dcgan.py)
RESIDUAL_KERNEL = 3 * 3


def _conv_widths(values) -> list[int]:
    """Channels after each strided convolution of the discriminator (the generator's, reversed)."""
    f, layers, doubling = values["filters"], values["layers"], values["doubling"]
    return [f * (2**i if doubling else 1) for i in range(layers)]


def _hidden_block(values, channels: int, side: int, batchnorm: bool) -> tuple[int, int]:
    """(parameters, activations) of what follows a hidden strided convolution: [batch norm],
    [residual block of two 3x3 convolutions], leaky ReLU, on `channels` maps of `side` pixels."""
    parameters, activations = 0, side  # the leaky ReLU
    if batchnorm:
        parameters, activations = parameters + 2 * channels, activations + side
    if values["resnet"]:
        parameters += 2 * (channels * channels * RESIDUAL_KERNEL + channels)
        activations += 2 * side
    return parameters, activations


def _generator_footprint(values) -> Footprint:
    """Dense projection to the smallest feature map, then stride-2 transposed convolutions."""
    (latent,), (channels, height, width) = values["io"]
    layers, batchnorm, dense = values["layers"], values["batchnorm"], values["dense"]
    chans = _conv_widths(values)[::-1]
    pixels = (height >> layers) * (width >> layers)
    parameters, activations, size = 0, 0, latent
    if dense:
        parameters, activations, size = _dense(latent, dense), 2 * dense, dense
    parameters += _dense(size, chans[0] * pixels) + (2 * chans[0] if batchnorm else 0)
    activations += chans[0] * pixels * (3 + batchnorm)  # linear, reshape, [batch norm], leaky ReLU
    widest = max(dense, chans[0] * pixels, channels * height * width)
    for c_in, c_out in zip(chans, chans[1:]):
        pixels *= 4
        block = _hidden_block(values, c_out, c_out * pixels, batchnorm)
        parameters += c_in * c_out * KERNEL + c_out + block[0]
        activations += c_out * pixels + block[1]
        widest = max(widest, c_out * pixels)
    parameters += chans[-1] * channels * KERNEL + channels
    activations += 2 * channels * height * width  # the last transposed convolution and tanh
    return Footprint(parameters, activations, widest, norm_values=(height >> layers) * (width >> layers) if batchnorm else 0)


def _discriminator_footprint(values) -> Footprint:
    """Stride-2 convolutions (batch norm from the second on), a flatten, [dense], a linear logit."""
    (channels, height, width), (outputs,) = values["io"]
    layers, batchnorm, dense = values["layers"], values["batchnorm"], values["dense"]
    parameters, activations, widest, c_in = 0, 0, max(dense, outputs), channels
    for i, c_out in enumerate(_conv_widths(values)):
        side = c_out * (height >> (i + 1)) * (width >> (i + 1))
        block = _hidden_block(values, c_out, side, batchnorm and i > 0)
        parameters += c_in * c_out * KERNEL + c_out + block[0]
        activations += side + block[1]
        widest = max(widest, side)
        c_in = c_out
    size = c_in * (height >> layers) * (width >> layers)
    activations += size  # the flatten
    if dense:
        parameters, activations, size = parameters + _dense(size, dense), activations + 2 * dense, dense
    parameters += _dense(size, outputs)
    smallest = (height >> layers) * (width >> layers)  # batch norm follows the 2nd to the last convolution
    return Footprint(parameters, activations + outputs, widest, norm_values=smallest if batchnorm and layers > 1 else 0)


register_builder(
    Builder(
        Signature(
            "dcgan_generator",
            _image_args(),
            "The paper's convolutional generator: dense projection, 5x5 stride-2 transposed convolutions, tanh.",
            validate=_image_io("dcgan_generator", generator=True),
        ),
        _io,
        _constrained(_dcgan_generator),
        _generator_footprint,
    )
)

register_builder(
    Builder(
        Signature(
            "dcgan_discriminator",
            _image_args(),
            "The paper's convolutional discriminator: 5x5 stride-2 convolutions, leaky ReLU, a linear logit.",
            validate=_image_io("dcgan_discriminator", generator=False),
        ),
        _io,
        _constrained(_dcgan_discriminator),
        _discriminator_footprint,
    )
)
