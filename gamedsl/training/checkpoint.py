"""Checkpoints: everything needed to continue a run bit for bit, written atomically.

A checkpoint holds the parameters, the optimizer and solver state, the samplers' RNG
states, the step, the resolved configuration and a fingerprint of the game. It is written
to a temporary file in the same directory and renamed over the old one, so a crash, a kill
or a full disk never leaves a half-written checkpoint. It is read with `torch.load(...,
weights_only=True)`: tensors and plain containers only, never arbitrary objects. Any
problem (truncated, corrupt, made for another game) is a `CheckpointError` with a message.
"""

from __future__ import annotations

import hashlib
import os
import textwrap
import warnings
from pathlib import Path
from typing import Any

import torch

from gamedsl.errors import CheckpointError
from gamedsl.training import rundir

FORMAT = 1
FILENAME = "checkpoint.pt"


def fingerprint(source_text: str) -> str:
    """Identifies the game a checkpoint belongs to: a hash of its source text."""
    return hashlib.sha256(source_text.encode()).hexdigest()[:16]


def save(path: Path, payload: dict[str, Any]) -> None:
    """Write atomically (see rundir.write_atomic): the old checkpoint stays until the new one is whole."""
    rundir.write_atomic(path, lambda handle: torch.save({"format": FORMAT, **payload}, handle))


def load(path: Path, expected_fingerprint: str | None = None) -> dict[str, Any]:
    path = Path(path)
    if not os.path.lexists(path):
        raise CheckpointError(f"no checkpoint at {path}", hint="a run directory holds checkpoint.pt after its first checkpoint")
    with rundir.open_regular(path) as handle:
        try:
            with warnings.catch_warnings():  # torch warns before it refuses a non-weights pickle: the error says it
                warnings.simplefilter("ignore")
                data = torch.load(handle, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for a damaged zip or pickle stream
            detail = textwrap.shorten(" ".join(str(exc).split()) or "no detail", width=160, placeholder=" …")
            raise CheckpointError(
                f"{path} is not a readable checkpoint ({type(exc).__name__}: {detail})",
                hint="the file is corrupt or truncated; resume from an earlier copy or start the run again",
            ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or not {"run", "rng", "fingerprint"} <= set(data):
        raise CheckpointError(f"{path} is not a gamedsl checkpoint (unknown layout)")
    if expected_fingerprint is not None and data["fingerprint"] != expected_fingerprint:
        raise CheckpointError(
            f"{path} was made for another game ('{data.get('game', '?')}'), or for a different version of this file",
            hint="resume a run with the run directory it was made in",
        )
    return data


HISTORY = "checkpoints"  # DIR/checkpoints/step_NNNNNNN.pt: the checkpoints kept besides checkpoint.pt


def keep_history(directory: Path, step: int, keep: int, every: int) -> None:
    """Keep DIR/checkpoint.pt of `step` as checkpoints/step_NNNNNNN.pt (a hard link: no copy
    where the file system allows one), then remove the kept ones that are neither among
    the last `keep` nor at a multiple of `every` (0: neither rule)."""
    if not keep and not every:
        return
    folder = rundir.subdirectory(directory, HISTORY)
    target = folder / f"step_{step:07d}.pt"
    if not target.exists():
        try:
            os.link(directory / FILENAME, target)
        except OSError:  # no hard links here (some network file systems): a copy
            rundir.write_atomic(target, (directory / FILENAME).read_bytes())
    kept = sorted((int(p.stem[5:]), p) for p in folder.glob("step_*.pt") if p.stem[5:].isdigit())
    recent = {s for s, _ in kept[-keep:]} if keep else set()
    for s, path in kept:
        if s not in recent and not (every and s % every == 0):
            path.unlink(missing_ok=True)

