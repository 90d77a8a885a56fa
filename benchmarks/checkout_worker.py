"""Time another checkout of gamedsl (e.g. /work/baseline, today's code frozen) beside this one.

Two checkouts cannot share one process: both are the packages `gamedsl` and `solvers`, and
importing one under another name still leaves its lazy imports (inside functions) resolving
to whichever `gamedsl` sys.modules holds. So the other checkout runs in a child process
(this file as a script), with that checkout first on sys.path, and the benchmark drives it
block by block over a pipe:

    worker = Worker("/work/baseline")
    setup_s = worker.make("consensus", "gamedsl_stepper", method="consensus")   # any mog_steppers factory
    reply = worker.run("consensus", 100)        # one timed block: {"wall": s, "cpu": s, "returned": ...}

The child times each block itself (time.perf_counter and time.process_time around the
block, nothing else) and waits, blocked on the pipe and using no CPU, while the other sides
run their blocks; so its blocks interleave with the in-process sides exactly as those
interleave with each other. It runs torch with one intra-op thread, like the parent. Its
diagnostics (a compile fallback note, say) go to stderr; the pipe carries only replies.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BASELINE = Path("/work/baseline")  # where today's code is checked out on the benchmark machine


def add_sides(parser, sides: tuple[str, ...]) -> None:
    """`--sides` (some of `sides`) and `--baseline` (the checkout whose command is 'today'),
    for the benchmarks that run each side as a command in a fresh interpreter."""
    parser.add_argument("--sides", default=",".join(sides), help=f"some of {','.join(sides)} (default all)")
    parser.add_argument("--baseline", type=Path, default=BASELINE, metavar="PATH",
                        help=f"the checkout whose command is 'today' (default {BASELINE})")  # fmt: skip


def chosen_sides(parser, args, sides: tuple[str, ...]) -> list[str]:
    """The sides `--sides` names, in its order; a usage error for an unknown one, or for a
    'today' side whose --baseline is not a gamedsl checkout."""
    chosen = args.sides.split(",")
    if unknown := set(chosen) - set(sides):
        parser.error(f"unknown side(s) {', '.join(sorted(unknown))}; choose from {', '.join(sides)}")
    if "today" in chosen and not (args.baseline / "gamedsl" / "__init__.py").is_file():
        parser.error(f"--baseline {args.baseline} is not a gamedsl checkout (no gamedsl/__init__.py)")
    return chosen


class Worker:
    """A child process that imports gamedsl from `checkout` and runs the blocks asked of it."""

    def __init__(self, checkout: str | Path):
        self.checkout = Path(checkout).resolve()
        if not (self.checkout / "gamedsl" / "__init__.py").is_file():
            raise SystemExit(f"error: {checkout} is not a gamedsl checkout (no gamedsl/__init__.py)")
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(self.checkout))
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), str(self.checkout)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=self.checkout,
        )  # fmt: skip
        self.imported = self._ask({"op": "hello"})["gamedsl"]

    def _ask(self, request: dict) -> dict:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the worker for {self.checkout} died (exit {self.proc.wait()}); see its stderr above")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"the worker for {self.checkout}: {reply['error']}")
        return reply

    def make(self, name: str, factory: str, **kwargs) -> float:
        """Build a block function `name` with a mog_steppers factory; returns the seconds it took."""
        return self._ask({"op": "make", "name": name, "factory": factory, "kwargs": kwargs})["wall"]

    def run(self, name: str, n: int) -> dict:
        """Run block `name` for n steps: its wall and CPU seconds as the child measured them, and
        what the block function returned (`returned`: the sweep's set-up times)."""
        return self._ask({"op": "run", "name": name, "n": n})

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait()


def serve(checkout: Path) -> None:
    """The child: answer one JSON request per line on stdin with one JSON line."""
    import importlib.util

    channel = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # anything the checkout prints goes to stderr, never into the replies
    sys.stdout = sys.stderr
    sys.path[:] = [str(checkout)] + [p for p in sys.path if Path(p or ".").resolve() != HERE]
    spec = importlib.util.spec_from_file_location("mog_steppers", HERE / "mog_steppers.py")
    steppers = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(steppers)
    import torch

    torch.set_num_threads(1)
    blocks = {}
    for line in sys.stdin:
        request = json.loads(line)
        try:
            if request["op"] == "hello":
                import gamedsl

                reply = {"gamedsl": str(Path(gamedsl.__file__).resolve().parent)}
            else:
                clock = steppers.Stopwatch()
                if request["op"] == "make":
                    blocks[request["name"]] = getattr(steppers, request["factory"])(**request["kwargs"])
                    returned = None
                else:
                    returned = blocks[request["name"]](request["n"])
                wall, cpu = clock.read()
                reply = {"wall": wall, "cpu": cpu, "returned": returned}
        except Exception as exc:  # sent to the parent, which raises it
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        channel.write(json.dumps(reply) + "\n")
        channel.flush()


if __name__ == "__main__":
    if len(sys.argv) != 2 or not (Path(sys.argv[1]) / "gamedsl" / "__init__.py").is_file():
        sys.exit(f"usage: {Path(__file__).name} CHECKOUT  (started by the benchmarks: see its docstring)")
    serve(Path(sys.argv[1]))
