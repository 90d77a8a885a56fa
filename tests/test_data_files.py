"""Data from files (`points`) and the 2-D toy sets (`swiss_roll`, `two_moons`, `spiral`).

Each file format round-trips (every draw is a row of the file, uniformly, the same rows
for the same seed); every malformed input stops `gamedsl solve` with exit 4, the file's
path and what is wrong, pointing at the `data` declaration; the toy sets match
independent definitions (their curves, scikit-learn's generators); and 2-D games whose
data are not a mixture get their density pictures.
"""

from __future__ import annotations

import json
import math
import os
import signal

import numpy as np
import pytest
import torch

import gamedsl
from gamedsl.compile.torch_game import TorchGame
from gamedsl.data import images, points
from gamedsl.data.sources import SOURCES

GAME = """game files "a small 2-D GAN on other data"
data x ~ {source}
latent z ~ normal(2)
network D = mlp(2 -> 1, hidden=[8], activation=relu)
network G = mlp(2 -> 2, hidden=[8], activation=relu)
player D controls D maximizes gan(critic=D, real=x, fake=G(z))
player G controls G maximizes -E[gan.g2(D(G(z)))]
solve {{
  solver = simga
  optimizer = adam(lr=1e-3)
  steps = 4
  batch = 16
  log_every = 2
  image_every = 2
  checkpoint_every = 2
  eval_samples = 100
}}
"""
ROWS = np.random.default_rng(7).normal(size=(40, 2)) * [3.0, 0.5] + [1.0, -2.0]


@pytest.fixture(autouse=True)
def default_data_root(monkeypatch, tmp_path):
    """Each test starts as a new process would: no --data-dir, no $GAMEDSL_DATA."""
    monkeypatch.setattr(images, "_data_root", None)
    monkeypatch.delenv("GAMEDSL_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # the default data root is under it


def write(path, rows: np.ndarray, key: str = "points"):
    """`rows` as a points file in the format its suffix names; the .csv has a header, a
    comment and a blank line, which the format allows."""
    if path.suffix == ".npy":
        np.save(path, rows)
    elif path.suffix == ".npz":
        np.savez(path, **{key: rows})
    else:
        body = "\n".join(",".join(repr(float(v)) for v in row) for row in rows)
        path.write_text(f"x,y  # the header\n\n{body}\n# the end\n", encoding="utf-8")
    return path


def sampler(path, dim=2, key=None, standardize=False):
    return SOURCES["points"].sampler({"path": str(path), "dim": dim, "key": key, "standardize": standardize})


def draw(s, n, seed, dtype=torch.float64) -> np.ndarray:
    return s.sample(n, torch.Generator().manual_seed(seed), dtype).numpy()


def game_file(tmp_path, source: str):
    path = tmp_path / "files.game"
    path.write_text(GAME.format(source=source), encoding="utf-8")
    return path


# ---- files that are right ---------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".csv"])
def test_each_format_round_trips_uniformly_and_reproducibly(tmp_path, suffix):
    s = sampler(write(tmp_path / f"ring{suffix}", ROWS))
    first, again, other = draw(s, 40_000, 0), draw(s, 40_000, 0), draw(s, 40_000, 1)
    index = {tuple(row): i for i, row in enumerate(ROWS)}
    assert all(tuple(row) in index for row in first)  # every draw is a row of the file, exactly
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    counts = np.bincount([index[tuple(row)] for row in first], minlength=len(ROWS))
    expected = len(first) / len(ROWS)  # with replacement, uniformly: binomial counts around 1,000
    assert np.abs(counts - expected).max() < 5 * math.sqrt(expected)
    np.testing.assert_array_equal(draw(s, 8, 0, torch.float32), first[:8].astype(np.float32))


def test_a_compiled_game_draws_the_same_batches_for_the_same_seed(tmp_path):
    path = write(tmp_path / "ring.npy", ROWS)
    game = gamedsl.loads(GAME.format(source=f'points("{path}", dim=2)'))
    batches = [TorchGame(game, batch=16, seed=seed, shards=2).sample()["x"] for seed in (3, 3, 4)]
    torch.testing.assert_close(batches[0], batches[1], rtol=0, atol=0)
    assert not torch.equal(batches[0], batches[2])
    assert batches[0].shape == (16, 2)


def test_standardize_gives_each_coordinate_mean_zero_and_deviation_one(tmp_path):
    s = sampler(write(tmp_path / "ring.npz", ROWS), standardize=True)
    expected = (ROWS - ROWS.mean(axis=0)) / ROWS.std(axis=0)
    np.testing.assert_allclose(s.rows.numpy(), expected, rtol=0, atol=1e-12)
    assert {tuple(row) for row in draw(s, 500, 0)} <= {tuple(row) for row in s.rows.numpy()}


def test_an_archive_entry_is_chosen_by_key_and_a_vector_is_points_of_dimension_one(tmp_path):
    path = tmp_path / "two.npz"
    np.savez(path, first=ROWS, second=ROWS[:5, 0])
    np.testing.assert_array_equal(sampler(path, key="first").rows.numpy(), ROWS)
    s = sampler(path, dim=1, key="second")
    assert s.shape == () and draw(s, 10, 0).shape == (10,)
    assert set(draw(s, 200, 0)) == set(ROWS[:5, 0])


def test_a_csv_first_line_of_numbers_is_a_point_not_a_header(tmp_path):
    path = tmp_path / "plain.csv"
    path.write_text("1, 2\n3 ,4\n", encoding="utf-8")
    np.testing.assert_array_equal(sampler(path).rows.numpy(), [[1, 2], [3, 4]])


def test_a_relative_path_is_looked_up_under_the_data_root_and_check_reads_no_file(cli, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    write(root / "ring.csv", ROWS)
    game = game_file(tmp_path, 'points("ring.csv", 2)')
    assert cli("check", game).code == 0  # the file is read when the game is compiled, not by check
    missing = cli("solve", game, "--out", tmp_path / "lost", "-q")
    assert missing.code == 4 and str(tmp_path / "home" / ".cache" / "gamedsl" / "data" / "ring.csv") in missing.stderr
    result = cli("solve", game, "--data-dir", root, "--out", tmp_path / "run", "-q")
    assert result.code == 0, result.stderr


def test_a_resumed_run_reads_the_same_file_without_being_told_the_data_root_again(cli, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    write(root / "ring.npy", ROWS)
    game, out = game_file(tmp_path, 'points("ring.npy", 2)'), tmp_path / "run"
    assert cli("solve", game, "--data-dir", root, "--steps", "2", "--out", out, "-q").code == 0
    images.set_data_root(None)  # as a new process without --data-dir
    result = cli("solve", "--resume", out, "--steps", "4", "-q")
    assert result.code == 0, result.stderr
    assert json.loads((out / "metrics.json").read_text())["steps"] == 4


# ---- files that are wrong: exit 4, the path, what is wrong, the declaration --------------------------------


class _MakeDirectory:
    """Unpickling this would create a folder: the proof that a data file was unpickled."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def _objects(path, marker):
    array = np.array([_MakeDirectory(str(marker)), None], dtype=object)
    if path.suffix == ".npz":
        np.savez(path, points=array)
    else:
        np.save(path, array, allow_pickle=True)


def _truncated(path, marker):
    np.save(path, ROWS)
    path.write_bytes(path.read_bytes()[:200])


def _oversized(path, marker):
    with open(path, "wb") as handle:
        handle.truncate(points.MAX_BYTES + 1)  # sparse: no disk is used


MALFORMED = {
    "missing": ("ring.npy", None, "points file not found"),
    "folder": ("ring.npy", lambda p, m: p.mkdir(), "is a folder, not a file"),
    "fifo": ("ring.npy", lambda p, m: os.mkfifo(p), "is a named pipe, not a regular file"),
    "empty": ("ring.csv", lambda p, m: p.write_bytes(b""), "is empty"),
    "oversized": ("ring.npy", _oversized, "is too large"),
    "nan": ("ring.npy", lambda p, m: np.save(p, np.array([[0.0, 1.0], [np.nan, 2.0]])), "holds 1 point with a NaN"),
    "infinite in csv": ("ring.csv", lambda p, m: p.write_text("x,y\n0,1\n\n2,inf\n"), "the first is on line 4"),
    "objects": ("ring.npy", _objects, "holds an array of Python objects"),
    "objects in npz": ("ring.npz", _objects, "holds an array of Python objects"),
    "text": ("ring.npy", lambda p, m: np.save(p, np.array([["a", "b"]])), "holds an array of text"),
    "dimension": ("ring.npy", lambda p, m: np.save(p, np.zeros((5, 3))), "holds points of dimension 3, but the declaration says dim=2"),
    "rank": ("ring.npy", lambda p, m: np.save(p, np.zeros((5, 2, 2))), "holds an array of shape (5, 2, 2)"),
    "no points": ("ring.npy", lambda p, m: np.save(p, np.zeros((0, 2))), "holds no points"),
    "header only": ("ring.csv", lambda p, m: p.write_text("x,y\n"), "holds no points"),
    "truncated": ("ring.npy", _truncated, "cannot be read (is the file truncated?)"),
    "not npy": ("ring.npy", lambda p, m: p.write_text("0,1\n"), "does not start with NumPy's header"),
    "not npz": ("ring.npz", lambda p, m: p.write_text("0,1\n"), "is not a .npz archive"),
    "two arrays": ("ring.npz", lambda p, m: np.savez(p, a=ROWS, b=ROWS), "holds 2 arrays ('a', 'b'); choose one with key="),
    "csv word": ("ring.csv", lambda p, m: p.write_text("0,1\n2,two\n"), "has 'two' on line 2, which is not a number"),
    "csv first line": ("ring.csv", lambda p, m: p.write_text("0,one\n2,3\n"), "has 'one' on line 1"),
    "csv ragged": ("ring.csv", lambda p, m: p.write_text("x,y\n0,1\n2\n"), "has 1 field on line 3 but 2 on line 2"),
    "csv binary": ("ring.csv", lambda p, m: p.write_bytes(b"0,1\n\xff\xfe\n"), "is not UTF-8 text"),
    "constant": ("ring.npy", lambda p, m: np.save(p, np.ones((4, 2))), "cannot be standardized: coordinate 1"),
}


@pytest.mark.parametrize("case", MALFORMED, ids=list(MALFORMED))
def test_a_malformed_file_stops_the_run_with_exit_4_at_its_declaration(cli, tmp_path, case):
    name, make, says = MALFORMED[case]
    path, marker = tmp_path / name, tmp_path / "unpickled"
    if make is not None:
        make(path, marker)
    standardize = ", standardize=true" if case == "constant" else ""
    game = game_file(tmp_path, f'points("{path}", dim=2{standardize})')
    previous = signal.signal(signal.SIGALRM, lambda *_: pytest.fail(f"reading {path} hangs"))
    signal.alarm(60)
    try:
        result = cli("solve", game, "--out", tmp_path / "run", "-q")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert result.code == 4, result.stderr
    assert f"{game}:2:10: error: " in result.stderr and str(path) in result.stderr and says in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not marker.exists() and not (tmp_path / "run").exists()


def test_a_file_gamedsl_cannot_read_is_named_at_check_time(cli, tmp_path):
    for source, says in (
        ('points("ring.txt", 2)', "a points file is a .npy, .npz or .csv file, not '.txt'"),
        ('points("ring.npy", 2, key="a")', "key names an array of a .npz archive"),
        ('points("ring.npz")', "source 'points' needs the argument 'dim'"),
        ('points("", 2)', "the path is empty"),
    ):
        result = cli("check", game_file(tmp_path, source))
        assert result.code == 3 and says in result.stderr, result.stderr


# ---- the toy sets -------------------------------------------------------------------------------------


def toy(name: str, n: int, seed: int = 0, **args) -> np.ndarray:
    values = {a.name: a.default for a in SOURCES[name].signature.args} | args
    return draw(SOURCES[name].sampler(values), n, seed)


def test_noiseless_toy_points_lie_on_their_curves():
    moons = toy("two_moons", 20_000, noise=0.0)
    outer = np.abs(np.hypot(*moons.T) - 1) < 1e-6
    inner = np.abs(np.hypot(moons[:, 0] - 1, moons[:, 1] - 0.5) - 1) < 1e-6
    assert (outer | inner).all() and (moons[outer, 1] >= -1e-9).all() and (moons[inner, 1] <= 0.5 + 1e-9).all()
    assert abs(outer.mean() - 0.5) < 0.02

    roll = toy("swiss_roll", 20_000, noise=0.0) * 7.5
    t = np.hypot(*roll.T)
    assert (t >= 1.5 * np.pi - 1e-9).all() and (t <= 4.5 * np.pi + 1e-9).all()
    np.testing.assert_allclose(roll, np.stack([t * np.cos(t), t * np.sin(t)], axis=1), rtol=0, atol=1e-6)

    spiral = toy("spiral", 20_000, noise=0.0) * 3
    t = np.hypot(*spiral.T)
    arm = np.stack([-t * np.cos(t), t * np.sin(t)], axis=1)  # arm 0; arm 1 is its mirror through the origin
    error = np.minimum(np.abs(spiral - arm).max(axis=1), np.abs(spiral + arm).max(axis=1))
    assert error.max() < 1e-6 and t.max() <= 3 * np.pi + 1e-9
    on_first = np.abs(spiral - arm).max(axis=1) < 1e-6
    assert abs(on_first.mean() - 0.5) < 0.02
    # t = sqrt(u) * 3 pi: (t / 3 pi)^2 is uniform on [0, 1]
    u = np.sort((t / (3 * np.pi)) ** 2)
    assert np.abs(u - np.linspace(0, 1, len(u))).max() < 0.02


def test_the_toy_sets_have_the_statistics_of_scikit_learns_generators():
    from sklearn.datasets import make_moons, make_swiss_roll

    n = 100_000
    ours = toy("two_moons", n, noise=0.1)
    theirs, _ = make_moons(n, noise=0.1, random_state=0)
    np.testing.assert_allclose(ours.mean(axis=0), theirs.mean(axis=0), atol=0.01)
    np.testing.assert_allclose(np.cov(ours.T), np.cov(theirs.T), atol=0.01)

    ours = toy("swiss_roll", n)  # the default noise, 0.25, is WGAN-GP's
    theirs = make_swiss_roll(n, noise=0.25, random_state=0)[0][:, [0, 2]] / 7.5
    np.testing.assert_allclose(ours.mean(axis=0), theirs.mean(axis=0), atol=0.02)
    np.testing.assert_allclose(np.cov(ours.T), np.cov(theirs.T), atol=0.02)


def test_toy_sets_are_drawn_fresh_from_the_seeded_generator():
    for name in ("swiss_roll", "two_moons", "spiral"):
        first, again, other = toy(name, 100, seed=5), toy(name, 100, seed=5), toy(name, 100, seed=6)
        np.testing.assert_array_equal(first, again)
        assert not np.array_equal(first, other)


# ---- pictures of 2-D games that are not mixtures ----------------------------------------------------------


def test_a_two_dimensional_game_that_is_not_a_mixture_gets_its_pictures(cli, tmp_path):
    out = tmp_path / "run"
    result = cli("solve", game_file(tmp_path, "two_moons(noise=0)"), "--out", out, "-q")
    assert result.code == 0, result.stderr
    assert (out / "samples.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (out / "snapshots").iterdir()) == [
        "real.npy", "step_0000000.npy", "step_0000002.npy", "step_0000004.npy"
    ]
    real = np.load(out / "snapshots" / "real.npy")  # the target: real two-moons points, on their curves
    on_curve = np.minimum(np.abs(np.hypot(*real.T) - 1), np.abs(np.hypot(real[:, 0] - 1, real[:, 1] - 0.5) - 1))
    assert real.shape[1] == 2 and on_curve.max() < 1e-4
    assert "mixture" not in json.loads((out / "metrics.json").read_text())  # mode metrics are for mixtures
    plotted = cli("plot", out)
    assert plotted.code == 0 and (out / "figure2.png").exists(), plotted.stderr


def test_the_target_of_real_samples_is_drawn_where_the_samples_are():
    from gamedsl.plotting.density import RESOLUTION, Target

    samples = toy("two_moons", 20_000, noise=0.0)
    target = Target(samples=samples)
    x0, x1, y0, y1 = target.extent()
    assert x0 < samples[:, 0].min() and samples[:, 0].max() < x1 and y0 < samples[:, 1].min() and samples[:, 1].max() < y1
    image = target.density((x0, x1, y0, y1))
    rows, cols = np.nonzero(image > image.max() / 4)  # pixel centres where the density is high
    xs, ys = x0 + (cols + 0.5) * (x1 - x0) / RESOLUTION, y0 + (rows + 0.5) * (y1 - y0) / RESOLUTION
    distance = np.minimum(np.abs(np.hypot(xs, ys) - 1), np.abs(np.hypot(xs - 1, ys - 0.5) - 1))
    assert distance.max() < 6 * (x1 - x0) / RESOLUTION  # within a few pixels of the curves
