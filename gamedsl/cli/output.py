"""Where output goes: results to stdout, diagnostics (errors, warnings, progress) to stderr.

In a terminal, rich lays text out for the window: tables fit its width, progress is a bar
redrawn in place. A pipe or a log file has no window: it is read later, in an editor or by
grep, and a layout made for 80 columns (rich's guess) cuts headers to `solver.…` and folds
table cells into fragments, while one made for `COLUMNS=200` pads every line with spaces.
So when a stream is not a terminal, its console is wider than any table we print (nothing
wraps or is cut), every line leaves without trailing spaces, and progress is a plain line
at every tenth of the way. typer's help gets a fixed width and the same stripping.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
import threading
import time
from datetime import timedelta

from rich.console import Console, ConsoleDimensions

LOG_WIDTH = 10_000  # columns of a console that writes to a pipe or a file: no table of ours is wider
HELP_WIDTH = 100  # columns of --help in a pipe or a file: every option name and word of its help fits


def is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class Unpadded:
    """A text stream that forwards to `target()` with the trailing spaces of every line removed.

    Spaces at the end of an unfinished line are held back: they are written only if text
    follows them on the same line. `target` is looked up at each write, so the stream follows
    `sys.stdout` when it is replaced (as pytest's capture does)."""

    def __init__(self, target):
        self.target = target
        self.held = ""

    def write(self, text: str) -> int:
        lines = (self.held + text).split("\n")
        last = lines.pop()
        kept = last.rstrip(" ")
        self.held = last[len(kept) :]
        self.target().write("".join(line.rstrip(" ") + "\n" for line in lines) + kept)
        return len(text)

    def flush(self) -> None:
        self.target().flush()

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:
        return getattr(self.target(), "encoding", None) or "utf-8"


class _Console(Console):
    """A rich console that lays out for the window when its stream is a terminal, and for a
    log (LOG_WIDTH columns, no trailing spaces) when it is not. Decided at every write, so
    one console serves a terminal and, say, a captured stream in the same process."""

    def __init__(self, stderr: bool = False):
        self._unpadded = Unpadded(lambda: sys.stderr if stderr else sys.stdout)  # rich's constructor reads `file`
        super().__init__(stderr=stderr, highlight=False, soft_wrap=True)

    def _stream(self):
        return Console.file.fget(self)

    @property
    def file(self):
        stream = self._stream()
        return stream if is_terminal(stream) else self._unpadded

    @file.setter
    def file(self, new_file) -> None:
        self._file = new_file

    @property
    def size(self) -> ConsoleDimensions:
        if is_terminal(self._stream()):
            return Console.size.fget(self)
        return ConsoleDimensions(LOG_WIDTH, self._height or 25)


out = _Console()
err = _Console(stderr=True)


def _help_console(stderr: bool = False) -> Console:
    """typer's console for help and usage errors; to a pipe or a file, HELP_WIDTH columns
    (help panels fill the width, so not LOG_WIDTH; a narrow COLUMNS would cut words with '…')
    written through `Unpadded`."""
    console = _typer_console(stderr)
    stream = sys.stderr if stderr else sys.stdout
    if not is_terminal(stream):
        console.file = Unpadded(lambda: stream)
        console.width = HELP_WIDTH
    return console


def _install(rich_utils) -> None:
    """typer has no setting for its console; `_get_rich_console` is its one factory."""
    global _typer_console
    _typer_console = rich_utils._get_rich_console
    rich_utils._get_rich_console = _help_console


class _WhenImported(importlib.abc.MetaPathFinder):
    """Installs `_help_console` in typer.rich_utils as soon as typer imports it, which it does
    only to show help or an error: importing it here would cost every command a twentieth of a
    second of start-up (it brings markdown and syntax highlighting)."""

    def find_spec(self, name, path, target=None):
        if name != "typer.rich_utils":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        execute = spec.loader.exec_module

        def exec_module(module) -> None:
            execute(module)
            _install(module)

        spec.loader.exec_module = exec_module  # this loader serves this one import
        return spec


if "typer.rich_utils" in sys.modules:
    _install(sys.modules["typer.rich_utils"])
else:
    sys.meta_path.insert(0, _WhenImported())


class Progress:
    """Progress of a count (steps, runs) towards a total, on `console`.

    In a terminal: a live rich bar with the count, the rate, the time left and `stats`.
    Elsewhere: one plain line at every tenth of the way and at the end, so that a log file gets
    ten readable lines instead of a bar redrawn in place. `due(count)` says whether an update at
    this count would be shown, so that callers compute costly statistics only then. Thread-safe:
    `advance` may be called from worker threads."""

    UPDATES = 200  # redraws of a live bar over a whole run
    LINES = 10  # lines in a log over a whole run, besides the last

    def __init__(self, console: Console, description: str, total: int, completed: int = 0, unit: str | None = "steps",
                 quiet: bool = False):  # fmt: skip
        self.console, self.description, self.total, self.unit, self.quiet = console, description, total, unit, quiet
        self.start_count = self.count = self.shown = completed
        self.span = max(1, total - completed)
        self.live = console.is_terminal
        self.lock = threading.RLock()
        self.start = time.perf_counter()
        self.bar = None
        if self.live and not quiet:
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            rate = [TextColumn("{task.fields[rate]}")] if unit else []
            count = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), *rate]
            self.bar = RichProgress(*count, TimeRemainingColumn(), TextColumn("{task.fields[stats]}"), console=console)
            self.task = self.bar.add_task(description, total=total, completed=completed, rate="", stats="")

    def __enter__(self) -> "Progress":
        if self.bar is not None:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=self.count)  # where it stopped, due or not
            self.bar.__exit__(*exc)
        elif not self.quiet and self.count != self.shown:  # stopped between two lines: say where
            self._line("")

    def due(self, count: int) -> bool:
        if self.quiet:
            return False
        if count >= self.total:
            return True
        if self.live:
            return (count - self.start_count) % max(1, self.span // self.UPDATES) == 0
        return self._part(count) > self._part(self.shown)

    def update(self, count: int, stats: str = "") -> None:
        with self.lock:
            self.count = count
            if not self.due(count):
                return
            if self.bar is not None:
                self.bar.update(self.task, completed=count, rate=self._rate(), stats=stats)
            else:
                self._line(stats)

    def advance(self) -> None:
        with self.lock:
            self.update(self.count + 1)

    def _part(self, count: int) -> int:
        return (count - self.start_count) * self.LINES // self.span

    def _rate(self) -> str:
        elapsed = time.perf_counter() - self.start
        rate = (self.count - self.start_count) / elapsed if elapsed > 0 else 0.0
        return f"{rate:,.{0 if rate >= 10 else 2}f} {self.unit}/s" if self.unit else ""

    def _line(self, stats: str) -> None:
        self.shown = self.count
        elapsed = timedelta(seconds=round(time.perf_counter() - self.start))
        share = 100 * self.count // max(1, self.total)
        parts = [f"{self.description} {self.count:,}/{self.total:,} ({share} %)", self._rate(), f"{elapsed} elapsed"]
        self.console.print("  ".join(p for p in [*parts, stats] if p), markup=False)
