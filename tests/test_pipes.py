"""Output that survives a pipe or a log file: every subcommand, stdout and stderr to pipes.

One subprocess runs the whole sequence (the gamedsl entry point, once per command, as the
console script calls it), so that the interpreter starts once; its streams are pipes and its
COLUMNS is 60, so any layout made for a window would wrap, cut or pad. The truths: a table
row holds every cell's full text on one line (compared with --json and with the values the
commands were given), headers are whole, no line ends in a space, nothing is cut with '…'.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from gamedsl.data.images import write_cifar10
from tests.conftest import ROOT
from tests.test_images import tiny_game

DRIVER = r"""
import json, sys
from gamedsl.cli.app import main
for args in json.loads(sys.argv[1]):
    for stream in (sys.stdout, sys.stderr):
        print("=== " + " ".join(args), file=stream, flush=True)
    sys.argv = ["gamedsl", *args]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0
    print(f"=== exit {code}", file=sys.stderr, flush=True)
"""

COMMANDS = ["check", "solve", "solvers", "spectrum", "plot", "sweep", "sample", "analyze"]


def _sections(text: str) -> dict[str, str]:
    parts = re.split(r"^=== (?!exit )(.*)$", text, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


@pytest.fixture(scope="module")
def piped(tmp_path_factory):
    """Every subcommand and every --help, run once with stdout and stderr to pipes."""
    tmp = tmp_path_factory.mktemp("pipes")
    write_cifar10(tmp / "data" / "cifar-10-batches-py", per_batch=6)
    (tmp / "tiny.game").write_text(tiny_game("cifar10(split=train)", (3, 32, 32)))
    mog = ["--set", "batch=64", "--set", "log_every=5", "--set", "image_every=10", "--set", "eval_samples=200"]
    runs = [
        ["--help"],
        *[[command, "--help"] for command in COMMANDS],
        ["check", "games/mog.game"],
        ["solvers"],
        ["solvers", "--json"],
        ["solve", "games/mog.game", "--steps", "20", *mog, "--out", str(tmp / "mog")],
        ["plot", str(tmp / "mog"), "--steps", "0,20", "-o", str(tmp / "figure.png")],
        ["spectrum", "games/bilinear.game", "--batches", "1", "--out", str(tmp / "spectrum")],
        ["sweep", "games/mog.game", "--set", "solver.gamma=1,10", "--set", "optimizer.lr=1e-4,2e-4", "--steps", "4",
         *mog[:2], "--set", "image_every=2", "--set", "eval_samples=200", "--out", str(tmp / "sweep")],  # fmt: skip
        ["solve", str(tmp / "tiny.game"), "--steps", "2", "--data-dir", str(tmp / "data"), "--out", str(tmp / "tiny")],
        ["sample", str(tmp / "tiny"), "-n", "4", "-o", str(tmp / "grid.png")],
        ["analyze", "games/bilinear.game", "--verify", "--steps", "10"],
    ]
    env = dict(os.environ, COLUMNS="60", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(runs)], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env=env)  # fmt: skip
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    out, err = _sections(proc.stdout), _sections(proc.stderr)
    assert len(out) == len(runs) == len(err), proc.stderr[-3000:]
    return {key: (out[key], err[key]) for key in out}


def _of(piped, *words) -> tuple[str, str]:
    """(stdout, stderr) of the first command that starts with these words."""
    key = next(k for k in piped if k.split()[: len(words)] == list(words) and ("--help" in k) == ("--help" in words))
    return piped[key]


def test_every_command_ran_and_no_line_is_padded_or_cut(piped):
    covered = {key.split()[0] for key in piped if "--help" not in key}
    assert covered == set(COMMANDS)
    for key, (out, err) in piped.items():
        code = int(re.search(r"=== exit (\d+)", err).group(1))
        assert code == 0 or key.startswith("analyze"), (key, err)  # analyze --verify exits 1 on a disagreement
        for name, text in (("stdout", out), ("stderr", err)):
            padded = [line for line in text.splitlines() if line != line.rstrip()]
            assert not padded, (key, name, padded[:3])
            assert "…" not in text, (key, name, text)


def test_help_shows_the_default_directories_whole(piped):
    assert "runs/GAME-SOLVER-TIME" in _of(piped, "solve", "--help")[0]
    assert "runs/GAME-sweep-TIME" in _of(piped, "sweep", "--help")[0]
    assert "runs/--" not in "".join(out for out, _ in piped.values())


def test_solvers_table_rows_hold_every_cell_whole(piped):
    listing = json.loads(_of(piped, "solvers", "--json")[0])
    lines = _of(piped, "solvers")[0].splitlines()
    schedule = next(line for line in lines if line.startswith("Every optimizer also takes a learning-rate schedule"))
    shared = set.intersection(*(set(entry["parameters"]) for entry in listing["optimizer"].values())) - {"lr"}
    for family in ("solver", "optimizer"):
        for name, entry in listing[family].items():
            row = [line for line in lines if re.match(rf"│ {name} +│", line)]
            assert len(row) == 1, (name, lines)
            assert entry["summary"] in row[0], (name, row[0])
            for param in entry["parameters"]:
                where = schedule if family == "optimizer" and param in shared else row[0]  # shared: one line below
                assert f"{param}=" in where, (name, param, where)


def test_sweep_table_has_whole_headers_and_one_line_per_run(piped):
    out, err = _of(piped, "sweep")
    header = next(line for line in out.splitlines() if line.startswith("┃"))
    body = [line for line in out.splitlines() if line.startswith("│")]
    columns = ("solver.gamma", "optimizer.lr", "seed", "status", "grad_norm_sq", "modes", "high_quality", "reverse_kl")
    assert all(f" {column} " in header for column in columns), header
    cells = {tuple(c.strip() for c in line.strip("│").split("│")[:2]) for line in body}
    assert cells == {(g, lr) for g in ("1", "10") for lr in ("1e-4", "2e-4")}
    assert all("finished" in line for line in body)


def test_verification_table_keeps_each_verdict_on_its_row(piped):
    out, _ = _of(piped, "analyze")
    header = next(line for line in out.splitlines() if line.split()[:2] == ["solver", "ρ(F')"])
    assert header.rstrip().endswith("agree (rate error)")
    rows = [line for line in out.splitlines() if re.match(r" {4}[a-z_]+ +(\d|—)", line)]
    assert len(rows) >= 10
    for line in rows:
        assert re.search(r"(agree( \([^()]*\))?|DISAGREE: .+|undecided|—)$", line), line
    assert not re.search(r"^ {20,}\S", out, flags=re.M), out  # no fragment of a folded cell on a line of its own


def test_progress_is_plain_lines_with_the_last_step(piped):
    _, err = _of(piped, "solve", "games/mog.game")
    lines = [line for line in err.splitlines() if line.startswith("consensus ")]
    assert [re.match(r"consensus (\d+)/20 ", line).group(1) for line in lines] == [str(k) for k in range(2, 21, 2)]
    assert all("steps/s" in line and "|v|=" in line and "u_D=" in line for line in lines)
    _, err = _of(piped, "sweep")
    assert re.search(r"^steps 4/4 \(100 %\)", err, flags=re.M), err
