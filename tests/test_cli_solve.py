"""`gamedsl solve` and `gamedsl solvers` as a user runs them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import solvers


def test_solve_writes_the_run_directory(cli, tmp_path):
    out = tmp_path / "run"
    result = cli("solve", "games/mog.game", "--steps", "30", "--batch", "64", "--out", out)
    assert result.code == 0, result.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["config"]["solver"] == "consensus" and config["config"]["steps"] == 30
    assert config["config"]["optimizer_params"] == {"lr": 1e-4, "alpha": 0.9, "eps": 1e-10}
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 30 and metrics["status"] == "finished"
    assert set(metrics["mixture"]) >= {"modes", "high_quality", "reverse_kl"}
    assert np.load(out / "samples.npy").shape == (2500, 2)
    state = torch.load(out / "params" / "G.pt", weights_only=True)
    assert state["0.weight"].shape == (16, 16)
    assert "modes" in result.stdout and "Traceback" not in result.stderr


def test_same_seed_same_numbers(cli, tmp_path):
    runs = []
    for name in ("a", "b"):
        cli("solve", "games/mog.game", "--steps", "20", "--batch", "32", "--seed", "7", "--out", tmp_path / name, "-q")
        runs.append(tmp_path / name)
    for name in ("G.pt", "D.pt"):
        a, b = (torch.load(r / "params" / name, weights_only=True) for r in runs)
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert np.array_equal(np.load(runs[0] / "samples.npy"), np.load(runs[1] / "samples.npy"))


def test_flags_and_sets_override_the_file(cli, tmp_path):
    out = tmp_path / "r"
    result = cli("solve", "games/bilinear.game", "--solver", "simga", "--set", "optimizer.lr=0.05", "--steps", "10", "--out", out, "-q")
    assert result.code == 0, result.stderr
    config = json.loads((out / "config.json").read_text())["config"]
    assert config["solver"] == "simga" and config["solver_params"] == {}
    assert config["optimizer_params"] == {"lr": 0.05} and config["steps"] == 10
    assert "solver.gamma=1.0 from the game file does not apply to simga" in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--solver", "consensuss"], "unknown solver 'consensuss'"),
        (["--set", "solver.gama=1"], "has no parameter 'gama'"),
        (["--set", "stepz=3"], "unknown setting 'stepz'"),
        (["--set", "steps=many"], "expected a whole number"),
        (["--set", "optimizer=adagrad(lr=1)"], "unknown optimizer 'adagrad'"),
        (["--set", "solver.gamma=-1"], "gamma must be non-negative"),
        (["--device", "tpu"], "expected auto, cpu, cuda or cuda:N"),
        (["--set", "solver.gamma"], "--set takes key=value"),
    ],
)
def test_bad_settings_are_clear_usage_errors(cli, tmp_path, args, message):
    result = cli("solve", "games/bilinear.game", "--out", tmp_path / "x", *args)
    assert result.code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "x").exists()


def test_unknown_flag_is_a_usage_error(cli):
    result = cli("solve", "games/bilinear.game", "--bogus")
    assert result.code == 2 and "No such option" in result.stderr and "Traceback" not in result.stderr


def test_invalid_game_file_exits_3(cli, tmp_path):
    bad = tmp_path / "bad.game"
    bad.write_text("game g\nparam a = 1\nplayer P controls a maximizes b\n")
    result = cli("solve", bad)
    assert result.code == 3
    assert f"{bad}:3:31: error: undefined name 'b'" in result.stderr


def test_solvers_lists_every_method_with_defaults(cli):
    result = cli("solvers", "--json")
    data = json.loads(result.stdout)
    assert set(data["solver"]) == set(solvers.available())
    assert set(data["optimizer"]) == set(solvers.optimizers.available())
    assert data["solver"]["consensus"]["parameters"]["gamma"]["default"] == 10.0
    assert data["optimizer"]["rmsprop"]["parameters"]["alpha"]["default"] == 0.99


def test_version(cli):
    result = cli("--version")
    assert result.code == 0 and result.stdout.startswith("gamedsl ")
