"""The stored LALR tables (`gamedsl/syntax/grammar_tables.json`) are the grammar's.

The independent truth is a parser that lark builds from `grammar.lark` here and now: the
stored tables must give the same tree, or the same error at the same place, for every file of
the catalog, the docs and the invalid corpus. A grammar edited without rewriting the tables
fails here (and, at run time, is built from the grammar instead of the stale tables).
"""

from __future__ import annotations

import json

import lark
import pytest

from gamedsl.syntax import parser, tables
from tests.conftest import ROOT

CORPUS = sorted(
    p for pattern in ("games/*.game", "tests/invalid/*.game", "docs/**/*.game") for p in ROOT.glob(pattern)
)


@pytest.fixture(scope="module")
def stored() -> lark.Lark:
    data = json.loads(tables.TABLES.read_text(encoding="utf-8"), object_hook=tables._decode)
    return lark.Lark._load_from_dict(data["data"], data["memo"])


@pytest.fixture(scope="module")
def built() -> lark.Lark:
    return tables.build(tables.GRAMMAR.read_text(encoding="utf-8"))


def test_tables_were_made_from_this_grammar():
    made_from = json.loads(tables.TABLES.read_text(encoding="utf-8"), object_hook=tables._decode)["made_from"]
    assert made_from["grammar_sha256"] == tables.fingerprint(tables.GRAMMAR.read_text(encoding="utf-8"))["grammar_sha256"], (
        "grammar.lark changed: run `python -m gamedsl.syntax.tables`"
    )
    assert made_from["options"] == tables.OPTIONS


def test_the_parser_in_use_is_the_stored_one_when_lark_matches():
    made_from = json.loads(tables.TABLES.read_text(encoding="utf-8"), object_hook=tables._decode)["made_from"]
    if made_from["lark"] != lark.__version__:
        pytest.skip(f"tables made with lark {made_from['lark']}, this is {lark.__version__}: the grammar is built")
    assert parser._lark().source_path == "<deserialized>"


def _outcome(p: lark.Lark, text: str, start: str):
    try:
        return p.parse(text, start=start)
    except lark.exceptions.UnexpectedInput as exc:
        return type(exc).__name__, exc.line, exc.column, sorted(getattr(exc, "expected", None) or [])


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: str(p.relative_to(ROOT)))
def test_stored_tables_parse_like_a_fresh_build(path, stored, built):
    text = path.read_text(encoding="utf-8", errors="replace")
    assert _outcome(stored, text, "start") == _outcome(built, text, "start")


@pytest.mark.parametrize("text", ["consensus(gamma=1)", "adam(lr=1e-3, betas=[0.5, 0.99])", "1e-4", "f(", "x y"])
def test_stored_tables_parse_values_like_a_fresh_build(text, stored, built):
    assert _outcome(stored, text, "value") == _outcome(built, text, "value")


def test_a_stale_table_file_is_not_used(tmp_path, monkeypatch):
    stale = json.loads(tables.TABLES.read_text(encoding="utf-8"))
    stale["made_from"]["grammar_sha256"] = "0" * 64
    (tmp_path / "grammar_tables.json").write_text(json.dumps(stale), encoding="utf-8")
    monkeypatch.setattr(tables, "TABLES", tmp_path / "grammar_tables.json")
    assert tables.load().source_path != "<deserialized>"
    (tmp_path / "grammar_tables.json").write_text("{not json", encoding="utf-8")
    assert tables.load().source_path != "<deserialized>"
