"""Speed of one solver step on games/mog.game: gamedsl compiled and eager, by hand in PyTorch and in JAX.

Issue 12's acceptance: for simga, altga and consensus (batch 512, RMSProp lr 1e-4, decay 0.9,
eps 1e-10, gamma 10) these sides are timed in one process:

    gamedsl compiled   solvers.Run(game, solver, optimizer, compile=True), the `gamedsl solve` loop
    gamedsl eager      the same with compile=False (or, before issue 12, today's only path)
    PyTorch by hand    benchmarks/handwritten_mog.py
    JAX by hand        benchmarks/jax_mog.py, one jax.jit program per step
    today's eager      (--baseline PATH) gamedsl eager from another checkout, e.g. /work/baseline

How it is measured. Everything runs on one thread: torch.set_num_threads(1), and XLA_FLAGS
with `--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1` set before jax is
imported. Each side runs blocks of --block-steps steps; the sides take turns block by block
(the order rotates every round), so that background load falls on all of them alike. A
block's CPU time (time.process_time: all threads of the process) and wall time
(time.perf_counter) divided by its steps give ms/step; the table shows medians over the
blocks with the interquartile range, and steps/s from the median CPU time. Every side draws
a fresh batch each step inside the timed loop and outside its (compiled) step, as gamedsl
does; JAX with a separate jitted sampler. The first step (where compilation happens) and the
warm-up steps after it are timed apart and left out of the blocks. Speed-ups are medians of
per-round ratios (the blocks of one round ran back to back), from CPU time, wall time in
brackets. Before timing, one step of each method by JAX and by the PyTorch loop, from the
same weights on the same batch, must agree to 1e-5 (printed).

A compiled side that takes eager steps after all (solvers.Run drops its compiled step, with a
note on stderr, when the step cannot be compiled) is marked FELL BACK TO EAGER; a side that
cannot be built or warmed up is reported as failed (traceback on stderr), and the others run
on; without `compile=` in solvers.Run the compiled column reads "not available yet".

The baseline checkout cannot share this process (it is the same packages, `gamedsl` and
`solvers`), so it runs in a child process that times its own blocks and waits on a pipe,
using no CPU, while the others run theirs (benchmarks/checkout_worker.py): its blocks take
their turn in the same rotation. Checked by passing this checkout as its own --baseline (2
cores, load average about 4): the paired ratio of its eager step timed here to the same step
timed in the child was 0.87-1.0 (0.99 for consensus). If anything the child is favoured, so
"vs today's eager" errs low.

    python benchmarks/speed_mog.py [--blocks 15] [--block-steps 100] [--baseline /work/baseline]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import traceback
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
# benchmarks/solvers.py shares its name with the `solvers` package: import from the repository root
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
from benchmarks import jax_mog  # noqa: E402  (first: it sets XLA's flags before jax is imported)
from benchmarks.checkout_worker import Worker  # noqa: E402
from benchmarks.handwritten_mog import HandwrittenMoG  # noqa: E402
from benchmarks.mog_steppers import Stopwatch, fell_back, gamedsl_stepper, run_compiles  # noqa: E402
import torch  # noqa: E402

METHODS = ("simga", "altga", "consensus")
COMPILED, EAGER, BASELINE = "gamedsl compiled", "gamedsl eager", "today's eager"
TORCH, JAX = "PyTorch by hand", "JAX by hand"
TARGETS = {  # issue 12: (side compiled is compared with, the speed-up it must reach)
    "simga": [(BASELINE, 2.0)],
    "altga": [(BASELINE, 2.0)],
    "consensus": [(BASELINE, 2.5), (JAX, 1.1)],
}


@dataclass
class Side:
    """One implementation of one method: how to run a block, and what its blocks took."""

    name: str
    block: Callable[[int], tuple[float, float]]  # n steps -> (wall s, CPU s)
    setup: float
    first: float = 0.0
    warmup: float = 0.0
    wall: list[float] = field(default_factory=list)  # per block, seconds per step
    cpu: list[float] = field(default_factory=list)
    error: str = ""  # why it could not be built or warmed up: left out of the blocks and the ratios
    stepper: Callable | None = None  # what `block` times, for an in-process side
    note: str = ""

    def attempt(self, action: Callable[[], None]) -> None:
        """Run `action`; if it raises, keep the error (the traceback goes to stderr) and run no more blocks."""
        try:
            action()
        except Exception as exc:  # a side still under construction must not stop the others
            traceback.print_exc()
            self.error = f"{type(exc).__name__}: {exc}".splitlines()[0][:100]


def timed(run: Callable[[int], None]) -> Callable[[int], tuple[float, float]]:
    def block(n: int) -> tuple[float, float]:
        clock = Stopwatch()
        run(n)
        return clock.read()

    return block


def build(name: str, make: Callable[[], Callable], in_process: bool = True) -> Side:
    """The side `name` that runs the block function `make` returns (n steps; timed here if
    `in_process`, else it returns its own (wall, CPU) seconds); its setup time is make's."""
    side = Side(name, lambda n: (0.0, 0.0), 0.0)
    start = time.perf_counter()

    def construct() -> None:
        side.stepper = make()
        side.block = timed(side.stepper) if in_process else side.stepper

    side.attempt(construct)
    side.setup = time.perf_counter() - start
    return side


def torch_stepper(method: str) -> Callable[[int], None]:
    model = HandwrittenMoG(seed=0)

    def block(n: int) -> None:
        for _ in range(n):
            model.step(method)

    return block


def sides_for(method: str, baseline: Worker | None) -> list[Side]:
    compiles = run_compiles()
    sides = []
    if compiles:
        sides.append(build(COMPILED, lambda: gamedsl_stepper(method, compile=True)))
    sides.append(build(EAGER, lambda: gamedsl_stepper(method, compile=False if compiles else None)))
    sides.append(build(TORCH, lambda: torch_stepper(method)))
    sides.append(build(JAX, lambda: partial(jax_mog.JaxMoG(seed=0).block, method)))
    if baseline is not None:
        sides.append(build(BASELINE, lambda: baseline_stepper(baseline, method), in_process=False))
    return sides


def baseline_stepper(baseline: Worker, method: str) -> Callable[[int], tuple[float, float]]:
    """The baseline checkout's eager loop, built and timed in its child process."""
    baseline.make(method, "gamedsl_stepper", method=method)

    def block(n: int) -> tuple[float, float]:
        reply = baseline.run(method, n)
        return reply["wall"], reply["cpu"]

    return block


def measure(method: str, baseline: Worker | None, blocks: int, block_steps: int, warmup: int) -> list[Side]:
    sides = sides_for(method, baseline)
    for side in [s for s in sides if not s.error]:

        def warm(side: Side = side) -> None:
            side.first = side.block(1)[0]
            side.warmup = side.block(warmup)[0]

        side.attempt(warm)
        if side.name == COMPILED and not side.error and fell_back(side.stepper):
            side.note = " (FELL BACK TO EAGER: see stderr)"
    ok = [s for s in sides if not s.error]
    for r in range(blocks):
        for side in ok[r % len(ok) :] + ok[: r % len(ok)]:
            wall, cpu = side.block(block_steps)
            side.wall.append(wall / block_steps)
            side.cpu.append(cpu / block_steps)
    return sides


def quartiles(xs: list[float]) -> tuple[float, float, float]:
    if len(xs) < 2:
        return xs[0], xs[0], xs[0]
    q1, q2, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    return q1, q2, q3


def spread(xs: list[float], scale: float = 1.0, fmt: str = ".2f") -> str:
    q1, q2, q3 = (scale * x for x in quartiles(xs))
    return f"{q2:{fmt}} [{q1:{fmt}}–{q3:{fmt}}]"


def speedup(slow: Side, fast: Side) -> str:
    """Median of per-round ratios, CPU time, with the wall-time median in brackets."""
    cpu = statistics.median(s / f for s, f in zip(slow.cpu, fast.cpu))
    wall = statistics.median(s / f for s, f in zip(slow.wall, fast.wall))
    return f"{cpu:.2f}× ({wall:.2f}×)"


def report(results: dict[str, list[Side]], compiles: bool, baseline: Worker | None, warmup: int) -> None:
    print(f"| solver | side | CPU ms/step | wall ms/step | steps/s (CPU) | setup s | first step s "
          f"| next {warmup} steps s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for method, sides in results.items():
        if not compiles:
            print(f"| {method} | {COMPILED} | not available yet (solvers.Run has no compile=) | | | | | |")
        for s in sides:
            if s.error:
                print(f"| {method} | {s.name} | failed: {s.error} (traceback above) | | | | | |")
                continue
            rate = 1 / statistics.median(s.cpu)
            print(f"| {method} | {s.name}{s.note} | {spread(s.cpu, 1e3)} | {spread(s.wall, 1e3)} | {rate:,.0f} "
                  f"| {s.setup:.2f} | {s.first:.2f} | {s.warmup:.2f} |")  # fmt: skip
    print("\nms/step: median [interquartile range] over blocks.")
    print("speed-ups: median of per-round ratios, CPU time (wall time)\n")
    print(f"| solver | compiled vs eager | compiled vs {BASELINE} | compiled vs JAX | eager vs {BASELINE} "
          f"| eager vs PyTorch by hand | issue 12 target |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for method, sides in results.items():
        by = {s.name: s for s in sides if not s.error}

        def vs(slow: str, fast: str = COMPILED) -> str:
            missing = {COMPILED: "failed" if compiles else "not available yet",
                       BASELINE: "failed" if baseline else "n/a (no --baseline)"}  # fmt: skip
            for name in (fast, slow):
                if name not in by:
                    return missing.get(name, "failed")
            return speedup(by[slow], by[fast])

        targets = []
        for other, goal in TARGETS[method]:
            if COMPILED not in by or other not in by:
                targets.append(f"≥{goal}× {other}: not measured")
                continue
            got = statistics.median(s / f for s, f in zip(by[other].cpu, by[COMPILED].cpu))
            targets.append(f"≥{goal}× {other}: {'met' if got >= goal else 'NOT met'}{by[COMPILED].note}")
        print(f"| {method} | {vs(EAGER)} | {vs(BASELINE)} | {vs(JAX)} | {vs(BASELINE, EAGER)} | {vs(TORCH, EAGER)} "
              f"| {'; '.join(targets)} |")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, default=15, help="timed blocks per side and solver (default 15)")
    parser.add_argument("--block-steps", type=int, default=100, help="steps per block (default 100)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed steps after the first, per side (default 20)")
    parser.add_argument("--solvers", default=",".join(METHODS), help="comma-separated, from simga,altga,consensus")
    parser.add_argument("--baseline", type=Path, metavar="PATH",
                        help="another gamedsl checkout (e.g. /work/baseline), timed as 'today's eager'")  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write every block's times here")
    args = parser.parse_args()
    methods = args.solvers.split(",")
    if unknown := set(methods) - set(METHODS):
        parser.error(f"unknown solver(s) {', '.join(sorted(unknown))}; choose from {', '.join(METHODS)}")

    torch.set_num_threads(1)
    jax = jax_mog.jax
    load_before = os.getloadavg()
    print("speed_mog: games/mog.game, batch 512, RMSProp (lr 1e-4, decay 0.9, eps 1e-10), consensus gamma 10")
    print(f"{os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable); load average {load_before[0]:.2f} "
          f"(1 min), {load_before[1]:.2f} (5 min) before")  # fmt: skip
    print(f"one thread: torch {torch.__version__} with {torch.get_num_threads()} thread; jax {jax.__version__} on "
          f"{jax.devices()[0].platform}, XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}"
          f"{'' if jax_mog.one_thread() else ' (NOT one thread: jax was imported before the flags)'}")  # fmt: skip
    print(f"{args.blocks} interleaved blocks of {args.block_steps} steps per side; "
          "every side samples its batches inside the timed loop")  # fmt: skip
    checks_ok = jax_mog.print_checks(methods)
    jax.clear_caches()  # so that the JAX side's first step below includes its compilation
    compiles = run_compiles()
    if not compiles:
        print(f"{COMPILED}: not available yet (this checkout's solvers.Run takes no compile= keyword)")
    baseline = Worker(args.baseline) if args.baseline else None
    if baseline is not None:
        print(f"{BASELINE}: gamedsl from {baseline.imported}, in a child process (see the docstring)")
    print(flush=True)
    try:
        results = {m: measure(m, baseline, args.blocks, args.block_steps, args.warmup) for m in methods}
    finally:
        if baseline is not None:
            baseline.close()
    report(results, compiles, baseline, args.warmup)
    load_after = os.getloadavg()
    print(f"\nload average {load_after[0]:.2f} (1 min), {load_after[1]:.2f} (5 min) after")
    if args.json:
        raw = {m: {s.name: {"setup": s.setup, "first": s.first, "warmup": s.warmup, "wall": s.wall, "cpu": s.cpu}
                   for s in sides} for m, sides in results.items()}  # fmt: skip
        raw["load"] = {"before": load_before, "after": load_after, "cores": os.cpu_count()}
        args.json.write_text(json.dumps(raw, indent=2) + "\n")
    if not checks_ok:
        sys.exit("error: the JAX step disagrees with the PyTorch loop (see the check above); its timings mean little")


if __name__ == "__main__":
    main()
