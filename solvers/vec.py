"""Arithmetic on vectors stored as lists of tensors, for solvers and optimizers.

Eagerly these are `torch._foreach_*` kernels: one call for all of a player's tensors, as
`torch.optim` does. Under torch.func transforms (vectorised sweeps vmap whole solver
steps) foreach kernels have no batching rules, so the same functions fall back to one op
per tensor; coefficients may then be tensors (one hyperparameter per configuration).
Compiled steps take the per-tensor form too: inductor fuses it.
"""

from __future__ import annotations

import torch

Vec = list[torch.Tensor]
Scalar = float | torch.Tensor

_wrapped = torch._C._functorch.is_functorch_wrapped_tensor


def is_eager(xs: Vec, *scalars: Scalar) -> bool:
    """Whether the foreach kernels apply: plain tensors, plain coefficients, and not being
    traced by torch.compile (which fuses the per-tensor form itself)."""
    if torch.compiler.is_compiling():
        return False
    return bool(xs) and not _wrapped(xs[0]) and not any(isinstance(s, torch.Tensor) for s in scalars)


def axpy(a: Scalar, xs: Vec, ys: Vec) -> Vec:
    """y + a x, out of place."""
    if is_eager(xs, a):
        return torch._foreach_add(ys, xs, alpha=a)
    return [y + a * x for x, y in zip(xs, ys)]


def scale_add_(ys: Vec, b: Scalar, xs: Vec) -> None:
    """y <- b y + x, in place (a heavy-ball buffer)."""
    if is_eager(ys, b):
        torch._foreach_mul_(ys, b)
        torch._foreach_add_(ys, xs)
    else:
        for y, x in zip(ys, xs):
            y.mul_(b).add_(x)


def add_(ys: Vec, xs: Vec, alpha: Scalar = 1.0) -> None:
    """y <- y + alpha x, in place (the optimizer's step)."""
    if is_eager(ys, alpha):
        torch._foreach_add_(ys, xs, alpha=alpha)
    else:
        for y, x in zip(ys, xs):
            y.add_(alpha * x)


def scale(xs: Vec, a: Scalar) -> Vec:
    if is_eager(xs, a):
        return torch._foreach_mul(xs, a)
    return [a * x for x in xs]


def ema_square_(avg: Vec, xs: Vec, decay: Scalar) -> None:
    """avg <- decay avg + (1 - decay) x^2."""
    if is_eager(avg, decay):
        torch._foreach_mul_(avg, decay)
        torch._foreach_addcmul_(avg, xs, xs, value=1 - decay)
    else:
        for a, x in zip(avg, xs):
            a.mul_(decay).add_((1 - decay) * x * x)


def ema_(avg: Vec, xs: Vec, decay: Scalar) -> None:
    """avg <- decay avg + (1 - decay) x."""
    if is_eager(avg, decay):
        torch._foreach_lerp_(avg, xs, 1 - decay)
    else:
        for a, x in zip(avg, xs):
            a.mul_(decay).add_((1 - decay) * x)


def root(avg: Vec, eps: Scalar, mean: Vec | None = None) -> Vec:
    """sqrt(avg - mean^2) + eps (the centred form when `mean` is given)."""
    if is_eager(avg, eps):
        out = torch._foreach_addcmul(avg, mean, mean, value=-1) if mean is not None else list(avg)
        out = torch._foreach_sqrt(out)
        torch._foreach_add_(out, eps)
        return out
    if mean is not None:
        return [torch.sqrt(a - m * m) + eps for a, m in zip(avg, mean)]
    return [torch.sqrt(a) + eps for a in avg]


def add_ratio_(ys: Vec, xs: Vec, denominators: Vec, value: Scalar) -> None:
    """y <- y + value x / d, in place."""
    if is_eager(ys, value):
        torch._foreach_addcdiv_(ys, xs, denominators, value=value)
    else:
        for y, x, d in zip(ys, xs, denominators):
            y.add_(value * x / d)


def ratio(xs: Vec, denominators: Vec) -> Vec:
    if is_eager(xs):
        return torch._foreach_div(xs, denominators)
    return [x / d for x, d in zip(xs, denominators)]


def mul(xs: Vec, ys: Vec) -> Vec:
    """x * y elementwise, out of place (a diagonal matrix applied to a vector)."""
    if is_eager(xs):
        return torch._foreach_mul(xs, ys)
    return [x * y for x, y in zip(xs, ys)]


def sqrt(xs: Vec) -> Vec:
    if is_eager(xs):
        return torch._foreach_sqrt(xs)
    return [torch.sqrt(x) for x in xs]


def reciprocal(xs: Vec) -> Vec:
    if is_eager(xs):
        return torch._foreach_reciprocal(xs)
    return [1 / x for x in xs]


def copy_(ys: Vec, xs: Vec) -> None:
    """y <- x, in place."""
    if is_eager(ys):
        torch._foreach_copy_(ys, xs)
    else:
        for y, x in zip(ys, xs):
            y.copy_(x)


def dot(xs: Vec, ys: Vec) -> torch.Tensor:
    """<x, y> over all tensors."""
    if not xs:
        return torch.zeros(())
    return sum((x * y).sum() for x, y in zip(xs, ys))


def squared_norm(xs: Vec) -> torch.Tensor:
    if not xs:
        return torch.zeros(())
    if is_eager(xs):
        return torch.stack(torch._foreach_norm(xs)).square().sum()
    return sum((x * x).sum() for x in xs)


def zeros_like(xs: Vec) -> Vec:
    return [torch.zeros_like(x, memory_format=torch.preserve_format) for x in xs]
