"""Compiled solver steps: the closed forms hold, every method equals its eager step, a compiled
run resumes bit for bit, and a step that cannot be compiled runs eagerly after one note.

Inductor compiles a step in tens of seconds on a CPU, so it runs here on the bilinear game
only (its cache then serves the resume test); the other tests trace the same graphs with
the "aot_eager" backend, which runs them without generating code. All in float64.
"""

from __future__ import annotations

import math

import pytest
import torch

import gamedsl
import solvers
import solvers.compiled
from gamedsl.compile.torch_game import TorchGame
from solvers.field import GameField
from tests.conftest import ROOT
from tests.test_rundir import GAME

pytestmark = pytest.mark.usefixtures("float64_default")


@pytest.fixture
def aot_eager(monkeypatch):
    monkeypatch.setattr(solvers.compiled, "BACKEND", "aot_eager")


def catalog(name: str, seed: int = 0, batch: int = 4) -> TorchGame:
    return TorchGame(gamedsl.load(ROOT / "games" / f"{name}.game"), batch=batch, seed=seed, dtype="float64")


def sgd(h):
    return solvers.optimizers.get("sgd", lr=h)


def test_consensus_on_the_bilinear_game_contracts_at_its_closed_form_rate_compiled_by_inductor():
    """u = phi theta: consensus with sgd(h) multiplies |x|^2 by (1 - h gamma)^2 + h^2 per step.
    Compiled with the mode CUDA runs use ("reduce-overhead"); on the CPU it captures nothing."""
    h, gamma = 0.1, 2.0
    game = catalog("bilinear")
    run = solvers.Run(game, solvers.get("consensus", gamma=gamma), sgd(h))
    assert run.use_compiled("reduce-overhead")
    field = GameField(game)
    previous = float(field.x().square().sum())
    for _ in range(10):
        run.step()
        now = float(field.x().square().sum())
        assert now / previous == pytest.approx((1 - h * gamma) ** 2 + h * h, rel=1e-12)
        previous = now
    assert run.compiled is not None and run.compiled.compiled


def test_a_compiled_run_resumes_bit_for_bit(cli, tmp_path):
    common = ["--set", "compile=true", "--set", "dtype=float64", "--set", "solver=consensus(gamma=2)", "-q"]
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert cli("solve", "games/bilinear.game", "--steps", "12", "--out", straight, *common).code == 0
    assert cli("solve", "games/bilinear.game", "--steps", "5", "--out", split, *common).code == 0
    result = cli("solve", "--resume", split, "--steps", "12", "-q")
    assert result.code == 0, result.stderr
    a = torch.load(straight / "checkpoint.pt", weights_only=True)["run"]["params"]
    b = torch.load(split / "checkpoint.pt", weights_only=True)["run"]["params"]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert "could not be compiled" not in result.stderr and "run eagerly" not in result.stderr


def test_dirac_gan_consensus_rate_compiled(aot_eager):
    """Near the equilibrium J = [[0, -a], [a, 0]], a = f'(0) = 1/2 (Mescheder et al. 2018):
    the consensus map is I + h (J - gamma a^2 I), whose eigenvalues have modulus |1 + h(-gamma a^2 + i a)|."""
    h, gamma, a = 0.2, 1.0, 0.5
    game = catalog("dirac_gan")
    field = GameField(game)
    field.load(torch.tensor([1e-6, 1e-6]))
    run = solvers.Run(game, solvers.get("consensus", gamma=gamma), sgd(h), compile=True)
    steps = 40
    for _ in range(steps):
        run.step()
    rho = abs(1 + h * complex(-gamma * a * a, a))
    assert math.sqrt(float(field.x().square().sum())) / (math.sqrt(2) * 1e-6) == pytest.approx(rho**steps, rel=1e-6)
    assert run.compiled.compiled


COMPILABLE = [name for name in solvers.available() if solvers.SOLVERS.cls(name).compiles]


@pytest.mark.parametrize("name", COMPILABLE)
def test_every_compilable_method_computes_its_eager_step(aot_eager, tmp_path, name):
    path = tmp_path / "tiny.game"
    path.write_text(GAME)
    spec = gamedsl.load(path)
    runs = []
    for compile in (False, True):
        game = TorchGame(spec, batch=8, seed=1, dtype="float64")
        runs.append(solvers.Run(game, solvers.get(name), solvers.optimizers.get("adam", lr=1e-2), compile=compile))
    for _ in range(4):
        eager, compiled = (run.step() for run in runs)
        torch.testing.assert_close(torch.stack(compiled.utilities), torch.stack(eager.utilities), rtol=1e-12, atol=1e-12)
    for p, q in zip(*(run.engine.params for run in runs)):
        torch.testing.assert_close(p, q, rtol=1e-11, atol=1e-12)
    assert runs[1].compiled.compiled


def test_methods_that_decide_on_the_host_say_that_they_run_eagerly():
    notes = []
    run = solvers.Run(catalog("bilinear"), solvers.get("cgd"), sgd(0.1), compile=True, note=notes.append)
    run.step()
    assert run.compiled is None and notes == ["steps run eagerly: solver 'cgd' takes decisions on the host inside a step"]


def test_a_step_that_cannot_be_compiled_runs_eagerly_after_one_note(cli, tmp_path, monkeypatch):
    """No working C++ compiler: inductor fails; the run says so once and equals an eager run."""
    import torch._inductor.config as inductor

    monkeypatch.setattr(inductor.cpp, "cxx", (None, "/nonexistent/c++"))
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "cold"))  # nothing compiled to fall back on
    common = ["--steps", "6", "--set", "dtype=float64", "--set", "solver=consensus(gamma=3)", "-q"]
    result = cli("solve", "games/bilinear.game", "--out", tmp_path / "fallback", "--set", "compile=true", *common)
    assert result.code == 0, result.stderr
    assert result.stderr.count("note: steps run eagerly: this step could not be compiled") == 1
    assert "Traceback" not in result.stderr
    assert cli("solve", "games/bilinear.game", "--out", tmp_path / "eager", "--set", "compile=false", *common).code == 0
    a = torch.load(tmp_path / "fallback" / "checkpoint.pt", weights_only=True)["run"]["params"]
    b = torch.load(tmp_path / "eager" / "checkpoint.pt", weights_only=True)["run"]["params"]
    assert all(torch.equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("compile", [False, True], ids=["eager", "compiled"])
def test_the_guard_reports_the_first_non_finite_step_though_it_reads_it_every_10(aot_eager, compile):
    """phi moves by -0.3 a step from 1: at step 5 it starts from -0.2, where log(phi) is not a number."""
    spec = gamedsl.loads(
        "game g\nparam phi = 1\nparam theta = 1\n"
        "player P controls phi maximizes -phi + 0 * theta\n"
        "player Q controls theta maximizes -(theta - 1)^2 + log(phi)\n"
    )
    game = TorchGame(spec, batch=1, dtype="float64")
    run = solvers.Run(game, solvers.get("simga"), sgd(0.3), compile=compile)
    result = solvers.solve(game, run.solver, run.engine.optimizer, 30, run=run, record_every=10)
    assert result.status == "diverged" and run.step_count == 10
    assert result.message == "step 5: non-finite utility of player Q"
