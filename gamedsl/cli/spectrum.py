"""`gamedsl spectrum FILE|RUN_DIR`: eigenvalues of v' and w' in the complex plane (Figure 3)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

import solvers
from gamedsl.cli.output import err, out
from gamedsl.errors import UsageError

GAMMA = solvers.default("consensus", "gamma")  # w' is the field consensus follows, at its gamma by default


def spectrum(
    target: Annotated[Path, typer.Argument(help="A .game file (spectrum at initialisation) or a run directory.", show_default=False)],
    batches: Annotated[Optional[int], typer.Option(help="Minibatches the Jacobian is averaged over (default: spectrum_batches, 10).", min=1, max=10_000)] = None,
    gamma: Annotated[Optional[float], typer.Option(help=f"gamma of w' = v' - gamma v'^T v' (default: the run's solver.gamma, else {GAMMA:g}).")] = None,
    at: Annotated[str, typer.Option(help="For a run directory: 'both' (initialisation and checkpoint, like Figure 3), 'checkpoint' or 'init'.")] = "both",
    method: Annotated[str, typer.Option(help="'auto' (dense up to 6,000 parameters), 'dense' or 'arnoldi'.")] = "auto",
    k: Annotated[int, typer.Option(help="Arnoldi: number of eigenvalues.", min=1)] = 20,
    which: Annotated[str, typer.Option(help="Arnoldi: LR (largest real part) or LM (largest magnitude).")] = "LR",
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Where to write spectrum.npz and spectrum.png.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Compute the eigenvalues of the Jacobian v'(x) of the game's vector field, averaged over
    minibatches, and of the consensus field's w' = v' - gamma v'^T v'.

    Writes spectrum.npz and spectrum.png (the paper's Figure 3) and, for a run directory, logs
    the picture to its TensorBoard. Reports max Re and the share of eigenvalues with
    |Re| < 1e-3 |lambda|max for both.
    """
    import numpy as np

    import gamedsl
    from gamedsl.numeric.spectrum import spectrum as compute
    from gamedsl.plotting import save, to_array
    from gamedsl.plotting.spectrum import spectrum_figure
    from gamedsl.semantics.settings import resolve
    from gamedsl.training.session import Session, default_directory

    if at not in ("both", "checkpoint", "init") or method not in ("auto", "dense", "arnoldi") or which not in ("LR", "LM"):
        raise UsageError("--at is both|checkpoint|init, --method auto|dense|arnoldi, --which LR|LM")
    if gamma is not None:
        from gamedsl.symbolic.analyze import flag_for  # imported here: the rest of the command needs no sympy

        gamma = flag_for("--gamma", gamma, solvers.SOLVERS, "consensus", "gamma")
    sessions = []
    if target.is_dir():
        trained = Session.resume(target)
        if at in ("both", "init"):
            sessions.append(("initialisation", Session.create(trained.game, trained.config, trained.directory)))
        if at in ("both", "checkpoint"):
            sessions.append((f"step {trained.run.step_count:,}", trained))
        directory = out_dir or trained.directory / "spectra"
    else:
        game = gamedsl.load(target)
        config = resolve(game.settings, [], {})
        sessions.append(("initialisation", Session.create(game, config, Path("."))))
        directory = out_dir or default_directory(game, config).with_name(f"{game.name}-spectrum-{time.strftime('%Y%m%d-%H%M%S')}")
    config = sessions[0][1].config
    g = gamma if gamma is not None else float(config.solver_params.get("gamma", GAMMA))
    rows, summaries = [], {}
    for label, session in sessions:
        start = time.perf_counter()
        result = compute(
            session.torch_game,
            g,
            batches=batches or config.spectrum_batches,
            k=k,
            which=which,
            dense=None if method == "auto" else method == "dense",
        )
        seconds = time.perf_counter() - start
        rows.append((label, result.v, result.w))
        summaries[label] = result.summary() | {"seconds": round(seconds, 1)}
        err.print(f"{label}: {result.dim:,} parameters, {result.method}, {seconds:.1f} s", markup=False)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {f"{kind}_{i}": eig for i, (_, v, w) in enumerate(rows) for kind, eig in (("v", v), ("w", w))}
    np.savez(directory / "spectrum.npz", labels=np.array([r[0] for r in rows]), gamma=g, **arrays)
    fig = spectrum_figure(rows, g)
    save(fig, directory / "spectrum.png")
    if target.is_dir():
        from torch.utils.tensorboard import SummaryWriter

        with SummaryWriter(str(target)) as writer:
            writer.add_image("spectrum/eigenvalues", to_array(fig), sessions[-1][1].run.step_count, dataformats="HWC")
    if as_json:
        out.print_json(json.dumps(summaries))
        return
    for label, s in summaries.items():
        for name in ("v", "w"):
            d = s[name]
            what = "v'" if name == "v" else f"w' (gamma={g:g})"
            out.print(
                f"{label:>16}  {what:<16} max Re {d['max_real']:+.3e}   |Re| < 1e-3 |λ|max: {100 * d['share_near_imaginary_axis']:5.1f} %"
                f"   |λ|max {d['max_abs']:.3g}   significant ({d['significant']}): {100 * d['significant_near_imaginary_axis']:5.1f} %"
                f" within 0.1|λ| of the axis, mean Re {d['significant_mean_real']:+.3g}",
                markup=False,
            )
    out.print(f"wrote {directory / 'spectrum.png'} and {directory / 'spectrum.npz'}", markup=False)
