"""The built-in math functions of the language: names, arities and how shapes flow.

Only the language-level facts live here. Each compiler (torch, sympy) maps every name to
its own implementation, and a test checks that both cover this table.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Function:
    name: str
    arity: int
    kind: str  # "elementwise": same shape out; "reduce": to a scalar; "pair": two equal shapes to a scalar
    doc: str


FUNCTIONS: dict[str, Function] = {
    f.name: f
    for f in (
        Function("log", 1, "elementwise", "natural logarithm"),
        Function("exp", 1, "elementwise", "exponential"),
        Function("sqrt", 1, "elementwise", "square root"),
        Function("softplus", 1, "elementwise", "log(1 + exp(t)), computed stably"),
        Function("sigmoid", 1, "elementwise", "1 / (1 + exp(-t))"),
        Function("tanh", 1, "elementwise", "hyperbolic tangent"),
        Function("relu", 1, "elementwise", "max(t, 0)"),
        Function("abs", 1, "elementwise", "absolute value"),
        Function("sum", 1, "reduce", "sum of the components of a vector (or image)"),
        Function("mean", 1, "reduce", "mean of the components of a vector (or image)"),
        Function("norm", 1, "reduce", "Euclidean norm of a vector (or image)"),
        Function("dot", 2, "pair", "inner product of two vectors of the same size"),
    )
}
