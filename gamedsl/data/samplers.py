"""Synthetic distributions: the paper's ring of Gaussians, the grid, Dirac, normal, uniform,
and the standard 2-D toy sets of the GAN literature (Swiss roll, two moons, spiral).

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


# ---- the 2-D toy sets: drawn fresh in torch from the generator (no scikit-learn per batch) ----------


class SwissRoll(Sampler):
    """WGAN-GP's 2-D Swiss roll (Gulrajani et al. 2017, gan_toy.py): scikit-learn's
    make_swiss_roll, its coordinates (x, z), divided by 7.5. t is uniform on [1.5 pi, 4.5 pi],
    the point (t cos t, t sin t); `noise` is the standard deviation of the Gaussian noise
    added before the division, in scikit-learn's units (WGAN-GP: 0.25)."""

    shape = (2,)
    SCALE = 7.5

    def __init__(self, noise: float):
        self.noise = noise

    def sample(self, n, generator, dtype):
        t = torch.rand(n, generator=generator, dtype=dtype).mul_(2).add_(1).mul_(1.5 * math.pi)
        points = torch.stack([t * t.cos(), t * t.sin()], dim=1)
        noise = torch.randn(n, 2, generator=generator, dtype=dtype)
        return points.add_(noise, alpha=self.noise).div_(self.SCALE)


class TwoMoons(Sampler):
    """scikit-learn's make_moons: the upper half of the unit circle, (cos t, sin t), and the
    lower half of the unit circle around (1, 0.5), (1 - cos t, 0.5 - sin t), t uniform on
    [0, pi], each moon with probability 1/2; plus Gaussian noise of standard deviation `noise`."""

    shape = (2,)

    def __init__(self, noise: float):
        self.noise = noise

    def sample(self, n, generator, dtype):
        t = torch.rand(n, generator=generator, dtype=dtype).mul_(math.pi)
        inner = torch.rand(n, generator=generator, dtype=dtype) < 0.5
        x, y = t.cos(), t.sin()
        points = torch.stack([torch.where(inner, 1 - x, x), torch.where(inner, 0.5 - y, y)], dim=1)
        noise = torch.randn(n, 2, generator=generator, dtype=dtype)
        return points.add_(noise, alpha=self.noise)


class Spiral(Sampler):
    """The two-arm spiral of FFJORD's toy data ("2spirals", Grathwohl et al. 2019) without its
    uniform jitter: arm 0 is (-t cos t, t sin t) / 3 for t = sqrt(u) * turns * 2 pi with u
    uniform on [0, 1] (so points spread evenly along the arm), arm k is arm 0 turned by
    2 pi k / arms about the origin, each arm equally likely; plus Gaussian noise of standard
    deviation `noise` (FFJORD: 1.5 turns, noise 0.1)."""

    shape = (2,)
    SCALE = 3.0

    def __init__(self, arms: int, turns: float, noise: float):
        self.arms, self.turns, self.noise = arms, turns, noise

    def sample(self, n, generator, dtype):
        t = torch.rand(n, generator=generator, dtype=dtype).sqrt_().mul_(self.turns * 2 * math.pi)
        arm = torch.randint(self.arms, (n,), generator=generator).to(dtype).mul_(2 * math.pi / self.arms)
        # (-t cos t, t sin t) turned by the angle a about the origin is (-t cos(t - a), t sin(t - a))
        angle = t - arm
        points = torch.stack([-t * angle.cos(), t * angle.sin()], dim=1).div_(self.SCALE)
        noise = torch.randn(n, 2, generator=generator, dtype=dtype)
        return points.add_(noise, alpha=self.noise)
