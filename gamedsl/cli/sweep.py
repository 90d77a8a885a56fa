"""`gamedsl sweep FILE --set key=a,b --seeds 0-4`: a grid of runs, vectorised when it can be."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from gamedsl.cli.output import Progress, err, out
from gamedsl.errors import UsageError
from gamedsl.library.signature import suggest
from gamedsl.training import rundir

MODES = {"auto": "auto", "vectorized": "vectorized", "vectorised": "vectorized", "processes": "processes"}


def sweep(
    file: Annotated[Path, typer.Argument(help="The .game file.", show_default=False)],
    sets: Annotated[
        Optional[list[str]],
        typer.Option("--set", help="A setting and its values, comma-separated: solver.gamma=0.1,1,10. Repeatable; the grid is their product."),
    ] = None,
    seeds: Annotated[str, typer.Option(help="Seeds: a range 0-4 or a list 0,3,7.")] = "0",
    steps: Annotated[Optional[int], typer.Option(help="Steps of every run.", min=1)] = None,
    solver: Annotated[Optional[str], typer.Option("--solver", "-s", help="Solver for every run.")] = None,
    mode: Annotated[
        str, typer.Option(help="auto, vectorized or vectorised (one process, torch.func.vmap), or processes.")
    ] = "auto",
    jobs: Annotated[int, typer.Option(help="Processes at a time in processes mode.", min=1)] = 2,
    metric: Annotated[
        str,
        typer.Option(
            help="Scalar plotted over steps: a TensorBoard tag or its last part, e.g. grad_norm_sq, utility/D, "
            "mixture/high_quality (or high_quality). Checked before the runs start."
        ),
    ] = "grad_norm_sq",
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Sweep directory (default runs/GAME-sweep-TIME).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Run FILE for every combination of the --set values and seeds.

    Small games with numeric hyperparameters run vectorised in one process: one vmapped
    solver step advances every configuration, each with exactly the batches its own
    `gamedsl solve` would draw. Anything else runs as separate processes, --jobs at a time.
    Writes sweep.csv, one TensorBoard run per configuration, and sweep.png (the metric over
    steps per configuration, mean over seeds, range shaded).
    """
    import gamedsl
    from gamedsl.semantics.runnable import check_run
    from gamedsl.semantics.settings import resolve
    from gamedsl.sweep import metrics as sweep_metrics
    from gamedsl.sweep import processes, report, vectorized
    from gamedsl.sweep.grid import expand, parse_seeds
    from gamedsl.training import threads
    from gamedsl.training.session import save_params

    mode = MODES.get(mode, mode)
    if mode not in MODES.values():
        raise UsageError(
            f"--mode is auto, vectorized (or vectorised) or processes, not '{mode}'", hint=suggest(mode, MODES, "modes")
        )
    points = expand(sets or [], parse_seeds(seeds))
    game = gamedsl.load(file)
    flags = {"seed": None, "steps": steps, "solver": solver}
    configs = [resolve(game.settings, list(p.overrides), flags | {"seed": p.seed}) for p in points]
    reason = "processes were requested" if mode == "processes" else _obstacle(game, points, configs)
    if reason and mode == "vectorized":
        raise UsageError(f"this sweep cannot run vectorised: {reason}", hint="use --mode processes")
    metric = sweep_metrics.check(metric, game, configs[0], vectorised=not reason)
    for config in configs:
        check_run(game, config)
    directory = out_dir if out_dir is not None else Path("runs") / f"{game.name}-sweep-{time.strftime('%Y%m%d-%H%M%S')}"
    lock = rundir.claim(directory, what="sweep")
    try:
        how = f"as processes, {jobs} at a time ({reason})" if reason else "vectorised in one process"
        err.print(f"{len(points)} configuration(s) {how}; results in {directory}", markup=False)
        start = time.perf_counter()
        if reason:
            cli_flags = [f for key, value in (("--steps", steps), ("--solver", solver)) if value is not None for f in (key, str(value))]
            parameters = sum(game.parameter_count(p) for p in game.players)
            share = threads.choose(0, parameters, min(jobs, len(points)))  # runs that set `threads` apply it themselves
            with Progress(err, "runs", len(points), unit=None, quiet=quiet) as bar:
                outcomes = processes.run(file, points, cli_flags, directory, jobs, share, bar.advance)
        else:
            writers = _writers(directory, points)
            try:
                with Progress(err, "steps", configs[0].steps, quiet=quiet) as bar:
                    outcomes = vectorized.run(game, configs, writers, _metrics(game), bar.update, compile=_compiles(configs[0]))
            finally:
                for w in writers:
                    w.close()
            for p, o in zip(points, outcomes):
                save_params(o.game, directory / p.name)
        seconds = time.perf_counter() - start
        out.print(report.table(points, outcomes, metric))
        report.write_csv(directory / "sweep.csv", points, outcomes)
        drawn = report.plot(directory / "sweep.png", points, outcomes, metric, f"{game.name}: {metric}")
        out.print(f"{len(points)} runs in {seconds:.1f} s; wrote {directory / 'sweep.csv'}" + (f" and {directory / 'sweep.png'}" if drawn else ""), markup=False)
        if not drawn:
            err.print(f"note: no run logged '{metric}'; nothing to plot", markup=False)
    finally:
        lock.release()


def _compiles(config) -> bool:
    """The configurations' `compile` setting; auto compiles the vmapped step of long sweeps."""
    from gamedsl.compile.torch_game import pick_device
    from gamedsl.training.session import compile_cache, compile_threshold

    if config.compile == "auto" and config.steps < compile_threshold(pick_device(config.device)) or config.compile == "false":
        return False
    compile_cache()
    return True


def _obstacle(game, points, configs) -> str | None:
    from gamedsl.sweep import vectorized

    if any(o.key.startswith("divergence.") for p in points for o in p.overrides):
        return "the configurations use different divergences"
    return vectorized.obstacle(game, configs)


def _metrics(game):
    from gamedsl.metrics.mixture import mixture_metrics, mixture_of
    from gamedsl.sweep import metrics as sweep_metrics

    mixture = mixture_of(game)

    def metrics(torch_game, config) -> dict[str, float]:
        if mixture is None:
            return {}
        values = mixture_metrics(torch_game.draw("fake", config.eval_samples), *mixture)
        return {k: float(values[k]) for k in sweep_metrics.MIXTURE}

    return metrics


def _writers(directory: Path, points):
    from torch.utils.tensorboard import SummaryWriter

    return [SummaryWriter(str(directory / p.name)) for p in points]
