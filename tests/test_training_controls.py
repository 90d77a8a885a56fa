"""Training controls (issue 14) against independent truths, in float64.

Per-player optimizers (TTUR), learning-rate schedules, critic steps and parameter averaging
are held, step by step, to a loop written with torch.optim (Adam, SGD and RMSprop with
maximize=True, LambdaLR for the schedules) on a second TorchGame made with the same seed,
so that both sides draw the same batches in the same order; each player's gradient is
torch.autograd.grad of its own utility with respect to its own parameters. Then, through
the command line: a resume with all of them on is bit-exact, a run with averages reports
the averaged generator beside the raw one, the checkpoint history keeps what it says, and
the per-player settings resolve (and fail) as documented.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import gamedsl
import solvers
import solvers.compiled
from gamedsl.compile.torch_game import TorchGame
from gamedsl.metrics.mixture import mixture_metrics, mixture_of
from gamedsl.training import checkpoint
from gamedsl.training.session import strict_json

pytestmark = pytest.mark.usefixtures("float64_default")

BATCH = 16
GAME = """game tiny "a small 2-D GAN for the training controls"
data x ~ ring(modes=4, radius=1, std=0.2)  # wide modes: 12 steps already reach some
latent z ~ normal(2)
network D = mlp(2 -> 1, hidden=[6], activation=tanh)
network G = mlp(2 -> 2, hidden=[6], activation=tanh)
player D controls D maximizes gan(critic=D, real=x, fake=G(z))
player G controls G maximizes -E[gan.g2(D(G(z)))]
"""
SOLVE = """solve {{
  solver = {solver}
  optimizer = {optimizer}
{extra}
  steps = {steps}
  batch = 16
  dtype = float64
  log_every = 3
  image_every = 0
  checkpoint_every = {every}
  eval_samples = 300
}}
"""
# every control at once: TTUR (adam with beta1 = 0 for D at 4x G's rate), schedules on both
# players (with `until` given, so that the schedule does not depend on the run's length),
# three critic steps, and an average of G that starts after step 3
ALL_CONTROLS = """  optimizer.D = adam(lr=4e-2, beta1=0, beta2=0.9, schedule=cosine, until=12, final=0.2)
  critic_steps.D = 3
  average.G = 0.9
  average_start = 3"""


def game_file(tmp_path, solver="simga", optimizer="rmsprop(lr=1e-2, alpha=0.9, schedule=step, at=5, factor=0.3)",
              extra=ALL_CONTROLS, steps=12, every=0, name="controls.game"):  # fmt: skip
    path = tmp_path / name
    path.write_text(GAME + SOLVE.format(solver=solver, optimizer=optimizer, extra=extra, steps=steps, every=every))
    return path


def tiny_game(seed: int = 0) -> TorchGame:
    return TorchGame(gamedsl.loads(GAME), batch=BATCH, seed=seed, dtype="float64")


def opt(name: str, **params):
    return solvers.optimizers.get(name, **params)


# ---- the reference: a loop written with torch.optim ------------------------------------


class Reference:
    """The tiny game trained by hand: `groups` is a list of (players, make, factor), where
    make(params) builds a torch.optim optimizer over the players' tensors and factor(t) is
    the learning-rate multiplier after t completed steps (LambdaLR), None for a constant rate.

    A step: each player P of `critic` first takes k - 1 steps alone, each on a fresh batch;
    then simga moves every player at once on one fresh batch, altga moves the players one
    after another, each on a fresh batch. Then the averages: avg <- d avg + (1 - d) x once
    more than `start` steps are completed, avg <- x before."""

    def __init__(self, groups, solver="simga", critic=None, average=None, start=0, seed=0):
        self.game = tiny_game(seed)
        self.names = [p.name for p in self.game.players]
        self.own = {p.name: list(p.params) for p in self.game.players}
        self.optimizers, self.schedulers = [], []
        for players, make, factor in groups:
            optimizer = make([t for name in players for t in self.own[name]])
            self.optimizers.append(optimizer)
            self.schedulers.append(torch.optim.lr_scheduler.LambdaLR(optimizer, factor or (lambda t: 1.0)))
        self.solver, self.critic, self.decay, self.start = solver, critic or {}, average or {}, start
        self.averages = {name: [t.detach().clone() for t in self.own[name]] for name in self.decay}
        self.taken = 0

    def move(self, players):
        """One step of `players` alone, on a fresh batch: only their own utilities' gradients."""
        batch = self.game.sample()
        utilities = self.game.utilities(batch)
        for tensors in self.own.values():
            for t in tensors:
                t.grad = None  # torch.optim skips a tensor without a gradient: the others stay put
        for name in players:
            grads = torch.autograd.grad(utilities[self.names.index(name)], self.own[name], retain_graph=True)
            for t, g in zip(self.own[name], grads):
                t.grad = g
        for optimizer in self.optimizers:
            optimizer.step()

    def step(self):
        for name, k in self.critic.items():
            for _ in range(k - 1):
                self.move([name])
        if self.solver == "simga":
            self.move(self.names)
        else:
            for name in self.names:
                self.move([name])
        for scheduler in self.schedulers:
            scheduler.step()
        self.taken += 1
        with torch.no_grad():
            for name, d in self.decay.items():
                now = [t.detach().clone() for t in self.own[name]]
                if self.taken > self.start:
                    self.averages[name] = [d * a + (1 - d) * x for a, x in zip(self.averages[name], now)]
                else:
                    self.averages[name] = now

    def params(self, name: str):
        return [t.detach() for t in self.own[name]]

    def lr(self, group: int) -> float:
        return self.optimizers[group].param_groups[0]["lr"]


def make_run(optimizer, solver="simga", critic=None, average=None, start=0, compile=False, notes=None):
    return solvers.Run(
        tiny_game(), solvers.get(solver), optimizer, critic_steps=critic, average=average, average_start=start,
        compile=compile, note=(notes if notes is not None else []).append,
    )  # fmt: skip


def own_params(run: solvers.Run, name: str):
    return [t.detach() for t in run.engine.params[run.engine.slices[run.player_names.index(name)]]]


def assert_same(got, expected, what):
    for k, (a, b) in enumerate(zip(got, expected, strict=True)):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10, msg=lambda m: f"{what}, tensor {k}: {m}")


def follow(run: solvers.Run, ref: Reference, steps: int, check_averages: bool = False) -> None:
    """Step both `steps` times; after each step the parameters (and the averages) agree to 1e-10."""
    start = {name: [t.clone() for t in ref.params(name)] for name in ref.names}
    for name in ref.names:
        assert_same(own_params(run, name), start[name], f"initial parameters of {name}")
    for t in range(steps):
        run.step()
        ref.step()
        for name in ref.names:
            assert_same(own_params(run, name), ref.params(name), f"{name} after step {t + 1}")
        if check_averages:
            with run.averaged():
                for name in ref.decay:
                    assert_same(own_params(run, name), ref.averages[name], f"average of {name} after step {t + 1}")
            for name in ref.names:  # the raw parameters are back
                assert_same(own_params(run, name), ref.params(name), f"{name} after averaged() at step {t + 1}")
    for name in ref.names:  # the comparison means something: every player moved
        moved = max(float((a - b).abs().max()) for a, b in zip(ref.params(name), start[name]))
        assert moved > 1e-4, f"player {name} barely moved ({moved:.1e})"


def torch_adam(lr, beta1=0.9, beta2=0.999, eps=1e-8):
    # torch.optim.Adam divides by sqrt(v) / sqrt(1 - beta2^t) + eps; solvers' adam by
    # sqrt(v / (1 - beta2^t)) + eps: the same update, rounded differently (far below 1e-10)
    return lambda params: torch.optim.Adam(params, lr=lr, betas=(beta1, beta2), eps=eps, maximize=True)


def torch_sgd(lr):
    return lambda params: torch.optim.SGD(params, lr=lr, maximize=True)


def torch_rmsprop(lr, alpha=0.99, eps=1e-8):
    # solvers' rmsprop is PyTorch's formulation (eps outside the square root, the running
    # mean of squares started at 0), so torch.optim.RMSprop is compared with as it is
    return lambda params: torch.optim.RMSprop(params, lr=lr, alpha=alpha, eps=eps, maximize=True)


# ---- 1. per-player optimizers, schedules, critic steps and averages against torch.optim -


def test_ttur_adam_critic_at_four_times_the_rate_of_an_sgd_generator_is_torch_optims():
    run = make_run({"D": opt("adam", lr=4e-2, beta1=0.0, beta2=0.9), "G": opt("sgd", lr=1e-2)})
    ref = Reference([(("D",), torch_adam(4e-2, beta1=0.0, beta2=0.9), None), (("G",), torch_sgd(1e-2), None)])
    follow(run, ref, 15)


# the factor of each schedule after t completed steps, written from its definition
SCHEDULES = {
    "linear": (dict(schedule="linear", until=8, final=0.1), lambda t: 1 - (1 - 0.1) * min(t / 8, 1)),
    "cosine": (
        dict(schedule="cosine", until=8, final=0.2),
        lambda t: 0.2 + (1 - 0.2) * (1 + math.cos(math.pi * min(t / 8, 1))) / 2,
    ),
    "step": (dict(schedule="step", at=5, factor=0.3), lambda t: 0.3 if t >= 5 else 1.0),
}


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_a_schedule_on_each_players_optimizer_is_lambdalr(schedule):
    """Adam for D and RMSProp for G, both scheduled; 12 steps run past `until` and `at`, so
    the rate's end (final, factor) is reached and held. Run.rates() is the hand rate too."""
    params, factor = SCHEDULES[schedule]
    run = make_run({"D": opt("adam", lr=2e-2, **params), "G": opt("rmsprop", lr=1e-2, alpha=0.9, **params)})
    ref = Reference([(("D",), torch_adam(2e-2), factor), (("G",), torch_rmsprop(1e-2, alpha=0.9), factor)])
    for t in range(12):
        expected = {"D": 2e-2 * factor(t), "G": 1e-2 * factor(t)}
        assert run.rates() == pytest.approx(expected, rel=1e-12, abs=0)
        assert [ref.lr(0), ref.lr(1)] == pytest.approx([expected["D"], expected["G"]], rel=1e-12, abs=0)
        run.step()
        ref.step()
        for name in ref.names:
            assert_same(own_params(run, name), ref.params(name), f"{name} after step {t + 1} ({schedule})")


@pytest.mark.parametrize("solver", ["simga", "altga"])
@pytest.mark.parametrize("optimizers", ["own", "shared"])
def test_three_critic_steps_for_d_are_a_hand_written_loop(solver, optimizers):
    """k = 3: D takes two steps alone, each on a fresh batch, before the solver's step.
    "own": D adam, G sgd. "shared": one adam for both players (their group), whose state
    is per tensor, as torch.optim's is; D's counter runs three times as fast as G's."""
    if optimizers == "own":
        run = make_run({"D": opt("adam", lr=2e-2, beta1=0.5), "G": opt("sgd", lr=2e-2)}, solver, critic={"D": 3})
        groups = [(("D",), torch_adam(2e-2, beta1=0.5), None), (("G",), torch_sgd(2e-2), None)]
    else:
        run = make_run(opt("adam", lr=2e-2), solver, critic={"D": 3})
        groups = [(("D", "G"), torch_adam(2e-2), None)]
    follow(run, Reference(groups, solver=solver, critic={"D": 3}), 10)


def test_averages_with_a_warm_up_are_a_hand_kept_average():
    """average.G = 0.9, average.D = 0.8, average_start = 4: the averages follow the parameters
    for 4 steps, then move (1 - d) of the way to them at every step."""
    average = {"G": 0.9, "D": 0.8}
    run = make_run(opt("sgd", lr=5e-2), average=average, start=4)
    ref = Reference([(("D", "G"), torch_sgd(5e-2), None)], average=average, start=4)
    follow(run, ref, 12, check_averages=True)
    with run.averaged():  # after the warm-up the average is not the parameters
        assert not torch.allclose(own_params(run, "G")[0], ref.params("G")[0], rtol=0, atol=1e-6)


def all_controls_run(solver, compile=False, notes=None):
    return make_run(
        {"D": opt("adam", lr=4e-2, beta1=0.0, beta2=0.9, schedule="cosine", until=8, final=0.2),
         "G": opt("rmsprop", lr=1e-2, alpha=0.9, schedule="step", at=5, factor=0.3)},
        solver, critic={"D": 3}, average={"G": 0.9}, start=3, compile=compile, notes=notes,
    )  # fmt: skip


def all_controls_reference(solver):
    return Reference(
        [(("D",), torch_adam(4e-2, beta1=0.0, beta2=0.9), SCHEDULES["cosine"][1]),
         (("G",), torch_rmsprop(1e-2, alpha=0.9), SCHEDULES["step"][1])],
        solver=solver, critic={"D": 3}, average={"G": 0.9}, start=3,
    )  # fmt: skip


@pytest.mark.parametrize("solver", ["simga", "altga"])
def test_all_controls_at_once_are_the_hand_written_loop(solver):
    follow(all_controls_run(solver), all_controls_reference(solver), 12, check_averages=True)


@pytest.mark.slow  # tracing the step with its critic steps takes about 20 s on one core
def test_a_compiled_run_with_all_controls_equals_the_eager_one(monkeypatch):
    """The compiled step (traced with aot_eager: what is computed, not inductor's code) takes
    the critic steps, the scheduled per-player optimizers and the averages like the eager one."""
    monkeypatch.setattr(solvers.compiled, "BACKEND", "aot_eager")
    notes = []
    compiled, eager = all_controls_run("simga", compile=True, notes=notes), all_controls_run("simga")
    for t in range(10):
        compiled.step()
        eager.step()
        for name in ("D", "G"):
            assert_same(own_params(compiled, name), own_params(eager, name), f"{name} after step {t + 1}")
        with compiled.averaged(), eager.averaged():
            assert_same(own_params(compiled, "G"), own_params(eager, "G"), f"average of G after step {t + 1}")
    assert compiled.compiled is not None and compiled.compiled.compiled, notes
    for a, b in zip(compiled.state_dict()["optimizer"], eager.state_dict()["optimizer"], strict=True):
        for key in a:
            assert_same(a[key], b[key], f"optimizer state {key}")


# ---- 2. bit-exact resume through the command line ------------------------------------------


def load_checkpoint(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def assert_equal_tree(a, b, where="checkpoint"):
    """Two checkpoints' contents, tensor for tensor (torch.equal), value for value."""
    assert type(a) is type(b), where
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_equal_tree(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for k, (x, y) in enumerate(zip(a, b)):
            assert_equal_tree(x, y, f"{where}[{k}]")
    else:
        assert a == b, where


@pytest.mark.parametrize("solver", ["simga", "altga"])
def test_a_resume_with_every_control_on_is_bit_exact(cli, tmp_path, solver):
    path = game_file(tmp_path, solver=solver)
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert cli("solve", path, "--steps", "12", "--out", straight, "-q").code == 0
    first = cli("solve", path, "--steps", "6", "--out", split, "-q")
    assert first.code == 0, first.stderr
    resumed = cli("solve", "--resume", split, "--steps", "12", "-q")
    assert resumed.code == 0, resumed.stderr
    a, b = load_checkpoint(straight / "checkpoint.pt"), load_checkpoint(split / "checkpoint.pt")
    assert a["step"] == b["step"] == a["run"]["step"] == 12
    assert set(a["run"]) >= {"params", "optimizer", "solver", "average"} and set(a["run"]["average"]) == {"G"}
    assert len(a["run"]["optimizer"]) == 2  # one state per player
    assert_equal_tree(a["run"], b["run"], "run")
    assert_equal_tree(a["rng"], b["rng"], "rng")
    assert_equal_tree(a["buffers"], b["buffers"], "buffers")


# ---- 3. what a run with averages reports ---------------------------------------------------


def fresh_draw(state_G, n, stream):
    """n samples of the tiny game's generator with the state dict `state_G`, from `stream`."""
    game = tiny_game()
    game.networks["G"].load_state_dict(state_G)
    return game.draw("fake", n, stream)


def test_a_run_with_an_averaged_generator_reports_it_and_the_raw_one_beside(cli, tmp_path):
    path = game_file(tmp_path, steps=12)
    out = tmp_path / "run"
    result = cli("solve", path, "--out", out, "-q")
    assert result.code == 0, result.stderr
    averaged = torch.load(out / "params" / "G.pt", weights_only=True)
    raw = torch.load(out / "params" / "raw" / "G.pt", weights_only=True)
    assert averaged.keys() == raw.keys()
    assert any(not torch.equal(averaged[k], raw[k]) for k in averaged)
    saved = load_checkpoint(out / "checkpoint.pt")["run"]
    assert_equal_tree(list(averaged.values()), saved["average"]["G"], "params/G.pt vs the checkpoint's average")
    assert_equal_tree(list(raw.values()), saved["params"][-len(raw):], "params/raw/G.pt vs the checkpoint's parameters")

    samples = np.load(out / "samples.npy")
    from_average, from_raw = fresh_draw(averaged, 300, "eval"), fresh_draw(raw, 300, "eval")
    assert np.array_equal(samples, from_average.numpy())
    assert not np.allclose(samples, from_raw.numpy())

    metrics = json.loads((out / "metrics.json").read_text())
    means, std = mixture_of(gamedsl.loads(GAME))
    assert metrics["mixture"] == strict_json(mixture_metrics(from_average, means, std))
    assert metrics["raw"] == {"mixture": strict_json(mixture_metrics(from_raw, means, std))}

    drawn = cli("sample", out, "-n", "50", "-o", tmp_path / "drawn.npy")
    assert drawn.code == 0, drawn.stderr
    sampled = np.load(tmp_path / "drawn.npy")
    assert np.array_equal(sampled, fresh_draw(averaged, 50, "grid").float().numpy())
    assert not np.allclose(sampled, fresh_draw(raw, 50, "grid").float().numpy())


# ---- 4. the checkpoint history ---------------------------------------------------------------


def test_the_checkpoint_history_keeps_the_last_n_and_every_kth(cli, tmp_path):
    every, keep, history, steps = 2, 2, 4, 10
    extra = f"  checkpoint_keep = {keep}\n  checkpoint_history = {history}"
    path = game_file(tmp_path, optimizer="sgd(lr=0.05)", extra=extra, steps=steps, every=every)
    out = tmp_path / "run"
    assert cli("solve", path, "--out", out, "-q").code == 0
    saved = list(range(every, steps + 1, every))  # a checkpoint every 2 steps, the last at the end
    expected = set(saved[-keep:]) | {s for s in saved if s % history == 0}  # the last 2, and every 4th
    kept = sorted((out / "checkpoints").glob("step_*.pt"))
    assert [p.name for p in kept] == [f"step_{s:07d}.pt" for s in sorted(expected)]
    assert (out / "checkpoints" / f"step_{steps:07d}.pt").read_bytes() == (out / "checkpoint.pt").read_bytes()
    for s in sorted(expected):
        data = checkpoint.load(out / "checkpoints" / f"step_{s:07d}.pt")  # weights_only, checked
        assert data["step"] == data["run"]["step"] == s
        alone = tmp_path / f"alone{s}"
        assert cli("solve", path, "--steps", str(s), "--out", alone, "-q").code == 0
        assert_equal_tree(data["run"], load_checkpoint(alone / "checkpoint.pt")["run"], f"step {s}")


# ---- 5. per-player settings from the command line --------------------------------------------


def config_of(run_dir):
    return json.loads((run_dir / "config.json").read_text())["config"]


def solve_with_sgd_default(cli, tmp_path, setting: str, d_optimizer) -> dict:
    """3 steps with `--set SETTING` over a default sgd(lr=0.01): the parameters must be those of
    the hand-written loop with `d_optimizer` for D and the default for G; the run's config."""
    path = game_file(tmp_path, optimizer="sgd(lr=0.01)", extra="")
    out = tmp_path / "run"
    result = cli("solve", path, "--steps", "3", "--out", out, "-q", "--set", setting)
    assert result.code == 0, result.stderr
    ref = Reference([(("D",), d_optimizer, None), (("G",), torch_sgd(0.01), None)])
    for _ in range(3):
        ref.step()
    saved = load_checkpoint(out / "checkpoint.pt")["run"]["params"]
    assert_same(saved, ref.params("D") + ref.params("G"), "parameters after 3 steps")
    return config_of(out)


def test_set_gives_d_an_optimizer_of_its_own(cli, tmp_path):
    config = solve_with_sgd_default(cli, tmp_path, "optimizer.D=adam(lr=1e-3)", torch_adam(1e-3))
    assert config["player_optimizers"] == {"D": {"name": "adam", "params": {"lr": 1e-3}}}
    assert (config["optimizer"], config["optimizer_params"]) == ("sgd", {"lr": 0.01})


def test_set_changes_the_rate_of_ds_optimizer_the_default_one_when_d_has_none(cli, tmp_path):
    config = solve_with_sgd_default(cli, tmp_path, "optimizer.D.lr=2e-3", torch_sgd(2e-3))
    assert config["player_optimizers"] == {"D": {"name": "sgd", "params": {"lr": 2e-3}}}
    assert config["optimizer_params"] == {"lr": 0.01}


def test_set_changes_one_parameter_of_ds_own_optimizer(cli, tmp_path):
    path = game_file(tmp_path)  # optimizer.D = adam(lr=4e-2, beta1=0, ...)
    out = tmp_path / "run"
    result = cli("solve", path, "--steps", "2", "--out", out, "-q", "--set", "optimizer.D.lr=2e-3")
    assert result.code == 0, result.stderr
    own = config_of(out)["player_optimizers"]["D"]
    assert own["name"] == "adam"
    assert own["params"] == {"lr": 2e-3, "beta1": 0.0, "beta2": 0.9, "schedule": "cosine", "until": 12, "final": 0.2}


def test_a_schedule_without_until_ends_at_the_runs_last_step(cli, tmp_path):
    path = game_file(tmp_path, optimizer="sgd(lr=0.01)", extra="", steps=10)
    out = tmp_path / "run"
    schedules = ["--set", "optimizer=rmsprop(lr=1e-3, schedule=linear)",
                 "--set", "optimizer.D=adam(lr=1e-3, schedule=cosine)"]  # fmt: skip
    result = cli("solve", path, "--steps", "7", "--out", out, "-q", *schedules)
    assert result.code == 0, result.stderr
    config = config_of(out)
    assert config["steps"] == 7
    assert config["optimizer_params"]["until"] == 7
    assert config["player_optimizers"]["D"]["params"]["until"] == 7


def test_check_json_reports_each_players_training(cli, tmp_path):
    result = cli("check", game_file(tmp_path), "--json")
    assert result.code == 0, result.stderr
    training = json.loads(result.stdout)["training"]
    assert set(training) == {"D", "G"}
    assert training["D"]["critic_steps"] == 3 and "average" not in training["D"]
    assert training["D"]["optimizer"].startswith("adam(") and "beta1=0" in training["D"]["optimizer"]
    assert training["G"]["average"] == 0.9 and "critic_steps" not in training["G"]
    assert training["G"]["optimizer"].startswith("rmsprop(") and "schedule=step" in training["G"]["optimizer"]


@pytest.mark.parametrize(
    "args, words",
    [
        (["--set", "critic_steps.D=3", "--solver", "consensus"], ["consensus", "critic steps"]),
        (["--set", "average.Nobody=0.9"], ["'Nobody'", "players: D, G"]),
    ],
    ids=["critic-steps-with-consensus", "average-of-no-player"],
)
def test_per_player_settings_that_cannot_apply_are_usage_errors(cli, tmp_path, args, words):
    path = game_file(tmp_path, optimizer="sgd(lr=0.01)", extra="")
    out = tmp_path / "run"
    result = cli("solve", path, "--out", out, *args)
    assert result.code == 2, result.stderr
    assert result.stderr.count("error:") == 1 and "Traceback" not in result.stderr
    assert all(word in result.stderr for word in words), result.stderr
    assert not out.exists()


@pytest.mark.parametrize("solver", ["cgd", "acgd"])
def test_a_schedule_that_reaches_zero_stops_cgd_without_dividing_by_it(solver):
    """Found by the fuzzer: cgd rescales its Nash move by 1/h, and a linear schedule with
    final=0 brings h to 0 at `until` (ZeroDivisionError). At rate 0 nothing moves."""
    run = make_run(opt("sgd", lr=1e-2, schedule="linear", until=2, final=0.0), solver=solver)
    moved = []
    for _ in range(4):
        before = [p.detach().clone() for p in run.engine.params]
        run.step()
        moved.append(max(float((p.detach() - b).abs().max()) for p, b in zip(run.engine.params, before)))
    assert moved[0] > 0 and moved[1] > 0  # rates 1e-2 and 5e-3
    assert moved[2] == 0 and moved[3] == 0  # rate 0 from step 2 on


def test_a_schedule_that_does_not_fit_the_steps_is_noted_at_the_start_and_on_resume(cli, tmp_path):
    """`until` is the first run's last step, recorded: a resume to more steps keeps it, and
    says that the steps after it go at the schedule's final rate."""
    game = tmp_path / "s.game"
    game.write_text(BILINEAR_SCHEDULE)
    first = cli("solve", game, "--steps", "6", "--out", tmp_path / "run", "-q")
    assert first.code == 0 and "note:" not in first.stderr
    resumed = cli("solve", "--resume", tmp_path / "run", "--steps", "12", "-q")
    assert resumed.code == 0, resumed.stderr
    assert "its linear schedule ends at step 6; the run's last 6 steps go at its final rate" in resumed.stderr
    late = cli("solve", game, "--set", "optimizer=sgd(lr=0.1, schedule=step, at=50)", "--out", tmp_path / "r2", "-q")
    assert "its step schedule drops at step 50, after the run's 6 steps" in late.stderr


BILINEAR_SCHEDULE = """game s
param a = 1
param b = 1
player P controls a maximizes a * b
player Q controls b minimizes a * b
solve {
  optimizer = sgd(lr=0.05, schedule=linear)
  steps = 6
  batch = 1
}
"""
