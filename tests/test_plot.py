"""`gamedsl plot`: the steps it draws are the steps asked for, or it says which stand in."""

from __future__ import annotations

import re


def test_steps_outside_the_run_are_refused_and_stand_ins_are_named(cli, tmp_path):
    run = tmp_path / "run"
    solved = cli("solve", "games/mog.game", "--steps", "20", "--set", "image_every=10", "--set", "batch=64",
                 "--set", "eval_samples=200", "--out", run, "-q")  # fmt: skip
    assert solved.code == 0, solved.stderr
    snapshots = sorted(int(re.search(r"\d+", p.name).group()) for p in (run / "snapshots").glob("step_*.npy"))
    assert snapshots == [0, 10, 20]
    listed = "0, 10, 20"
    for steps in ("0,50,100", "-5"):
        refused = cli("plot", run, "--steps", steps, "-o", tmp_path / f"{steps}.png")
        assert refused.code == 2 and listed in refused.stderr, refused.stderr
        assert not (tmp_path / f"{steps}.png").exists()
    between = cli("plot", run, "--steps", "0,14,20", "-o", tmp_path / "between.png")
    assert between.code == 0, between.stderr
    assert "no snapshot at step 14; showing step 10" in between.stderr
    assert "(steps 0, 10, 20)" in between.stdout and (tmp_path / "between.png").exists()
    exact = cli("plot", run, "--steps", "10", "-o", tmp_path / "exact.pdf")
    assert exact.code == 0 and "no snapshot" not in exact.stderr
    assert (tmp_path / "exact.pdf").read_bytes()[:4] == b"%PDF"


def test_an_output_matplotlib_cannot_write_is_refused_first(cli, tmp_path):
    for name in ("x.txt", "noextension"):
        result = cli("plot", tmp_path / "no-such-run", "-o", tmp_path / name)
        assert result.code == 2 and ".png" in result.stderr and ".pdf" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and not (tmp_path / name).exists()


def test_a_long_regular_series_of_snapshots_is_listed_as_a_range():
    from gamedsl.cli.plot import _listing

    assert _listing(list(range(0, 50_001, 1_000))) == "0 to 50,000 every 1,000"
    assert _listing(list(range(0, 30_000, 1_000)) + [29_500]) == "0 to 29,000 every 1,000 and 29,500"
    assert _listing([0, 500, 2_000]) == "0, 500, 2,000"
