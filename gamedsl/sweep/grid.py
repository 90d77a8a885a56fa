"""The grid of a sweep: `--set key=a,b,c` lists and `--seeds 0-4`, expanded to configurations."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from gamedsl.config import Override, parse_override
from gamedsl.errors import Source, Span, UsageError


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


def parse_seeds(text: str) -> list[int]:
    """`0-4`, `0,3,7` or `5`."""
    try:
        seeds = []
        for part in text.split(","):
            lo, sep, hi = part.partition("-")
            seeds.extend(range(int(lo), int(hi) + 1) if sep else [int(lo)])
    except ValueError:
        raise UsageError(
            f"--seeds takes a range or a list, e.g. 0-4 or 0,3,7, got '{text}'", source=Source("--seeds", text), span=Span.point(1, 1)
        ) from None
    if not seeds or min(seeds) < 0:
        raise UsageError(f"--seeds must name seeds of at least 0, got '{text}'")
    return seeds


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
