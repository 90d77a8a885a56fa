"""Sweeps: the grid, vectorised runs equal their sequential twins, processes mode, fallbacks."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

import solvers
from gamedsl.sweep.grid import expand, parse_seeds, split_top_level

COMMON = ["--steps", "6", "--set", "batch=32", "--set", "dtype=float64", "--set", "log_every=2", "--set", "image_every=3"]


def _params(run_dir):
    return {p.name: torch.load(p, weights_only=True) for p in sorted((run_dir / "params").glob("*.pt"))}


LR_GRID = (["--set", "optimizer.lr=1e-4,3e-4"], [])
GRIDS = {  # solver -> (a grid over what its step depends on, fixed settings); the others: LR_GRID
    "consensus": (["--set", "solver.gamma=1,10", "--set", "optimizer.lr=1e-4,3e-4"], []),
    "momentum": (["--set", "solver.beta=-0.5,0.5"], []),
    "past_extragradient": (["--set", "optimizer.beta1=0.5,0.9"], ["--set", "optimizer=adam(lr=1e-3)"]),
    "sga": (["--set", "solver.lam=0.5,2"], ["--set", "solver.align=true"]),
}
VECTORISED = [name for name in solvers.available() if solvers.SOLVERS.cls(name).vectorizes]


@pytest.mark.parametrize("solver", VECTORISED)
def test_vectorised_configurations_equal_their_sequential_twins(cli, tmp_path, solver):
    grid, fixed = GRIDS.get(solver, LR_GRID)
    sweep = cli("sweep", "games/mog.game", "--solver", solver, *grid, *fixed, "--seeds", "0-1", *COMMON, "--out", tmp_path / "s", "-q")
    assert sweep.code == 0, sweep.stderr
    assert "vectorised in one process" in sweep.stderr
    rows = list(csv.DictReader(open(tmp_path / "s" / "sweep.csv")))
    assert len(rows) == 2 ** grid.count("--set") * 2  # two values per setting, two seeds
    for folder in (tmp_path / "s").iterdir():
        if not folder.is_dir():
            continue
        settings = dict(part.split("=") for part in folder.name.split(","))
        sets = [f"{'solver' if k in ('gamma', 'beta', 'lam') else 'optimizer'}.{k}={v}" for k, v in settings.items() if k != "seed"]
        twin = tmp_path / "twins" / folder.name
        flags = fixed + [flag for s in sets for flag in ("--set", s)]
        result = cli("solve", "games/mog.game", "--solver", solver, "--seed", settings["seed"], *COMMON, *flags, "--out", twin, "-q")
        assert result.code == 0, result.stderr
        a, b = _params(folder), _params(twin)
        for name in a:
            for key in a[name]:
                assert torch.allclose(a[name][key], b[name][key], rtol=0, atol=1e-10), (folder.name, name, key)


def test_processes_mode_and_its_outputs(cli, tmp_path):
    result = cli("sweep", "games/bilinear.game", "--set", "optimizer.lr=0.05,0.1", "--steps", "20", "--mode", "processes",
                 "--jobs", "2", "--out", tmp_path, "-q")  # fmt: skip
    assert result.code == 0, result.stderr
    rows = list(csv.DictReader(open(tmp_path / "sweep.csv")))
    assert [r["optimizer.lr"] for r in rows] == ["0.05", "0.1"]
    assert all(r["status"] == "finished" for r in rows)
    assert float(rows[1]["grad_norm_sq"]) < float(rows[0]["grad_norm_sq"])  # larger steps contract faster (consensus)
    assert (tmp_path / "sweep.png").stat().st_size > 1000


def test_structural_differences_fall_back_to_processes(cli, tmp_path):
    result = cli("sweep", "games/bilinear.game", "--set", "solver=simga,consensus", "--steps", "3", "--out", tmp_path, "-q")
    assert result.code == 0, result.stderr
    assert "as processes" in result.stderr and "differ in 'solver'" in result.stderr
    refused = cli("sweep", "games/bilinear.game", "--set", "solver=simga,consensus", "--mode", "vectorized", "--out", tmp_path / "x")
    assert refused.code == 2 and "cannot run vectorised" in refused.stderr


@pytest.mark.parametrize("solver", [name for name in solvers.available() if name not in VECTORISED] + ["debiased"])
def test_methods_without_a_vectorised_step_are_refused(cli, tmp_path, solver):
    """What a method declares (`vectorizes`, a per-example parameter set to true) decides: GMRES's
    host-side decisions (cgd, acgd) and debiased consensus's per-example fields are not vmapped."""
    flags = ["--solver", "consensus", "--set", "solver.debias=true"] if solver == "debiased" else ["--solver", solver]
    grid = ["--set", "optimizer.lr=0.05,0.1", "--steps", "2", "--out", tmp_path]
    refused = cli("sweep", "games/bilinear.game", *flags, *grid, "--mode", "vectorized")
    assert refused.code == 2 and f"solver '{flags[1]}' has no vectorised form" in refused.stderr, refused.stderr


def test_the_declaration_decides_what_runs_vectorised(cli, tmp_path, monkeypatch):
    """No list beside the methods: a method that declares `vectorizes = False` is refused at once."""
    grid = ["--set", "optimizer.lr=0.05,0.1", "--steps", "2", "--mode", "vectorized"]
    monkeypatch.setattr(solvers.SOLVERS.cls("simga"), "vectorizes", False)
    refused = cli("sweep", "games/bilinear.game", "--solver", "simga", *grid, "--out", tmp_path / "a")
    assert refused.code == 2 and "solver 'simga' has no vectorised form" in refused.stderr, refused.stderr


def test_grid_expansion():
    assert split_top_level("adam(lr=1e-3, beta1=0.5), sgd, [1, 2]") == ["adam(lr=1e-3, beta1=0.5)", "sgd", "[1, 2]"]
    assert parse_seeds("0-2,7") == [0, 1, 2, 7]
    points = expand(["solver.gamma=0.1,1,10", "optimizer.lr=1e-4,2e-4", "batch=64"], [0, 1])
    assert len(points) == 12
    assert points[0].name == "gamma=0.1,lr=1e-4,seed=0" and points[0].group == "solver.gamma=0.1, optimizer.lr=1e-4"
    assert [o.key for o in points[0].overrides] == ["solver.gamma", "optimizer.lr", "batch"]


def test_bad_seeds_are_a_usage_error(cli, tmp_path):
    result = cli("sweep", "games/bilinear.game", "--seeds", "a-b", "--out", tmp_path)
    assert result.code == 2 and "--seeds takes a range or a list" in result.stderr


def test_an_unknown_metric_is_refused_before_any_run(cli, tmp_path):
    typo = cli("sweep", "games/bilinear.game", "--set", "optimizer.lr=0.05,0.1", "--steps", "3", "--metric", "hq",
               "--out", tmp_path / "a")  # fmt: skip
    assert typo.code == 2 and "--metric 'hq'" in typo.stderr and "grad_norm_sq" in typo.stderr
    assert not (tmp_path / "a").exists()  # refused before the sweep directory, let alone a run
    close = cli("sweep", "games/bilinear.game", "--steps", "3", "--metric", "grad_norm_s", "--mode", "processes",
                "--out", tmp_path / "b")  # fmt: skip
    assert close.code == 2 and "did you mean 'grad_norm_sq'?" in close.stderr and not (tmp_path / "b").exists()


def test_a_metric_by_its_last_part_is_plotted(cli, tmp_path):
    result = cli("sweep", "games/mog.game", "--set", "solver.gamma=1,10", "--metric", "high_quality", *COMMON,
                 "--out", tmp_path, "-q")  # fmt: skip
    assert result.code == 0, result.stderr
    assert "mixture/high_quality" in result.stdout and (tmp_path / "sweep.png").exists()


def test_both_spellings_of_vectorised(cli, tmp_path):
    for spelling in ("vectorised", "vectorized"):
        result = cli("sweep", "games/bilinear.game", "--set", "optimizer.lr=0.05,0.1", "--steps", "3",
                     "--mode", spelling, "--out", tmp_path / spelling, "-q")  # fmt: skip
        assert result.code == 0 and "vectorised in one process" in result.stderr, result.stderr
    wrong = cli("sweep", "games/bilinear.game", "--mode", "vectorise", "--out", tmp_path / "x")
    assert wrong.code == 2 and "did you mean 'vectorised'?" in wrong.stderr


def test_vectorised_runs_log_the_tags_of_solve(cli, tmp_path):
    """The same scalars under the same TensorBoard tags, whichever way a run was made."""
    from gamedsl.sweep.processes import history

    sweep = cli("sweep", "games/mog.game", "--set", "solver.gamma=1,10", *COMMON, "--out", tmp_path / "s", "-q")
    assert sweep.code == 0, sweep.stderr
    solve = cli("solve", "games/mog.game", "--set", "solver.gamma=10", *COMMON, "--out", tmp_path / "r", "-q")
    assert solve.code == 0, solve.stderr
    tags = {key for key in history(tmp_path / "r") if not key.endswith("@step")}
    assert {"mixture/modes", "optimizer/learning_rate", "utility/D", "grad_norm_sq"} <= tags
    twin = tmp_path / "s" / "gamma=10,seed=0"
    assert {key for key in history(twin) if not key.endswith("@step")} == tags


def test_curves_of_one_point_are_drawn(tmp_path):
    """Each configuration logged once (steps < log_every): the picture must show the points."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import to_rgb

    from gamedsl.sweep import report
    from gamedsl.sweep.vectorized import Outcome

    points = expand(["solver.gamma=1,10"], [0])
    outcomes = [Outcome(history={"grad_norm_sq": [v], "grad_norm_sq@step": [5.0]}) for v in (0.1, 1.0)]
    fig = report.figure(points, outcomes, "grad_norm_sq", "one point each")
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    pixels = np.asarray(canvas.buffer_rgba())[..., :3].astype(int)
    ax = fig.axes[0]
    for line, value in zip(ax.get_lines(), (0.1, 1.0)):
        x, y = ax.transData.transform((5.0, value))
        row, col = pixels.shape[0] - int(round(y)), int(round(x))
        colour = 255 * np.array(to_rgb(line.get_color()))
        assert np.abs(pixels[row - 1 : row + 2, col - 1 : col + 2] - colour).sum(-1).min() < 60, value
