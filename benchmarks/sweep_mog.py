"""Speed of a sweep: 16 consensus configurations of games/mog.game, vmapped or one by one, eager or compiled.

Issue 12's acceptance: 16 configurations (consensus, 4 gamma x 4 learning rates, the paper's
batch of 512) at least 4x faster than 16 sequential runs of today's eager `solve`. Sides:

    eager, sequential       16 fresh `solvers.Run`s on the `gamedsl solve` loop, compile=False
                            (the reference every speed-up is taken against)
    today's eager, seq.     (--baseline PATH) the same with another checkout, e.g. /work/baseline
    vmapped                 `gamedsl.sweep.vectorized.run`, the sweep's runner, compile=False
    vmapped and compiled    the same with compile=True
    compiled, sequential    16 fresh `solvers.Run(..., compile=True)`s on the `gamedsl solve` loop

A side whose checkout has no `compile=` yet is reported as not available. Before issue 12,
"eager" is the only path, and is what runs without the keyword. A compiled side that cannot
compile says so on stderr (gamedsl's note, or torch._dynamo's recompile-limit warning, after
which dynamo runs the step's Python eagerly): read stderr with the table.

How it is measured. One thread (torch.set_num_threads and every configuration's `threads`).
A warm-up round of 3 steps per side comes first (compilation; untimed). Then each round
runs every side once, from scratch, for --steps steps, the order rotating from round to
round so that background load falls on all alike; the baseline checkout runs in a child
process that times its own round and waits on a pipe meanwhile (benchmarks/checkout_worker.py).
A round's wall time (time.perf_counter) and CPU time (time.process_time) are split into the
set-up (building the runs, and their first step, where a compiled step compiles: again in
every round, as in a real sweep) and the steady state (the other steps). The table gives
medians over rounds: ms per step of all 16 in the steady state, the set-up seconds, and
the speed-up over eager sequential runs (median of per-round ratios), steady state and
whole round at this many steps, CPU time with wall time in brackets. A full sweep runs far
more steps than this benchmark, so the steady-state speed-up is the one the target means.

    python benchmarks/sweep_mog.py [--steps 40] [--rounds 3] [--batch 512] [--baseline /work/baseline]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

ROOT = Path(__file__).resolve().parent.parent
# benchmarks/solvers.py shares its name with the `solvers` package: import from the repository root
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
from benchmarks import mog_steppers  # noqa: E402
from benchmarks.checkout_worker import Worker  # noqa: E402

EAGER_SEQ, BASELINE_SEQ = "eager, sequential", "today's eager, sequential"
VMAPPED, VMAPPED_COMPILED, COMPILED_SEQ = "vmapped", "vmapped and compiled", "compiled, sequential"
TARGET = 4.0


@dataclass
class Side:
    name: str
    round: Callable[[int], tuple[float, float, float, float]]  # steps -> wall, CPU, set-up wall, set-up CPU
    rounds: list[tuple[float, float, float, float]] = field(default_factory=list)
    error: str = ""


def in_process(block: Callable[[int], tuple[float, float]]) -> Callable[[int], tuple[float, float, float, float]]:
    def run(steps: int) -> tuple[float, float, float, float]:
        clock = mog_steppers.Stopwatch()
        setup = block(steps)
        return (*clock.read(), *setup)

    return run


def in_worker(worker: Worker, name: str) -> Callable[[int], tuple[float, float, float, float]]:
    def run(steps: int) -> tuple[float, float, float, float]:
        reply = worker.run(name, steps)
        return reply["wall"], reply["cpu"], *reply["returned"]

    return run


def make_sides(batch: int, threads: int, baseline: Worker | None) -> tuple[list[Side], list[str]]:
    """The sides this checkout (and the baseline) can run, and notes on those it cannot."""
    run_compiles, sweep_compiles = mog_steppers.run_compiles(), mog_steppers.sweep_compiles()
    eager_run, eager_sweep = (False if run_compiles else None), (False if sweep_compiles else None)
    sides = [
        Side(EAGER_SEQ, in_process(mog_steppers.sequential_sweep(batch, threads, eager_run))),
        Side(VMAPPED, in_process(mog_steppers.vectorised_sweep(batch, threads, eager_sweep))),
    ]
    notes = []
    if sweep_compiles:
        sides.append(Side(VMAPPED_COMPILED, in_process(mog_steppers.vectorised_sweep(batch, threads, True))))
    else:
        notes.append(f"{VMAPPED_COMPILED}: not available yet (gamedsl.sweep.vectorized.run takes no compile= keyword)")
    if run_compiles:
        sides.append(Side(COMPILED_SEQ, in_process(mog_steppers.sequential_sweep(batch, threads, True))))
    else:
        notes.append(f"{COMPILED_SEQ}: not available yet (solvers.Run takes no compile= keyword)")
    if baseline is not None:
        baseline.make("sweep", "sequential_sweep", batch=batch, threads=threads)
        sides.append(Side(BASELINE_SEQ, in_worker(baseline, "sweep")))
    return sides, notes


def measure(sides: list[Side], steps: int, rounds: int) -> None:
    for side in sides:
        try:
            side.round(3)  # warm up: compile
        except Exception as exc:  # a side still under construction must not stop the others
            traceback.print_exc()
            side.error = f"{type(exc).__name__}: {exc}".splitlines()[0][:100]
    ok = [s for s in sides if not s.error]
    for r in range(rounds):
        for side in ok[r % len(ok) :] + ok[: r % len(ok)]:
            side.rounds.append(side.round(steps))


def steady(timing: tuple[float, float, float, float], steps: int) -> tuple[float, float]:
    """Seconds per step after the first: (wall, CPU)."""
    wall, cpu, setup_wall, setup_cpu = timing
    return (wall - setup_wall) / (steps - 1), (cpu - setup_cpu) / (steps - 1)


def speedups(slow: Side, fast: Side, of: Callable) -> tuple[float, float]:
    """Medians of per-round ratios of `of(timing)`, a (wall, CPU) pair: (CPU, wall)."""
    pairs = [(of(s), of(f)) for s, f in zip(slow.rounds, fast.rounds)]
    return statistics.median(s[1] / f[1] for s, f in pairs), statistics.median(s[0] / f[0] for s, f in pairs)


def ratio(slow: Side, fast: Side, of: Callable) -> str:
    cpu, wall = speedups(slow, fast, of)
    return f"{cpu:.2f}× ({wall:.2f}×)"


def report(sides: list[Side], steps: int) -> None:
    by = {s.name: s for s in sides if not s.error}
    reference = by.get(EAGER_SEQ)
    if reference is None:
        sys.exit(f"error: the reference side ({EAGER_SEQ}) failed; see the traceback above")
    today = by.get(BASELINE_SEQ)
    print(f"| side | steady ms/step of all 16, CPU [range] | wall | set-up s, CPU (wall) | speed-up, steady | "
          f"speed-up, whole round of {steps} steps |" + (" steady vs today's eager |" if today else ""))  # fmt: skip
    print("|---|---|---|---|---|---|" + ("---|" if today else ""))
    for side in sides:
        if side.error:
            print(f"| {side.name} | failed: {side.error} (traceback above) | | | | |" + (" |" if today else ""))
            continue
        per_step = sorted(1e3 * steady(t, steps)[1] for t in side.rounds)
        wall = statistics.median(1e3 * steady(t, steps)[0] for t in side.rounds)
        setup = (statistics.median(t[3] for t in side.rounds), statistics.median(t[2] for t in side.rounds))
        row = (f"| {side.name} | {statistics.median(per_step):.1f} [{per_step[0]:.1f}–{per_step[-1]:.1f}] "
               f"| {wall:.1f} "
               f"| {setup[0]:.1f} ({setup[1]:.1f}) | {ratio(reference, side, lambda t: steady(t, steps))} "
               f"| {ratio(reference, side, lambda t: t[:2])} |")  # fmt: skip
        if today:
            row += f" {ratio(today, side, lambda t: steady(t, steps))} |"
        print(row)
    print("\nspeed-ups: median of per-round ratios over eager sequential runs, CPU time (wall time)")
    against = today or reference
    label = "today's eager" if today else "this checkout's eager (no --baseline)"
    candidates = [by[n] for n in (VMAPPED_COMPILED, COMPILED_SEQ) if n in by]
    if not candidates:
        print(f"target ≥{TARGET}× {label}: not measured (no compiled side yet)")
        return
    got = {s.name: speedups(against, s, lambda t: steady(t, steps))[0] for s in candidates}
    best = max(got, key=got.get)
    print(f"target ≥{TARGET}× {label}, steady state, CPU time: best is {best} at {got[best]:.2f}× "
          f"({'met' if got[best] >= TARGET else 'NOT met'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=40, help="steps per run and round, at least 2 (default 40)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per side (default 3)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads, every side (default 1)")
    parser.add_argument("--batch", type=int, default=512,
                        help="the paper's 512; smaller batches show the per-step overhead")  # fmt: skip
    parser.add_argument("--baseline", type=Path, metavar="PATH",
                        help="another gamedsl checkout (e.g. /work/baseline), timed as 'today's eager'")  # fmt: skip
    args = parser.parse_args()
    if args.steps < 2:
        parser.error("--steps must be at least 2 (the first step is set-up)")
    torch.set_num_threads(args.threads)
    if args.baseline and args.threads != 1:
        parser.error("--baseline runs one thread: use it with --threads 1")
    load_before = os.getloadavg()
    baseline = Worker(args.baseline) if args.baseline else None
    try:
        sides, notes = make_sides(args.batch, args.threads, baseline)
        print(f"sweep_mog: mog.game, consensus, batch {args.batch}, 16 configurations (gamma x lr), "
              f"{args.steps} steps, "
              f"{args.threads} thread(s), {args.rounds} interleaved rounds")  # fmt: skip
        print(f"{os.cpu_count()} cores; load average {load_before[0]:.2f} (1 min), {load_before[1]:.2f} (5 min) before")
        if baseline is not None:
            print(f"{BASELINE_SEQ}: gamedsl from {baseline.imported}, in a child process (see the docstring)")
        for note in notes:
            print(note)
        print(flush=True)
        start = time.perf_counter()
        measure(sides, args.steps, args.rounds)
    finally:
        if baseline is not None:
            baseline.close()
    report(sides, args.steps)
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} (1 min), {load[1]:.2f} (5 min) after; "
          f"{time.perf_counter() - start:.0f} s in all")  # fmt: skip


if __name__ == "__main__":
    main()
