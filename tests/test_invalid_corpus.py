"""The corpus of invalid games: every check of the parser and the checker, with its message.

Each `tests/invalid/NNN_name.game` holds one mistake, described by its first line
(`# syntax: ...`, `# limit: ...`, or another topic for the checker's rules). Its sibling
`NNN_name.expected` is exactly what `GameError.render()` prints when the file is loaded as
`tests/invalid/NNN_name.game` from the repository root. The messages are part of the user
interface: after changing one on purpose, regenerate the files and read the diff.

    python tests/test_invalid_corpus.py --regenerate
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import gamedsl
from gamedsl.errors import ExitCode, GameCheckError, GameError, GameSyntaxError, LimitError

ROOT = Path(__file__).resolve().parent.parent
CORPUS_DIR = ROOT / "tests" / "invalid"
CORPUS = sorted(CORPUS_DIR.glob("*.game"))
NAME = re.compile(r"^\d{3}_[a-z0-9_]+\.game$")


def _relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def load_error(path: Path) -> GameError | None:
    """Load `path` as `tests/invalid/...` from the repository root; the error, or None."""
    previous = os.getcwd()
    os.chdir(ROOT)
    try:
        gamedsl.load(_relative(path))
    except GameError as exc:
        return exc
    finally:
        os.chdir(previous)
    return None


def expected_class(path: Path) -> type[GameError]:
    topic = path.read_text(encoding="utf-8").split("\n", 1)[0]
    if topic.startswith("# syntax:"):
        return GameSyntaxError
    if topic.startswith("# limit:"):
        return LimitError
    return GameCheckError


def test_corpus_is_large_and_complete():
    assert len(CORPUS) >= 40
    for path in CORPUS:
        assert NAME.match(path.name), f"{path.name}: name it NNN_short_name.game"
        assert path.with_suffix(".expected").exists(), f"{path.name} has no .expected file"
        assert path.read_text(encoding="utf-8").startswith("# "), f"{path.name}: first line says what it tests"
    orphans = {p.stem for p in CORPUS_DIR.glob("*.expected")} - {p.stem for p in CORPUS}
    assert not orphans, f".expected files without a .game file: {sorted(orphans)}"


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_invalid_game(path: Path):
    exc = load_error(path)
    assert exc is not None, f"{path.name} loads without error"
    assert type(exc) is expected_class(path), f"{path.name}: {type(exc).__name__}: {exc.message}"
    assert exc.code == (ExitCode.LIMIT if isinstance(exc, LimitError) else ExitCode.INVALID_GAME)
    assert exc.span is not None, "every mistake in a file has a position"
    rendered = exc.render()
    assert rendered.startswith(f"{_relative(path)}:{exc.span.line}:{exc.span.column}: error: ")
    assert rendered == path.with_suffix(".expected").read_text(encoding="utf-8").rstrip("\n")


def test_cli_reports_an_invalid_game():
    path = next(p for p in CORPUS if p.stem.endswith("_undefined_name"))
    result = subprocess.run(
        [sys.executable, "-m", "gamedsl", "check", _relative(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == ExitCode.INVALID_GAME
    assert "Traceback" not in result.stderr
    assert re.search(rf"^{re.escape(_relative(path))}:\d+:\d+: error: ", result.stderr, re.MULTILINE)
    assert re.search(r"^ +\^~*$", result.stderr, re.MULTILINE), "a caret line under the mistake"
    assert result.stderr.strip() == path.with_suffix(".expected").read_text(encoding="utf-8").strip()
    assert result.stdout == ""


def regenerate() -> None:
    for path in CORPUS:
        exc = load_error(path)
        text = "LOADS WITHOUT ERROR" if exc is None else exc.render()
        path.with_suffix(".expected").write_text(text + "\n", encoding="utf-8")
        print(f"{path.name}\n{text}\n")


if __name__ == "__main__":
    if sys.argv[1:] != ["--regenerate"]:
        sys.exit("usage: python tests/test_invalid_corpus.py --regenerate")
    regenerate()
