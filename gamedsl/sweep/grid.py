"""The grid of a sweep: `--set key=a,b,c` lists and `--seeds 0-4`, expanded to configurations."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from gamedsl.errors import LimitError, Source, Span, UsageError
from gamedsl.semantics.settings import Override, parse_override


@dataclass(frozen=True)
class Point:
    """One configuration of the grid: its `--set` overrides and seed, and a readable name."""

    overrides: tuple[Override, ...]
    assignments: tuple[tuple[str, str], ...]  # (key, value text) of the settings that vary, for names and tables
    seed: int

    @property
    def name(self) -> str:
        parts = [f"{key.split('.')[-1]}={value}" for key, value in self.assignments] + [f"seed={self.seed}"]
        return ",".join(parts).replace("/", "_").replace(" ", "")

    @property
    def group(self) -> str:
        """The name without the seed: configurations that differ only by seed share it."""
        return ", ".join(f"{key}={value}" for key, value in self.assignments) or "all"


def split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside (...) or [...] (values may be calls or lists)."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


MAX_SEEDS = 10_000  # runs of one sweep; each is a configuration of its own


def parse_seeds(text: str) -> list[int]:
    """`0-4`, `0,3,7` or `5`; ranges are counted before they are expanded, so that a
    mistyped `0-99999999999999` is refused at once instead of filling the memory."""
    source = Source("--seeds", text)
    ranges, column = [], 1
    for part in text.split(","):
        span = Span(1, column, 1, column + max(len(part), 1))
        column += len(part) + 1
        lo, sep, hi = part.strip().partition("-")
        try:
            first, last = int(lo), int(hi) if sep else int(lo)
            if min(first, last) < 0:
                raise ValueError
        except ValueError:
            raise UsageError(
                f"--seeds takes a range or a list, e.g. 0-4 or 0,3,7, got '{text}'",
                source=source,
                span=span,
                hint="seeds are whole numbers from 0",
            ) from None
        if last < first:
            raise UsageError(
                f"the range {first}-{last} is reversed", source=source, span=span, hint=f"write {last}-{first}"
            )
        ranges.append(range(first, last + 1))
    count = sum(len(r) for r in ranges)
    if count > MAX_SEEDS:
        raise LimitError(
            f"--seeds names {count:,} seeds; a sweep runs at most {MAX_SEEDS:,}",
            source=source,
            span=Span(1, 1, 1, len(text) + 1),
            hint="name fewer seeds, e.g. 0-9",
        )
    return [seed for r in ranges for seed in r]


def expand(sets: list[str], seeds: list[int]) -> list[Point]:
    axes: list[list[tuple[str, str, Override]]] = []
    for text in sets:
        key, sep, values = text.partition("=")
        if not sep:
            parse_override(text)  # raises the usual "--set takes key=value"
        choices = []
        for value in split_top_level(values):
            override = parse_override(f"{key.strip()}={value}")
            choices.append((override.key, value, override))
        axes.append(choices)
    points = []
    for combination in itertools.product(*axes):
        varying = tuple((k, v) for (k, v, _), axis in zip(combination, axes) if len(axis) > 1)
        for seed in seeds:
            points.append(Point(tuple(o for _, _, o in combination), varying, seed))
    return points
