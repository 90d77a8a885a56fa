"""Run under torchrun: every solver for a few steps, data-parallel, and save the parameters.

    torchrun --nproc-per-node 2 tests/helpers/parallel_solvers.py OUT_DIR
With WORLD_SIZE unset it runs as one process drawing both shards: the reference.
"""

import sys
from dataclasses import replace
from pathlib import Path

import torch

import gamedsl
from gamedsl.config import resolve
from gamedsl.training.parallel import from_environment, shutdown
from gamedsl.training.session import Session

CASES = {
    "simga": {},
    "altga": {},
    "momentum": {"beta": -0.3},
    "consensus": {"gamma": 10.0},
    "smoothing": {"gamma": 10.0},
    "consensus_debias": {"gamma": 10.0, "debias": True},
}

out = Path(sys.argv[1])
torch.set_num_threads(1)
parallel = from_environment("cpu")
game = gamedsl.load(Path(__file__).resolve().parents[2] / "games/mog.game")
base = resolve(game.settings, [], {"steps": 20, "batch": 64, "dtype": "float64", "device": "cpu"})
for name, params in CASES.items():
    config = replace(base, solver=name.split("_")[0], solver_params=params, shards=2)
    session = Session.create(game, config, out, parallel)
    session.train()
    if parallel.main:
        torch.save([p.detach() for p in session.run.engine.params], out / f"{name}-{parallel.world}.pt")
shutdown()
