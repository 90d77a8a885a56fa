"""Start-up of the commands that only read: `gamedsl check games/mog.game` and `--version`.

Issue 12's acceptance: `gamedsl check games/mog.game` takes at most 0.5 s of wall time on an
idle machine. Each side is a fresh interpreter (python -m gamedsl with PYTHONPATH set to its
checkout, run in that checkout), timed from start to exit with time.perf_counter, with the
child's CPU time (user + system) from rusage. The sides take turns, the order rotating, so
that a change in the machine's load touches them alike. Sides:

    python    `python -c pass`: the interpreter alone, the floor
    today     `check games/mog.game` from another checkout (--baseline, default /work/baseline)
    check     `check games/mog.game` from this checkout: the quick route (gamedsl/cli/quick.py)
    typer     `check -- games/mog.game` from this checkout: the same check through typer
    version   `--version` from this checkout

    python benchmarks/startup.py [--repeats 15] [--sides python,today,check,typer,version]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from checkout_worker import add_sides, chosen_sides  # benchmarks/, this script's folder

ROOT = Path(__file__).resolve().parent.parent
ARGS = {
    "python": ["-c", "pass"],
    "today": ["-m", "gamedsl", "check", "games/mog.game"],
    "check": ["-m", "gamedsl", "check", "games/mog.game"],
    "typer": ["-m", "gamedsl", "check", "--", "games/mog.game"],
    "version": ["-m", "gamedsl", "--version"],
}
TARGET = 0.5  # seconds of wall time for `check` (issue 12)


def run_once(side: str, checkout: Path) -> tuple[float, float]:
    """Wall and CPU seconds of one run of `side`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, *ARGS[side]], cwd=checkout, env=dict(os.environ, PYTHONPATH=str(checkout)),
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        sys.exit(f"startup: {side} exited with {proc.returncode}: {proc.stderr.strip()[-300:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15, help="runs per side, taking turns (default 15)")
    add_sides(parser, tuple(ARGS))
    args = parser.parse_args()
    sides = chosen_sides(parser, args, tuple(ARGS))
    load = os.getloadavg()
    print(f"startup: {args.repeats} runs per side, taking turns; {os.cpu_count()} cores; "
          f"load average {load[0]:.2f} (1 min), {load[1]:.2f} (5 min) before")  # fmt: skip
    if "today" in sides:
        print(f"today: {args.baseline.resolve()}; the others: {ROOT}")
    for side in sides:  # one untimed run each: the bytecode caches are written before timing
        run_once(side, args.baseline.resolve() if side == "today" else ROOT)
    times: dict[str, list[tuple[float, float]]] = {side: [] for side in sides}
    for r in range(args.repeats):
        for side in sides[r % len(sides) :] + sides[: r % len(sides)]:
            times[side].append(run_once(side, args.baseline.resolve() if side == "today" else ROOT))
    print(f"\n| side | command | wall s, median [range] | CPU s, median [range] | within {TARGET} s |")
    print("|---|---|---|---|---|")
    for side in sides:
        walls, cpus = sorted(t[0] for t in times[side]), sorted(t[1] for t in times[side])
        verdict = ("yes" if statistics.median(walls) <= TARGET else "no") if side in ("check", "today") else ""
        print(f"| {side} | {' '.join(ARGS[side])} | {statistics.median(walls):.3f} [{walls[0]:.3f}–{walls[-1]:.3f}] | "
              f"{statistics.median(cpus):.3f} [{cpus[0]:.3f}–{cpus[-1]:.3f}] | {verdict} |")  # fmt: skip
    load = os.getloadavg()
    print(f"\nload average {load[0]:.2f} (1 min), {load[1]:.2f} (5 min) after")


if __name__ == "__main__":
    main()
