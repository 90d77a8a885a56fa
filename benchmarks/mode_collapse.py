"""Mode collapse on the 2-D benchmarks: our catalog recipes over seeds, beside the published tables.

Each row runs a catalog game as it is, with `gamedsl solve GAME --seed S` (the real CLI, one
process per run), and reads the PacGAN-protocol metrics of the generator the run reports from
its metrics.json (2,500 samples; modes covered, high-quality share, reverse KL). Rows:

  ring   games/mog.game             the paper's own setup (consensus, RMSProp 1e-4), unchanged
  ring   games/ring_best.game       the ring recipe (consensus, RMSProp 4e-4, averaged G)
  ring   games/ring_best.game       the same recipe under simga and altga (no consensus)

A recipe that averages its generator also reports the raw generator (metrics.json "raw"),
printed on the line below it: together the rows measure what each knob does.
  grid   games/grid25.game          the grid recipe
  grid   games/grid25_pacgan.game   PacGAN4 as its paper ran it (400k steps: hours; --pacgan)

Runs that already have a metrics.json in the runs folder (runs/mode_collapse/RECIPE-seedS)
are read, not run again, so the table can be rebuilt, extended with seeds, or filled in by
several invocations. The table goes to benchmarks/results/mode_collapse.{txt,json}.

    python benchmarks/mode_collapse.py --seeds 0-4 --jobs 2
    python benchmarks/mode_collapse.py --recipes ring_best,grid25 --seeds 0-4
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# benchmarks/solvers.py shares its name with the `solvers` package: import from the repository root
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]
from gamedsl.sweep.grid import parse_seeds  # noqa: E402


@dataclass(frozen=True)
class Recipe:
    key: str  # its runs' folders: KEY-seedS
    data: str  # "ring" or "grid"
    label: str
    game: str
    args: tuple[str, ...] = ()
    long: bool = False  # hours on 2 cores: only with --pacgan


RECIPES = (
    Recipe("mog", "ring", "mog.game (paper setup)", "games/mog.game"),
    Recipe("ring_best", "ring", "ring_best.game", "games/ring_best.game"),
    Recipe("ring_best_simga", "ring", "ring_best.game --solver simga", "games/ring_best.game", ("--solver", "simga")),
    Recipe("ring_best_altga", "ring", "ring_best.game --solver altga", "games/ring_best.game", ("--solver", "altga")),
    Recipe("grid25", "grid", "grid25.game", "games/grid25.game"),
    Recipe("grid25_pacgan", "grid", "grid25_pacgan.game (PacGAN4 setup)", "games/grid25_pacgan.game", long=True),
)

# Published rows (name, modes, high quality %, reverse KL, trials): PacGAN (Lin et al. 2018)
# Table 1, mean of 10 trials, and VEEGAN (Srivastava et al. 2017) Table 1 (ring: modes and
# high-quality share only); ../shared/reference/facts.md.
PUBLISHED = {
    "ring": [
        ("GAN (PacGAN Table 1)", 6.3, 98.2, 0.45, 10),
        ("ALI (PacGAN Table 1)", 6.6, 97.6, 0.36, 10),
        ("PacGAN2", 7.9, 95.6, 0.07, 10),
        ("PacGAN3", 7.8, 97.7, 0.10, 10),
        ("PacGAN4", 7.8, 95.9, 0.07, 10),
        ("GAN (VEEGAN Table 1)", 1.0, 99.3, None, None),
        ("Unrolled GAN (VEEGAN Table 1)", 7.6, 35.6, None, None),
        ("VEEGAN", 8.0, 52.9, None, None),
    ],
    "grid": [
        ("GAN (PacGAN Table 1)", 17.3, 94.8, 0.70, 10),
        ("ALI", 24.1, 95.7, 0.14, 10),
        ("PacGAN2", 23.8, 91.3, 0.13, 10),
        ("PacGAN3", 24.6, 94.2, 0.06, 10),
        ("PacGAN4", 24.8, 93.6, 0.04, 10),
    ],
}


def run_one(recipe: Recipe, seed: int, out: Path) -> dict:
    """One run, or the one already in its folder; its metrics and wall time."""
    directory = out / f"{recipe.key}-seed{seed}"
    metrics_file = directory / "metrics.json"
    seconds = None
    if not metrics_file.exists():
        cmd = [sys.executable, "-m", "gamedsl", "solve", str(ROOT / recipe.game), *recipe.args,
               "--seed", str(seed), "--out", str(directory), "--force", "--quiet"]  # fmt: skip
        start = time.perf_counter()
        proc = subprocess.run(cmd, env=dict(os.environ, OMP_NUM_THREADS="1"), capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if not metrics_file.exists():
            return {"seed": seed, "exit": proc.returncode, "error": proc.stderr.strip().splitlines()[-1:]}
    metrics = json.loads(metrics_file.read_text())
    mixture = metrics.get("mixture") or {}
    return {
        "seed": seed,
        "exit": 0 if metrics.get("status") != "diverged" else 6,
        "status": metrics.get("status"),
        "steps": metrics.get("steps"),
        "seconds": seconds if seconds is not None else metrics.get("seconds"),
        "modes": mixture.get("modes"),
        "high_quality": mixture.get("high_quality"),
        "reverse_kl": mixture.get("reverse_kl"),
        "raw": (metrics.get("raw") or {}).get("mixture"),
    }


def summary(rows: list[dict]) -> dict:
    """Means and standard errors over seeds (PacGAN's convention), and the worst seed's modes;
    "raw": the same for the raw generator of runs that report an averaged one."""
    done = [r for r in rows if r.get("modes") is not None]
    raw = [{"seed": r["seed"], **r["raw"]} for r in done if r.get("raw")]
    out = {"runs": len(done), "seeds": [r["seed"] for r in done]}
    for key in ("modes", "high_quality", "reverse_kl", "seconds"):
        values = [r[key] for r in done if r.get(key) is not None and math.isfinite(r[key])]
        if values:
            out[key] = statistics.fmean(values)
            out[f"{key}_se"] = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else 0.0
    out["min_modes"] = min((r["modes"] for r in done), default=None)
    if raw:
        out["raw"] = summary(raw)
    return out


def table(results: dict[str, dict]) -> str:
    lines = []
    for data in ("ring", "grid"):
        chosen = [(r, results[r.key]) for r in RECIPES if r.data == data and r.key in results]
        if not chosen:
            continue
        total = 8 if data == "ring" else 25
        lines += ["", f"{data} ({total} modes), mean ± standard error over seeds", ""]
        lines.append(f"{'recipe':<40} {'runs':>4} {'modes':>12} {'worst':>5} {'high quality':>16} {'reverse KL':>16} {'s/run':>7}")
        for recipe, result in chosen:
            s = result["summary"]
            if not s["runs"]:
                lines.append(f"{recipe.label:<40} {0:>4}  (no finished run)")
                continue
            lines.append(_row(recipe.label, s))
            if "raw" in s:
                lines.append(_row("  (its raw generator)", s["raw"]))
        lines.append("published")
        for name, modes, hq, kl, trials in PUBLISHED[data]:
            kl_text = f"{kl:>8.2f}" if kl is not None else f"{'—':>8}"
            runs = trials if trials is not None else "—"
            lines.append(f"  {name:<38} {runs:>4} {modes:>6.1f}       {'':>5} {hq:>8.1f} %       {kl_text}")
    return "\n".join(lines).lstrip("\n")


def _row(label: str, s: dict) -> str:
    seconds = f"{s['seconds']:>7.0f}" if "seconds" in s else f"{'':>7}"
    return (
        f"{label:<40} {s['runs']:>4} {s['modes']:>6.2f} ± {s['modes_se']:<3.1f} {s['min_modes']:>5}"
        f" {100 * s['high_quality']:>8.1f} % ± {100 * s['high_quality_se']:<3.1f} "
        f"{s['reverse_kl']:>8.3f} ± {s['reverse_kl_se']:<5.3f} {seconds}"
    )


def picture(results: dict[str, dict], out: Path, path: Path) -> None:
    """One panel per run (rows: recipes, columns: seeds): its samples.npy over the data's modes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from gamedsl.data.samplers import grid_means, ring_means

    means = {"ring": ring_means(8, 1.0), "grid": grid_means(5, 2.0)}  # the benchmarks' modes
    recipes = [r for r in RECIPES if r.key in results and results[r.key]["rows"]]
    seeds = sorted({row["seed"] for r in recipes for row in results[r.key]["rows"]})
    if not recipes:
        return
    fig, axes = plt.subplots(len(recipes), len(seeds), figsize=(2 * len(seeds), 2 * len(recipes)), squeeze=False)
    for i, recipe in enumerate(recipes):
        rows = {row["seed"]: row for row in results[recipe.key]["rows"]}
        for j, seed in enumerate(seeds):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            file = out / f"{recipe.key}-seed{seed}" / "samples.npy"
            m = np.asarray(means[recipe.data])
            ax.scatter(m[:, 0], m[:, 1], s=12, c="tab:red", marker="x", linewidths=0.8)
            if file.exists():
                samples = np.load(file)
                ax.scatter(samples[:, 0], samples[:, 1], s=0.5, alpha=0.3, c="tab:blue")
                row = rows.get(seed, {})
                if row.get("modes") is not None:
                    ax.set_title(f"seed {seed}: {row['modes']} modes, {100 * row['high_quality']:.1f} %", fontsize=7)
            if j == 0:
                ax.set_ylabel(recipe.label, fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0-4", help="seeds, e.g. 0-4 or 0,2 (default 0-4)")
    parser.add_argument("--only", choices=("ring", "grid"), help="one benchmark only")
    keys = ", ".join(r.key for r in RECIPES)
    parser.add_argument("--recipes", help=f"comma-separated recipes to run, of: {keys} (default: all but --pacgan's)")
    parser.add_argument("--pacgan", action="store_true", help="include grid25_pacgan.game (400,000 steps: hours)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at once (each takes one thread)")
    parser.add_argument("--out", type=Path, default=ROOT / "runs/mode_collapse", help="the runs' folders")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks/results", help="where the table goes")
    args = parser.parse_args()
    seeds = parse_seeds(args.seeds)
    chosen = [
        r for r in RECIPES
        if (args.only in (None, r.data)) and (args.pacgan or not r.long)
        and (not args.recipes or r.key in args.recipes.split(","))
    ]  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    jobs = [(recipe, seed) for recipe in chosen for seed in seeds]
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:  # each job is its own process
        rows = list(pool.map(lambda job: (job[0], run_one(job[0], job[1], args.out)), jobs))
    results: dict[str, dict] = {}
    for recipe in chosen:
        mine = [row for r, row in rows if r is recipe]
        results[recipe.key] = {"label": recipe.label, "game": recipe.game, "args": list(recipe.args), "rows": mine,
                               "summary": summary(mine)}  # fmt: skip
    text = table(results)
    print(text)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "mode_collapse.json").write_text(json.dumps(results, indent=1))
    (args.results / "mode_collapse.txt").write_text(text + "\n")
    picture(results, args.out, args.results / "mode_collapse.png")
    print(f"\ntable and picture: {args.results}/mode_collapse.{{txt,json,png}}")


if __name__ == "__main__":
    main()
