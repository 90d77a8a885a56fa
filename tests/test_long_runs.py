"""Long runs: TensorBoard, checkpoints, resume, signals, the divergence guard, spectra, plots."""

from __future__ import annotations

import math
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from tests.conftest import ROOT

SMALL = ["--batch", "32", "-q"]


def _params(run_dir):
    return {p.name: torch.load(p, weights_only=True) for p in sorted((run_dir / "params").glob("*.pt"))}


def test_tensorboard_events_hold_scalars_images_and_config(cli, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    result = cli("solve", "games/mog.game", "--steps", "30", *SMALL, "--out", out, "--set", "log_every=10", "--set", "image_every=10")
    assert result.code == 0, result.stderr
    events = EventAccumulator(str(out), size_guidance={"images": 0, "scalars": 0, "tensors": 0})
    events.Reload()
    tags = events.Tags()
    expected = {"utility/D", "utility/G", "grad_norm/D", "grad_norm/G", "grad_norm_sq", "consensus_L", "optimizer/learning_rate",
                "speed/steps_per_second", "mixture/modes", "mixture/high_quality"}  # fmt: skip
    assert expected <= set(tags["scalars"])
    assert [e.step for e in events.Scalars("utility/D")] == [10, 20, 30]
    assert len(events.Images("samples/density")) == 4  # steps 0, 10, 20, 30
    assert "config/text_summary" in tags["tensors"]
    text = events.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "consensus" in text and "player G controls G" in text


@pytest.mark.parametrize("solver", ["consensus", "momentum", "altga"])
def test_stop_and_resume_is_bit_identical(cli, tmp_path, solver):
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert cli("solve", "games/mog.game", "--solver", solver, "--steps", "24", *SMALL, "--out", straight).code == 0
    assert cli("solve", "games/mog.game", "--solver", solver, "--steps", "10", *SMALL, "--out", split).code == 0
    resumed = cli("solve", "--resume", split, "--steps", "24", "-q")
    assert resumed.code == 0, resumed.stderr
    a, b = _params(straight), _params(split)
    assert a.keys() == b.keys()
    for name in a:
        for key in a[name]:
            assert torch.equal(a[name][key], b[name][key]), (name, key)
    ca = torch.load(straight / "checkpoint.pt", weights_only=True)
    cb = torch.load(split / "checkpoint.pt", weights_only=True)
    assert ca["step"] == cb["step"] == 24
    for group_a, group_b in zip(ca["run"]["optimizer"], cb["run"]["optimizer"], strict=True):
        for key, tensors in group_a.items():
            assert all(torch.equal(x, y) for x, y in zip(tensors, group_b[key], strict=True))
    for key, value in ca["rng"].items():
        assert all(torch.equal(x, y) for x, y in zip(value, cb["rng"][key]))


def _launch(out, *extra):
    return subprocess.Popen(
        [sys.executable, "-m", "gamedsl", "solve", "games/mog.game", "--steps", "1000000", "--batch", "16", "--out", str(out),
         "--set", "checkpoint_every=20", "-q", *extra],  # fmt: skip
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)},
    )


def _wait_for(path, proc, timeout=120):
    deadline = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "no checkpoint appeared"
        time.sleep(0.2)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_saves_a_checkpoint_and_says_how_to_resume(cli, tmp_path, sig):
    out = tmp_path / "run"
    proc = _launch(out)
    _wait_for(out / "checkpoint.pt", proc)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert f"resume with: gamedsl solve --resume {out}" in stderr
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["step"] >= 20 and all(torch.isfinite(p).all() for p in state["run"]["params"])
    resumed = cli("solve", "--resume", out, "--steps", str(state["step"] + 5), "-q")
    assert resumed.code == 0, resumed.stderr
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == state["step"] + 5


@pytest.fixture
def finished_run(cli, tmp_path):
    out = tmp_path / "done"
    assert cli("solve", "games/mog.game", "--steps", "5", *SMALL, "--out", out).code == 0
    return out


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), "is not a readable checkpoint"),
        (lambda p: p.write_bytes(b"\x00garbage" * 100), "is not a readable checkpoint"),
        (lambda p: p.write_bytes(b""), "is not a readable checkpoint"),
        (lambda p: torch.save({"weights": torch.zeros(3)}, p), "is not a gamedsl checkpoint"),
        (lambda p: p.unlink(), "no checkpoint at"),
    ],
)
def test_damaged_checkpoints_give_clean_errors(cli, finished_run, damage, message):
    damage(finished_run / "checkpoint.pt")
    result = cli("solve", "--resume", finished_run)
    assert result.code == 5 and message in result.stderr and "Traceback" not in result.stderr


def test_checkpoint_of_another_game_is_refused(cli, finished_run, tmp_path):
    other = tmp_path / "other"
    assert cli("solve", "games/bilinear.game", "--steps", "3", "-q", "--out", other).code == 0
    shutil.copy(other / "checkpoint.pt", finished_run / "checkpoint.pt")
    result = cli("solve", "--resume", finished_run)
    assert result.code == 5 and "was made for another game ('bilinear')" in result.stderr


def test_resume_of_a_non_run_directory(cli, tmp_path):
    result = cli("solve", "--resume", tmp_path)
    assert result.code == 5 and "is not a run directory" in result.stderr


def test_resume_refuses_conflicting_settings(cli, finished_run):
    result = cli("solve", "--resume", finished_run, "--batch", "8")
    assert result.code == 2 and "drop --batch" in result.stderr


NAN_GAME = """game blows_up "P's utility log(a) is finite until a reaches 0 at step 2"
param a = 1
param b = 1
player P controls a maximizes log(a) - 3 * a
player Q controls b maximizes -b^2
solve { solver = simga  optimizer = sgd(lr=0.5)  steps = 10  checkpoint_every = 1 }
"""


def test_non_finite_values_stop_the_run_and_keep_the_last_good_checkpoint(cli, tmp_path):
    game = tmp_path / "nan.game"
    game.write_text(NAN_GAME)
    out = tmp_path / "run"
    result = cli("solve", game, "--out", out, "-q")
    assert result.code == 6
    assert "step 2: non-finite utility of player P" in result.stderr
    assert "last good checkpoint" in result.stderr and "Traceback" not in result.stderr
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["step"] == 1
    assert all(torch.isfinite(p).all() for p in state["run"]["params"])
    assert float(state["run"]["params"][0]) == pytest.approx(1 + 0.5 * (1 / 1 - 3))  # a after one step: 0


def test_spectrum_of_the_dirac_gan_matches_the_closed_form(cli, tmp_path):
    """At theta = psi = 1, v' = [[-s' , -(s + s')], [s + s', s']] with s = sigmoid(1), s' = s(1 - s)."""
    result = cli("spectrum", "games/dirac_gan.game", "--out", tmp_path, "--batches", "1", "--gamma", "1")
    assert result.code == 0, result.stderr
    data = np.load(tmp_path / "spectrum.npz")
    s = 1 / (1 + math.exp(-1))
    d = s * (1 - s)
    J = np.array([[-d, -(s + d)], [s + d, d]])
    np.testing.assert_allclose(np.sort_complex(data["v_0"]), np.sort_complex(np.linalg.eigvals(J)), atol=1e-6)
    np.testing.assert_allclose(np.sort_complex(data["w_0"]), np.sort_complex(np.linalg.eigvals(J - J.T @ J)), atol=1e-6)
    assert (tmp_path / "spectrum.png").stat().st_size > 1000


def test_arnoldi_finds_the_dense_eigenvalues_of_largest_magnitude():
    import gamedsl
    from gamedsl.compile.torch_game import TorchGame
    from gamedsl.numeric.spectrum import spectrum

    text = """game t
data x ~ normal(dim=3)
latent z ~ normal(2)
network G = mlp(2 -> 3, hidden=[4], activation=tanh)
network D = mlp(3 -> 1, hidden=[4], activation=tanh)
player D controls D maximizes gan(critic=D, real=x, fake=G(z))
player G controls G maximizes -E[gan.g2(D(G(z)))]
"""
    game = TorchGame(gamedsl.loads(text), batch=64, dtype="float64")
    dense = spectrum(game, 2.0, batches=3)
    arnoldi = spectrum(game, 2.0, batches=3, dense=False, k=6, which="LM")
    for a, d in ((arnoldi.v, dense.v), (arnoldi.w, dense.w)):
        np.testing.assert_allclose(np.sort(np.abs(a)), np.sort(np.abs(d))[-6:], rtol=1e-8)


def test_spectrum_of_a_run_directory_and_the_figure_two_panel(cli, tmp_path):
    out = tmp_path / "run"
    text = ROOT.joinpath("games/mog.game").read_text().replace("[16, 16, 16, 16]", "[4]")
    game = tmp_path / "small_mog.game"
    game.write_text(text)
    assert cli("solve", game, "--steps", "20", *SMALL, "--out", out, "--set", "image_every=5").code == 0
    result = cli("spectrum", out, "--batches", "2")
    assert result.code == 0, result.stderr
    data = np.load(out / "spectra" / "spectrum.npz")
    assert list(data["labels"]) == ["initialisation", "step 20"]
    assert data["v_0"].shape == data["v_1"].shape == (sum(p.numel() for p in _params(out)["D.pt"].values()) + sum(
        p.numel() for p in _params(out)["G.pt"].values()),)
    assert "w' (gamma=10)" in result.stdout
    result = cli("plot", out, "--steps", "0,10,20")
    assert result.code == 0 and (out / "figure2.png").exists()
    assert "steps 0, 10, 20" in result.stdout


def test_plot_refuses_a_run_without_snapshots(cli, tmp_path):
    out = tmp_path / "r"
    assert cli("solve", "games/mog.game", "--steps", "2", *SMALL, "--set", "image_every=0", "--out", out).code == 0
    result = cli("plot", out)
    assert result.code == 5 and "has no snapshots" in result.stderr


def test_plot_refuses_a_game_whose_samples_are_not_2d_points(cli, tmp_path):
    out = tmp_path / "r"
    assert cli("solve", "games/bilinear.game", "--steps", "2", "-q", "--out", out).code == 0
    result = cli("plot", out)
    assert result.code == 2 and "draws games whose samples are 2-D points" in result.stderr
