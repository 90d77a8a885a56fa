"""Ctrl-C and SIGTERM: a request to stop at the next safe point; a second signal stops at once.

`gamedsl` installs these handlers first thing, before it imports torch, so that a signal
during start-up ends the process with one line and exit 130 (never a traceback, and
SIGTERM is never silent): until a run has somewhere to save, a signal raises
`Interrupt` at once. Once `solve` holds a run directory it calls `defer()`: the
first signal then only records a request, which the training loop, the monitors and
long work inside a step (GMRES, spectra, the final evaluation) `poll`; the run stops at
the next safe point and saves a checkpoint. A second signal raises `Interrupt` wherever
the process is; checkpoints are written atomically, so the last good one stays.
The handlers stay installed until the process has written its last file.
"""

from __future__ import annotations

import signal

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupt(BaseException):
    """A signal that stops the process now. Not a KeyboardInterrupt, which click turns into a
    silent exit: `gamedsl`'s main catches this one and says what was interrupted."""


class _State:
    requested: str | None = None
    deferred: bool = False


_state = _State()


def _handle(signum, frame) -> None:
    name = signal.Signals(signum).name
    if _state.deferred and _state.requested is None:
        _state.requested = name
        return
    raise Interrupt(name)


def install() -> None:
    """Immediate mode: SIGINT and SIGTERM raise Interrupt (main prints one line)."""
    _state.requested, _state.deferred = None, False
    for sig in SIGNALS:
        signal.signal(sig, _handle)


def defer() -> None:
    """From now on the first signal is a request to stop at the next safe point."""
    _state.deferred = True


def requested() -> str | None:
    """The name of the signal that asked to stop (SIGINT, SIGTERM), or None."""
    return _state.requested


def request(name: str) -> None:
    """Record a stop request that came another way (a peer process's signal)."""
    _state.requested = _state.requested or name


def poll() -> None:
    """Raise solvers.Interrupted if a stop was requested: for long work inside a step."""
    if _state.requested is not None:
        from solvers import Interrupted

        raise Interrupted(_state.requested)
