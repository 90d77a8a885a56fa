"""Ctrl-C and SIGTERM at every stage of a run: one message, exit 130, the last good checkpoint kept.

Signals before the training loop used to print a 30-60 line traceback (SIGINT) or kill the
process silently (SIGTERM); a signal during the final evaluation killed it; a second
signal had no effect until the step ended. In-process tests send real signals to this
process through the real handlers, at the point each test picks.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.conftest import ROOT
from tests.test_rundir import GAME


@pytest.fixture(autouse=True)
def restore_handlers():
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


@pytest.fixture
def game_file(tmp_path):
    path = tmp_path / "tiny.game"
    path.write_text(GAME)
    return path


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_start_up_is_one_line_and_exit_130(tmp_path, game_file, sig):
    proc = subprocess.Popen(
        [sys.executable, "-m", "gamedsl", "solve", str(game_file), "--out", str(tmp_path / "run"), "--steps", "100000"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(0.6)  # the interpreter is up; gamedsl is importing torch
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and stderr.strip(), stderr
    assert len(stderr.strip().splitlines()) <= 3, stderr


def _send_to_self(sig=signal.SIGTERM):
    os.kill(os.getpid(), sig)


def test_a_signal_before_the_first_step_saves_a_resumable_checkpoint(cli, tmp_path, game_file, monkeypatch):
    from gamedsl.training.session import Session

    write_config = Session.write_config

    def then_signal(self):
        write_config(self)
        _send_to_self(signal.SIGINT)

    monkeypatch.setattr(Session, "write_config", then_signal)
    out = tmp_path / "run"
    result = cli("solve", game_file, "--out", out, "-q")
    assert result.code == 130
    assert "SIGINT: stopped at step 1" in result.stderr and f"gamedsl solve --resume {out}" in result.stderr
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 1
    monkeypatch.undo()
    assert cli("solve", "--resume", out, "-q").code == 0


def test_a_signal_during_the_final_evaluation_keeps_the_checkpoint(cli, tmp_path, game_file, monkeypatch):
    from gamedsl.training.session import Session

    evaluate = Session.evaluate

    def signal_then_evaluate(self, poll=None):
        _send_to_self()
        return evaluate(self, poll)

    monkeypatch.setattr(Session, "evaluate", signal_then_evaluate)
    out = tmp_path / "run"
    result = cli("solve", game_file, "--out", out, "-q")
    assert result.code == 130, result.stderr
    assert "stopped during the final evaluation" in result.stderr and "Traceback" not in result.stderr
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 20
    assert not (out / "metrics.json").exists()
    monkeypatch.undo()
    result = cli("solve", "--resume", out, "-q")  # writes the outputs, takes no step
    assert result.code == 0, result.stderr
    assert json.loads((out / "metrics.json").read_text())["steps"] == 20


def test_a_second_signal_stops_at_once_and_keeps_the_last_good_checkpoint(cli, tmp_path, game_file, monkeypatch):
    from gamedsl.training import monitors

    checkpoints = monitors.Checkpoints.__call__

    def two_signals_at_step_13(self, run, info):
        stop = checkpoints(self, run, info)
        if run.step_count == 13:
            _send_to_self()  # a request: the run would stop after this step
            _send_to_self()  # and this one stops it here and now
        return stop

    monkeypatch.setattr(monitors.Checkpoints, "__call__", two_signals_at_step_13)
    out = tmp_path / "run"
    result = cli("solve", game_file, "--out", out, "-q")
    assert result.code == 130
    assert "interrupted at once; the last good checkpoint is" in result.stderr
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 10  # checkpoint_every = 10


def test_a_first_signal_stops_after_the_step_with_a_checkpoint(tmp_path, game_file):
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gamedsl", "solve", str(game_file), "--out", str(out), "--steps", "1000000", "-q",
         "--set", "checkpoint_every=0", "--set", "image_every=0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"),
    )  # fmt: skip
    deadline = time.time() + 120
    while not (out / "config.json").exists() and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    step = torch.load(out / "checkpoint.pt", weights_only=True)["step"]
    assert f"SIGTERM: stopped at step {step:,}" in stderr and step > 0
    assert json.loads((out / "metrics.json").read_text())["steps"] == step


def test_a_stop_request_does_not_wait_for_a_long_spectrum(tmp_path):
    """10,000 minibatches per spectrum at every step: the request is polled inside the spectrum."""
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gamedsl", "solve", "games/bilinear.game", "--out", str(out), "--steps", "100", "-q",
         "--set", "spectrum_every=1", "--set", "spectrum_batches=10000"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"),
    )  # fmt: skip
    deadline = time.time() + 120
    while not (out / "config.json").exists() and time.time() < deadline:
        time.sleep(0.1)
    time.sleep(2.0)
    proc.send_signal(signal.SIGTERM)
    sent = time.time()
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert time.time() - sent < 60  # a whole spectrum would take far longer
    step = torch.load(out / "checkpoint.pt", weights_only=True)["step"]
    assert f"SIGTERM: stopped at step {step:,}" in stderr


def test_a_step_interrupted_inside_gmres_changes_nothing_so_the_run_continues_bit_exactly(tmp_path):
    """acgd polls between GMRES iterations; a stop there must leave parameters, the solver's
    running mean, the optimizer and the sampling streams as they were before the step."""
    import gamedsl
    import solvers
    from gamedsl.compile.torch_game import TorchGame

    path = tmp_path / "tiny.game"
    path.write_text(GAME)
    spec = gamedsl.load(path)

    def make(poll=None):
        game = TorchGame(spec, batch=16, seed=3)
        return solvers.Run(game, solvers.get("acgd", max_iter=5, tol=1e-12), solvers.optimizers.get("sgd", lr=0.05), poll=poll)

    calls = {"n": 0}

    def poll_that_stops_once():
        calls["n"] += 1
        if calls["n"] == 13:  # inside the third step's GMRES
            raise solvers.Interrupted("SIGTERM")

    interrupted, straight = make(poll_that_stops_once), make()
    result = solvers.solve(interrupted.game, interrupted.solver, interrupted.engine.optimizer, 6, run=interrupted)
    assert result.status == "stopped" and interrupted.step_count == 2
    solvers.solve(interrupted.game, interrupted.solver, interrupted.engine.optimizer, 4, run=interrupted)
    solvers.solve(straight.game, straight.solver, straight.engine.optimizer, 6, run=straight)
    for a, b in zip(interrupted.engine.params, straight.engine.params):
        assert torch.equal(a, b)
    for a, b in zip(interrupted.state["square_avg"], straight.state["square_avg"]):
        assert torch.equal(a, b)
    assert float(interrupted.state["count"][0]) == float(straight.state["count"][0]) == 6
