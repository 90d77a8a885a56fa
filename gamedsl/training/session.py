"""A session: one checked game, one resolved configuration, one run directory.

It compiles the game for the configured device and precision, binds the solver and the
optimizer, runs them with monitors (progress, logs, checkpoints), and writes the outputs:
config.json, params/ (state dicts), samples.npy and metrics.json.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

import solvers
from gamedsl.compile.torch_game import TorchGame, pick_device
from gamedsl.config import KEYS, RunConfig
from gamedsl.data import images
from gamedsl.data.images import to_uint8
from gamedsl.errors import DataError, UsageError
from gamedsl.metrics.mixture import mixture_metrics, mixture_of
from gamedsl.semantics import ir
from gamedsl.semantics.model import CheckedGame
from gamedsl.nets.dcgan import has_batchnorm, running_stats_frozen
from gamedsl.training import checkpoint
from gamedsl.training.parallel import Parallel
from solvers.distributed import mean_reducer


SMALL_GAME = 100_000  # parameters; below this, extra intra-op threads only add contention


def set_threads(threads: int, parameters: int) -> None:
    """Tiny networks gain nothing from intra-op parallelism and lose a lot when cores are
    busy, so small games run on one thread unless the user asks otherwise."""
    if threads:
        torch.set_num_threads(threads)
    elif parameters < SMALL_GAME and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(1)


def default_directory(game: CheckedGame, config: RunConfig, root: Path = Path("runs")) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = root / f"{game.name}-{config.solver}-{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = root / f"{game.name}-{config.solver}-{stamp}-{n}"
    return path


@dataclass
class Session:
    game: CheckedGame
    config: RunConfig
    directory: Path
    torch_game: TorchGame
    run: solvers.Run
    parallel: Parallel = Parallel()
    interrupted: str | None = None  # the signal that stopped the run, if any

    @classmethod
    def create(cls, game: CheckedGame, config: RunConfig, directory: Path, parallel: Parallel = Parallel()) -> "Session":
        """Compile the game for this process; `shards = 0` becomes one shard per process."""
        if not config.shards:
            config = replace(config, shards=parallel.world)
        try:
            torch_game = TorchGame(
                game,
                batch=config.batch,
                seed=config.seed,
                device=pick_device(parallel.device(config.device)),
                dtype=config.dtype,
                shards=config.shards,
                shard_ids=parallel.shard_ids(config.shards),
            )
        except DataError as exc:  # missing or malformed data: point at the declaration that needs them
            raise _at_declaration(exc, game) from None
        set_threads(config.threads, sum(p.numel() for p in torch_game.parameters()))
        if config.solver_params.get("debias") and has_batchnorm(torch_game):
            raise UsageError(
                f"solver '{config.solver}' with debias=true needs per-example gradients, which batch norm does not "
                "have: it normalises each example with the statistics of the whole batch",
                hint="use debias=false, or networks with batchnorm=false",
            )
        reduce = mean_reducer() if parallel.active else None
        try:
            run = solvers.Run(torch_game, config.make_solver(), config.make_optimizer(), reduce=reduce, world=parallel.world)
        except solvers.SolverError as exc:  # the solver refuses this game or optimizer (cgd with rmsprop, say)
            raise UsageError(f"solver '{config.solver}': {exc.message}", hint=exc.hint) from None
        return cls(game, config, Path(directory), torch_game, run, parallel)

    @classmethod
    def resume(cls, directory: Path, steps: int | None = None, parallel: Parallel = Parallel()) -> "Session":
        """Rebuild a run from its directory: the game source and configuration saved in
        config.json, the state in checkpoint.pt. `steps` changes the total to run to."""
        from gamedsl.errors import CheckpointError, Source
        from gamedsl.semantics.checker import check_source

        directory = Path(directory)
        try:
            meta = json.loads((directory / "config.json").read_text())
            source = Source(meta["file"], meta["source"])
            settings = dict(meta["config"])
        except FileNotFoundError:
            raise CheckpointError(f"{directory} is not a run directory (no config.json)", hint="pass the --out directory of a run") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{directory}/config.json is damaged ({exc})") from None
        if steps is not None:
            settings["steps"] = steps
        for key, spec in KEYS.items():  # settings added since the run was written take their defaults
            if spec.kind is not None:
                settings.setdefault(key, spec.default)
        if meta.get("data_root") and not images.data_root_chosen():
            images.set_data_root(meta["data_root"])  # where the run found its data, unless told otherwise
        try:
            config = RunConfig(**settings)
        except TypeError as exc:
            raise CheckpointError(f"{directory} was written by another version of gamedsl ({exc})") from None
        game = check_source(source, config.divergences)
        session = cls.create(game, config, directory, parallel)
        data = checkpoint.load(directory / checkpoint.FILENAME, checkpoint.fingerprint(source.text))
        try:
            session.run.load_state_dict(data["run"])
            ids = session.torch_game.shard_ids
            session.torch_game.set_rng_state({name: [states[k] for k in ids] for name, states in data["rng"].items()})
            buffers = dict(session.torch_game.named_buffers())
            with torch.no_grad():
                for name, value in data.get("buffers", {}).items():
                    buffers[name].copy_(value)
        except (KeyError, ValueError, RuntimeError, TypeError) as exc:
            raise CheckpointError(f"the checkpoint in {directory} does not fit this game ({exc})") from None
        return session

    def save_checkpoint(self) -> Path:
        """Atomically write checkpoint.pt (rank 0; every process takes part in gathering the RNG states)."""
        path = self.directory / checkpoint.FILENAME
        rng = self.parallel.gather_rng(self.torch_game.shard_ids, self.torch_game.rng_state())
        if not self.parallel.main:
            return path
        checkpoint.save(
            path,
            {
                "game": self.game.name,
                "fingerprint": checkpoint.fingerprint(self.game.source.text),
                "config": self.config.as_dict(),
                "step": self.run.step_count,
                "run": self.run.state_dict(),
                "buffers": {k: v.detach().clone() for k, v in self.torch_game.named_buffers()},  # e.g. batch-norm statistics
                "rng": rng,  # every shard's generators, in shard order
            },
        )
        return path

    def train(self, callbacks: Sequence = ()) -> solvers.Result:
        """Run until the configured total number of steps (a resumed run continues).

        A solver that finds at its first step that it cannot handle this game (e.g. debias
        without sampled data) raises SolverError; it becomes a usage error here."""
        try:
            return self._solve(callbacks)
        except solvers.SolverError as exc:
            raise UsageError(f"solver '{self.config.solver}': {exc.message}", hint=exc.hint) from None

    def _solve(self, callbacks: Sequence) -> solvers.Result:
        return solvers.solve(
            self.torch_game,
            self.run.solver,
            self.run.engine.optimizer,
            max(0, self.config.steps - self.run.step_count),
            callbacks=callbacks,
            record_every=self.config.log_every,
            run=self.run,
        )

    # ---- outputs
    def mixture(self):
        """(means, std) of the data when it is a 2-D Gaussian mixture, else None."""
        return mixture_of(self.game)

    def image_shape(self) -> tuple[int, ...] | None:
        """(C, H, W) when the game's model samples are images, else None."""
        if self.game.comparison is None:
            return None
        shape = self.game.comparison[1].shape
        return shape if len(shape) == 3 else None

    def real_source(self) -> str | None:
        """The source of the data the divergence compares with (`digits`, `cifar10`, ...)."""
        real = self.game.comparison[0] if self.game.comparison else None
        return self.game.samples[real.name].source if isinstance(real, ir.Sample) else None

    def draw_fake(self, n: int, stream: str = "eval") -> torch.Tensor | None:
        """n model samples from a fixed stream; batch-norm statistics are left as they are."""
        with running_stats_frozen(self.torch_game):
            return self.torch_game.draw("fake", n, stream)

    def evaluate(self) -> dict:
        """End-of-run quality: the mode metrics for 2-D mixtures, image metrics for images."""
        if self.image_shape() is not None:
            return {"images": self.image_metrics()}
        mixture = self.mixture()
        if mixture is None:
            return {}
        samples = self.draw_fake(self.config.eval_samples)
        means, std = mixture
        return {"mixture": mixture_metrics(samples, means, std)}

    def image_metrics(self, untrained: bool = True) -> dict:
        """Digits: the offline classifier score and Frechet distance of this generator and
        (`untrained`) of the initial one, beside the real digits' score. Colour images: the
        Inception score and FID when torch-fidelity and the weights are here, else why not."""
        from gamedsl.metrics import images as metrics

        n = self.config.eval_samples
        out: dict = {}
        if self.real_source() == "digits":
            out["digits"] = metrics.digits_scores(self.draw_fake(n))
            if untrained:
                initial = Session.create(self.game, self.config, self.directory)
                out["digits_untrained"] = metrics.digits_scores(initial.draw_fake(n))
            out["digits_reference"] = metrics.digits_reference(self.image_shape()[-1])
        elif self.image_shape()[0] == 3:
            reason = metrics.inception_unavailable()
            if reason:
                out["inception"] = {"available": False, "reason": reason}
            else:
                real = self.torch_game.draw("real", n)
                out["inception"] = metrics.inception_scores(to_uint8(self.draw_fake(n)), to_uint8(real))
        return out

    def write_config(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        data = {
            "game": self.game.name,
            "file": self.game.source.path,
            "source": self.game.source.text,
            "config": self.config.as_dict(),
            "gamedsl": __import__("gamedsl").__version__,
            "torch": torch.__version__,
        }
        if self.image_shape() is not None:
            data["data_root"] = str(images.data_root())
        (self.directory / "config.json").write_text(json.dumps(data, indent=2) + "\n")

    def write_outputs(self, result: solvers.Result, metrics: dict) -> dict:
        save_params(self.torch_game, self.directory)
        fake = self.draw_fake(self.config.eval_samples)
        if fake is not None:  # images as uint8 (N, C, H, W), 0..255
            np.save(self.directory / "samples.npy", (to_uint8(fake) if fake.dim() == 4 else fake.cpu()).numpy())
        summary = {
            "status": result.status,
            "message": result.message,
            "steps": result.steps,
            "seconds": round(result.seconds, 3),
            "steps_per_second": round(result.taken / result.seconds, 2) if result.taken and result.seconds else None,
            "final": {k: v[-1] for k, v in result.history.items() if v},
            **metrics,
        }
        (self.directory / "metrics.json").write_text(json.dumps(strict_json(summary), indent=2) + "\n")
        return summary


def _at_declaration(exc: DataError, game: CheckedGame) -> DataError:
    """Point a data error at the `data x ~ source(...)` whose data could not be loaded."""
    origin = getattr(exc, "origin", None)
    if exc.span is None and origin is not None:
        decl = next((s.decl for s in game.samples.values() if s.source == origin), None)
        if decl is not None:
            exc.span, exc.source = decl.source.span, game.source
    return exc


def save_params(torch_game: TorchGame, directory: Path) -> None:
    """params/NAME.pt: each network's state dict (loadable into its nn.Module); variables.pt."""
    params = directory / "params"
    params.mkdir(parents=True, exist_ok=True)
    for name, module in torch_game.networks.items():
        torch.save(module.state_dict(), params / f"{name}.pt")
    if len(torch_game.variables):
        torch.save({k: v.detach().cpu() for k, v in torch_game.variables.items()}, params / "variables.pt")


def strict_json(value):
    """Replace non-finite floats (JSON has no Infinity) with None, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    return value
