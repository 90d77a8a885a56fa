"""What watches a run: progress bar, TensorBoard, pictures, checkpoints, signals, spectra.

Each monitor is a callback `(run, step_info) -> bool`; returning True stops the run
after that step. Monitors only read the run and draw from their own fixed sample streams,
so a monitored run computes exactly the numbers an unmonitored one does.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import torch

import solvers
from gamedsl.cli.output import Progress, err
from gamedsl.errors import DivergedError, OutputError
from gamedsl.training import rundir, stopping
from gamedsl.training.parallel import Parallel
from gamedsl.training.session import Session, write_png


class ProgressBar:
    """Progress on stderr: step, steps/s, each player's utility and |v| (a live bar in a
    terminal, a line at every tenth of the run in a log; see gamedsl/cli/output.py)."""

    def __init__(self, session: Session, total: int, console, quiet: bool):
        self.names = session.run.player_names
        self.progress = Progress(console, session.config.solver, total, session.run.step_count, quiet=quiet)

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        self.progress.__exit__(*exc)

    def __call__(self, run, info) -> bool:
        stats = ""
        if self.progress.due(run.step_count):  # the statistics cost a little: only when they are shown
            norm = float(torch.linalg.vector_norm(torch.stack(torch._foreach_norm(info.field))))
            stats = "  ".join(f"u_{n}={float(u):+.4f}" for n, u in zip(self.names, info.utilities)) + f"  |v|={norm:.3g}"
        self.progress.update(run.step_count, stats)
        return False


class TensorBoard:
    """Scalars every `log_every` steps, the configuration as text, pictures from `Pictures`."""

    def __init__(self, session: Session, logdir: Path, purge_step: int | None = None):
        self.session = session
        self.writer = _Writer(logdir, purge_step)
        self.every = session.config.log_every
        self.last = (time.perf_counter(), session.run.step_count)
        if purge_step is None:
            config = "\n".join(f"    {k} = {v}" for k, v in session.config.as_dict().items())
            source = "\n".join("    " + line for line in session.game.source.text.splitlines())
            self.writer.add_text("config", f"resolved configuration:\n\n{config}\n\ngame source:\n\n{source}", 0)

    def __call__(self, run, info) -> bool:
        step = run.step_count
        if step % self.every and step != self.session.config.steps:  # and always the last step
            return False
        now = time.perf_counter()
        for key, value in run.scalars(info).items():
            if key != "step":
                self.writer.add_scalar(key, value, step)
        rates = run.rates()
        if len(set(rates.values())) == 1:  # one rate: the tag solve and sweep runs have always logged
            self.writer.add_scalar("optimizer/learning_rate", next(iter(rates.values())), step)
        else:
            for name, rate in rates.items():
                self.writer.add_scalar(f"optimizer/learning_rate/{name}", rate, step)
        then, first = self.last
        if now > then and step > first:
            self.writer.add_scalar("speed/steps_per_second", (step - first) / (now - then), step)
        self.last = (now, step)
        return False

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()


class _Writer:
    """A SummaryWriter whose failures are OutputErrors (exit 10) naming the log directory.

    The writer writes in a thread of its own; a failure there (a full disk) surfaces as an
    OSError on the next call, which is where it is turned into one message."""

    def __init__(self, logdir: Path, purge_step: int | None):
        self.logdir = logdir
        self.writer = self._guard(_summary_writer)(str(logdir), purge_step=purge_step)

    def _guard(self, method):
        def call(*args, **kwargs):
            try:
                return method(*args, **kwargs)
            except OSError as exc:
                raise OutputError(
                    f"cannot write TensorBoard logs to {self.logdir} ({rundir.describe_os_error(exc)})",
                    hint="free some space or choose a writable --logdir; files written before (checkpoints included) are intact",
                ) from None

        return call

    def __getattr__(self, name):
        return self._guard(getattr(self.writer, name))


def _summary_writer(*args, **kwargs):
    from torch.utils.tensorboard import SummaryWriter

    threading.excepthook = _quiet_writer_thread
    return SummaryWriter(*args, **kwargs)


_excepthook = threading.excepthook


def _quiet_writer_thread(args) -> None:
    """TensorBoard's writer thread dies on a full disk and Python prints its traceback; the
    same error reaches the next call of the writer, where it becomes one message."""
    if issubclass(args.exc_type, OSError) and type(args.thread).__module__.startswith("tensorboard."):
        return
    _excepthook(args)


class Pictures:
    """For 2-D games: every `image_every` steps, save model samples (fixed z) to
    snapshots/step_NNNNNNN.npy and draw their density over the target; for 2-D mixtures,
    also log the mode metrics. When the data are not a mixture, the real samples the
    target is drawn from are saved once to snapshots/real.npy (`gamedsl plot` reads them)."""

    REAL = "real.npy"

    def __init__(self, session: Session, board: TensorBoard | None):
        from gamedsl.plotting.density import is_2d

        self.session = session
        self.board = board
        self.every = session.config.image_every
        self.mixture = session.mixture()
        self.plotted = is_2d(session.game)
        self._target = None

    @property
    def active(self) -> bool:
        return bool(self.every) and self.plotted

    @property
    def target(self):
        """The density target, drawn once from a fixed stream (the same samples at every snapshot)."""
        from gamedsl.plotting import density

        if self._target is None:
            self._target = density.target(self.mixture, self.session.torch_game.draw)
        return self._target

    def snapshot(self, step: int) -> None:
        from gamedsl.metrics.mixture import mixture_metrics
        from gamedsl.plotting import to_array
        from gamedsl.plotting.density import panel

        samples = self.session.draw_fake(self.session.config.eval_samples)
        array = samples.cpu().numpy()
        folder = rundir.subdirectory(self.session.directory, "snapshots")
        rundir.write_atomic(folder / f"step_{step:07d}.npy", lambda h: np.save(h, array))
        if self.mixture is None and not (folder / self.REAL).is_file():
            real = self.target.samples
            rundir.write_atomic(folder / self.REAL, lambda h: np.save(h, real))
        if self.board is None:
            return
        fig = panel([(step, array)], self.target)
        self.board.writer.add_image("samples/density", to_array(fig), step, dataformats="HWC")
        if self.mixture is not None:
            means, std = self.mixture
            sides = [("mixture", samples)]
            if self.session.run.averages:  # the raw generator beside the averaged one
                sides.append(("mixture_raw", self.session.draw_fake(self.session.config.eval_samples, raw=True)))
            for prefix, drawn in sides:
                for key, value in mixture_metrics(drawn, means, std).items():
                    if key in ("modes", "high_quality", "reverse_kl") and np.isfinite(value):
                        self.board.writer.add_scalar(f"{prefix}/{key}", value, step)

    def __call__(self, run, info) -> bool:
        if due(run.step_count, self.every, self.session.config.steps):
            self.snapshot(run.step_count)
        return False


def due(step: int, every: int, last: int) -> bool:
    """Every `every` steps, and always at the run's last step (so the final state is kept)."""
    return step % every == 0 or step == last


class SampleGrids:
    """For image games: every `image_every` steps, a grid of model samples from a fixed z
    (the same z at every step, so grids are comparable) saved as grids/step_NNNNNNN.png
    and logged to TensorBoard as samples/grid. For digits, also the offline classifier
    score and Frechet distance (gamedsl/metrics/images.py) of `SCORED` samples."""

    SCORED = 500

    def __init__(self, session: Session, board: TensorBoard | None, n: int = 64):
        self.session = session
        self.board = board
        self.n = n
        self.every = session.config.image_every

    @property
    def active(self) -> bool:
        return bool(self.every) and self.session.image_shape() is not None

    def snapshot(self, step: int) -> Path:
        from gamedsl.plotting.grid import image_grid

        grid = image_grid(self.session.draw_fake(self.n, stream="grid"))
        path = write_png(rundir.subdirectory(self.session.directory, "grids") / f"step_{step:07d}.png", grid)
        if self.board is not None:
            self.board.writer.add_image("samples/grid", grid, step, dataformats="HWC")
            if self.session.real_source() == "digits":
                from gamedsl.metrics.images import digits_scores

                scores = digits_scores(self.session.draw_fake(self.SCORED, stream="scores"))
                self.board.writer.add_scalar("images/classifier_score", scores["classifier_score"], step)
                self.board.writer.add_scalar("images/frechet_distance", scores["frechet_distance"], step)
        return path

    def __call__(self, run, info) -> bool:
        if due(run.step_count, self.every, self.session.config.steps):
            self.snapshot(run.step_count)
        return False


class Checkpoints:
    """A checkpoint every `checkpoint_every` steps (atomic; parameters checked first)."""

    def __init__(self, session: Session):
        self.session = session
        self.every = session.config.checkpoint_every

    def __call__(self, run, info) -> bool:
        if self.every and run.step_count % self.every == 0:
            run.check(info)  # never save a state that is already lost
            self.session.save_checkpoint()
        return False


class Interrupts:
    """Stops the run after the current step once a stop was requested (see training/stopping.py).

    In a distributed run the processes agree every step, so that all stop at the same one."""

    def __init__(self, parallel: Parallel = Parallel()):
        self.parallel = parallel

    @property
    def received(self) -> str | None:
        return stopping.requested()

    def __call__(self, run, info) -> bool:
        stop = self.parallel.any(stopping.requested() is not None)
        if stop:
            stopping.request("a peer's signal")
        return stop


class Spectra:
    """Eigenvalues of v' and w' every `spectrum_every` steps: .npz files, a picture, scalars."""

    def __init__(self, session: Session, board: TensorBoard | None):
        self.session = session
        self.board = board
        self.every = session.config.spectrum_every
        self.gamma = float(session.config.solver_params.get("gamma", solvers.default("consensus", "gamma")))
        self.skipped = 0

    def __call__(self, run, info) -> bool:
        if self.every and run.step_count % self.every == 0:
            try:
                record_spectrum(self.session, self.gamma, self.board, run.step_count)
            except DivergedError as exc:  # the run itself may go on: its guard decides that
                if not self.skipped:
                    err.print(f"note: no spectrum at step {run.step_count:,}: {exc.message}", markup=False)
                self.skipped += 1
        return False


def record_spectrum(session: Session, gamma: float, board: TensorBoard | None, step: int, k: int = 20, which: str = "LR"):
    """Compute, save (spectra/step_NNNNNNN.npz) and log one spectrum; returns it."""
    from gamedsl.numeric.spectrum import spectrum
    from gamedsl.plotting import to_array
    from gamedsl.plotting.spectrum import spectrum_figure

    result = spectrum(session.torch_game, gamma, batches=session.config.spectrum_batches, k=k, which=which, poll=stopping.poll)
    path = rundir.subdirectory(session.directory, "spectra") / f"step_{step:07d}.npz"
    rundir.write_atomic(path, lambda h: np.savez(h, v=result.v, w=result.w, gamma=gamma, step=step, method=result.method))
    if board is not None:
        fig = spectrum_figure([(f"step {step:,}", result.v, result.w)], gamma)
        board.writer.add_image("spectrum/eigenvalues", to_array(fig), step, dataformats="HWC")
        for name, stats in (("v", result.summary()["v"]), ("w", result.summary()["w"])):
            board.writer.add_scalar(f"spectrum/{name}_max_real", stats["max_real"], step)
            board.writer.add_scalar(f"spectrum/{name}_share_near_imaginary_axis", stats["share_near_imaginary_axis"], step)
    return result
