"""The thread policy (gamedsl/training/threads.py), and that every kind of run applies it."""

from __future__ import annotations

import pytest
import torch

from gamedsl.training import threads
from tests.conftest import ROOT


@pytest.fixture
def machine(monkeypatch):
    """A 4-core machine whose load average the test sets; no OMP_NUM_THREADS; threads restored after."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "DEFAULT", 4)
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    load = {"now": 0.0}
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (load["now"], 0.0, 0.0))
    yield load
    torch.set_num_threads(1)


def test_the_rule(machine, monkeypatch):
    assert threads.choose(3, 10) == 3  # asked for: always
    assert threads.choose(0, threads.SMALL_GAME - 1) == 1  # small: one, even on idle cores
    big = threads.SMALL_GAME
    for load, expected in ((0.0, 4), (0.4, 4), (1.4, 3), (2.6, 1), (3.0, 1), (9.0, 1)):
        machine["now"] = load
        assert threads.choose(0, big) == expected, load  # the idle cores, at least one
    machine["now"] = 0.0
    assert threads.choose(0, big, processes=2) == 2 and threads.choose(0, big, processes=3) == 1  # shared out
    monkeypatch.setattr(threads, "DEFAULT", 2)
    assert threads.choose(0, big) == 2  # never more than PyTorch's own choice
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads.choose(0, big) is None and threads.choose(0, 10) is None  # the environment decides


WIDE = (ROOT / "games/mog.game").read_text().replace("hidden=[16, 16, 16, 16]", "hidden=[160, 160, 160, 160]")  # 160k


def test_a_large_game_on_busy_cores_runs_on_one_thread(cli, machine, tmp_path):
    (tmp_path / "wide.game").write_text(WIDE)
    machine["now"] = 3.5  # three of four cores busy elsewhere
    torch.set_num_threads(2)
    result = cli("solve", tmp_path / "wide.game", "--steps", "1", "--set", "batch=8", "--set", "image_every=0",
                 "--set", "eval_samples=16", "--out", tmp_path / "run", "-q")  # fmt: skip
    assert result.code == 0, result.stderr
    assert torch.get_num_threads() == 1


def test_a_vectorised_sweep_applies_the_policy(cli, machine, tmp_path):
    torch.set_num_threads(2)
    result = cli("sweep", "games/bilinear.game", "--set", "optimizer.lr=0.05,0.1", "--steps", "3",
                 "--out", tmp_path / "one", "-q")  # fmt: skip
    assert result.code == 0 and "vectorised" in result.stderr, result.stderr
    assert torch.get_num_threads() == 1  # a small game: one thread
    torch.set_num_threads(1)
    result = cli("sweep", "games/bilinear.game", "--set", "optimizer.lr=0.05,0.1", "--set", "threads=2", "--steps", "3",
                 "--out", tmp_path / "two", "-q")  # fmt: skip
    assert result.code == 0, result.stderr
    assert torch.get_num_threads() == 2  # the setting wins
