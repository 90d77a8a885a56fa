"""The parser's LALR tables, computed once and stored as JSON beside the grammar.

Building an LALR parser from `grammar.lark` takes about 0.1 s, a fifth of what `gamedsl
check` may spend in all. So the tables lark computes are stored in `grammar_tables.json`,
which `python -m gamedsl.syntax.tables` writes, and loading them takes a few milliseconds.

The stored tables are used only when they were made from this very grammar text by this
version of lark (both are recorded in the file); otherwise the grammar is built as before,
so an edited grammar is never parsed with stale tables. `tests/test_parser_tables.py` fails
when the file in the repository is stale. JSON, never pickle: the file holds only data.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import lark
from lark.grammar import Rule
from lark.lexer import TerminalDef

HERE = Path(__file__).parent
GRAMMAR = HERE / "grammar.lark"
TABLES = HERE / "grammar_tables.json"
TUPLE, ITEMS = "(tuple)", "(items)"  # the tags of `_encode`; no lark name has brackets
OPTIONS = {"parser": "lalr", "propagate_positions": True, "maybe_placeholders": True, "start": ["start", "value"]}


def fingerprint(grammar: str) -> dict:
    """What the tables were made from: the grammar's text, lark's version and the options."""
    return {
        "grammar_sha256": hashlib.sha256(grammar.encode("utf-8")).hexdigest(),
        "lark": lark.__version__,
        "options": OPTIONS,
    }


def build(grammar: str) -> lark.Lark:
    """The parser, built from the grammar's text (the slow way)."""
    return lark.Lark(grammar, **OPTIONS)


def serialize(parser: lark.Lark, grammar: str) -> dict:
    data, memo = parser.memo_serialize([TerminalDef, Rule])
    return {"made_from": fingerprint(grammar), "data": data, "memo": memo}


def _encode(value):
    """JSON keeps neither tuples nor integer keys, and lark's tables have both: they are
    written as tagged objects, which `_decode` turns back."""
    if isinstance(value, tuple):
        return {TUPLE: [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {k: _encode(v) for k, v in value.items()}
        return {ITEMS: [[_encode(k), _encode(v)] for k, v in value.items()]}
    return value


def _decode(obj: dict):
    if TUPLE in obj:
        return tuple(obj[TUPLE])
    if ITEMS in obj:
        return {k: v for k, v in obj[ITEMS]}
    return obj


def load() -> lark.Lark:
    """The parser: from the stored tables when they match the grammar, else built."""
    grammar = GRAMMAR.read_text(encoding="utf-8")
    try:
        stored = json.loads(TABLES.read_text(encoding="utf-8"), object_hook=_decode)
    except (OSError, ValueError):
        return build(grammar)
    if stored.get("made_from") != fingerprint(grammar):
        return build(grammar)
    return lark.Lark._load_from_dict(stored["data"], stored["memo"])


def write() -> Path:
    """Compute the tables from the grammar and store them."""
    grammar = GRAMMAR.read_text(encoding="utf-8")
    TABLES.write_text(json.dumps(_encode(serialize(build(grammar), grammar))) + "\n", encoding="utf-8")
    return TABLES


if __name__ == "__main__":
    print(f"wrote {write()}")
