"""`gamedsl solve FILE`: compile a game to PyTorch and run a solver on it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

import gamedsl
from gamedsl.cli.output import err, out
from gamedsl.config import divergence_overrides, parse_override, resolve
from gamedsl.errors import DivergedError
from gamedsl.training.session import Session, default_directory


def solve(
    file: Annotated[Path, typer.Argument(help="The .game file.", show_default=False)],
    solver: Annotated[Optional[str], typer.Option("--solver", "-s", help="Solver name; see `gamedsl solvers`.")] = None,
    sets: Annotated[
        Optional[list[str]],
        typer.Option("--set", help="Override a setting: key=value, e.g. solver.gamma=1 or optimizer=adam(lr=1e-3). Repeatable."),
    ] = None,
    steps: Annotated[Optional[int], typer.Option(help="Number of solver steps.", min=0)] = None,
    batch: Annotated[Optional[int], typer.Option(help="Batch size.", min=1)] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed for initialisation and sampling.", min=0)] = None,
    device: Annotated[Optional[str], typer.Option(help="auto, cpu, cuda or cuda:N.")] = None,
    dtype: Annotated[Optional[str], typer.Option(help="float32 or float64.")] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Run directory (default runs/<game>-<solver>-<time>).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Compile FILE to PyTorch and solve it with the chosen solver.

    Settings come from the file's `solve { }` block, then `--set`, then the explicit flags.
    The run directory receives config.json, params/ (state dicts), samples.npy and
    metrics.json; the summary is printed on stdout.
    """
    overrides = [parse_override(text) for text in sets or []]
    game = gamedsl.load(file, divergence_overrides(overrides))
    for warning in game.warnings:
        err.print(warning.render(), markup=False)
    flags = {"solver": solver, "steps": steps, "batch": batch, "seed": seed, "device": device, "dtype": dtype}
    config = resolve(game.settings, overrides, flags)
    for note in config.notes:
        err.print(f"note: {note}", markup=False)
    directory = out_dir or default_directory(game, config)
    session = Session.create(game, config, directory)
    session.write_config()
    err.print(f"run directory: {directory}", markup=False)

    progress = _Progress(session, config.steps, quiet)
    with progress:
        result = session.train(config.steps, callbacks=[progress.update], record_every=max(1, min(100, config.steps // 100 or 1)))
    metrics = session.evaluate()
    summary = session.write_outputs(result, metrics)
    print_summary(session, result, summary)
    if result.status == "diverged":
        raise DivergedError(f"the run diverged: {result.message}", hint="lower the learning rate, or try --solver consensus")


class _Progress:
    """A rich progress bar on stderr: step, steps/s, each player's utility and |v|."""

    def __init__(self, session: Session, total: int, quiet: bool):
        self.run = session.run
        self.names = self.run.player_names
        self.every = max(1, total // 200)
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[stats]}"),
            console=err,
            disable=quiet,
            transient=False,
        )
        self.task = self.bar.add_task(session.config.solver, total=total, rate="", stats="")
        self.start = time.perf_counter()
        self.first = self.run.step_count

    def __enter__(self):
        self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        self.bar.__exit__(*exc)

    def update(self, run, info) -> bool:
        if run.step_count % self.every == 0:
            elapsed = time.perf_counter() - self.start
            rate = (run.step_count - self.first) / elapsed if elapsed else 0.0
            norms = run.norms(info.field)
            stats = "  ".join(f"u_{n}={float(u):+.4f}" for n, u in zip(self.names, info.utilities))
            stats += f"  |v|={float(sum(x * x for x in norms)) ** 0.5:.3g}"
            self.bar.update(self.task, completed=run.step_count - self.first, rate=f"{rate:,.0f} steps/s", stats=stats)
        return False


def print_summary(session: Session, result, summary: dict) -> None:
    table = Table(title=f"{session.game.name}: {session.config.solver} — {result.status} after {result.steps:,} steps")
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
            f"reverse KL {'inf' if rkl is None or rkl == float('inf') else f'{rkl:.3f}'} "
            f"({mixture['samples']:,} samples, PacGAN protocol)",
            markup=False,
        )
    out.print(f"outputs: {session.directory}", markup=False)


def _fmt(value) -> str:
    return "—" if value is None else f"{value:.4g}"

