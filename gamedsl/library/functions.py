"""The built-in functions of the language: one row each, with everything every backend needs.

A row says how the checker types a call (its arity and `kind`, which fixes the shape rule),
how the torch compiler computes it, how the sympy compiler builds it, and whether a
constant call is folded at compile time. A new function is one new row here (and its line
in docs/language.md); the compilers dispatch on `kind`, one method per kind each.

The forms are plain callables, but this module imports neither torch nor sympy: `gamedsl
check` must stay fast and torch-free. A form named by its dotted path (`Lazy("torch.log")`)
is imported on its first call; the few forms that are compositions import inside.

Kinds and the calling convention of their forms (the compilers lay out the arguments):

- `elementwise`: f(t) on one tensor, any shape; sympy f(t) on one scalar entry.
- `broadcast`: f(a, b, ...) on tensors of broadcastable shapes (equal, or scalars), entry by
  entry; sympy f(a, b, ...) on scalars.
- `reduce`: f(x, dims) reduces the trailing `dims` of x (dims may be empty: a scalar);
  sympy f(x) on a tuple of entries (a vector) or one scalar.
- `pair`: f(x, y, dims) of two tensors of one shape; sympy f(x, y) on tuples or scalars.
- `concat`: f([x1, x2, ...]) of vectors laid out alike (the compiler makes scalars vectors of
  size 1 and gives every operand the batch axis of the sampled ones); sympy f([...]) of
  tuples.
- `gradient`: `grad` is not a function of values but an operator: `grad(D, p)` takes a
  network and points, `grad(EXPR, x)` an expression and the variable x. The checker makes it
  an `ir.Grad` node, which each compiler handles itself; the row has no forms.

Constant folding follows one rule for every row: a call whose arguments are all constants is
computed at compile time by the row's own torch form, on float64 0-d tensors (IEEE
semantics: `log(0)` folds to -inf, exactly what the unfolded expression gives at run time).
Rows whose result is not a scalar of scalars (`concat`) do not fold.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable


class Lazy:
    """A function named by its dotted path, imported on its first call."""

    def __init__(self, path: str):
        self.path = path
        self._function: Callable | None = None

    def resolve(self) -> Callable:
        """The function itself (compilers take it when they build a program: a traced program,
        torch.compile's, must not import)."""
        if self._function is None:
            module, _, name = self.path.rpartition(".")
            self._function = getattr(importlib.import_module(module), name)
        return self._function

    def __call__(self, *args, **kwargs):
        return self.resolve()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Lazy({self.path!r})"


@dataclass(frozen=True)
class Function:
    name: str
    arity: int | None  # None: one or more arguments (concat)
    kind: str  # elementwise | broadcast | reduce | pair | concat | gradient (see the module docstring)
    doc: str
    torch: Callable[..., Any] | None
    sympy: Callable[..., Any] | None

    @property
    def folds(self) -> bool:
        """A call of constants is computed at compile time (scalar results only)."""
        return self.kind in ("elementwise", "broadcast")

    def fold(self, *values: float) -> float:
        """The value of a call of constants, computed as a run computes it: by the torch form,
        on float64 0-d tensors."""
        import torch

        return float(self.torch(*(torch.tensor(v, dtype=torch.float64) for v in values)))


# ---- forms that are compositions (torch and sympy are imported inside) -----------------------


def _sympy():
    import sympy

    return sympy


def _softplus(t):
    sp = _sympy()
    return sp.log(1 + sp.exp(t))


def _sigmoid(t):
    return 1 / (1 + _sympy().exp(-t))


def _relu(t):
    return _sympy().Max(t, 0)


def _clamp(t, low, high):
    import torch

    return torch.minimum(torch.maximum(t, low), high)


def _clamp_sympy(t, low, high):
    sp = _sympy()
    return sp.Min(sp.Max(t, low), high)


def _sum(x, dims):
    return x.sum(dims) if dims else x


def _mean(x, dims):
    return x.mean(dims) if dims else x


def _norm(x, dims):
    import torch

    return torch.linalg.vector_norm(x, dim=dims) if dims else x.abs()


def _dot(x, y, dims):
    return (x * y).sum(dims) if dims else x * y


def _concat(xs):
    import torch

    return torch.cat(xs, dim=-1)


def _sum_sympy(x):
    return _sympy().Add(*x) if isinstance(x, tuple) else x


def _mean_sympy(x):
    return _sympy().Add(*x) / len(x) if isinstance(x, tuple) else x


def _norm_sympy(x):
    sp = _sympy()
    return sp.sqrt(sp.Add(*(t**2 for t in x))) if isinstance(x, tuple) else sp.Abs(x)


def _dot_sympy(x, y):
    if isinstance(x, tuple):
        return _sympy().Add(*(a * b for a, b in zip(x, y)))
    return x * y


def _concat_sympy(xs):
    return tuple(t for x in xs for t in (x if isinstance(x, tuple) else (x,)))


FUNCTIONS: dict[str, Function] = {
    f.name: f
    for f in (
        Function("log", 1, "elementwise", "natural logarithm", Lazy("torch.log"), Lazy("sympy.log")),
        Function("exp", 1, "elementwise", "exponential", Lazy("torch.exp"), Lazy("sympy.exp")),
        Function("sqrt", 1, "elementwise", "square root", Lazy("torch.sqrt"), Lazy("sympy.sqrt")),
        Function(
            "softplus",
            1,
            "elementwise",
            "log(1 + exp(t)), computed stably",
            Lazy("torch.nn.functional.softplus"),
            _softplus,
        ),
        Function("sigmoid", 1, "elementwise", "1 / (1 + exp(-t))", Lazy("torch.sigmoid"), _sigmoid),
        Function("tanh", 1, "elementwise", "hyperbolic tangent", Lazy("torch.tanh"), Lazy("sympy.tanh")),
        Function("relu", 1, "elementwise", "max(t, 0)", Lazy("torch.relu"), _relu),
        Function("abs", 1, "elementwise", "absolute value", Lazy("torch.abs"), Lazy("sympy.Abs")),
        Function("min", 2, "broadcast", "the smaller, entry by entry", Lazy("torch.minimum"), Lazy("sympy.Min")),
        Function("max", 2, "broadcast", "the larger, entry by entry", Lazy("torch.maximum"), Lazy("sympy.Max")),
        Function("clamp", 3, "broadcast", "min(max(t, low), high), entry by entry", _clamp, _clamp_sympy),
        Function("sum", 1, "reduce", "sum of the components of a vector (or image)", _sum, _sum_sympy),
        Function("mean", 1, "reduce", "mean of the components of a vector (or image)", _mean, _mean_sympy),
        Function("norm", 1, "reduce", "Euclidean norm of a vector (or image)", _norm, _norm_sympy),
        Function("dot", 2, "pair", "inner product of two vectors of the same size", _dot, _dot_sympy),
        Function("concat", None, "concat", "its arguments' entries in order, as a vector", _concat, _concat_sympy),
        Function("grad", 2, "gradient", "the gradient of a critic at points, per sample: grad(D, p)", None, None),
    )
}

# Names people reach for that are not in the language, and what to write instead.
NOT_BUILT_IN: dict[str, str] = {
    "clip": "write clamp(t, low, high)",
    "clip_by_value": "write clamp(t, low, high)",
    "minimum": "write min(a, b)",
    "maximum": "write max(a, b)",
    "cat": "write concat(a, b, ...), or a vector literal [a, b, c] of numbers",
    "stack": "write a vector literal [a, b, c] of numbers, or concat(u, v) of vectors",
    "hstack": "write concat(a, b, ...)",
    "vector": "write a vector literal [a, b, c]",
    "gradient": "write grad(D, x): the gradient of the critic D at the points x",
    "nabla": "write grad(D, x): the gradient of the critic D at the points x",
    "jacobian": "write grad(D, x) for the input gradient of a critic; solvers differentiate the utilities themselves",
    "autograd": "write grad(D, x) for the input gradient of a critic; solvers differentiate the utilities themselves",
    "square": "write t^2",
    "pow": "write a^b",
    "power": "write a^b",
    "ln": "write log(t): the natural logarithm",
    "log1p": "write log(1 + t), or softplus(t) for log(1 + exp(t))",
    "logsigmoid": "write -softplus(-t), which is log(sigmoid(t))",
    "log_sigmoid": "write -softplus(-t), which is log(sigmoid(t))",
    "expectation": "write E[...] for the mean over the batch",
    "avg": "write E[...] over the batch, or mean(v) over the entries of a vector",
    "average": "write E[...] over the batch, or mean(v) over the entries of a vector",
    "l2": "write norm(v)",
    "norm2": "write norm(v)^2",
    "inner": "write dot(u, v)",
    "matmul": "apply a network: a linear map is network W = linear(IN -> OUT)",
    "leaky_relu": "write max(t, 0.2 * t)",
    "elu": "elu is an mlp activation (activation=elu), not a function in expressions",
    "sign": "there is no sign function; abs(t) / t is its value away from 0",
    "exp2": "write 2^t",
}
