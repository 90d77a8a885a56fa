"""Wall time of the Figure-2 run, `gamedsl solve games/mog.game --solver consensus`, compiled and not.

Issue 12's acceptance: the full run (50,000 steps) takes at most half of today's wall time,
compile included, on a machine otherwise idle; a short run (--steps 200) is not slower
than today's (at most 1.2x). Each side is the real command in a fresh subprocess, one
after another (never two at once), timed from start to exit with time.perf_counter: start-up,
compilation, the steps, the final samples and metrics, every file written. Sides:

    today       the command from another checkout (--baseline, default /work/baseline: today's code)
    auto        this checkout's command as it is (its default, compile = auto)
    false       this checkout with --set compile=false
    true        this checkout with --set compile=true

Each checkout runs its own games/mog.game (python -m gamedsl with PYTHONPATH set to it) into
a temporary run directory, with --steps N --quiet. With --repeats R the sides take turns R
times (the order rotating), and the table gives the median and range of the wall time, the
CPU time the run used (user + system, from the child's rusage) and the ratio of median wall
times to today's. A side whose setting is refused (an older checkout without `compile`) is
reported as refused. Compiled runs use inductor's cache as `gamedsl solve` sets it up
(TORCHINDUCTOR_CACHE_DIR, else ~/.cache/gamedsl/inductor): a second run of the game finds
its kernels there; --cold-cache gives every run a fresh, empty cache instead, so that each
one pays the whole compilation.

    python benchmarks/figure2_time.py [--steps 50000] [--repeats 1] [--sides today,auto,false,true]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from checkout_worker import add_sides, chosen_sides  # benchmarks/, this script's folder

ROOT = Path(__file__).resolve().parent.parent
SIDES = ("today", "auto", "false", "true")
TARGETS = {50000: 0.5, 200: 1.2}  # issue 12: the most a side may take, as a fraction of today's wall time


def command(side: str, steps: int, out: Path) -> list[str]:
    cmd = [sys.executable, "-m", "gamedsl", "solve", "games/mog.game", "--solver", "consensus",
           "--steps", str(steps), "--out", str(out), "--quiet"]  # fmt: skip
    return cmd + ([] if side in ("today", "auto") else ["--set", f"compile={side}"])


def run_once(side: str, checkout: Path, steps: int, scratch: Path, index: int, cold: bool) -> dict:
    out = scratch / f"{side}-{index}"
    env = dict(os.environ, PYTHONPATH=str(checkout))
    if cold:
        env["TORCHINDUCTOR_CACHE_DIR"] = str(scratch / f"inductor-{side}-{index}")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(command(side, steps, out), cwd=checkout, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    errors = [line for line in proc.stderr.splitlines() if "error" in line.lower()]
    notes = [line for line in proc.stderr.splitlines()
             if line.strip() and "error" not in line.lower() and not line.startswith("run directory:")]  # fmt: skip
    return {"exit": proc.returncode, "wall": wall, "cpu": cpu,
            "error": (errors or proc.stderr.strip().splitlines() or [""])[0] if proc.returncode else "",
            "notes": notes}  # fmt: skip


def describe(side: str, runs: list[dict], today: float | None, target: float | None) -> str:
    failed = [r for r in runs if r["exit"]]
    if failed:
        what = "refused" if failed[0]["exit"] == 2 else "failed"
        return f"| {side} | {what} (exit {failed[0]['exit']}): {failed[0]['error'][:90]} | | | | |"
    walls = sorted(r["wall"] for r in runs)
    wall, cpu = statistics.median(walls), statistics.median(r["cpu"] for r in runs)
    ratio = "" if today is None else f"{wall / today:.2f}"
    verdict = ""
    if today is not None and target is not None and side == "auto":
        verdict = "met" if wall / today <= target else "NOT met"
    return f"| {side} | {wall:.1f} [{walls[0]:.1f}–{walls[-1]:.1f}] | {cpu:.1f} | {len(runs)} | {ratio} | {verdict} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=50000, help="steps per run (default 50000; 200: a short run)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per side, taking turns (default 1)")
    add_sides(parser, SIDES)
    parser.add_argument("--cold-cache", action="store_true", help="a fresh, empty inductor cache for every run")
    args = parser.parse_args()
    sides = chosen_sides(parser, args, SIDES)

    load = os.getloadavg()
    print(f"figure2_time: gamedsl solve games/mog.game --solver consensus --steps {args.steps}, "
          f"{args.repeats} run(s) per side, one at a time")  # fmt: skip
    cache = "fresh per run" if args.cold_cache else os.environ.get("TORCHINDUCTOR_CACHE_DIR", "as gamedsl sets it")
    print(f"{os.cpu_count()} cores; load average {load[0]:.2f} (1 min), {load[1]:.2f} (5 min) before; "
          f"inductor cache: {cache}")  # fmt: skip
    if "today" in sides:
        print(f"today: {args.baseline.resolve()}; the others: {ROOT}")
    print(flush=True)
    runs: dict[str, list[dict]] = {side: [] for side in sides}
    with tempfile.TemporaryDirectory(prefix="figure2_time-") as scratch:
        for r in range(args.repeats):
            for side in sides[r % len(sides) :] + sides[: r % len(sides)]:
                checkout = args.baseline.resolve() if side == "today" else ROOT
                result = run_once(side, checkout, args.steps, Path(scratch), r, args.cold_cache)
                runs[side].append(result)
                status = f"exit {result['exit']}" + (f": {result['error']}" if result["exit"] else "")
                print(f"  run {r + 1} {side:<6} {result['wall']:8.1f} s wall {result['cpu']:8.1f} s CPU  {status}",
                      flush=True)  # fmt: skip
                for note in result["notes"][:3]:
                    print(f"      stderr: {note[:160]}")
    ok = runs.get("today") and not any(r["exit"] for r in runs["today"])
    today = statistics.median(r["wall"] for r in runs["today"]) if ok else None
    target = TARGETS.get(args.steps)
    print(f"\n| side | wall s, median [range] | CPU s | runs | vs today | "
          f"{f'target ≤{target}× today' if target else 'target (50000 or 200 steps only)'} |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for side in sides:
        print(describe(side, runs[side], today, target))
    load = os.getloadavg()
    print(f"\nload average {load[0]:.2f} (1 min), {load[1]:.2f} (5 min) after")


if __name__ == "__main__":
    main()
