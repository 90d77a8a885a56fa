"""Every solver on the same games: the catalog's small games and the mog ring.

    python benchmarks/solvers.py small          # minutes: every solver x sgd, rmsprop, adam on the small games
    python benchmarks/solvers.py mog --jobs 2   # hours: every solver on mog.game, 50,000 steps, seeds 0-2
    python benchmarks/solvers.py timing         # cost of a mog step relative to simga, interleaved blocks
    python benchmarks/solvers.py figure         # docs/solvers_trajectories.png: bilinear and Dirac-GAN paths
    python benchmarks/solvers.py docs           # the tables into docs/solvers.md

Results accumulate in benchmarks/results/solvers.json, written after every finished run, so
a crash loses nothing: `mog` skips the runs already there and resumes a run from its last
checkpoint (`gamedsl solve --resume`) when one was cut off. Each mog run is the real CLI,
`gamedsl solve games/mog.game --solver ... --seed S`, in its own process with one thread.
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
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# this script shares its name with the `solvers` package: import the package, not the script
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
RESULTS = ROOT / "benchmarks" / "results" / "solvers.json"
RUNS = ROOT / "runs" / "solvers"
DOC = ROOT / "docs" / "solvers.md"
FIGURE = ROOT / "docs" / "solvers_trajectories.png"

from gamedsl.sweep.grid import parse_seeds  # noqa: E402

ORDER = ["simga", "altga", "momentum", "consensus", "smoothing",  # the paper's, then the others
         "extragradient", "past_extragradient", "optimistic", "sga", "cgd", "acgd"]  # fmt: skip
SMALL = ["bilinear", "dirac_gan", "dirac_gan_nonsat", "quadratic_fig1b", "not_nash", "several_stationary"]
OPTIMIZERS = ["sgd", "rmsprop", "adam"]
TOLERANCE = 1e-3  # converged: distance to the nearest stationary point <= TOLERANCE times its start

# The mog ring, paper setup (games/mog.game: RMSProp lr 1e-4, alpha 0.9, eps 1e-10, batch 512,
# 50,000 steps). CGD refuses RMSProp (its step size is part of its local game); its adaptive
# form ACGD runs with the same step size, decay and epsilon inside the local game instead.
MOG = {
    "simga": ("simga", None),
    "altga": ("altga", None),
    "momentum": ("momentum(beta=0.5)", None),
    "consensus": ("consensus(gamma=10)", None),
    "smoothing": ("smoothing(gamma=10)", None),
    "extragradient": ("extragradient", None),
    "past_extragradient": ("past_extragradient", None),
    "optimistic": ("optimistic", None),
    "sga": ("sga(lam=1)", None),
    "acgd": ("acgd(beta2=0.9, eps=1e-10)", "sgd(lr=1e-4)"),
}


def ordered(names: list[str]) -> list[str]:
    """ORDER first, then any solver registered since, alphabetically."""
    return [n for n in ORDER if n in names] + sorted(n for n in names if n not in ORDER)


# ---- results file ---------------------------------------------------------------------------------


def load() -> dict:
    return json.loads(RESULTS.read_text()) if RESULTS.exists() else {}


def save(results: dict) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    tmp.replace(RESULTS)


# ---- the mog ring -----------------------------------------------------------------------------------


def mog_run(method: str, seed: int, steps: int) -> dict | None:
    """One `gamedsl solve` of mog.game; None if it was interrupted (to be resumed later)."""
    solver, optimizer = MOG[method]
    directory = RUNS / f"mog-{method}-seed{seed}"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    if (directory / "checkpoint.pt").exists() and not (directory / "metrics.json").exists():
        cmd = ["--resume", str(directory), "--steps", str(steps)]
    else:
        cmd = [str(ROOT / "games/mog.game"), "--set", f"solver={solver}", "--seed", str(seed), "--steps", str(steps),
               "--set", "image_every=0", "--out", str(directory)]  # fmt: skip
        if optimizer:
            cmd += ["--set", f"optimizer={optimizer}"]
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "gamedsl", "solve", *cmd, "-q"], cwd=ROOT, env=env,
                          capture_output=True, text=True)  # fmt: skip
    if proc.returncode not in (0, 1, 6):  # interrupted or crashed: leave it for the next invocation
        print(f"mog {method} seed {seed}: exit {proc.returncode}\n{proc.stderr[-2000:]}", file=sys.stderr)
        return None
    metrics = json.loads((directory / "metrics.json").read_text()) if (directory / "metrics.json").exists() else {}
    mixture = metrics.get("mixture", {})
    return {
        "method": method,
        "solver": solver,
        "optimizer": optimizer or "rmsprop(lr=1e-4, alpha=0.9, eps=1e-10)",
        "seed": seed,
        "steps": metrics.get("steps", 0),
        "exit": proc.returncode,
        "status": metrics.get("status", "failed"),
        "modes": mixture.get("modes", 0),
        "high_quality": mixture.get("high_quality", 0.0),
        "reverse_kl": mixture.get("reverse_kl"),
        "seconds": metrics.get("seconds", time.perf_counter() - start),
        "steps_per_second": metrics.get("steps_per_second"),
        "cgd_iterations": metrics.get("final", {}).get("cgd_iterations"),
    }


def mog(seeds: list[int], steps: int, jobs: int, methods: list[str]) -> None:
    results = load()
    done = results.setdefault("mog", {})
    todo = [(m, s) for s in seeds for m in methods if f"{m}/{s}" not in done]  # seed-major: every method early
    print(f"mog: {len(todo)} runs to do, {jobs} at a time", flush=True)
    with ThreadPoolExecutor(jobs) as pool:
        futures = {pool.submit(mog_run, m, s, steps): (m, s) for m, s in todo}
        for future in as_completed(futures):
            m, s = futures[future]
            row = future.result()
            if row is None:
                continue
            results = load()  # another invocation (timing, small) may have written meanwhile
            results.setdefault("mog", {})[f"{m}/{s}"] = row
            save(results)
            print(f"mog {m} seed {s}: {row['status']}, modes {row['modes']}, HQ {100 * row['high_quality']:.1f} %, "
                  f"{row['seconds'] / 60:.1f} min", flush=True)  # fmt: skip


def timing(blocks: int, block_steps: int) -> None:
    """Seconds per mog step of every method, interleaved blocks (background load hits all alike)."""
    import torch

    import gamedsl
    import solvers
    from gamedsl.semantics.settings import resolve
    from gamedsl.sweep.grid import parse_override

    torch.set_num_threads(1)
    spec = gamedsl.load(ROOT / "games/mog.game")
    runs = {}
    for method, (solver, optimizer) in MOG.items():
        sets = [f"solver={solver}"] + ([f"optimizer={optimizer}"] if optimizer else [])
        config = resolve(spec.settings, [parse_override(s) for s in sets], {})
        from gamedsl.compile.torch_game import TorchGame

        run = solvers.Run(TorchGame(spec, batch=512, seed=0), config.make_solver(), config.make_optimizer())
        for _ in range(5):
            run.step()
        runs[method] = run
    times: dict[str, list[float]] = {m: [] for m in runs}
    order = list(runs)
    for block in range(blocks):
        for method in order[block % len(order) :] + order[: block % len(order)]:  # a different order each round
            run = runs[method]
            start = time.perf_counter()
            for _ in range(block_steps):
                run.step()
            times[method].append((time.perf_counter() - start) / block_steps)
    per_step = {m: statistics.median(t) for m, t in times.items()}
    results = load()
    results["timing"] = {
        "blocks": blocks,
        "block_steps": block_steps,
        "seconds_per_step": per_step,
        "relative": {m: t / per_step["simga"] for m, t in per_step.items()},
    }
    save(results)
    for m, t in per_step.items():
        print(f"{m:<20} {1000 * t:8.2f} ms/step  {t / per_step['simga']:6.2f} x simga")


# ---- the catalog's small games --------------------------------------------------------------------


def small_solver(spec, solver: str, optimizer: str):
    """The solver as `gamedsl solve FILE --solver NAME` builds it (the file's gamma follows
    consensus and smoothing), with `optimizer` at the file's step size and its other defaults."""
    from gamedsl.semantics.settings import resolve
    from gamedsl.sweep.grid import parse_override

    h = resolve(spec.settings, [], {}).optimizer_params["lr"]
    config = resolve(spec.settings, [parse_override(f"optimizer={optimizer}(lr={h})")], {"solver": solver})
    return config.make_solver(), config.make_optimizer(), h


def stationary_points(name: str):
    """The game's stationary points, from `gamedsl analyze` (exact for every small catalog game)."""
    import numpy as np

    import gamedsl
    from gamedsl.symbolic.analyze import analyze

    return np.array([p.point.x for p in analyze(gamedsl.load(ROOT / f"games/{name}.game")).points])


def small_run(name: str, solver: str, optimizer: str, steps: int, points) -> dict:
    """From the file's start: does the run end within TOLERANCE times the starting distance of
    a stationary point, from which step on, and at what cost per step. (|v| would not do: the
    Dirac-GAN's field also vanishes far out, where the sigmoid saturates.)"""
    import numpy as np

    import gamedsl
    import solvers
    from gamedsl.numeric.verify import torch_game
    from solvers.field import GameField

    spec = gamedsl.load(ROOT / f"games/{name}.game")
    game = torch_game(spec)
    method, opt, h = small_solver(spec, solver, optimizer)
    try:
        run = solvers.Run(game, method, opt)
    except solvers.SolverError as exc:
        return {"status": "refused", "reason": exc.message}

    def distances() -> np.ndarray:
        return np.linalg.norm(points - GameField(game).x().numpy(), axis=1)

    start = distances().min()
    history, seconds, status = [distances()], 0.0, "not converged"
    for k in range(1, steps + 1):
        clock = time.perf_counter()
        run.step()
        seconds += time.perf_counter() - clock
        history.append(distances())
        if not np.all(np.isfinite(history[-1])) or history[-1].min() > 1e3 * max(start, 1.0):
            status = "diverged"
            break
    d = history[-1]
    nearest = int(np.argmin(d)) if np.all(np.isfinite(d)) else None
    reached = None
    if status != "diverged" and d[nearest] <= TOLERANCE * start:
        status = "converged"  # and the first step from which it stayed within the tolerance of that point
        outside = [k for k, row in enumerate(history) if row[nearest] > TOLERANCE * start]
        reached = outside[-1] + 1
    return {"status": status, "steps_to_tolerance": reached, "distance": float(d.min()), "start": float(start),
            "nearest": None if nearest is None else [round(float(c), 4) for c in points[nearest]],
            "seconds_per_step": seconds / k, "h": h}  # fmt: skip


def small(steps: int) -> None:
    import solvers
    import torch

    torch.set_num_threads(1)
    rows = {}
    for name in SMALL:
        points = stationary_points(name)
        for optimizer in OPTIMIZERS:
            for solver in ordered(solvers.available()):
                rows[f"{name}/{solver}/{optimizer}"] = small_run(name, solver, optimizer, steps, points)
                row = rows[f"{name}/{solver}/{optimizer}"]
                print(f"{name:<20} {solver:<20} {optimizer:<8} {row['status']:<14} {row.get('steps_to_tolerance')}", flush=True)
    results = load()
    results["small"] = {"steps": steps, "tolerance": TOLERANCE, "runs": rows}
    save(results)


# ---- trajectories (Mescheder et al.'s Dirac-GAN figures) ---------------------------------------------------


def trajectory(name: str, solver: str, steps: int):
    """Positions from the file's start with sgd at the file's step size."""
    import numpy as np

    import gamedsl
    import solvers
    from gamedsl.numeric.verify import torch_game
    from solvers.field import GameField

    spec = gamedsl.load(ROOT / f"games/{name}.game")
    game = torch_game(spec)
    method, opt, h = small_solver(spec, solver, "sgd")
    run = solvers.Run(game, method, opt)
    points = [GameField(game).x().numpy().copy()]
    for _ in range(steps):
        run.step()
        points.append(GameField(game).x().numpy().copy())
        if not np.all(np.isfinite(points[-1])) or np.abs(points[-1]).max() > 10:
            break
    return np.array(points), h


def figure(steps: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np
    import torch

    import gamedsl
    import solvers
    from gamedsl.numeric.verify import torch_game
    from solvers.field import GameField

    torch.set_num_threads(1)
    methods = ordered(solvers.available())
    games = [("bilinear", "φ (player P)", "θ (player Q)", (0, 1)), ("dirac_gan", "θ (generator)", "ψ (discriminator)", (1, 0))]
    cols = 6
    rows_per_game = math.ceil(len(methods) / cols)
    fig, axes = plt.subplots(rows_per_game * len(games), cols, figsize=(2.3 * cols, 2.4 * rows_per_game * len(games)))
    for g, (name, xlabel, ylabel, (ix, iy)) in enumerate(games):
        game = torch_game(gamedsl.load(ROOT / f"games/{name}.game"))
        field, batch = GameField(game), game.sample()
        grid = np.linspace(-2, 2, 17)
        X, Y = np.meshgrid(grid, grid)
        U, V = np.zeros_like(X), np.zeros_like(Y)
        for a in range(X.shape[0]):
            for b in range(X.shape[1]):
                x = np.zeros(2)
                x[ix], x[iy] = X[a, b], Y[a, b]
                v = field(torch.tensor(x), batch).detach().numpy()
                U[a, b], V[a, b] = v[ix], v[iy]
        for m, method in enumerate(methods):
            ax = axes[g * rows_per_game + m // cols, m % cols]
            points, h = trajectory(name, method, steps)
            ax.quiver(X, Y, U, V, color="0.75", width=0.004)
            ax.plot(points[:, ix], points[:, iy], lw=1.0, color="tab:blue")
            ax.plot(points[0, ix], points[0, iy], "o", color="tab:green", ms=4)
            ax.plot(points[-1, ix], points[-1, iy], "o", color="tab:red", ms=4)
            ax.plot(0, 0, "*", color="k", ms=7)
            ax.set_xlim(-2, 2)
            ax.set_ylim(-2, 2)
            ax.set_aspect("equal")
            ax.set_title(f"{name}: {method}", fontsize=8)
            ax.tick_params(labelsize=6)
            if m % cols == 0:
                ax.set_ylabel(ylabel, fontsize=7)
            if m // cols == rows_per_game - 1 or m + cols >= len(methods):
                ax.set_xlabel(xlabel, fontsize=7)
        for m in range(len(methods), rows_per_game * cols):
            axes[g * rows_per_game + m // cols, m % cols].axis("off")
    fig.suptitle(f"{steps} steps of sgd at each game's step size (bilinear h = 0.1, Dirac-GAN h = 0.2) from (1, 1); "
                 "green: start, red: end, star: the equilibrium", fontsize=9)  # fmt: skip
    fig.tight_layout()
    fig.savefig(FIGURE, dpi=110)
    print(f"wrote {FIGURE}")


# ---- docs/solvers.md ------------------------------------------------------------------------------------


def replace_between(text: str, key: str, body: str) -> str:
    begin, end = f"<!-- benchmark:{key} -->", f"<!-- /benchmark:{key} -->"
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{body.rstrip()}\n{end}{tail}"


def small_tables(data: dict) -> str:
    import solvers

    runs = data["runs"]
    out = []
    for optimizer in OPTIMIZERS:
        out.append(f"**{optimizer}** (lr = the game's h)\n")
        out.append("| solver | " + " | ".join(SMALL) + " |")
        out.append("|---|" + "---|" * len(SMALL))
        for solver in ordered(solvers.available()):
            cells = []
            for name in SMALL:
                row = runs.get(f"{name}/{solver}/{optimizer}")
                base = runs.get(f"{name}/simga/{optimizer}")
                if row is None:
                    cells.append("")
                elif row["status"] == "refused":
                    cells.append("refused")
                else:
                    cost = row["seconds_per_step"] / base["seconds_per_step"]
                    what = {"converged": f"✓ {row['steps_to_tolerance']}", "diverged": "diverges"}.get(row["status"], "✗")
                    if row["status"] == "converged" and not any(row["nearest"]):
                        what += " to the saddle" if name == "several_stationary" else ""
                    cells.append(f"{what} ({cost:.1f}×)")
            out.append(f"| {solver} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def mog_table(results: dict) -> str:
    rows = results.get("mog", {})
    relative = results.get("timing", {}).get("relative", {})
    out = ["| solver | optimizer | seeds | modes (of 8) | high quality | reverse KL | cost per step vs simga | minutes per run |",
           "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for method, (solver, optimizer) in MOG.items():
        mine = [r for key, r in sorted(rows.items()) if r["method"] == method]
        if not mine:
            out.append(f"| `{solver}` | {optimizer or 'rmsprop'} | 0 | not run yet | | | | |")
            continue
        modes = ", ".join(str(r["modes"]) for r in mine)
        hq = sum(r["high_quality"] for r in mine) / len(mine)
        kls = [r["reverse_kl"] for r in mine]
        kl = f"{sum(kls) / len(kls):.2f}" if all(k is not None for k in kls) else f"∞ ({sum(k is None for k in kls)} of {len(kls)} runs miss a mode)"
        mean_modes = sum(r["modes"] for r in mine) / len(mine)
        cost = f"{relative[method]:.1f}×" if method in relative else "—"
        minutes = sum(r["seconds"] for r in mine) / len(mine) / 60
        diverged = [str(r["seed"]) for r in mine if r["status"] == "diverged"]
        note = f" (diverged: seed {', '.join(diverged)})" if diverged else ""
        out.append(f"| `{solver}` | {optimizer or 'rmsprop'} | {len(mine)} | {mean_modes:.1f} ({modes}){note} | "
                   f"{100 * hq:.1f} % | {kl} | {cost} | {minutes:.0f} |")  # fmt: skip
    return "\n".join(out)


def docs() -> None:
    results = load()
    text = DOC.read_text()
    if "small" in results:
        text = replace_between(text, "small", small_tables(results["small"]))
    text = replace_between(text, "mog", mog_table(results))
    DOC.write_text(text)
    print(f"wrote {DOC}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("part", choices=["small", "mog", "timing", "figure", "docs"])
    parser.add_argument("--seeds", type=parse_seeds, default=parse_seeds("0-2"))
    parser.add_argument("--steps", type=int, help="steps per run (mog: 50,000; small: 2,000; figure: 500)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--methods", type=lambda t: t.split(","), default=list(MOG))
    parser.add_argument("--blocks", type=int, default=30)
    parser.add_argument("--block-steps", type=int, default=20)
    args = parser.parse_args()
    if args.part == "mog":
        mog(args.seeds, args.steps or 50000, args.jobs, args.methods)
    elif args.part == "small":
        small(args.steps or 2000)
    elif args.part == "timing":
        timing(args.blocks, args.block_steps)
    elif args.part == "figure":
        figure(args.steps or 500)
    else:
        docs()


if __name__ == "__main__":
    main()
