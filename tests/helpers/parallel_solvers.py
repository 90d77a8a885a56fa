"""Run under torchrun: every solver for a few steps, data-parallel, and save the parameters.

    torchrun --nproc-per-node 2 tests/helpers/parallel_solvers.py OUT_DIR
With WORLD_SIZE unset it runs as one process drawing both shards: the reference.
"""

import sys
from dataclasses import replace
from pathlib import Path

import torch

import gamedsl
import solvers
from gamedsl.semantics.settings import resolve
from gamedsl.training.parallel import from_environment, shutdown
from gamedsl.training.session import Session

SETTINGS = {  # solver -> (its parameters, the optimizer if not the game's rmsprop); any other: its defaults
    "momentum": ({"beta": -0.3}, None),
    "past_extragradient": ({}, ("adam", {"lr": 1e-3})),
    "sga": ({"lam": 1.0, "align": True}, None),
    "cgd": ({"tol": 1e-12}, ("sgd", {"lr": 0.05})),
    "acgd": ({"tol": 1e-12}, ("sgd", {"lr": 1e-3})),
}
CASES = {  # name -> (solver, its parameters, the optimizer): every registered solver, and debiased consensus
    **{name: (name, *SETTINGS.get(name, ({}, None))) for name in solvers.available()},
    "consensus_debias": ("consensus", {"gamma": 10.0, "debias": True}, None),
}


def main() -> None:
    out = Path(sys.argv[1])
    torch.set_num_threads(1)
    parallel = from_environment("cpu")
    game = gamedsl.load(Path(__file__).resolve().parents[2] / "games/mog.game")
    base = resolve(game.settings, [], {"steps": 20, "batch": 64, "dtype": "float64", "device": "cpu"})
    for name, (solver, params, optimizer) in CASES.items():
        config = replace(base, solver=solver, solver_params=params, shards=2)
        if optimizer:
            config = replace(config, optimizer=optimizer[0], optimizer_params=optimizer[1])
        session = Session.create(game, config, out, parallel)
        session.train()
        if parallel.main:
            torch.save([p.detach() for p in session.run.engine.params], out / f"{name}-{parallel.world}.pt")
    shutdown()


if __name__ == "__main__":
    main()
