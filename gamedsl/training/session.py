"""A session: one checked game, one resolved configuration, one run directory.

It compiles the game for the configured device and precision, binds the solver and the
optimizers, runs them with monitors (progress, logs, checkpoints), and writes the outputs:
config.json, params/ (state dicts), samples.npy and metrics.json. Where a player's parameters
are averaged (`average.P`), everything reported (metrics, pictures, samples, params/) is of
the averages; the raw parameters' metrics go beside them ("raw"), their state in params/raw/.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

import solvers
from gamedsl.compile.torch_game import TorchGame, pick_device
from gamedsl.data import images
from gamedsl.data.images import to_uint8
from gamedsl.data.sources import SOURCES
from gamedsl.errors import DataError, GameError, UsageError
from gamedsl.metrics.mixture import mixture_metrics, mixture_of
from gamedsl.nets.dcgan import running_stats_frozen
from gamedsl.semantics import ir
from gamedsl.semantics.model import CheckedGame
from gamedsl.semantics.settings import MAX_THREADS, RunConfig
from gamedsl.training import checkpoint, rundir, saved
from gamedsl.training.parallel import Parallel
from gamedsl.training.threads import set_threads
from solvers.distributed import mean_reducer


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
        reduce = mean_reducer() if parallel.active else None
        try:
            run = solvers.Run(
                torch_game,
                config.make_solver(),
                config.make_optimizers([p.name for p in game.players]),
                reduce=reduce,
                world=parallel.world,
                critic_steps=config.critic_steps,
                average=config.average,
                average_start=config.average_start,
            )
        except solvers.SolverError as exc:  # the solver refuses this game or optimizer (cgd with rmsprop, say)
            raise UsageError(f"solver '{config.solver}': {exc.message}", hint=exc.hint) from None
        return cls(game, config, Path(directory), torch_game, run, parallel)

    @classmethod
    def resume(cls, directory: Path, steps: int | None = None, parallel: Parallel = Parallel()) -> "Session":
        """Rebuild a run from its directory: the game source and configuration saved in
        config.json, the state in checkpoint.pt. `steps` changes the total to run to.

        Everything read back is checked as user input is (exit 5 when it is damaged)."""
        from gamedsl.errors import CheckpointError

        directory = Path(directory)
        run = saved.load(directory)
        meta, config, game = run.meta, run.config, run.game
        if steps is not None:
            config = replace(config, steps=steps)
        resolved = meta.get("resolved") if isinstance(meta.get("resolved"), dict) else {}
        threads = resolved.get("threads")
        if not config.threads and isinstance(threads, int) and 1 <= threads <= MAX_THREADS:
            config = replace(config, threads=threads)  # the count the run started with: sums are split alike
        if isinstance(meta.get("data_root"), str) and not images.data_root_chosen():
            images.set_data_root(meta["data_root"])  # where the run found its data, unless told otherwise
        session = cls.create(game, config, directory, parallel)
        data = checkpoint.load(directory / checkpoint.FILENAME, checkpoint.fingerprint(game.source.text))
        try:
            session.run.load_state_dict(data["run"])
            ids = session.torch_game.shard_ids
            session.torch_game.set_rng_state({name: [states[k] for k in ids] for name, states in data["rng"].items()})
            buffers = dict(session.torch_game.named_buffers())
            with torch.no_grad():
                for name, value in data.get("buffers", {}).items():
                    buffers[name].copy_(value)
        except (KeyError, ValueError, RuntimeError, TypeError, IndexError, AttributeError) as exc:
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
        checkpoint.keep_history(self.directory, self.run.step_count, self.config.checkpoint_keep, self.config.checkpoint_history)
        return path

    def train(self, callbacks: Sequence = (), note: Callable[[str], None] = lambda text: None) -> solvers.Result:
        """Run until the configured total number of steps (a resumed run continues).

        A solver that finds at its first step that it cannot handle this game (e.g. debias
        without sampled data) raises SolverError; it becomes a usage error here."""
        self.run.note = note
        if self.compiles(self.config.steps - self.run.step_count):
            compile_cache()
            self.run.use_compiled("reduce-overhead" if self.torch_game.device.type == "cuda" else None)
        try:
            return self._solve(callbacks)
        except solvers.SolverError as exc:
            raise UsageError(f"solver '{self.config.solver}': {exc.message}", hint=exc.hint) from None

    def compiles(self, remaining: int) -> bool:
        """compile = true, or auto and a run long enough to repay compiling its step."""
        if self.config.compile == "auto":
            return not self.parallel.active and remaining >= compile_threshold(self.torch_game.device)
        return self.config.compile == "true"

    def _solve(self, callbacks: Sequence) -> solvers.Result:
        return solvers.solve(
            self.torch_game,
            self.run.solver,
            None,  # the run's optimizers
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

    def draw_fake(self, n: int, stream: str = "eval", raw: bool = False) -> torch.Tensor | None:
        """n model samples from a fixed stream, of the averaged generator where the run
        averages one (`raw`: of its current parameters); batch-norm statistics are left as
        they are."""
        with running_stats_frozen(self.torch_game), self.reported(raw):
            return self.torch_game.draw("fake", n, stream)

    def reported(self, raw: bool = False):
        """A context in which the parameters are the ones the run reports: the averages of
        the averaged players (`average.P`), unless `raw`."""
        return contextlib.nullcontext() if raw else self.run.averaged()

    def evaluate(self, poll: Callable[[], None] | None = None) -> dict:
        """End-of-run quality: the mode metrics for 2-D mixtures, image metrics for images.

        `poll` is called between the pieces of work (stopping.poll raises when a stop was requested)."""
        poll = poll or (lambda: None)
        poll()
        if self.image_shape() is not None:
            return {"images": self.image_metrics(poll=poll)}
        mixture = self.mixture()
        if mixture is None:
            return {}
        means, std = mixture
        out = {"mixture": mixture_metrics(self.draw_fake(self.config.eval_samples), means, std)}
        if self.run.averages:  # the raw generator beside the averaged one
            out["raw"] = {"mixture": mixture_metrics(self.draw_fake(self.config.eval_samples, raw=True), means, std)}
        return out

    def idle_result(self) -> solvers.Result:
        """The result of a resumed run with no steps left: its scalars at the saved state, on
        a batch from a fixed stream (the training streams are not touched)."""
        with running_stats_frozen(self.torch_game):
            ev = self.run.engine.evaluate(self.torch_game.draw_batch("final"))
        row = self.run.scalars(solvers.Step.of(ev))
        history = {key: [value] for key, value in row.items()}
        return solvers.Result(
            self.config.solver, self.config.optimizer, self.run.step_count, 0, "finished", "no steps left", 0.0, history
        )

    def image_metrics(self, untrained: bool = True, poll: Callable[[], None] = lambda: None) -> dict:
        """Digits: the offline classifier score and Frechet distance of this generator and
        (`untrained`) of the initial one, beside the real digits' score. Colour images: the
        Inception score and FID when torch-fidelity and the weights are here, else why not."""
        from gamedsl.metrics import images as metrics

        n = self.config.eval_samples
        out: dict = {}
        if self.real_source() == "digits":
            out["digits"] = metrics.digits_scores(self.draw_fake(n))
            poll()
            if untrained:
                initial = Session.create(self.game, self.config, self.directory)
                out["digits_untrained"] = metrics.digits_scores(initial.draw_fake(n))
                poll()
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
        """config.json: the game's source, the settings as given, and what they resolved to."""
        data = {
            "game": self.game.name,
            "file": self.game.source.path,
            "source": self.game.source.text,
            "config": self.config.as_dict(),
            "resolved": {"device": str(self.torch_game.device), "threads": torch.get_num_threads(), "shards": self.config.shards},
            "gamedsl": __import__("gamedsl").__version__,
            "torch": torch.__version__,
        }
        if self.image_shape() is not None or any(SOURCES[s.source].reads_files for s in self.game.samples.values()):
            data["data_root"] = str(images.data_root())
        rundir.write_json(self.directory / rundir.CONFIG, data)

    def outputs_current(self) -> bool:
        """Whether metrics.json describes the checkpoint's step (then a resume with nothing
        left to run has nothing to write either)."""
        try:
            metrics = rundir.read_json(self.directory / rundir.METRICS)
        except GameError:
            return False
        return isinstance(metrics, dict) and metrics.get("steps") == self.run.step_count

    def write_outputs(self, result: solvers.Result, metrics: dict) -> dict:
        """params/, samples.npy, a picture of the final samples, and metrics.json, each
        written atomically. metrics.json goes last: it says that the others are complete."""
        with self.reported():
            save_params(self.torch_game, self.directory)
        if self.run.averages:
            save_params(self.torch_game, self.directory, "params/raw")
        fake = self.draw_fake(self.config.eval_samples)
        picture = None
        if fake is not None:  # images as uint8 (N, C, H, W), 0..255
            array = (to_uint8(fake) if fake.dim() == 4 else fake.cpu()).numpy()
            rundir.write_atomic(self.directory / "samples.npy", lambda handle: np.save(handle, array))
            picture = self.write_picture(fake)
        summary = {
            "status": result.status,
            "message": result.message,
            "steps": result.steps,
            "seconds": round(result.seconds, 3),
            "steps_per_second": round(result.taken / result.seconds, 2) if result.taken and result.seconds else None,
            "final": {k: v[-1] for k, v in result.history.items() if v},
            "picture": picture,
            **metrics,
        }
        rundir.write_json(self.directory / rundir.METRICS, strict_json(summary))
        return summary

    def write_picture(self, fake: torch.Tensor) -> str | None:
        """samples.png: the final density over the target (2-D games: a mixture's modes, or
        samples of the real data) or a grid of the first 64 samples (images); None when the
        samples are neither."""
        if fake.dim() == 4:
            from gamedsl.plotting.grid import image_grid

            write_png(self.directory / "samples.png", image_grid(fake[:64]))
            return "samples.png"
        elif fake.dim() == 2 and fake.shape[1] == 2:
            from gamedsl.plotting import density

            target = density.target(self.mixture(), self.torch_game.draw)
            figure = density.panel([(self.run.step_count, fake.cpu().numpy())], target, title=self.game.name)
            write = lambda handle: figure.savefig(handle, format="png")  # noqa: E731
        else:
            return None
        rundir.write_atomic(self.directory / "samples.png", write)
        return "samples.png"


def write_png(path: Path, array: np.ndarray) -> Path:
    """An RGB uint8 array (H, W, 3) as a PNG, written atomically."""
    from PIL import Image

    return rundir.write_atomic(path, lambda handle: Image.fromarray(array).save(handle, format="PNG"))


# compile = auto compiles runs of at least this many steps: the break-even of docs/performance.md
# (compiling the step once against the time it saves on every step), measured on each device type
COMPILE_AFTER = {"cpu": 20_000, "cuda": 2_000}


def compile_threshold(device: torch.device) -> int:
    return COMPILE_AFTER.get(device.type, COMPILE_AFTER["cpu"])


def compile_cache() -> None:
    """Inductor's cache in the user's cache folder (not /tmp), so that a second run of the same
    game starts from compiled kernels; TORCHINDUCTOR_CACHE_DIR still wins."""
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(Path.home() / ".cache" / "gamedsl" / "inductor"))


def _at_declaration(exc: DataError, game: CheckedGame) -> DataError:
    """Point a data error at the `data x ~ source(...)` whose data could not be loaded."""
    origin = getattr(exc, "origin", None)
    if exc.span is None and origin is not None:
        decl = next((s.decl for s in game.samples.values() if s.source == origin), None)
        if decl is not None:
            exc.span, exc.source = decl.source.span, game.source
    return exc


def save_params(torch_game: TorchGame, directory: Path, folder: str = "params") -> None:
    """FOLDER/NAME.pt: each network's state dict (loadable into its nn.Module); variables.pt."""
    params = rundir.subdirectory(directory, folder)
    for name, module in torch_game.networks.items():
        state = module.state_dict()
        rundir.write_atomic(params / f"{name}.pt", lambda handle: torch.save(state, handle))
    if len(torch_game.variables):
        values = {k: v.detach().cpu() for k, v in torch_game.variables.items()}
        rundir.write_atomic(params / "variables.pt", lambda handle: torch.save(values, handle))


def strict_json(value):
    """Replace non-finite floats (JSON has no Infinity) with None, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    return value
