"""Every ```game block in docs/*.md is checked, so the documentation cannot drift.

Conventions, written as HTML comments (invisible on the rendered page) on the lines just
before the opening fence:

* no comment: the block is a complete game (its first line that is not a comment starts
  with `game`) and must pass the checker;
* `<!-- fragment -->`: the block is part of a game. It is appended to PRELUDE (data `x`,
  latent `z`, networks `D` and `G`); unless it declares players itself, the two standard
  players follow, and player G also controls every `param` and `network` the block
  declares. The result must pass the checker;
* `<!-- error: TEXT -->`: the block (a complete game, or a fragment wrapped as above)
  must fail with a GameError whose rendered message contains TEXT;
* `<!-- set divergence.NAME=DIV -->`: check with that divergence override, as
  `gamedsl solve --set divergence.NAME=DIV` does (several may be given).

A failure names the block by its file and the line of its opening fence.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import gamedsl
from gamedsl.errors import GameError

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md"))

PRELUDE = """game fragment "a documentation example"
data x ~ ring(modes=8, radius=1, std=0.01)
latent z ~ normal(16)
network D = mlp(2 -> 1, hidden=[16, 16])
network G = mlp(16 -> 2, hidden=[16, 16])
"""
PLAYERS = """player D controls D maximizes gan(critic=D, real=x, fake=G(z))
player G controls G{extra} minimizes gan(critic=D, real=x, fake=G(z))
"""

FENCE = re.compile(r"^(\s*)```game\s*$")
MARKER = re.compile(
    r"^\s*<!--\s*(fragment|error:\s*(?P<error>.*?)|set\s+divergence\.(?P<alias>\w+)=(?P<target>\w+))\s*-->\s*$"
)


@dataclass
class Block:
    path: Path
    line: int  # of the opening fence, 1-based
    text: str
    fragment: bool = False
    error: str | None = None
    overrides: dict[str, str] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks_of(path: Path) -> list[Block]:
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks, i = [], 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if not match:
            i += 1
            continue
        indent, start, body = match.group(1), i, []
        i += 1
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i])
            i += 1
        assert i < len(lines), f"{path.name}:{start + 1}: unclosed ```game block"
        block = Block(path, start + 1, "\n".join(body) + "\n")
        j = start - 1
        while j >= 0 and (marker := MARKER.match(lines[j])):
            if marker.group("error") is not None:
                block.error = marker.group("error")
            elif marker.group("alias"):
                block.overrides[marker.group("alias")] = marker.group("target")
            else:
                block.fragment = True
            j -= 1
        blocks.append(block)
        i += 1
    return blocks


BLOCKS = [block for path in DOCS for block in blocks_of(path)]


def is_complete(text: str) -> bool:
    first = next((line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")), "")
    return first.split()[:1] == ["game"]


def game_text(block: Block) -> str:
    if is_complete(block.text):
        assert not block.fragment, f"{block.where}: a complete game is not a fragment"
        return block.text
    assert block.fragment or block.error is not None, (
        f"{block.where}: this block does not start with `game`; mark it <!-- fragment --> or make it a complete game"
    )
    text = PRELUDE + block.text
    if not re.search(r"^\s*player\s", block.text, re.MULTILINE):
        declared = re.findall(r"^\s*(?:param|network)\s+([A-Za-z_]\w*)", block.text, re.MULTILINE)
        text += PLAYERS.format(extra="".join(f", {name}" for name in declared))
    return text


def test_there_are_examples():
    assert DOCS, "docs/*.md"
    assert len(BLOCKS) >= 20


@pytest.mark.parametrize("block", BLOCKS, ids=[b.where for b in BLOCKS])
def test_example(block: Block):
    text = game_text(block)
    try:
        game = gamedsl.loads(text, block.where, block.overrides)
    except GameError as exc:
        if block.error is None:
            pytest.fail(
                f"{block.where}: this example should pass the checker\n{exc.render()}\n--- checked text:\n{text}"
            )
        assert block.error in exc.render(), f"{block.where}: expected {block.error!r} in:\n{exc.render()}"
    else:
        assert block.error is None, (
            f"{block.where}: this example should fail with {block.error!r}\n--- checked text:\n{text}"
        )
        if not block.fragment:
            warnings = "\n".join(w.render() for w in game.warnings)
            assert not warnings, f"{block.where}: a complete example has no warnings\n{warnings}"


# ---- completeness: the reference names everything the registries offer ---------------------


def _reference() -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in DOCS)


def test_every_registered_name_is_documented():
    from gamedsl.data.sources import INITIALIZERS, SOURCES
    from gamedsl.errors import ExitCode
    from gamedsl.library.functions import FUNCTIONS
    from gamedsl.nets.builders import BUILDERS
    from gamedsl.semantics.checker import RESERVED, library
    from gamedsl.semantics.settings import KEYS

    text = _reference()
    missing = [f"setting {key}" for key in KEYS if f"| `{key}` |" not in text]
    for kind, registry in (
        ("builder", {n: b.signature for n, b in BUILDERS.items()}),
        ("source", {n: s.signature for n, s in SOURCES.items()}),
        ("initialiser", INITIALIZERS),
    ):
        for name, signature in registry.items():
            if f"`{name}" not in text:
                missing.append(f"{kind} {name}")
            missing += [
                f"{kind} {name}: argument {a.name}"
                for a in signature.args
                if a.name != "io" and f"`{a.name}" not in text
            ]
    missing += [f"function {name}" for name in FUNCTIONS if f"`{name}(" not in text]
    missing += [f"divergence {name}" for name in library() if f"| `{name}` |" not in text]
    missing += [f"exit code {int(code)}" for code in ExitCode if f"| {int(code)} |" not in text]
    missing += [f"reserved word {word}" for word in RESERVED if not re.search(rf"(?<![\w`]){word}(?![\w`])", text)]
    assert not missing, "docs/language.md does not mention: " + "; ".join(missing)


# ---- the solver guide: one row per registered method, its defaults and capabilities as declared --------


def _table_rows(text: str, header: str) -> dict[str, list[str]]:
    """The rows of the markdown table whose header row starts with `| header |`, by their first cell's name."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {header} |"))
    rows = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0].strip("`")] = cells
    return rows


def _defaults(cell: str) -> dict[str, str]:
    """The `name=value` pairs of a table cell, the first of each name: "`gamma=10`, `debias=false`"."""
    pairs = {}
    for name, value in re.findall(r"`(\w+)=([^`]*)`", cell):
        pairs.setdefault(name, value)
    return pairs


def _undocumented(specs, cell: str) -> list[str]:
    """The parameters whose declared default the cell does not give (numbers compared as numbers)."""
    given = _defaults(cell)
    wrong = []
    for spec in specs:
        text = given.get(spec.name)
        if spec.type is bool:
            ok = text == ("true" if spec.default else "false")
        elif spec.type is str:
            ok = text is not None and text.strip('"') == spec.default
        else:
            ok = text is not None and float(text) == spec.default
        if not ok:
            wrong.append(f"{spec.name}={spec.default!r} (it says {text!r})")
    return wrong


def test_the_solver_guide_lists_every_method_with_its_declared_defaults_and_capabilities():
    import solvers

    text = (ROOT / "docs" / "solvers.md").read_text(encoding="utf-8")
    rows = _table_rows(text, "solver")
    header = [c.strip() for c in text.split("\n| solver |", 1)[1].split("\n", 1)[0].strip("|").split("|")]
    vectorised = ["solver", *header].index("vectorised sweeps")
    for name in solvers.available():
        assert name in rows, f"docs/solvers.md: no summary row for solver {name}"
        assert re.search(rf"^### {name} — ", text, re.M), f"docs/solvers.md: no section for solver {name}"
        row = rows[name]
        assert row[vectorised].startswith("yes") == solvers.SOLVERS.cls(name).vectorizes, f"{name}: vectorised sweeps"
        missing = _undocumented(solvers.describe(name), row[3])
        assert not missing, f"docs/solvers.md: the {name} row does not give {', '.join(missing)}"
    optimizers = _table_rows(text, "optimizer")
    schedule = _table_rows(text, "schedule parameter")
    shared = {f.name for f in dataclasses.fields(solvers.optimizers.Optimizer)} - {"lr"}
    for name in solvers.optimizers.available():
        assert name in optimizers, f"docs/solvers.md: no row for optimizer {name}"
        specs = solvers.optimizers.OPTIMIZERS.describe(name)
        missing = _undocumented([s for s in specs if s.name not in shared], optimizers[name][2])
        assert not missing, f"docs/solvers.md: the {name} row does not give {', '.join(missing)}"
        for spec in (s for s in specs if s.name in shared):
            cell = schedule.get(spec.name)
            assert cell, f"docs/solvers.md: no row for the schedule parameter {spec.name}"
            missing = _undocumented([spec], cell[-1])
            assert not missing, f"docs/solvers.md: the {spec.name} row does not give {', '.join(missing)}"
