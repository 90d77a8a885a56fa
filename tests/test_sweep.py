"""Sweeps: the grid, vectorised runs equal their sequential twins, processes mode, fallbacks."""

from __future__ import annotations

import csv

import pytest
import torch

from gamedsl.sweep.grid import expand, parse_seeds, split_top_level

COMMON = ["--steps", "6", "--set", "batch=32", "--set", "dtype=float64", "--set", "log_every=2", "--set", "image_every=3"]


def _params(run_dir):
    return {p.name: torch.load(p, weights_only=True) for p in sorted((run_dir / "params").glob("*.pt"))}


@pytest.mark.parametrize(
    "solver, grid, fixed",
    [
        ("consensus", ["--set", "solver.gamma=1,10", "--set", "optimizer.lr=1e-4,3e-4"], []),
        ("altga", ["--set", "optimizer.lr=1e-4,3e-4"], []),
        ("momentum", ["--set", "solver.beta=-0.5,0.5"], []),
        ("extragradient", ["--set", "optimizer.lr=1e-4,3e-4"], []),
        ("past_extragradient", ["--set", "optimizer.beta1=0.5,0.9"], ["--set", "optimizer=adam(lr=1e-3)"]),
        ("optimistic", ["--set", "optimizer.lr=1e-4,3e-4"], []),
        ("sga", ["--set", "solver.lam=0.5,2"], ["--set", "solver.align=true"]),
    ],
)
def test_vectorised_configurations_equal_their_sequential_twins(cli, tmp_path, solver, grid, fixed):
    sweep = cli("sweep", "games/mog.game", "--solver", solver, *grid, *fixed, "--seeds", "0-1", *COMMON, "--out", tmp_path / "s", "-q")
    assert sweep.code == 0, sweep.stderr
    assert "vectorised in one process" in sweep.stderr
    rows = list(csv.DictReader(open(tmp_path / "s" / "sweep.csv")))
    assert len(rows) == (8 if solver == "consensus" else 4)
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
