"""The scalars a sweep's runs log, by their TensorBoard tags (the tags of `gamedsl solve`), so
that `--metric` is checked before the first run starts, not found missing after the last."""

from __future__ import annotations

from gamedsl.errors import UsageError
from gamedsl.library.signature import suggest
from gamedsl.metrics.mixture import mixture_of
from gamedsl.semantics import ir
from gamedsl.semantics.model import CheckedGame
from gamedsl.semantics.settings import RunConfig

MIXTURE = ("modes", "high_quality", "reverse_kl")  # logged as mixture/NAME, kept in metrics.json under NAME
SPEED = ("optimizer/learning_rate", "speed/steps_per_second")


def step_scalars(game: CheckedGame) -> list[str]:
    """What every step records (solvers.Run.scalars), before any solver's extras."""
    names = [p.name for p in game.players]
    return [f"utility/{n}" for n in names] + [f"grad_norm/{n}" for n in names] + ["grad_norm_sq", "consensus_L"]


def logged(game: CheckedGame, config: RunConfig, vectorised: bool) -> list[str]:
    """The tags a run of this sweep logs, apart from a solver's extras (see `check`). Vectorised
    runs log the step scalars, the speed and the mixture metrics; processes are `gamedsl solve`."""
    tags = step_scalars(game) + list(SPEED)
    if config.image_every and mixture_of(game) is not None:
        tags += [f"mixture/{k}" for k in MIXTURE]
    if not vectorised:
        if config.image_every and _real_source(game) == "digits":
            tags += ["images/classifier_score", "images/frechet_distance"]
        if config.spectrum_every:
            tags += [f"spectrum/{f}_{s}" for f in ("v", "w") for s in ("max_real", "share_near_imaginary_axis")]
    return tags


def check(name: str, game: CheckedGame, config: RunConfig, vectorised: bool) -> str:
    """The tag `--metric NAME` means: a logged tag, or the one logged tag whose last part is NAME
    (`high_quality` is `mixture/high_quality`). A solver's extras (cgd_residual, ...) are found
    by one probe step, taken only when the name is none of the others."""
    tags = logged(game, config, vectorised)
    found = _matches(name, tags)
    if not found and not vectorised:
        tags += [t for t in _probe(game, config) if t not in tags]
        found = _matches(name, tags)
    if len(found) == 1:
        return found[0]
    if found:
        raise UsageError(f"--metric '{name}' is the last part of several tags: {', '.join(found)}", hint="name one")
    runs = "the vectorised runs" if vectorised else "the runs"
    raise UsageError(f"--metric '{name}': {runs} of this sweep do not log it", hint=suggest(name, tags, "metrics"))


def _matches(name: str, tags: list[str]) -> list[str]:
    return [name] if name in tags else [t for t in tags if t.rsplit("/", 1)[-1] == name]


def _probe(game: CheckedGame, config: RunConfig) -> list[str]:
    """The scalars of one step of the first configuration: the step scalars and the solver's extras."""
    import solvers
    from gamedsl.compile.torch_game import TorchGame

    run = solvers.Run(TorchGame(game, batch=config.batch, seed=config.seed, dtype=config.dtype), config.make_solver(),
                      config.make_optimizer())  # fmt: skip
    return [key for key in run.scalars(run.step()) if key != "step"]


def _real_source(game: CheckedGame) -> str | None:
    """The source of the data the game's divergence compares the model with (`digits`, ...)."""
    real = game.comparison[0] if game.comparison else None
    return game.samples[real.name].source if isinstance(real, ir.Sample) else None
