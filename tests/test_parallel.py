"""Data parallelism: 2 processes (gloo) equal 1 process on the same global batch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.conftest import ROOT, run_cli

HELPER = ROOT / "tests" / "helpers" / "parallel_solvers.py"
ENV = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))


def test_every_solver_matches_a_single_process_on_the_same_global_batch(tmp_path):
    single = subprocess.run([sys.executable, str(HELPER), str(tmp_path)], env=ENV, capture_output=True, text=True)
    assert single.returncode == 0, single.stderr
    double = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", str(HELPER), str(tmp_path)],
        env=ENV,
        capture_output=True,
        text=True,
    )
    assert double.returncode == 0, double.stderr[-3000:]
    from tests.helpers.parallel_solvers import CASES

    for name in CASES:
        one = torch.load(tmp_path / f"{name}-1.pt", weights_only=True)
        two = torch.load(tmp_path / f"{name}-2.pt", weights_only=True)
        gap = max(float((a - b).abs().max()) for a, b in zip(one, two))
        assert gap < 1e-10, f"{name}: 2 processes differ from 1 by {gap:g}"


def _params(run_dir):
    return {p.name: torch.load(p, weights_only=True) for p in sorted((run_dir / "params").glob("*.pt"))}


def test_nproc_command_equals_a_single_process_and_only_rank_zero_writes(cli, tmp_path):
    common = ["games/mog.game", "--steps", "20", "--batch", "64", "--dtype", "float64", "-q"]
    assert cli("solve", *common, "--set", "shards=2", "--out", tmp_path / "one").code == 0
    result = run_cli("solve", *common, "--nproc", "2", "--out", tmp_path / "two")
    assert result.code == 0, result.stderr
    assert result.stdout.count("outputs:") == 1 and "Traceback" not in result.stderr
    one, two = _params(tmp_path / "one"), _params(tmp_path / "two")
    for name in one:
        for key in one[name]:
            assert torch.allclose(one[name][key], two[name][key], rtol=0, atol=1e-10)
    assert len(list((tmp_path / "two").glob("events.out.tfevents.*"))) == 1
    state = torch.load(tmp_path / "two" / "checkpoint.pt", weights_only=True)
    assert len(state["rng"]["x"]) == 2  # both shards' generators, gathered from both ranks
    # resume the 2-process run in one process: the same two shards, now drawn by one process
    resumed = cli("solve", "--resume", tmp_path / "two", "--steps", "25", "-q")
    assert resumed.code == 0, resumed.stderr


def test_resume_with_a_process_count_that_cannot_share_the_shards(cli, tmp_path):
    assert cli("solve", "games/mog.game", "--steps", "2", "--batch", "8", "-q", "--out", tmp_path / "r").code == 0
    result = run_cli("solve", "--resume", tmp_path / "r", "--nproc", "2", "--steps", "4", "-q")
    assert result.code == 2
    assert "1 shard(s), which 2 processes cannot share evenly" in result.stderr
    assert "Traceback" not in result.stderr


def test_killing_a_worker_keeps_the_last_checkpoint_and_the_restart_command_resumes(tmp_path):
    out = tmp_path / "run"
    launcher = subprocess.Popen(
        [sys.executable, "-m", "gamedsl", "solve", "games/mog.game", "--steps", "1000000", "--batch", "32", "--nproc", "2",
         "--set", "checkpoint_every=10", "--out", str(out), "-q"],  # fmt: skip
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    deadline = time.time() + 180
    while not (out / "checkpoint.pt").exists():
        assert launcher.poll() is None and time.time() < deadline, launcher.communicate()
        time.sleep(0.2)
    time.sleep(1.0)
    victim = _worker(launcher.pid, rank=1)
    os.kill(victim, signal.SIGKILL)
    _, stderr = launcher.communicate(timeout=180)
    assert launcher.returncode != 0
    assert "a process of the distributed run failed" in stderr
    assert f"resume with: gamedsl solve --resume {out} --nproc 2" in stderr
    assert "Traceback" not in stderr
    state = torch.load(out / "checkpoint.pt", weights_only=True)  # still a valid checkpoint
    assert state["step"] >= 10 and state["step"] % 10 == 0
    resumed = run_cli("solve", "--resume", out, "--nproc", "2", "--steps", str(state["step"] + 5), "-q")
    assert resumed.code == 0, resumed.stderr
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == state["step"] + 5


def _worker(launcher_pid: int, rank: int) -> int:
    """The pid of the worker with RANK=rank among the launcher's children."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = f.read().split(b"\0")
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        if parent == launcher_pid and f"RANK={rank}".encode() in env:
            return int(entry)
    pytest.fail("worker not found")


def _listening_addresses(pids: list[int]) -> set[str]:
    """Local addresses of the TCP sockets that `pids` hold in the LISTEN state (from /proc)."""
    inodes = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    addresses = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                    addresses.add(fields[1].rsplit(":", 1)[0])
    return addresses


def test_nproc_listens_on_loopback_only_and_a_sigterm_gives_one_message(tmp_path):
    out = tmp_path / "run"
    launcher = subprocess.Popen(
        [sys.executable, "-m", "gamedsl", "solve", "games/mog.game", "--steps", "1000000", "--batch", "32", "--nproc", "2",
         "--set", "checkpoint_every=5", "--out", str(out), "-q"],  # fmt: skip
        cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.time() + 180
    while not (out / "checkpoint.pt").exists():
        assert launcher.poll() is None and time.time() < deadline, launcher.communicate()
        time.sleep(0.2)
    pids = [launcher.pid, _worker(launcher.pid, rank=0), _worker(launcher.pid, rank=1)]
    addresses = _listening_addresses(pids)
    assert addresses and addresses <= {"0100007F"}, addresses  # 127.0.0.1, in /proc's byte order
    launcher.send_signal(signal.SIGTERM)
    _, stderr = launcher.communicate(timeout=180)
    assert launcher.returncode == 130, stderr
    assert stderr.count("stopped at step") == 1 and "failed" not in stderr and "Traceback" not in stderr
