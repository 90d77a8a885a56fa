"""Time limits for symbolic work, and the size guards checked before it starts.

sympy can take unbounded time on innocent-looking input (`solve` on a degree-200
polynomial system, `simplify` of a large expression), so every symbolic step of
`gamedsl analyze` runs inside `time_limit(seconds, what)`. The limit is a real-time
interval timer (SIGALRM): when it fires, the running computation is interrupted and the
`with` block raises `LimitError` (exit code 7), which the analysis catches to fall back to
numerical methods.

The interrupt is a `BaseException`, so `except Exception` blocks inside sympy cannot
swallow it. Limits nest: an inner block never outlives the block around it, and when the
outer deadline is the one that passes, the interrupt reaches the outer block.

Where SIGALRM is unavailable (Windows, or a thread other than the main one) the blocks
run without a limit; the size guards still apply.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from contextlib import contextmanager
from typing import Iterator

import sympy as sp

from gamedsl.errors import LimitError

# Above these sizes the exact route is not even tried (it would only time out).
MAX_EXACT_SOLVE_UNKNOWNS = 6
MAX_EXACT_SOLVE_DEGREE = 12  # total degree of the polynomial system's product bound
MAX_EXACT_EIGEN_SIZE = 4  # exact eigenvalues of v' (Abel-Ruffini: beyond 4 there are no radicals anyway)
MAX_EXACT_NODES = 400  # sympy tree nodes per equation for the exact solve


class _Expired(BaseException):
    """Raised by the timer; carries the deadline that passed."""

    def __init__(self, deadline: float):
        super().__init__("time limit")
        self.deadline = deadline


_deadlines: list[float] = []  # active deadlines (monotonic seconds), innermost last


def _usable() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


def _on_alarm(signum, frame) -> None:
    if not _deadlines:
        return
    deadline = _deadlines[-1]
    if time.monotonic() >= deadline - 1e-3:
        raise _Expired(deadline)
    _arm(deadline)  # woke early (timer granularity): sleep again


def _arm(deadline: float) -> None:
    signal.setitimer(signal.ITIMER_REAL, max(deadline - time.monotonic(), 1e-4))


def remaining() -> float:
    """Seconds left before the innermost active deadline (infinity when none is set)."""
    return _deadlines[-1] - time.monotonic() if _deadlines else float("inf")


@contextmanager
def time_limit(seconds: float, what: str, hint: str | None = None) -> Iterator[None]:
    """Run the block for at most `seconds` (and never past an enclosing limit).

    Raises LimitError("<what> took longer than <seconds> s") when this block's own limit is
    the one that passes; when an enclosing limit passes first, the interrupt goes on to it.
    """
    if not _usable():
        yield
        return
    own = time.monotonic() + max(seconds, 0.0)
    effective = min(own, _deadlines[-1]) if _deadlines else own
    previous = signal.getsignal(signal.SIGALRM) if not _deadlines else None
    if not _deadlines:
        signal.signal(signal.SIGALRM, _on_alarm)
    _deadlines.append(effective)
    old_limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old_limit, 20_000))  # sympy recurses over expression trees
    try:
        _arm(effective)
        yield
    except _Expired as exc:
        if exc.deadline > effective or own > effective + 1e-9:
            raise  # an enclosing block's limit: let it report
        raise LimitError(f"{what} took longer than {seconds:g} s", hint=hint) from None
    except RecursionError:
        raise LimitError(f"{what}: the expressions are nested too deeply", hint=hint) from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        _deadlines.pop()
        sys.setrecursionlimit(old_limit)
        if _deadlines:
            _arm(_deadlines[-1])  # the enclosing block's timer (fires at once if it has passed)
        elif previous is not None:
            signal.signal(signal.SIGALRM, previous)


# ---- size guards -------------------------------------------------------------------------


def node_count(expr: sp.Basic, cap: int = 100_000) -> int:
    """Number of nodes of a sympy tree, counting at most `cap` (cheap on huge trees)."""
    count = 0
    for _ in sp.preorder_traversal(expr):
        count += 1
        if count >= cap:
            break
    return count


def polynomial_degree(expr: sp.Basic, symbols: set[sp.Symbol]) -> int | None:
    """Total degree in `symbols`, computed on the tree without expanding; None if not a polynomial.

    (x + y)^200 has degree 200 here at the cost of a tree walk, where Poly would expand it.
    """
    memo: dict[sp.Basic, int | None] = {}

    def degree(e: sp.Basic) -> int | None:
        if e in memo:
            return memo[e]
        if not (e.free_symbols & symbols):
            result: int | None = 0
        elif e.is_Symbol:
            result = 1
        elif e.is_Add:
            parts = [degree(a) for a in e.args]
            result = None if None in parts else max(parts)
        elif e.is_Mul:
            parts = [degree(a) for a in e.args]
            result = None if None in parts else sum(parts)
        elif e.is_Pow and e.exp.is_Integer and e.exp >= 0:
            base = degree(e.base)
            result = None if base is None else base * int(e.exp)
        else:
            result = None
        memo[e] = result
        return result

    return degree(expr)
