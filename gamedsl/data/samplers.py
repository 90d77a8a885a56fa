"""Synthetic distributions: the paper's ring of Gaussians, the grid, Dirac, normal, uniform.

Every sampler draws from an explicit `torch.Generator`, so a seed fixes the whole stream
and a checkpoint can store and restore it.
"""

from __future__ import annotations

import math

import torch


class Sampler:
    """Draws `n` samples of shape `shape` from `generator` (always a CPU generator)."""

    shape: tuple[int, ...] = ()

    def sample(self, n: int, generator: torch.Generator, dtype: torch.dtype) -> torch.Tensor:
        raise NotImplementedError


class Mixture(Sampler):
    """Isotropic Gaussians around fixed means; `balanced` puts sample i in mode i mod M,
    as the authors' code did for the ring (64 samples per mode in a batch of 512)."""

    def __init__(self, means: torch.Tensor, std: float, balanced: bool):
        self.means = means.double()
        self.std = std
        self.balanced = balanced
        self.shape = (means.shape[1],)
        self._centres: dict = {}  # (n, dtype) -> the balanced batch's mode centres, computed once

    def sample(self, n, generator, dtype):
        if self.balanced:
            key = (n, dtype)
            if key not in self._centres:
                self._centres[key] = self.means.to(dtype)[torch.arange(n) % len(self.means)]
            centres = self._centres[key]
        else:
            centres = self.means.to(dtype)[torch.randint(len(self.means), (n,), generator=generator)]
        noise = torch.randn(n, self.shape[0], generator=generator, dtype=dtype)
        return noise.mul_(self.std).add_(centres)


def ring_means(modes: int, radius: float) -> torch.Tensor:
    angles = torch.arange(modes, dtype=torch.float64) * (2 * math.pi / modes)
    return radius * torch.stack([angles.cos(), angles.sin()], dim=1)


def grid_means(size: int, spacing: float) -> torch.Tensor:
    ticks = (torch.arange(size, dtype=torch.float64) - (size - 1) / 2) * spacing
    return torch.cartesian_prod(ticks, ticks)


class Dirac(Sampler):
    def __init__(self, value: tuple[float, ...] | float):
        self.value = torch.tensor(value, dtype=torch.float64)
        self.shape = tuple(self.value.shape) if self.value.numel() > 1 else ()
        self.value = self.value.reshape(self.shape)

    def sample(self, n, generator, dtype):
        return self.value.to(dtype).expand(n, *self.shape).clone()


class Normal(Sampler):
    def __init__(self, shape: tuple[int, ...], mean, std):
        self.shape = shape
        self.mean = torch.as_tensor(mean, dtype=torch.float64)
        self.std = torch.as_tensor(std, dtype=torch.float64)
        self.standard = bool((self.mean == 0).all() and (self.std == 1).all())

    def sample(self, n, generator, dtype):
        z = torch.randn(n, *self.shape, generator=generator, dtype=dtype)
        if self.standard:
            return z
        return z.mul_(self.std.to(dtype)).add_(self.mean.to(dtype))


class Uniform(Sampler):
    def __init__(self, shape: tuple[int, ...], low: float, high: float):
        self.shape = shape
        self.low, self.high = low, high

    def sample(self, n, generator, dtype):
        u = torch.rand(n, *self.shape, generator=generator, dtype=dtype)
        return self.low + (self.high - self.low) * u
