"""Speed of a vectorised sweep: 16 configurations of games/mog.game, vmapped vs one by one.

Both modes run in this process on the same 16 configurations (consensus, gamma x learning
rate), interleaved in rounds so background load hits both alike; the sweep's own runner
(`gamedsl.sweep.vectorized.run`) against 16 sequential `solvers.solve` runs, the loop that
`gamedsl solve` uses. Prints seconds per step of all 16 and the speedup (target >= 4x).

    python benchmarks/sweep_mog.py [--steps 40] [--rounds 3] [--threads 1] [--batch 512]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
# benchmarks/solvers.py shares its name with the `solvers` package: import from the repository root
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
import gamedsl  # noqa: E402
import solvers  # noqa: E402
from gamedsl.compile.torch_game import TorchGame  # noqa: E402
from gamedsl.config import resolve  # noqa: E402
from gamedsl.sweep import vectorized  # noqa: E402
GAMMAS = (0.1, 1.0, 3.0, 10.0)
LRS = (5e-5, 1e-4, 2e-4, 4e-4)


def configs(game, steps, batch):
    base = resolve(game.settings, [], {"steps": steps, "batch": batch})
    base = replace(base, log_every=steps, image_every=0)
    return [
        replace(base, solver_params={"gamma": g}, optimizer_params={**base.optimizer_params, "lr": lr})
        for g in GAMMAS
        for lr in LRS
    ]


def vectorised(game, cfgs) -> float:
    start = time.perf_counter()
    vectorized.run(game, cfgs, [None] * len(cfgs), lambda g, c: {})
    return time.perf_counter() - start


def sequential(game, cfgs) -> float:
    start = time.perf_counter()
    for c in cfgs:
        g = TorchGame(game, batch=c.batch, seed=c.seed, dtype=c.dtype)
        solvers.solve(g, c.make_solver(), c.make_optimizer(), c.steps, record_every=c.log_every)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=512, help="the paper's 512; smaller batches show the per-step overhead")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    game = gamedsl.load(ROOT / "games/mog.game")
    cfgs = configs(game, args.steps, args.batch)
    vectorised(game, [replace(c, steps=3) for c in cfgs])  # warm up both paths
    sequential(game, [replace(c, steps=3) for c in cfgs[:2]])
    vec, seq = [], []
    for _ in range(args.rounds):
        vec.append(vectorised(game, cfgs))
        seq.append(sequential(game, cfgs))
    v, s = statistics.median(vec), statistics.median(seq)
    n = len(cfgs)
    print(f"mog.game, consensus, batch {args.batch}, {n} configurations (gamma x lr), {args.steps} steps, {args.threads} thread(s)")
    print(f"vectorised: {1e3 * v / args.steps:8.1f} ms per step of all {n}   ({v:.1f} s)")
    print(f"sequential: {1e3 * s / args.steps:8.1f} ms per step of all {n}   ({s:.1f} s)")
    print(f"speedup of the vectorised sweep: {s / v:.2f}x   (median of {args.rounds} interleaved rounds)")


if __name__ == "__main__":
    main()
