"""The solve fuzzer, for as long as you like: generated games through `check` and a 2-step `solve`.

    python benchmarks/fuzz_solve.py --minutes 30 --seed 1 --jobs 1 --out /tmp/fuzz
    PYTHONPATH=/old/checkout python benchmarks/fuzz_solve.py --minutes 5    # fuzz another checkout

Games come from tests/helpers/game_generator.py and run in tests/helpers/fuzz_harness.py
(a worker process with a 4 GiB address-space cap, a time limit per command). Prints the
counts by outcome and, for every traceback, memory failure, hang or killed worker, writes
the game and what happened into --out: `<group>/<case>.game` beside `<case>.txt` (the
command line, the traceback, the output's tail), so each finding can be rerun by hand.
`--minimize` cuts one game per group down line by line while it still fails the same way.
The issue's acceptance: 30 minutes give no bad outcome.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

import gamedsl  # noqa: E402,F401 - first, from PYTHONPATH when given: the checkout under test

sys.path.insert(0, str(ROOT))  # tests.helpers, from this checkout

from tests.helpers.fuzz_harness import Harness, Report, Result, code_root, prepare_data, run_corpus  # noqa: E402
from tests.helpers.game_generator import QUICK, Case, Profile  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30, help="wall time to start new games in (default 30)")
    parser.add_argument("--seed", type=int, default=1, help="the corpus: the same seed gives the same games")
    parser.add_argument("--jobs", type=int, default=1, help="workers side by side (default 1)")
    parser.add_argument("--count", type=int, default=None, help="stop after this many games")
    parser.add_argument("--timeout", type=float, default=120, help="seconds before a command is a hang (default 120)")
    parser.add_argument("--out", type=Path, default=None, help="folder for failing games (default: a new temp folder)")
    parser.add_argument("--quick", action="store_true", help="leave out digits (its classifier trains for 15 s)")
    parser.add_argument("--minimize", action="store_true", help="cut one game per bad group down to the lines it needs")
    args = parser.parse_args()

    profile = QUICK if args.quick else Profile()
    print(f"fuzzing {code_root()} for {args.minutes:g} min, seed {args.seed}, {args.jobs} job(s)", flush=True)
    args.out = args.out or Path(tempfile.mkdtemp(prefix="gamedsl-fuzz-"))
    args.out.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="work-", dir=args.out))  # the workers' files, data and caches

    def progress(result: Result) -> None:
        mark = "!" if result.outcome.bad else "."
        print(mark, end="\n" if (result.case.index + 1) % 80 == 0 else "", flush=True)

    report = run_corpus(args.seed, args.count, args.minutes * 60, home, profile, args.timeout, args.jobs, progress)
    print()
    save(report, args.out)
    if args.minimize:
        minimize_groups(report, home, args.out, args.timeout)
    print(report.table())
    print(f"\nfindings in {args.out}/")
    return 1 if report.bad else 0


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[:80].strip("-")


def save(report: Report, out: Path) -> None:
    """Every bad case as `<group>/<case>.game` and `.txt`; all outcomes in results.json."""
    for result in report.bad:
        folder = out / _slug(result.outcome.group)
        folder.mkdir(parents=True, exist_ok=True)
        write_case(folder, result.case, result)
    summary = {"counts": report.counts(), "seconds": report.seconds, "results": [r.as_dict() for r in report.results]}
    (out / "results.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")


def write_case(folder: Path, case: Case, result: Result, stem: str | None = None) -> None:
    stem = stem or case.name
    (folder / f"{stem}.game").write_text(case.text, encoding="utf-8")
    o = result.outcome
    command = " ".join(["gamedsl", "solve", f"{stem}.game", "--steps", "2", "--out", "RUN", "-q", "--data-dir", "DATA"])
    command = " ".join([command, *case.args])
    lines = [
        f"outcome: {o.label}",
        f"group: {o.group}",
        f"features: {', '.join(case.features)}",
        f"command: {command}",
        "data: tests/helpers/fuzz_harness.py prepare_data(DATA) writes the image files",
        f"seconds: {o.seconds:.1f}",
        "",
        o.traceback or o.message,
        "---- output (tail) ----",
        o.output,
    ]
    (folder / f"{stem}.txt").write_text("\n".join(lines), encoding="utf-8")


def minimize_groups(report: Report, home: Path, out: Path, timeout: float) -> None:
    """For each bad group, its shortest game with lines removed one at a time (and solve
    flags dropped) for as long as it still ends in the same group; written as `minimal`."""
    harness = Harness(home / "minimize", prepare_data(home / "data"), timeout)
    try:
        for group, members in report.groups().items():
            if members[0].outcome.kind in ("hang", "killed"):
                print(f"not minimized: {group} (every trial could take the whole timeout)", flush=True)
                continue
            case = min(members, key=lambda r: len(r.case.text)).case
            best = reduce(harness, case, group)
            result = harness.run(best)
            write_case(out / _slug(group), best, result, stem="minimal")
            print(f"minimal for {group}: {len(best.text.splitlines())} lines", flush=True)
    finally:
        harness.close()


def reduce(harness: Harness, case: Case, group: str) -> Case:
    """Drop solve flags, then chunks of the game (a line, or a block from its `{` line to
    its `}`), one at a time, keeping each cut that leaves the outcome in `group`."""

    def same(candidate: Case) -> bool:
        return harness.run(candidate).outcome.group == group

    for i in range(len(case.args) - 1, -1, -1):
        trial = Case(case.seed, case.index, case.text, case.args[:i] + case.args[i + 2 :], case.features)
        if case.args[i].startswith("--") and same(trial):
            case = trial
    lines = case.text.splitlines()
    i = 1  # keep the header
    while i < len(lines):
        end = i + 1
        if lines[i].rstrip().endswith("{"):
            end = next((j + 1 for j in range(i, len(lines)) if lines[j].strip() == "}"), end)
        kept = lines[:i] + lines[end:]
        trial = Case(case.seed, case.index, "\n".join(kept) + "\n", case.args, case.features)
        if same(trial):
            lines, case = kept, trial
        else:
            i += 1
    return case


if __name__ == "__main__":
    sys.exit(main())
