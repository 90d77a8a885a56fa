"""gamedsl: a declarative language for smooth two-player games, GANs above all.

    import gamedsl
    game = gamedsl.load("games/mog.game")          # parse and check
    print([p.name for p in game.players])

The pipeline is grammar -> parse (gamedsl.syntax) -> AST -> check (gamedsl.semantics)
-> compile (gamedsl.compile: torch and sympy). The solvers live in the separate `solvers`
package, which knows nothing of the language.
"""

from __future__ import annotations

from pathlib import Path

__version__ = "0.1.0"


def load(path: str | Path, divergences: dict[str, str] | None = None):
    """Parse and check a .game file. Raises a `gamedsl.errors.GameError` with a position."""
    from gamedsl.semantics.checker import check
    from gamedsl.syntax.parser import parse_file

    file, source = parse_file(path)
    return check(file, source, divergences)


def loads(text: str, path: str = "<text>", divergences: dict[str, str] | None = None):
    """Parse and check game text."""
    from gamedsl.errors import Source
    from gamedsl.semantics.checker import check_source

    return check_source(Source(path, text), divergences)
