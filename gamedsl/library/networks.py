"""The registry of network builders: `network NAME = builder(...)`.

A builder is a signature (checked at check time), a shape rule (so that `D(G(z))` is
shape-checked before anything runs) and a factory for the `nn.Module`. New builders are
added with `register_builder`; the grammar does not change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from gamedsl.errors import GameCheckError
from gamedsl.library.signature import REQUIRED, Arg, Arrow, Bool, Choice, Float, IntList, Shape, Signature

INITS = ("torch", "xavier", "zeros", "ones")


@dataclass(frozen=True)
class Builder:
    signature: Signature
    shapes: Callable[[dict[str, Any]], tuple[Shape, Shape]]
    module: Callable[[dict[str, Any]], Any]  # args -> torch.nn.Module (torch imported lazily)
    symbolic: bool = False  # small enough to become sympy symbols (see compile/sympy_game.py)


BUILDERS: dict[str, Builder] = {}


def register_builder(builder: Builder) -> Builder:
    BUILDERS[builder.signature.name] = builder
    return builder


def _vector_io(what: str):
    def validate(values, spans):
        source, target = values["io"]
        if len(source) != 1 or len(target) != 1:
            others = sorted(name for name in BUILDERS if name not in ("mlp", "linear"))
            raise GameCheckError(
                f"{what} maps vectors to vectors; its sizes must be numbers, not lists",
                span=spans["io"],
                hint=f"other builders: {', '.join(others)}" if others else f"write sizes as numbers: {what}(2 -> 1)",
            )

    return validate


def _io(values) -> tuple[Shape, Shape]:
    return values["io"]


def _mlp(values):
    from gamedsl.nets.mlp import mlp

    (n_in,), (n_out,) = values["io"]
    return mlp(n_in, n_out, values["hidden"], values["activation"], values["slope"], values["bias"], values["init"])


def _linear(values):
    from gamedsl.nets.mlp import linear

    (n_in,), (n_out,) = values["io"]
    return linear(n_in, n_out, values["bias"], values["init"])


register_builder(
    Builder(
        Signature(
            "mlp",
            (
                Arg("io", Arrow(), REQUIRED, "input size -> output size"),
                Arg("hidden", IntList(), (), "sizes of the hidden layers"),
                Arg("activation", Choice(choices=("relu", "leaky_relu", "tanh", "elu")), "relu", "nonlinearity between layers"),
                Arg("slope", Float(minimum=0.0), 0.2, "negative slope of leaky_relu"),
                Arg("bias", Bool(), True, "whether layers have biases"),
                Arg("init", Choice(choices=INITS), "torch", "weight initialisation: PyTorch's default, xavier (TensorFlow's), zeros or ones"),
            ),
            "A fully connected network with a linear output layer.",
            validate=_vector_io("mlp"),
        ),
        _io,
        _mlp,
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
            ),
            "An affine map W x + b. Small ones are analysed symbolically by `gamedsl analyze`.",
            validate=_vector_io("linear"),
        ),
        _io,
        _linear,
        symbolic=True,
    )
)
