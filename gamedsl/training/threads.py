"""How many CPU threads PyTorch uses in a run: one policy for every command that computes
(solve, sweep in both modes, spectrum, sample, analyze --verify).

PyTorch's default is one intra-op thread per core, and its threads wait for each other
by spinning. On a core that another process also wants, a spinning thread steals the time
its partner needs: measured on a 2-core machine with busy cores (benchmarks/threads.py,
docs/scaling.md), two threads were slower than one at every size, 6 to 12 times for
mog.game (2,003 parameters) and digits_dcgan.game, 1.2 to 1.8 times for the 9.1 million
of cifar_dcgan.game. More threads than idle cores never paid. Below SMALL_GAME parameters
the operations are too small to split, so a second thread can only cost.

The rule, unless `threads` is set (or OMP_NUM_THREADS, which PyTorch follows): one thread
below SMALL_GAME parameters; above, as many as there are idle cores (usable cores less the
one-minute load average), at least one and at most PyTorch's default.
"""

from __future__ import annotations

import os

import torch

SMALL_GAME = 100_000  # parameters
DEFAULT = torch.get_num_threads()  # PyTorch's choice at start-up: the physical cores, or OMP_NUM_THREADS


def idle_cores() -> int:
    """Cores this process may use that nothing else is using now (at least one)."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average on this system: assume the cores are free
        load = 0.0
    return max(1, min(usable, round(usable - load)))


def choose(threads: int, parameters: int, processes: int = 1) -> int | None:
    """The thread count for each of `processes` runs started together (a sweep's --jobs share
    the idle cores) of a game with this many parameters. None keeps PyTorch's count, which
    follows OMP_NUM_THREADS when it is set (that is how a sweep hands its processes their share)."""
    if threads:
        return threads
    if "OMP_NUM_THREADS" in os.environ:
        return None
    if parameters < SMALL_GAME:
        return 1
    return max(1, min(DEFAULT, idle_cores() // processes))


def set_threads(threads: int, parameters: int) -> int:
    """Apply `choose`; returns the number of threads PyTorch now uses."""
    chosen = choose(threads, parameters)
    if chosen is not None:
        torch.set_num_threads(chosen)
    return torch.get_num_threads()
