"""Speed: compiled games/mog.game vs the same game written by hand in plain PyTorch.

For simga, altga and consensus, both implementations run in this process, interleaved
in blocks so that background load affects them equally; the median block time gives
steps/s. Prints steps/s, the gamedsl/hand-written ratio (target >= 0.95) and the cost of
a consensus step relative to a simga step for each implementation.

    python benchmarks/speed_mog.py [--blocks 15] [--block-steps 100] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
# benchmarks/solvers.py shares its name with the `solvers` package: import from the repository root
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
import gamedsl  # noqa: E402
import solvers  # noqa: E402
from benchmarks.handwritten_mog import HandwrittenMoG  # noqa: E402
from gamedsl.compile.torch_game import TorchGame  # noqa: E402


def gamedsl_stepper(method: str):
    game = gamedsl.load(ROOT / "games/mog.game")
    run = solvers.Run(
        TorchGame(game, batch=512, seed=0),
        solvers.get(method, **({"gamma": 10.0} if method == "consensus" else {})),
        solvers.optimizers.get("rmsprop", lr=1e-4, alpha=0.9, eps=1e-10),
    )

    def block(n: int) -> None:  # the same loop `gamedsl solve` runs, guard included
        solvers.solve(run.game, run.solver, run.engine.optimizer, n, run=run, record_every=n)

    return block


def handwritten_stepper(method: str):
    model = HandwrittenMoG(seed=0)

    def block(n: int) -> None:
        for _ in range(n):
            model.step(method)

    return block


def measure(blocks: int, block_steps: int) -> dict:
    results = {}
    for method in ("simga", "altga", "consensus"):
        steppers = {"gamedsl": gamedsl_stepper(method), "handwritten": handwritten_stepper(method)}
        for step in steppers.values():
            step(20)  # warm up
        times = {name: [] for name in steppers}
        for _ in range(blocks):
            for name, step in steppers.items():
                start = time.perf_counter()
                step(block_steps)
                times[name].append((time.perf_counter() - start) / block_steps)
        results[method] = {name: 1.0 / statistics.median(t) for name, t in times.items()}
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--blocks", type=int, default=15)
    parser.add_argument("--block-steps", type=int, default=100)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = measure(args.blocks, args.block_steps)
    print(f"mog.game, batch 512, RMSProp, {args.threads} thread(s), median of {args.blocks} interleaved blocks")
    print(f"{'solver':<10} {'gamedsl steps/s':>16} {'hand-written':>14} {'ratio':>7}")
    for method, r in results.items():
        print(f"{method:<10} {r['gamedsl']:>16.1f} {r['handwritten']:>14.1f} {r['gamedsl'] / r['handwritten']:>7.3f}")
    for impl in ("gamedsl", "handwritten"):
        cost = results["simga"][impl] / results["consensus"][impl]
        print(f"cost of a consensus step / a simga step, {impl}: {cost:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
