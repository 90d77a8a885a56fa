"""`gamedsl solve FILE` / `gamedsl solve --resume RUN_DIR`: compile a game and run a solver."""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from gamedsl.cli.output import err, out
from gamedsl.errors import DivergedError, ExitCode, GameError, LimitError, ParallelError, UsageError
from gamedsl.training import rundir, stopping

if TYPE_CHECKING:  # torch and the compiled game load only when a command runs (fast --help)
    from gamedsl.training.session import Session


def solve(
    file: Annotated[Optional[Path], typer.Argument(help="The .game file (omit with --resume).", show_default=False)] = None,
    solver: Annotated[Optional[str], typer.Option("--solver", "-s", help="Solver name; see `gamedsl solvers`.")] = None,
    sets: Annotated[
        Optional[list[str]],
        typer.Option("--set", help="Override a setting: key=value, e.g. solver.gamma=1 or optimizer=adam(lr=1e-3). Repeatable."),
    ] = None,
    steps: Annotated[Optional[int], typer.Option(help="Total number of solver steps.", min=0)] = None,
    batch: Annotated[Optional[int], typer.Option(help="Batch size.", min=1)] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed for initialisation and sampling.", min=0)] = None,
    device: Annotated[Optional[str], typer.Option(help="auto, cpu, cuda or cuda:N.")] = None,
    dtype: Annotated[Optional[str], typer.Option(help="float32 or float64.")] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Run directory (default runs/GAME-SOLVER-TIME).")] = None,
    logdir: Annotated[Optional[Path], typer.Option(help="TensorBoard directory (default: the run directory).")] = None,
    resume: Annotated[Optional[Path], typer.Option(help="Continue the run in this run directory from its checkpoint.")] = None,
    spectrum_every: Annotated[
        Optional[int], typer.Option("--spectrum-every", help="Eigenvalues of v' and w' every N steps (0: never).", min=0)
    ] = None,
    nproc: Annotated[
        Optional[int], typer.Option(help="Data-parallel processes on this machine (launches torchrun).", min=1)
    ] = None,
    data_dir: Annotated[
        Optional[Path], typer.Option("--data-dir", help="Data root for data files (image data sets, points files) (default $GAMEDSL_DATA, else ~/.cache/gamedsl/data).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Write into an --out directory that already holds files, replacing gamedsl's files there.")
    ] = False,
) -> None:
    """Compile FILE to PyTorch and solve it with the chosen solver.

    Settings come from the file's `solve { }` block, then `--set`, then the explicit flags.
    The run directory receives config.json, checkpoint.pt (every checkpoint_every steps and
    at the end), params/ (state dicts), samples.npy, metrics.json and TensorBoard logs
    (`tensorboard --logdir runs`). Ctrl-C or SIGTERM saves a checkpoint first; continue with
    `gamedsl solve --resume RUN_DIR`. A non-finite utility, gradient or parameter stops the
    run (exit 6) and keeps the last good checkpoint. `--nproc N` (or `torchrun
    --nproc-per-node N -m gamedsl solve ...`) runs data-parallel: see docs/scaling.md.
    """
    if nproc is not None and nproc > 1 and "WORLD_SIZE" not in os.environ:
        raise typer.Exit(_launch(nproc))
    import gamedsl
    from gamedsl.data import images
    from gamedsl.semantics.runnable import check_run
    from gamedsl.semantics.settings import divergence_overrides, parse_override, resolve
    from gamedsl.training.parallel import from_environment as parallel_from_environment
    from gamedsl.training.parallel import shutdown
    from gamedsl.training.session import Session, default_directory

    if data_dir is not None:
        images.set_data_root(data_dir)
    if logdir is not None:
        rundir.log_directory(logdir)
    lock = None
    if resume is not None:
        given = {"FILE": file, "--solver": solver, "--set": sets, "--batch": batch, "--seed": seed, "--device": device, "--dtype": dtype, "--out": out_dir, "--force": force}
        clash = [name for name, value in given.items() if value]
        if clash:
            raise UsageError(
                f"--resume continues a run with its own settings; drop {', '.join(clash)}",
                hint="only --steps, --logdir, --spectrum-every, --nproc and --quiet apply",
            )
        directory = rundir.existing(resume, "--resume")
        rundir.refuse_links(directory)
        parallel = parallel_from_environment(_saved_device(directory))
        session = Session.resume(directory, steps, parallel)
        if spectrum_every is not None:
            session.config = replace(session.config, spectrum_every=spectrum_every)
        done = session.run.step_count >= session.config.steps
        if done and session.outputs_current():  # a no-op: read, report, touch nothing
            if parallel.main:
                err.print(
                    f"{directory} is at step {session.run.step_count:,} of {session.config.steps:,}: nothing left to do "
                    "(raise the total with --steps)",
                    markup=False,
                )
            shutdown()
            return
        if parallel.main:
            lock = rundir.Lock(directory).acquire()
            rundir.clean_temporaries(directory)
            note = "; writing its final outputs" if done else ""
            err.print(f"resuming {directory} at step {session.run.step_count:,} of {session.config.steps:,}{note}", markup=False)
            for text in session.config.schedule_notes():
                err.print(f"note: {text}", markup=False)
    else:
        if file is None:
            raise UsageError("give a .game file, or --resume RUN_DIR", hint="for example: gamedsl solve games/mog.game")
        overrides = [parse_override(text) for text in sets or []]
        game = gamedsl.load(file, divergence_overrides(overrides))
        flags = {"solver": solver, "steps": steps, "batch": batch, "seed": seed, "device": device, "dtype": dtype, "spectrum_every": spectrum_every}
        config = resolve(game.settings, overrides, flags)
        check_run(game, config)  # what would fail later (sizes, settings that do not fit) fails now, at its cause
        parallel = parallel_from_environment(config.device)
        if parallel.main:
            for warning in game.warnings:
                err.print(warning.render(), markup=False)
            for note in config.notes:
                err.print(f"note: {note}", markup=False)
        directory = parallel.broadcast(out_dir if out_dir is not None else default_directory(game, config))
        session = Session.create(game, config, directory, parallel)
        if parallel.main:
            lock = rundir.claim(directory, force)
    stopping.defer()  # from here on, a first Ctrl-C or SIGTERM stops after a step and saves
    if resume is None and parallel.main:
        session.write_config()
        err.print(f"run directory: {session.directory}", markup=False)
    try:
        if session.run.step_count >= session.config.steps and resume is not None:
            result = session.idle_result()  # only the outputs are missing: no steps, no new logs
        else:
            result = _train(session, logdir or session.directory, resumed=resume is not None, quiet=quiet)
        _finish(session, result)
    except stopping.Interrupt:  # a second signal: stop at once; checkpoints are written atomically
        saved = session.directory / "checkpoint.pt"
        kept = f"the last good checkpoint is {saved}" if saved.exists() else "no checkpoint had been written yet"
        err.print(f"interrupted at once; {kept}", markup=False)
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    except (MemoryError, RuntimeError) as exc:
        if isinstance(exc, MemoryError) or "allocate" in str(exc) or "out of memory" in str(exc):
            raise LimitError(
                f"the run ran out of memory ({' '.join(str(exc).split())[:120] or 'MemoryError'})",
                hint="lower batch or eval_samples, or make the networks smaller; memory_limit bounds only the estimate "
                "that `gamedsl check` makes, and this machine has less",
            ) from None
        if not parallel.active:
            raise
        if not parallel.main or stopping.requested():  # rank 0 speaks; a stop in progress is no failure
            raise typer.Exit(int(ExitCode.INTERRUPTED if stopping.requested() else ExitCode.PEER_FAILED)) from None
        saved = session.directory / "checkpoint.pt"
        raise ParallelError(
            f"a process of the distributed run failed ({str(exc).splitlines()[0][:160]}); "
            f"the last checkpoint {saved} is intact",
            hint=f"resume with: gamedsl solve --resume {session.directory} --nproc {parallel.world}",
        ) from None
    finally:
        if lock is not None:
            lock.release()
        shutdown()


def _saved_device(run_dir: Path) -> str:
    try:
        device = rundir.read_json(run_dir / rundir.CONFIG)["config"]["device"]
    except (GameError, KeyError, TypeError):
        return "auto"  # Session.resume reports the damage
    return device if isinstance(device, str) else "auto"


def _launch(nproc: int) -> int:
    """`--nproc N`: this same command as N local worker processes (training/launch.py)."""
    from gamedsl.training.launch import launch

    return launch(nproc, sys.argv[1:], say=lambda text: err.print(text, markup=False))


def _train(session: Session, logdir: Path, resumed: bool, quiet: bool):
    """Every process checkpoints (gathering RNG states) and agrees on stopping; rank 0 alone
    logs, draws and shows progress."""
    from gamedsl.training import monitors

    main = session.parallel.main
    interrupts = monitors.Interrupts(session.parallel)
    callbacks = [monitors.Checkpoints(session), interrupts]
    board = monitors.TensorBoard(session, logdir, purge_step=session.run.step_count if resumed else None) if main else None
    if board is not None:
        callbacks.append(board)
        for pictures in (monitors.Pictures(session, board), monitors.SampleGrids(session, board)):
            if pictures.active:
                callbacks.append(pictures)
                if not resumed:
                    pictures.snapshot(0)
        if session.config.spectrum_every:
            callbacks.append(monitors.Spectra(session, board))
    try:
        with monitors.ProgressBar(session, session.config.steps, err, quiet or not main) as bar:
            result = session.train([bar, *callbacks], note=lambda text: err.print(f"note: {text}", markup=False))
    finally:
        if board is not None:
            board.close()
    session.interrupted = interrupts.received
    return result


def _finish(session: Session, result) -> None:
    """Save the final checkpoint, then evaluate and write the outputs (rank 0).

    A stop requested during the final evaluation skips the outputs, never the checkpoint:
    `--resume` writes them later. After a run that was itself stopped, the evaluation runs
    to the end (a further signal stops at once)."""
    import solvers

    main = session.parallel.main
    if result.status == "diverged":
        if not main:  # every process saw the same values; rank 0 says it
            raise typer.Exit(int(ExitCode.DIVERGED))
        saved = session.directory / "checkpoint.pt"
        kept = f"the last good checkpoint is {saved}" if saved.exists() else "no checkpoint had been written yet"
        raise DivergedError(f"the run diverged: {result.message}; {kept}", hint=divergence_hint(session))
    session.run.check()  # the loop checked its last step; this covers a run that took none
    session.save_checkpoint()
    resume = f"gamedsl solve --resume {session.directory}" + (f" --nproc {session.parallel.world}" if session.parallel.active else "")
    if main:
        try:
            metrics = session.evaluate(poll=None if session.interrupted else stopping.poll)
        except solvers.Interrupted as exc:
            err.print(
                f"{exc}: stopped during the final evaluation; the checkpoint at step {result.steps:,} is saved\n"
                f"write the outputs with: {resume}",
                markup=False,
            )
            raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
        summary = session.write_outputs(result, metrics)
        print_summary(session, result, summary)
    if session.interrupted:
        if not main:
            raise typer.Exit(int(ExitCode.INTERRUPTED))
        err.print(
            f"{session.interrupted}: stopped at step {result.steps:,}; checkpoint saved to {session.directory / 'checkpoint.pt'}\n"
            f"resume with: {resume}",
            markup=False,
        )
        raise typer.Exit(int(ExitCode.INTERRUPTED))


def divergence_hint(session: Session) -> str:
    """What to try next: a smaller step always; consensus only for a run that does not use it."""
    if "gamma" in session.config.solver_params or session.config.solver == "consensus":
        return "lower the learning rate, or raise solver.gamma (the consensus weight)"
    return "lower the learning rate, or try --solver consensus"


def print_summary(session: Session, result, summary: dict) -> None:
    from rich.table import Table

    status = "interrupted" if session.interrupted else result.status
    table = Table(title=f"{session.game.name}: {session.config.solver} — {status} after {result.steps:,} steps")
    table.add_column("player")
    table.add_column("utility", justify="right")
    table.add_column("|v_i|", justify="right")
    final = summary["final"]
    for name in session.run.player_names:
        table.add_row(name, _fmt(final.get(f"utility/{name}")), _fmt(final.get(f"grad_norm/{name}")))
    out.print(table)
    rate = summary.get("steps_per_second")
    out.print(f"time {summary['seconds']:.1f} s" + (f", {rate:,.0f} steps/s" if rate else ""), markup=False)
    mixture = summary.get("mixture")
    if mixture:
        rkl = mixture["reverse_kl"]
        out.print(
            f"modes {mixture['modes']}/{mixture['modes_total']}, high quality {100 * mixture['high_quality']:.1f} %, "
            f"reverse KL {'inf' if rkl is None else f'{rkl:.3f}'} ({mixture['samples']:,} samples, PacGAN protocol)",
            markup=False,
        )
    for line in image_summary(summary.get("images") or {}):
        out.print(line, markup=False)
    if summary.get("picture"):
        out.print(f"picture: {session.directory / summary['picture']}", markup=False)
    out.print(f"outputs: {session.directory}   (tensorboard --logdir {session.directory.parent})", markup=False)


def image_summary(metrics: dict) -> list[str]:
    """One line per image metric of metrics.json (see gamedsl/metrics/images.py)."""
    lines = []
    for key, label in (("digits", "generator"), ("digits_untrained", "untrained generator")):
        if key in metrics:
            m = metrics[key]
            lines.append(
                f"digits, {label}: classifier score {m['classifier_score']:.2f} (1 to 10, higher is better), "
                f"Frechet distance {m['frechet_distance']:.2f} (lower is better), {m['samples']:,} samples"
            )
    if "digits_reference" in metrics:
        ref = metrics["digits_reference"]
        lines.append(
            f"digits, real data: classifier score {ref['real_classifier_score']:.2f} "
            f"(classifier accuracy {100 * ref['classifier_test_accuracy']:.1f} % on held-out digits)"
        )
    inception = metrics.get("inception")
    if inception:
        if inception.get("available"):
            lines.append(
                f"Inception score {inception['inception_score']:.2f} ± {inception['inception_score_std']:.2f}, "
                f"FID {inception['fid']:.1f} ({inception['samples']:,} samples)"
            )
        else:
            lines.append(f"no Inception score or FID: {inception['reason']}")
    return lines


def _fmt(value) -> str:
    return "—" if value is None else f"{value:.4g}"
