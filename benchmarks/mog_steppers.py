"""The gamedsl side of the mog speed benchmarks, written once for this checkout and for a baseline.

`gamedsl` and `solvers` are imported inside the functions, so the same code times whichever
checkout is first on sys.path: this one in speed_mog.py and sweep_mog.py, another one
(`--baseline PATH`) in checkout_worker.py. The game is that checkout's own games/mog.game,
so an older checkout never has to parse a newer file.

Every factory returns a block function: block(n) runs n steps. The sweep's blocks run all
16 configurations from scratch and return the (wall, CPU) seconds of their set-up and first
step (where compilation happens), so that a benchmark can tell them from the steady state.
"""

from __future__ import annotations

import inspect
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

BATCH = 512
GAMMA = 10.0
RMSPROP = {"lr": 1e-4, "alpha": 0.9, "eps": 1e-10}  # the paper's TensorFlow RMSProp
GAMMAS = (0.1, 1.0, 3.0, 10.0)  # the sweep: 4 gamma x 4 learning rates of consensus
LRS = (5e-5, 1e-4, 2e-4, 4e-4)


def load_mog():
    import gamedsl

    return gamedsl.load(Path(gamedsl.__file__).resolve().parent.parent / "games" / "mog.game")


def run_compiles() -> bool:
    """Whether this checkout's `solvers.Run` takes `compile=` (issue 12)."""
    import solvers

    return "compile" in inspect.signature(solvers.Run).parameters


def sweep_compiles() -> bool:
    """Whether this checkout's vectorised sweep takes `compile=` (issue 12)."""
    from gamedsl.sweep import vectorized

    return "compile" in inspect.signature(vectorized.run).parameters


def run_options(compile: bool | None) -> dict:
    """Keywords for `solvers.Run`: none for `compile=None` (checkouts without the keyword);
    else `compile`, and a `note` that prints why a step runs eagerly, where Run takes one."""
    import solvers

    if compile is None:
        return {}
    if "note" not in inspect.signature(solvers.Run).parameters:
        return {"compile": compile}
    return {"compile": compile, "note": lambda text: print(f"note: {text}", file=sys.stderr, flush=True)}


def gamedsl_stepper(method: str, compile: bool | None = None, batch: int = BATCH) -> Callable[[int], None]:
    """A block of n steps of `method` on mog.game, by the loop `gamedsl solve` runs (guard included)."""
    import solvers
    from gamedsl.compile.torch_game import TorchGame

    run = solvers.Run(
        TorchGame(load_mog(), batch=batch, seed=0),
        solvers.get(method, **({"gamma": GAMMA} if method == "consensus" else {})),
        solvers.optimizers.get("rmsprop", **RMSPROP),
        **run_options(compile),
    )

    def block(n: int) -> None:
        solvers.solve(run.game, run.solver, run.engine.optimizer, n, run=run, record_every=n)

    block.run = run  # for `fell_back`
    return block


def fell_back(block) -> bool:
    """Whether a compiled stepper now takes eager steps: `solvers.Run` drops its compiled step
    (`run.compiled` becomes None, after a note on stderr) when the step cannot be compiled."""
    return getattr(block.run, "compiled", None) is None


def sweep_configs(batch: int, threads: int, compile: bool | None):
    """mog.game and its 16 consensus configurations (gamma x lr), logging only at the end."""
    try:
        from gamedsl.semantics.settings import resolve
    except ModuleNotFoundError:  # a baseline checkout from before the settings moved into semantics/
        from gamedsl.config import resolve

    game = load_mog()
    base = resolve(game.settings, [], {"batch": batch})
    base = replace(base, log_every=1 << 62, image_every=0, threads=threads)
    if compile is not None and hasattr(base, "compile"):
        base = replace(base, compile="true" if compile else "false")
    cfgs = [
        replace(base, solver_params={"gamma": g}, optimizer_params={**base.optimizer_params, "lr": lr})
        for g in GAMMAS
        for lr in LRS
    ]
    return game, cfgs


class Stopwatch:
    """Wall time (time.perf_counter) and CPU time of the process (time.process_time) since creation."""

    def __init__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def read(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def sequential_sweep(batch: int = BATCH, threads: int = 1, compile: bool | None = None):
    """The 16 configurations one after another, each a fresh `solvers.Run` on the `gamedsl solve` loop."""
    import solvers
    from gamedsl.compile.torch_game import TorchGame

    game, cfgs = sweep_configs(batch, threads, compile)
    options = run_options(compile)

    def block(n: int) -> tuple[float, float]:
        setup_wall = setup_cpu = 0.0
        for c in cfgs:
            clock = Stopwatch()
            torch_game = TorchGame(game, batch=c.batch, seed=c.seed, dtype=c.dtype)
            run = solvers.Run(torch_game, c.make_solver(), c.make_optimizer(), **options)
            solvers.solve(torch_game, run.solver, run.engine.optimizer, 1, run=run)
            wall, cpu = clock.read()
            setup_wall, setup_cpu = setup_wall + wall, setup_cpu + cpu
            solvers.solve(torch_game, run.solver, run.engine.optimizer, n - 1, run=run, record_every=n - 1)
        return setup_wall, setup_cpu

    return block


def vectorised_sweep(batch: int = BATCH, threads: int = 1, compile: bool | None = None):
    """All 16 configurations in one vmapped run: `gamedsl sweep`'s own runner."""
    from gamedsl.sweep import vectorized

    game, cfgs = sweep_configs(batch, threads, compile)
    options = {} if compile is None else {"compile": compile}

    def block(n: int) -> tuple[float, float]:
        clock, setup = Stopwatch(), []

        def progress(step: int) -> None:
            if step == 1:
                setup.extend(clock.read())

        configs = [replace(c, steps=n) for c in cfgs]
        vectorized.run(game, configs, [None] * len(cfgs), lambda g, c: {}, progress, **options)
        return setup[0], setup[1]

    return block
