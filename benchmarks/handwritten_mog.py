"""The paper's mixture-of-Gaussians game written by hand in plain PyTorch.

This is the yardstick for gamedsl: the same setup as games/mog.game (facts.md), coded the
way a researcher would, from the authors' description: sigmoid cross-entropy losses,
`torch.optim.RMSprop`, double backprop for consensus. It shares no code with gamedsl or
solvers (only the evaluation metric is imported by the benchmarks that use it).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def mlp(n_in: int, n_out: int) -> nn.Sequential:
    layers, width = [], n_in
    for _ in range(4):
        layers += [nn.Linear(width, 16), nn.ReLU()]
        width = 16
    layers.append(nn.Linear(width, n_out))
    net = nn.Sequential(*layers)
    for m in net:
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return net


class HandwrittenMoG:
    """G, D, sampling and one step of simga, altga or consensus."""

    def __init__(self, seed: int, batch: int = 512, lr: float = 1e-4, gamma: float = 10.0):
        torch.manual_seed(seed)
        self.G, self.D = mlp(16, 2), mlp(2, 1)
        self.batch, self.gamma = batch, gamma
        angles = torch.arange(8) * (2 * math.pi / 8)
        self.means = torch.stack([angles.cos(), angles.sin()], dim=1)
        rms = dict(lr=lr, alpha=0.9, eps=1e-10)  # TensorFlow's RMSProp defaults, as in the paper
        self.params = list(self.D.parameters()) + list(self.G.parameters())
        self.opt = torch.optim.RMSprop(self.params, **rms)
        self.opt_d = torch.optim.RMSprop(self.D.parameters(), **rms)
        self.opt_g = torch.optim.RMSprop(self.G.parameters(), **rms)

    def sample(self):
        modes = torch.arange(self.batch) % 8
        x = self.means[modes] + 0.01 * torch.randn(self.batch, 2)
        return x, torch.randn(self.batch, 16)

    def losses(self, x, z):
        d_real, d_fake = self.D(x), self.D(self.G(z))
        loss_d = F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real)) + F.binary_cross_entropy_with_logits(
            d_fake, torch.zeros_like(d_fake)
        )
        loss_g = F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))
        return loss_d, loss_g

    def gradients(self, create_graph: bool):
        loss_d, loss_g = self.losses(*self.sample())
        gd = torch.autograd.grad(loss_d, list(self.D.parameters()), create_graph=create_graph, retain_graph=True)
        gg = torch.autograd.grad(loss_g, list(self.G.parameters()), create_graph=create_graph)
        return list(gd) + list(gg)

    def step(self, method: str) -> None:
        if method == "simga":
            grads = self.gradients(False)
            self._apply(self.opt, self.params, grads)
        elif method == "consensus":
            grads = self.gradients(True)
            L = 0.5 * sum((g * g).sum() for g in grads)
            grad_L = torch.autograd.grad(L, self.params)
            self._apply(self.opt, self.params, [g + self.gamma * r for g, r in zip(grads, grad_L)])
        elif method == "altga":
            loss_d, _ = self.losses(*self.sample())
            self._apply(self.opt_d, list(self.D.parameters()), torch.autograd.grad(loss_d, list(self.D.parameters())))
            _, loss_g = self.losses(*self.sample())
            self._apply(self.opt_g, list(self.G.parameters()), torch.autograd.grad(loss_g, list(self.G.parameters())))
        else:
            raise ValueError(method)

    @staticmethod
    def _apply(opt, params, grads) -> None:
        for p, g in zip(params, grads):
            p.grad = g.detach()
        opt.step()

    @torch.no_grad()
    def generate(self, n: int, seed: int = 12345) -> torch.Tensor:
        z = torch.randn(n, 16, generator=torch.Generator().manual_seed(seed))
        return self.G(z)
