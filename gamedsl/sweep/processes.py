"""A sweep as separate `gamedsl solve` processes, several at a time (any game, any solver)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from gamedsl.sweep.grid import Point
from gamedsl.sweep.vectorized import Outcome
from gamedsl.syntax import unparse


def run(file: Path, points: list[Point], flags: list[str], root: Path, jobs: int, threads: int | None,
        done: Callable[[], None]) -> list[Outcome]:  # fmt: skip
    """Run every point as `gamedsl solve`, `jobs` at a time, each with `threads` intra-op threads
    (None: as the environment says)."""
    env = dict(os.environ) if threads is None else dict(os.environ, OMP_NUM_THREADS=str(threads))

    def one(point: Point) -> Outcome:
        directory = root / point.name
        command = [sys.executable, "-m", "gamedsl", "solve", str(file), "--seed", str(point.seed), "--out", str(directory), "-q", *flags]
        for override in point.overrides:
            command += ["--set", f"{override.key}={unparse.value(override.value)}"]
        start = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, text=True, env=env)
        outcome = Outcome(seconds=time.perf_counter() - start, directory=str(directory))
        metrics = directory / "metrics.json"
        if metrics.exists():
            data = json.loads(metrics.read_text())
            outcome.final = {k: v for k, v in data.get("final", {}).items() if k != "step"}
            outcome.final.update({k: v for k, v in data.get("mixture", {}).items() if isinstance(v, (int, float))})
            outcome.history = history(directory)
        if proc.returncode:
            outcome.status = "diverged" if proc.returncode == 6 else "failed"
            outcome.message = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        done()
        return outcome

    with ThreadPoolExecutor(max(1, jobs)) as pool:
        return list(pool.map(one, points))


def history(directory: Path) -> dict[str, list[float]]:
    """Every scalar series a run logged to TensorBoard, with its steps under KEY@step."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(directory), size_guidance={"scalars": 0})
    events.Reload()
    out: dict[str, list[float]] = {}
    for tag in events.Tags()["scalars"]:
        series = events.Scalars(tag)
        out[tag] = [e.value for e in series]
        out[f"{tag}@step"] = [float(e.step) for e in series]
    return out
