"""F'(x-bar) of a real solver step by central differences: the independent truth the analysis's
one-step maps are checked against (tests/test_analysis.py, tests/test_analysis_per_player.py)."""

from __future__ import annotations

import numpy as np
import torch

import solvers
from gamedsl.numeric.verify import torch_game
from solvers.field import GameField


def step_jacobian(
    spec, point, solver: str, params: dict, rates: float | dict[str, float], critic=None, eps: float = 1e-6
) -> np.ndarray:
    """F'(x-bar) by central differences of one step of `solvers.Run` with sgd(lr=h) for every
    player (`rates` a number h) or sgd(lr=rates[P]) for each player P (a mapping), and
    `critic` steps, on the solver's whole state: x, then the tensors it
    carries between steps (momentum's buffer, past extragradient's last look-ahead field,
    optimistic's last step), all zero at the stationary point."""
    game = torch_game(spec)
    n = len(point)

    def new_run():
        if isinstance(rates, dict):
            optimizers = {name: solvers.optimizers.get("sgd", lr=rate) for name, rate in rates.items()}
        else:
            optimizers = solvers.optimizers.get("sgd", lr=rates)
        return solvers.Run(game, solvers.get(solver, **params), optimizers, critic_steps=critic)

    def memory(run) -> list[torch.Tensor]:
        return [t for value in run.state.values() if isinstance(value, list) for t in value]

    def step(z: np.ndarray) -> np.ndarray:
        run = new_run()
        GameField(game).load(z[:n])
        start = n
        for t in memory(run):
            t.copy_(torch.as_tensor(z[start : start + t.numel()], dtype=torch.float64).reshape(t.shape))
            start += t.numel()
        run.step()
        return np.concatenate([GameField(game).x().numpy(), *(t.reshape(-1).numpy() for t in memory(run))])

    size = n + sum(t.numel() for t in memory(new_run()))
    center = np.concatenate([point, np.zeros(size - n)])
    columns = [(step(center + eps * e) - step(center - eps * e)) / (2 * eps) for e in np.eye(size)]
    return np.stack(columns, axis=1)
