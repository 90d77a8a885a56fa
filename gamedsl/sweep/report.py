"""A sweep's results: a rich table, a CSV, and a metric over steps per configuration
(like the supplement's Figures 12-14: one curve per setting, the mean over seeds with the
range shaded)."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from rich.table import Table

from gamedsl.plotting import save
from gamedsl.training.rundir import write_atomic
from gamedsl.sweep.grid import Point
from gamedsl.sweep.vectorized import Outcome

COLUMNS = ("grad_norm_sq", "modes", "high_quality", "reverse_kl")  # keys of Outcome.final, as in metrics.json
MARKED = 30  # curves of at most this many points get a marker on each (a single point draws no line)


def table(points: list[Point], outcomes: list[Outcome], metric: str) -> Table:
    """One row per configuration: its settings, seed, status, the metric's last value (a
    TensorBoard tag) and the end-of-run columns of COLUMNS that any run has."""
    keys = [k for k, _ in points[0].assignments]
    same = {metric, metric.rsplit("/", 1)[-1]}
    shown = [c for c in COLUMNS if c not in same and any(c in o.final for o in outcomes)]
    t = Table(title="sweep")
    for k in keys:
        t.add_column(k)
    t.add_column("seed", justify="right")
    t.add_column("status")
    for c in [metric, *shown]:
        t.add_column(c, justify="right")
    for p, o in zip(points, outcomes):
        series = o.history.get(metric)
        values = [_fmt(series[-1] if series else o.final.get(metric))] + [_fmt(o.final.get(c)) for c in shown]
        t.add_row(*[v for _, v in p.assignments], str(p.seed), o.status, *values)
    return t


def write_csv(path: Path, points: list[Point], outcomes: list[Outcome]) -> None:
    keys = [k for k, _ in points[0].assignments]
    finals = sorted({k for o in outcomes for k in o.final})
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow([*keys, "seed", "status", "message", "seconds", *finals])
    for p, o in zip(points, outcomes):
        writer.writerow([*(v for _, v in p.assignments), p.seed, o.status, o.message, f"{o.seconds:.2f}", *(o.final.get(k, "") for k in finals)])
    write_atomic(path, text.getvalue())


def plot(path: Path, points: list[Point], outcomes: list[Outcome], metric: str, title: str) -> bool:
    """Write `figure` to path; False if no run logged the metric."""
    fig = figure(points, outcomes, metric, title)
    if fig is not None:
        save(fig, path)
    return fig is not None


def figure(points: list[Point], outcomes: list[Outcome], metric: str, title: str) -> Figure | None:
    """One curve per group of configurations that differ only by seed; None if no data."""
    groups: dict[str, list[Outcome]] = {}
    for p, o in zip(points, outcomes):
        if o.history.get(metric):
            groups.setdefault(p.group, []).append(o)
    if not groups:
        return None
    fig = Figure(figsize=(7, 4.2), dpi=100)
    ax = fig.subplots()
    for label, members in groups.items():
        steps = np.array(members[0].history[f"{metric}@step"])
        n = min(len(m.history[metric]) for m in members)
        values = np.array([m.history[metric][:n] for m in members], dtype=float)
        mean = np.nanmean(values, axis=0)
        ax.plot(steps[:n], mean, label=label, lw=1.4, marker="o" if n <= MARKED else None, ms=4)
        if len(members) > 1:
            ax.fill_between(steps[:n], np.nanmin(values, 0), np.nanmax(values, 0), alpha=0.2)
    ax.set_xlabel("step")
    ax.set_ylabel(metric)
    if metric in ("grad_norm_sq", "consensus_L"):
        ax.set_yscale("log")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:.4g}" if isinstance(value, float) else str(value)
