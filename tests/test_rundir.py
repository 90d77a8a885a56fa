"""Run directories lose nothing: refused overwrites, locks, atomic writes, damaged inputs.

Each test is a red-team finding of issue 11: an input that used to lose or mix a run's
files, or to end in a traceback, now gets one message and a documented exit code.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import ROOT

GAME = """game tiny "a small 2-D GAN: fast runs with every output"
data x ~ ring(modes=4, radius=1, std=0.05)
latent z ~ normal(2)
network D = mlp(2 -> 1, hidden=[8], activation=relu)
network G = mlp(2 -> 2, hidden=[8], activation=relu)
player D controls D maximizes gan(critic=D, real=x, fake=G(z))
player G controls G maximizes -E[gan.g2(D(G(z)))]
solve {
  solver = consensus(gamma=1)
  optimizer = rmsprop(lr=1e-3)
  steps = 20
  batch = 16
  log_every = 5
  image_every = 8
  checkpoint_every = 10
  eval_samples = 200
}
"""


@pytest.fixture
def game_file(tmp_path) -> Path:
    path = tmp_path / "tiny.game"
    path.write_text(GAME)
    return path


@pytest.fixture
def run_dir(cli, tmp_path, game_file) -> Path:
    out = tmp_path / "run"
    result = cli("solve", game_file, "--out", out, "-q")
    assert result.code == 0, result.stderr
    return out


def tree(directory: Path) -> dict[str, tuple]:
    """Every file and folder below `directory`: kind, size, modification time and content hash."""
    out = {}
    for path in sorted(Path(directory).rglob("*")):
        info = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
        out[str(path.relative_to(directory))] = (path.is_dir(), info.st_size, info.st_mtime_ns, digest)
    return out


def test_a_resume_with_nothing_left_to_do_touches_nothing(cli, run_dir):
    before = tree(run_dir)
    for steps in ("20", "5"):
        result = cli("solve", "--resume", run_dir, "--steps", steps)
        assert result.code == 0, result.stderr
        assert "nothing left to do" in result.stderr
    assert tree(run_dir) == before


def test_a_resume_after_an_interrupted_evaluation_writes_the_outputs(cli, run_dir):
    (run_dir / "metrics.json").unlink()  # as when a stop came during the final evaluation
    (run_dir / "samples.npy").unlink()
    before = tree(run_dir)
    result = cli("solve", "--resume", run_dir)
    assert result.code == 0, result.stderr
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["steps"] == 20 and metrics["final"]["utility/D"] == pytest.approx(metrics["final"]["utility/D"])
    assert (run_dir / "samples.npy").exists()
    assert not [p for p in tree(run_dir) if p.startswith("events.out") and p not in before]  # no new (empty) logs


def test_a_new_run_is_refused_onto_a_directory_that_holds_one(cli, run_dir, game_file):
    before = tree(run_dir)
    result = cli("solve", game_file, "--out", run_dir, "--steps", "3")
    assert result.code == 2
    assert "already holds a run" in result.stderr and "--resume" in result.stderr
    assert tree(run_dir) == before


def test_force_replaces_the_old_run_without_mixing_the_two(cli, run_dir, game_file):
    (run_dir / "notes.txt").write_text("mine")
    result = cli("solve", game_file, "--out", run_dir, "--steps", "4", "--set", "image_every=0", "--force", "-q")
    assert result.code == 0, result.stderr
    assert not (run_dir / "snapshots").exists()  # the first run's snapshots are gone
    assert json.loads((run_dir / "metrics.json").read_text())["steps"] == 4
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["step"] == 4
    assert len(list(run_dir.glob("events.out.tfevents*"))) == 1
    assert (run_dir / "notes.txt").read_text() == "mine"  # not gamedsl's: left alone


def test_a_locked_run_directory_is_refused(cli, run_dir):
    from gamedsl.training.rundir import Lock

    before = tree(run_dir)
    lock = Lock(run_dir).acquire()
    try:
        result = cli("solve", "--resume", run_dir, "--steps", "30")
    finally:
        lock.release()
    assert result.code == 2 and "another gamedsl process is writing to" in result.stderr
    assert tree(run_dir) == before


def test_two_runs_into_one_new_directory_never_both_write(tmp_path, game_file):
    out = tmp_path / "shared"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "gamedsl", "solve", str(game_file), "--out", str(out), "--steps", "20", "-q", "--seed", str(seed)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"),
        )
        for seed in (1, 2)
    ]  # fmt: skip
    results = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 2], results
    winner = [i for i, (code, _) in enumerate(results) if code == 0][0]
    assert json.loads((out / "config.json").read_text())["config"]["seed"] == winner + 1
    assert torch.load(out / "checkpoint.pt", weights_only=True)["config"]["seed"] == winner + 1


def test_stale_temporaries_are_removed_on_resume(cli, run_dir):
    stale = [run_dir / ".checkpoint.pt-x1y2.tmp", run_dir / "params" / ".D.pt-abc.tmp"]
    for path in stale:
        path.write_bytes(b"half a checkpoint")
    result = cli("solve", "--resume", run_dir, "--steps", "22")
    assert result.code == 0, result.stderr
    assert not any(path.exists() for path in stale)


@pytest.mark.parametrize("name", ["metrics.json", "params", "samples.npy"])
def test_a_link_in_a_run_directory_is_refused_and_nothing_is_written_through(cli, run_dir, tmp_path, name):
    outside = tmp_path / "outside"
    target = run_dir / name
    if target.is_dir():
        target.rename(outside)
    else:
        outside.write_bytes(target.read_bytes())
        target.unlink()
    target.symlink_to(outside)
    before = tree(outside) if outside.is_dir() else outside.read_bytes()
    result = cli("solve", "--resume", run_dir, "--steps", "25")
    assert result.code == 5 and "is a link" in result.stderr, result.stderr
    assert (tree(outside) if outside.is_dir() else outside.read_bytes()) == before


def test_outputs_replace_a_link_instead_of_writing_through_it(tmp_path):
    from gamedsl.training.rundir import write_atomic

    outside = tmp_path / "outside.json"
    outside.write_text("keep me")
    link = tmp_path / "metrics.json"
    link.symlink_to(outside)
    write_atomic(link, "new")
    assert outside.read_text() == "keep me"
    assert not link.is_symlink() and link.read_text() == "new"


DAMAGED = {
    "dtype": ("evil", "dtype"),
    "device": ("meta", "device"),
    "log_every": (0, "log_every"),
    "threads": (-1, "threads"),
    "batch": ("8", "batch"),
    "steps": (2.5, "steps"),
    "seed": ([1, 2], "seed"),
    "solver": ("no_such_solver", "solver"),
    "solver_params": ({"gamma": -1}, "solver"),
    "optimizer_params": ({"lr": "fast"}, "optimizer"),
    "divergences": ({"objective": 3}, "divergences"),
    "surprise": (1, "surprise"),
}


@pytest.mark.parametrize("key", sorted(DAMAGED))
def test_damaged_settings_in_config_json_are_refused_with_exit_5(cli, run_dir, key):
    value, named = DAMAGED[key]
    meta = json.loads((run_dir / "config.json").read_text())
    meta["config"][key] = value
    (run_dir / "config.json").write_text(json.dumps(meta))
    result = cli("solve", "--resume", run_dir, "--steps", "25")
    assert result.code == 5, result.stderr
    assert f"setting '{named}'" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "text, says",
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "lacks the game"),
        ('{"file": "x.game", "source": "game x\\nparam p = 1", "config": {}}', "does not check"),
    ],
)
def test_a_damaged_config_json_is_refused(cli, run_dir, text, says):
    (run_dir / "config.json").write_text(text)
    result = cli("solve", "--resume", run_dir)
    assert result.code == 5 and says in result.stderr, result.stderr


def test_special_files_in_a_run_directory_never_hang(run_dir):
    for name in ("config.json", "checkpoint.pt"):
        path = run_dir / name
        saved = path.read_bytes()
        path.unlink()
        os.mkfifo(path)
        proc = subprocess.run(
            [sys.executable, "-m", "gamedsl", "solve", "--resume", str(run_dir), "--steps", "30"],
            cwd=ROOT, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 5 and "not a regular file" in proc.stderr, proc.stderr
        path.unlink()
        path.write_bytes(saved)
    config = run_dir / "config.json"
    config.unlink()
    config.symlink_to("/dev/zero")
    proc = subprocess.run([sys.executable, "-m", "gamedsl", "solve", "--resume", str(run_dir)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 5 and "is a link" in proc.stderr, proc.stderr


@pytest.mark.parametrize(
    "args, says",
    [
        (["--resume", "/nope"], "--resume /nope: no such directory"),
        (["--resume", "/dev/null"], "is not a directory"),
        (["GAME", "--out", "/dev/null"], "exists and is not a directory"),
        (["GAME", "--out", "FILE"], "exists and is not a directory"),
        (["GAME", "--out", "/proc/gamedsl-test"], "cannot create the directory"),
        (["GAME", "--logdir", "FILE"], "--logdir"),
    ],
)
def test_bad_paths_are_usage_errors_naming_the_path(cli, tmp_path, game_file, args, says):
    file = tmp_path / "a_file"
    file.write_text("x")
    args = [str(game_file) if a == "GAME" else str(file) if a == "FILE" else a for a in args]
    result = cli("solve", *args, "--steps", "2", "-q")
    assert result.code == 2, result.stderr
    assert says in result.stderr and "Traceback" not in result.stderr


def test_resume_of_a_file_is_a_usage_error(cli, run_dir):
    result = cli("solve", "--resume", run_dir / "metrics.json")
    assert result.code == 2 and "is not a directory" in result.stderr


@pytest.mark.parametrize("limit", [1_500, 12_000, 40_000])
def test_a_full_disk_is_one_message_and_leaves_no_half_written_file(tmp_path, game_file, limit):
    """RLIMIT_FSIZE makes every write beyond `limit` bytes fail as a full disk does (EFBIG)."""
    out = tmp_path / "run"

    def small_disk():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    proc = subprocess.run(
        [sys.executable, "-m", "gamedsl", "solve", str(game_file), "--out", str(out), "-q"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, preexec_fn=small_disk,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )  # fmt: skip
    assert proc.returncode == 10, proc.stderr
    assert "Traceback" not in proc.stderr and "cannot write" in proc.stderr
    assert sum("error:" in line for line in proc.stderr.splitlines()) == 1
    for path in out.rglob("*"):
        assert not path.name.endswith(".tmp"), path
        if path.name == "config.json":
            json.loads(path.read_text())
        if path.name == "checkpoint.pt":
            torch.load(path, weights_only=True)


def test_a_read_only_file_system_is_one_message(cli, run_dir, monkeypatch):
    import gamedsl.training.rundir as rundir

    before = tree(run_dir)

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(rundir.tempfile, "mkstemp", read_only)
    result = cli("solve", "--resume", run_dir, "--steps", "30", "-q")
    assert result.code == 10 and "Read-only file system" in result.stderr
    assert {k: v for k, v in tree(run_dir).items() if not k.startswith("events")} == {
        k: v for k, v in before.items() if not k.startswith("events")
    }


def test_every_output_is_world_readable_like_the_others(run_dir):
    umask = os.umask(0)
    os.umask(umask)
    modes = {p.name: p.stat().st_mode & 0o777 for p in run_dir.rglob("*") if p.is_file() and p.name != ".gamedsl.lock"}
    assert set(modes.values()) == {0o666 & ~umask}, modes


def test_config_json_records_the_resolved_device_and_threads(run_dir):
    meta = json.loads((run_dir / "config.json").read_text())
    assert meta["config"]["device"] == "auto"
    assert meta["resolved"]["device"] == "cpu"
    assert meta["resolved"]["threads"] >= 1


def test_the_run_ends_with_a_picture_and_a_snapshot_of_its_last_step(run_dir):
    """steps = 20 is not a multiple of image_every = 8: the last state is still kept."""
    steps = sorted(int(p.stem.split("_")[1]) for p in (run_dir / "snapshots").glob("step_*.npy"))
    assert steps == [0, 8, 16, 20]
    assert (run_dir / "samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((run_dir / "metrics.json").read_text())["picture"] == "samples.png"


def test_a_checkpoint_that_is_not_weights_only_is_refused_quietly(cli, run_dir):
    torch.save({"format": 1, "payload": Path("x")}, run_dir / "checkpoint.pt")  # a pickled object, not plain data
    result = cli("solve", "--resume", run_dir, "--steps", "30")
    assert result.code == 5 and "not a readable checkpoint" in result.stderr
    assert "Warning" not in result.stderr
    message = result.stderr.splitlines()[0]
    assert message.endswith(")") and ("…" in message or len(message) < 400)  # cut at a word, if at all


def test_a_game_without_a_divergence_call_still_reports_its_generator(cli, tmp_path):
    """The hand-written GAN objective names no real/fake pair: G(z) has the data's shape."""
    game = tmp_path / "handwritten.game"
    game.write_text(
        GAME.replace("player D controls D maximizes gan(critic=D, real=x, fake=G(z))",
                     "player D controls D maximizes E[log(sigmoid(D(x)))] + E[log(1 - sigmoid(D(G(z))))]")
    )  # fmt: skip
    out = tmp_path / "run"
    result = cli("solve", game, "--out", out, "--steps", "3", "-q")
    assert result.code == 0, result.stderr
    import numpy as np

    from gamedsl import load
    from gamedsl.compile.torch_game import TorchGame

    samples = np.load(out / "samples.npy")
    assert samples.shape == (200, 2)
    spec = load(game)
    replay = TorchGame(spec, batch=16)
    replay.networks.load_state_dict({f"{n}.{k}": v for n in ("D", "G") for k, v in torch.load(out / "params" / f"{n}.pt").items()})
    assert np.allclose(samples, replay.draw("fake", 200).numpy())  # the samples of the generator it saved
    assert "mixture" in json.loads((out / "metrics.json").read_text())
