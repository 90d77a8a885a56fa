"""One exception family for every mistake a user can make, and how it is shown.

Every error a user can cause (a bad `.game` file, a bad flag, missing data, a corrupt
checkpoint) is a `GameError`. The CLI catches exactly this family, prints it in the
compiler-style form below and exits with the error's documented code; anything else is a
bug and keeps its traceback.

    games/bad.game:3:19: error: undefined name 'Dd'
        player D controls Dd maximizes gan(critic=D, real=x, fake=G(z))
                          ^~
    hint: did you mean 'D'?
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes of the `gamedsl` command, documented in README.md."""

    OK = 0
    FAILURE = 1  # the run finished but did not reach its goal (e.g. --verify disagrees)
    USAGE = 2  # bad command-line usage: unknown flag, bad --set, unknown solver
    INVALID_GAME = 3  # the .game file has a syntax or semantic error
    MISSING_DATA = 4  # a data set is missing or malformed
    BAD_CHECKPOINT = 5  # a checkpoint or run directory is corrupt or does not match
    DIVERGED = 6  # a run produced non-finite values and was stopped
    LIMIT = 7  # input exceeds a safety limit (size, nesting, time)
    OUT_OF_REACH = 8  # `gamedsl analyze`: the game is beyond symbolic analysis (sampled data, deep networks)
    PEER_FAILED = 9  # a process of a distributed run failed; the last checkpoint is intact
    CANNOT_WRITE = 10  # an output could not be written (disk full, read-only, no permission); earlier files are intact
    INTERRUPTED = 130  # stopped by Ctrl-C or SIGTERM after saving a checkpoint


@dataclass(frozen=True)
class Span:
    """A region of source text; lines and columns are 1-based, `end_column` is exclusive."""

    line: int
    column: int
    end_line: int
    end_column: int

    @staticmethod
    def point(line: int, column: int) -> "Span":
        return Span(line, column, line, column + 1)


@dataclass(frozen=True)
class Source:
    """The text an error points into: a file, or a command-line argument."""

    path: str
    text: str

    def line(self, number: int) -> str:
        lines = self.text.splitlines()
        return lines[number - 1] if 0 < number <= len(lines) else ""


class GameError(Exception):
    """Base of every user-facing error. Carries where, what, and how to fix it."""

    code: ExitCode = ExitCode.INVALID_GAME
    kind: str = "error"

    def __init__(
        self,
        message: str,
        span: Span | None = None,
        hint: str | None = None,
        source: Source | None = None,
    ):
        super().__init__(message)
        self.message = message
        self.span = span
        self.hint = hint
        self.source = source

    def at(self, source: Source) -> "GameError":
        """Attach the source text if the raiser did not know it."""
        if self.source is None:
            self.source = source
        return self

    def render(self, max_width: int = 160) -> str:
        """Format as `path:line:col: error: message`, the source line, a caret, a hint."""
        where = self.source.path if self.source else "gamedsl"
        lines = []
        if self.span is not None and self.source is not None:
            lines.append(f"{where}:{self.span.line}:{self.span.column}: {self.kind}: {self.message}")
            lines.extend(_caret_lines(self.source.line(self.span.line), self.span, max_width))
        else:
            lines.append(f"{where}: {self.kind}: {self.message}")
        if self.hint:
            lines.append(f"hint: {self.hint}")
        return "\n".join(lines)

    def as_dict(self) -> dict:
        """Machine-readable form for `--json` output."""
        return {
            "path": self.source.path if self.source else None,
            "line": self.span.line if self.span else None,
            "column": self.span.column if self.span else None,
            "kind": type(self).__name__,
            "message": self.message,
            "hint": self.hint,
            "exit_code": int(self.code),
        }


def _caret_lines(text: str, span: Span, max_width: int) -> list[str]:
    """The source line and a caret line under the span, clipped around very long lines."""
    start = span.column - 1
    end = span.end_column - 1 if span.end_line == span.line else len(text)
    end = max(end, start + 1)
    offset = 0
    if len(text) > max_width:  # show a window around the error, never megabytes of text
        offset = max(0, start - max_width // 2)
        text = ("…" if offset else "") + text[offset : offset + max_width] + "…"
        shift = 1 if offset else 0
        start, end = start - offset + shift, min(end - offset + shift, len(text))
    text = text.replace("\t", " ")
    width = max(1, min(end, len(text) + 1) - start)
    return ["    " + text, "    " + " " * start + "^" + "~" * (width - 1)]


class GameSyntaxError(GameError):
    """The text does not follow the grammar."""


class GameCheckError(GameError):
    """The text parses but is not a meaningful game (names, shapes, arguments, players)."""


class LimitError(GameError):
    """Input beyond a safety limit: too large, nested too deeply, or taking too long."""

    code = ExitCode.LIMIT


class OutOfReach(GameError):
    """A valid game that symbolic analysis cannot handle: sampled data, deep networks."""

    code = ExitCode.OUT_OF_REACH


class UsageError(GameError):
    """A bad command-line flag or value."""

    code = ExitCode.USAGE


class DataError(GameError):
    """A data set that is missing or malformed."""

    code = ExitCode.MISSING_DATA


class CheckpointError(GameError):
    """A checkpoint or run directory that is corrupt, truncated or made for another game."""

    code = ExitCode.BAD_CHECKPOINT


class ParallelError(GameError):
    """Another process of a distributed run failed or vanished."""

    code = ExitCode.PEER_FAILED


class OutputError(GameError):
    """A file of a run could not be written: disk full, read-only file system, no permission."""

    code = ExitCode.CANNOT_WRITE


class DivergedError(GameError):
    """A run produced a non-finite utility, gradient or parameter."""

    code = ExitCode.DIVERGED


class GameWarning(GameError):
    """Not an error: something legal but probably unintended. Rendered, never raised."""

    kind = "warning"


def did_you_mean(name: str, choices, what: str = "") -> str | None:
    """A hint naming the closest choice, or listing the choices when none is close."""
    choices = sorted(set(choices))
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in choices}
        if name.lower() in lowered:
            close = [lowered[name.lower()]]
    if close:
        return f"did you mean '{close[0]}'?"
    if choices and len(choices) <= 12:
        label = f"{what} " if what else ""
        return f"{label}choices: " + ", ".join(choices)
    return None
