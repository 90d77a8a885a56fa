"""Threads: steps/s of one run with 1 and with 2 intra-op threads, for games of several sizes,
on a quiet machine and with one core kept busy by another process.

Each game runs its own solve block (solver, optimizer, batch) as `gamedsl solve` would. For
every load condition, blocks of steps with 1 and 2 threads alternate (interleaved, so that
background load falls on both alike); a block's wall time (time.perf_counter) gives steps/s
and its CPU time (time.process_time) the cores the process kept busy. Prints, per game,
load and thread count: the median steps/s with the range over blocks, CPU seconds per
step, busy cores (CPU time / wall time), the ratio to 1 thread, and the load average when
the condition started. "loaded" starts a process that spins on one core for its duration.

    python benchmarks/threads.py [--blocks 5] [--block-seconds 1.5] [--games mog,wide,digits,cifar]
                                 [--loads quiet,loaded]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
# benchmarks/solvers.py shares its name with the `solvers` package: import from the repository root
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
import gamedsl  # noqa: E402
import solvers  # noqa: E402
from gamedsl.compile.torch_game import TorchGame  # noqa: E402
from gamedsl.data import images  # noqa: E402
from gamedsl.semantics.settings import resolve  # noqa: E402

WIDE = (ROOT / "games/mog.game").read_text().replace("hidden=[16, 16, 16, 16]", "hidden=[256, 256, 256, 256]")
GAMES = {
    "mog": lambda: gamedsl.load(ROOT / "games/mog.game"),
    "wide": lambda: gamedsl.loads(WIDE, "mog_wide.game"),  # mog with 256-unit layers: ~400k parameters
    "digits": lambda: gamedsl.load(ROOT / "games/digits_dcgan.game"),
    "cifar": lambda: gamedsl.load(ROOT / "games/cifar_dcgan.game"),  # on generated CIFAR-10-layout data
}
THREADS = (1, 2)


def stepper(name: str):
    """A block of n steps of the game's own solve block, as `gamedsl solve` runs them."""
    game = GAMES[name]()
    config = resolve(game.settings, [], {})
    torch_game = TorchGame(game, batch=config.batch, seed=0, dtype=config.dtype)
    run = solvers.Run(torch_game, config.make_solver(), config.make_optimizer())

    def block(n: int) -> None:
        solvers.solve(run.game, run.solver, run.engine.optimizer, n, run=run, record_every=n)

    return block, sum(p.numel() for p in torch_game.parameters())


def measure(block, blocks: int, block_seconds: float) -> dict[int, dict[str, list[float]]]:
    torch.set_num_threads(1)
    block(2)  # warm up, then size the blocks at one thread
    start = time.perf_counter()
    block(2)
    n = max(1, round(block_seconds / ((time.perf_counter() - start) / 2)))
    times = {t: {"wall": [], "cpu": [], "n": n} for t in THREADS}
    for _ in range(blocks):
        for t in THREADS:
            torch.set_num_threads(t)
            wall, cpu = time.perf_counter(), time.process_time()
            block(n)
            times[t]["wall"].append((time.perf_counter() - wall) / n)
            times[t]["cpu"].append((time.process_time() - cpu) / n)
    return times


def spinner() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument("--block-seconds", type=float, default=1.5)
    parser.add_argument("--games", default=",".join(GAMES))
    parser.add_argument("--loads", default="quiet,loaded")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data:
        images.write_cifar10(Path(data) / "cifar-10-batches-py", per_batch=40)
        images.set_data_root(data)
        print(f"{os.cpu_count()} CPUs ({len(os.sched_getaffinity(0))} usable), torch {torch.__version__}, "
              f"median of {args.blocks} interleaved blocks of ~{args.block_seconds} s; range in brackets")  # fmt: skip
        print("| game | parameters | load | load avg at start | threads | steps/s | vs 1 thread | CPU ms/step "
              "| busy cores |")
        print("|---|---|---|---|---|---|---|---|---|")
        for name in args.games.split(","):
            block, parameters = stepper(name)
            for load in args.loads.split(","):
                spin = spinner() if load == "loaded" else None
                try:
                    if spin is not None:
                        time.sleep(1.0)  # let the spinner take its core
                    load_avg = os.getloadavg()[0]
                    times = measure(block, args.blocks, args.block_seconds)
                finally:
                    if spin is not None:
                        spin.kill()
                        spin.wait()
                base = statistics.median(times[1]["wall"])
                for t in THREADS:
                    rates = sorted(1 / w for w in times[t]["wall"])
                    wall, cpu = statistics.median(times[t]["wall"]), statistics.median(times[t]["cpu"])
                    print(
                        f"| {name} | {parameters:,} | {load} | {load_avg:.1f} | {t} | {statistics.median(rates):.3g} "
                        f"[{rates[0]:.3g}–{rates[-1]:.3g}] | {base / wall:.2f}× | {1000 * cpu:,.0f} "
                        f"| {cpu / wall:.2f} |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
