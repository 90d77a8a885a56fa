"""Text to AST: read safely, parse with lark (LALR), explain syntax errors in words.

The parser never evaluates anything. It enforces the input limits before and after
parsing (size, encoding, nesting depth) so hostile files end in a clean message, and it
turns lark's token-level errors into sentences, choosing messages by example the way
lark's own grammar loader does (`UnexpectedInput.match_examples`).
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import lark
from lark import Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from gamedsl.errors import GameError, GameSyntaxError, LimitError, Source, Span, did_you_mean
from gamedsl.syntax import ast, tables
from gamedsl.syntax.messages import EXAMPLES, describe_expected, describe_found, hint_for_character

MAX_BYTES = 1 << 20  # a .game file is a page of text; one MiB is far beyond any real game
MAX_DEPTH = 100  # nesting of expressions and values; real games stay under 15
MAX_NAME = 200  # characters in a name; messages quote names, so they must stay readable


@lru_cache(maxsize=1)
def _lark() -> lark.Lark:
    return tables.load()


def read_source(path: str | Path) -> Source:
    """Read a .game file as UTF-8 text, refusing huge or undecodable input cleanly."""
    path = Path(path)
    shown = str(path)
    try:
        size = path.stat().st_size
        if size <= MAX_BYTES:  # read no more than the limit: devices and pipes report size 0
            with path.open("rb") as file:
                raw = file.read(MAX_BYTES + 1)
            size = max(size, len(raw))
        if size > MAX_BYTES:
            raise LimitError(
                f"file is too large ({'more than ' if size == MAX_BYTES + 1 else ''}{size / 2**20:.1f} MiB; "
                f"the limit is {MAX_BYTES // 2**20} MiB)",
                hint="a .game file declares a game; data belongs in data sources such as cifar10(path=...)",
                source=Source(shown, ""),
            )
    except FileNotFoundError:
        raise GameSyntaxError("no such file", source=Source(shown, ""), hint="check the path") from None
    except IsADirectoryError:
        raise GameSyntaxError("is a directory, not a .game file", source=Source(shown, "")) from None
    except OSError as exc:
        raise GameSyntaxError(f"cannot read the file: {exc.strerror}", source=Source(shown, "")) from None
    return Source(shown, decode(raw, shown))


def decode(raw: bytes, shown: str) -> str:
    """Strict UTF-8, with the position of the first bad byte when it is not."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        good = raw[: exc.start].decode("utf-8")
        line = good.count("\n") + 1
        column = len(good) - (good.rfind("\n") + 1) + 1
        text = raw.decode("utf-8", errors="replace")
        raise GameSyntaxError(
            f"the file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})",
            span=Span.point(line, column),
            hint="save the file as UTF-8",
            source=Source(shown, text),
        ) from None


def parse_file(path: str | Path) -> tuple[ast.GameFile, Source]:
    source = read_source(path)
    return parse_source(source), source


def parse_source(source: Source) -> ast.GameFile:
    """Parse text into a GameFile, raising GameSyntaxError or LimitError with a position."""
    if len(source.text) > MAX_BYTES:
        raise LimitError(
            f"text is too large ({len(source.text):,} characters; the limit is {MAX_BYTES:,})",
            hint="a .game file declares a game; data belongs in data sources such as cifar10(path=...)",
            source=source,
        )
    try:
        tree = _lark().parse(source.text, start="start")
    except UnexpectedInput as exc:
        raise _syntax_error(exc, source) from None
    _check_depth(tree, source)
    return _transform(tree, source)


def _transform(tree: Tree, source: Source):
    """The AST of a parse tree. The rules raise GameSyntaxError (a number too large, a
    positional argument after a keyword); lark wraps it in a VisitError, which is unwrapped."""
    try:
        return _ToAst().transform(tree)
    except lark.exceptions.VisitError as exc:
        if isinstance(exc.orig_exc, GameSyntaxError):
            raise exc.orig_exc.at(source) from None
        raise


VALUE_HINT = "values are numbers, true/false, names, lists or calls like adam(lr=1e-3)"


def parse_value(text: str, source: Source, column: int = 1) -> ast.Value:
    """Parse a lone value such as `consensus(gamma=1)` from the command line.

    `source` is the whole argument and `column` where `text` starts in it, so that errors
    point into what the user typed. The value is parsed, checked and its errors explained
    as a file would be, in a source of its own, then every position is moved by `column`.
    """
    shift = column - 1
    alone = Source(source.path, text)
    try:
        try:
            tree = _lark().parse(text, start="value")
        except UnexpectedInput as exc:
            raise _value_error(exc, alone) from None
        _check_depth(tree, alone)
        return _shift(_transform(tree, alone), shift)
    except GameError as exc:
        if exc.span is not None:
            exc.span = Span(exc.span.line, exc.span.column + shift, exc.span.end_line, exc.span.end_column + shift)
        exc.source = source
        raise


def _value_error(exc: UnexpectedInput, source: Source) -> GameSyntaxError:
    """A syntax error in a lone value: a stray character, an unbalanced bracket, a missing
    or unexpected token."""
    if isinstance(exc, UnexpectedCharacters):
        char = source.text[exc.pos_in_stream]
        hint = hint_for_character(char) if not char.isascii() or char.isspace() else VALUE_HINT
        return GameSyntaxError(
            f"unexpected character {char!r}", span=Span.point(1, exc.column), hint=hint, source=source
        )
    token = getattr(exc, "token", None)
    bracket = _bracket_error(token, source, the_end="the end of the value")
    if bracket is not None:
        return bracket
    if token is None or token.type == "$END":
        message, column = "missing value", len(source.text) + 1
    else:
        message, column = f"unexpected {describe_found(token)}", token.column
    return GameSyntaxError(message, span=Span.point(1, column), hint=VALUE_HINT, source=source)


def _shift(node, shift: int):
    """Move the spans of a parsed value right by `shift` columns."""
    if not shift:
        return node
    changes = {}
    for name, attr in vars(node).items():
        if isinstance(attr, Span):
            changes[name] = Span(attr.line, attr.column + shift, attr.end_line, attr.end_column + shift)
        elif isinstance(attr, tuple):
            changes[name] = tuple(_shift(a, shift) if hasattr(a, "span") else a for a in attr)
        elif hasattr(attr, "span"):
            changes[name] = _shift(attr, shift)
    return replace(node, **changes)


def parse_text(text: str, path: str = "<text>") -> ast.GameFile:
    return parse_source(Source(path, text))


def _check_depth(tree: Tree, source: Source) -> None:
    """Iteratively measure nesting so that later recursive passes can never overflow, and
    refuse names too long to quote in a message."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            meta = node.meta
            raise LimitError(
                f"nesting is too deep (more than {MAX_DEPTH} levels)",
                span=Span.point(meta.line, meta.column) if not meta.empty else None,
                hint="split the expression with `let` declarations",
                source=source,
            )
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, Tree))
        for child in node.children:
            if isinstance(child, Token) and child.type == "NAME" and len(child) > MAX_NAME:
                raise LimitError(
                    f"a name is too long ({len(child):,} characters; the limit is {MAX_NAME})",
                    span=_tok(child),
                    hint="use a shorter name",
                    source=source,
                )


def _syntax_error(exc: UnexpectedInput, source: Source) -> GameSyntaxError:
    if isinstance(exc, UnexpectedCharacters):
        char = source.text[exc.pos_in_stream] if exc.pos_in_stream < len(source.text) else ""
        return GameSyntaxError(
            f"unexpected character {char!r}",
            span=Span.point(exc.line, exc.column),
            hint=hint_for_character(char),
            source=source,
        )
    token = exc.token if isinstance(exc, (UnexpectedToken, UnexpectedEOF)) else None
    bracket = _bracket_error(token, source)
    if bracket is not None:
        return bracket
    attribute = _attribute_error(exc, source)
    if attribute is not None:
        return attribute
    keyword = _keyword_read_as_name(exc, source)
    if keyword is not None:  # `param p =` then a new line `param q = 1`: `param` became p's value
        return _bracket_error(keyword, source, declaration=True) or GameSyntaxError(
            f"the declaration before '{keyword}' is incomplete",
            span=_tok(keyword),
            hint=f"'{keyword}' starts a new declaration, so a value or an expression is missing before it",
            source=source,
        )
    if isinstance(exc, UnexpectedToken) and token.type == "STRING" and "E" in (exc.accepts or exc.expected):
        return GameSyntaxError(
            "a string cannot be used in an expression",
            span=_tok(token),
            hint="strings appear only in descriptions and in arguments of builders, sources and solve settings",
            source=source,
        )
    label = _match_example(exc)
    if label is not None and label[0].startswith("use '^'") and source.text[token.start_pos - 1 : token.start_pos] != "*":
        label = ("expected an expression", None)  # `a * * b` is a missing operand, not Python's `**`
    span = _token_span(token, source)
    if isinstance(exc, UnexpectedToken):
        expected = describe_expected(exc.accepts or exc.expected, _lark())
    else:
        expected = describe_expected(exc.expected, _lark())
    found = describe_found(token)
    if label is not None:
        message, hint = label
        return GameSyntaxError(message, span=span, hint=hint or f"expected {expected}", source=source)
    hint = None
    if isinstance(exc, UnexpectedToken) and _DECLARATION_KEYWORDS <= {str(t).lower() for t in exc.accepts or exc.expected}:
        # the previous declaration is complete and something other than a declaration follows
        close = did_you_mean(str(token), _DECLARATION_KEYWORDS) if token.type == "NAME" else None
        if close and close.startswith("did you mean"):
            hint = close
        elif _starts_line(token, source):
            hint = "declarations start with param, network, data, latent, divergence, let, player or solve"
        else:
            hint = "the declaration before it ends here; is an operator or ',' missing?"
    return GameSyntaxError(f"unexpected {found}; expected {expected}", span=span, hint=hint, source=source)


def _starts_line(token: Token, source: Source) -> bool:
    return not source.line(token.line)[: token.column - 1].strip()


def _keyword_read_as_name(exc: UnexpectedInput, source: Source) -> Token | None:
    """A declaration keyword at the start of a line that the parser took as a name.

    Where a name is allowed, `param` is a name; so when a declaration lacks its value, the
    next declaration's keyword becomes the value and the error surfaces one token later.
    """
    stack = getattr(getattr(exc, "state", None), "value_stack", None)
    last = stack[-1] if stack else None
    while isinstance(last, Tree):  # the last token read, at the right edge of what was reduced
        children = [c for c in last.children if c is not None]
        last = children[-1] if children else None
    if isinstance(last, Token) and last.type == "NAME" and str(last) in _DECLARATION_KEYWORDS and _starts_line(last, source):
        return last
    return None


def _attribute_error(exc: UnexpectedInput, source: Source) -> GameSyntaxError | None:
    """`D.weight` where a value is expected: the grammar reads `NAME.NAME` only as a
    divergence's part being called (`gan.g1(t)`), so lark can only say that '(' is missing."""
    stack = getattr(getattr(exc, "state", None), "value_stack", None) or []
    last = stack[-3:]
    if [getattr(t, "type", None) for t in last] != ["NAME", "DOT", "NAME"]:
        return None
    owner, _, attr = last
    span = Span(owner.line, owner.column, attr.end_line, attr.end_column)
    if str(attr) in ("g1", "g2"):
        return GameSyntaxError(
            f"'{owner}.{attr}' is a part of a divergence, a function: call it",
            span=span,
            hint=f"for example {owner}.{attr}(t)",
            source=source,
        )
    return GameSyntaxError(
        f"'{owner}.{attr}': names have no attributes, and a network's weights cannot be used in expressions",
        span=span,
        hint=f"apply a network to an input, as in {owner}(x), or declare a parameter: param {attr} = 0; "
        "'.' only names the part of a divergence, as in gan.g1(t)",
        source=source,
    )


_DECLARATION_KEYWORDS = {"param", "network", "data", "latent", "divergence", "let", "player", "solve"}
_CLOSERS = {"(": ")", "[": "]", "{": "}"}


def _bracket_error(
    token: Token | None, source: Source, declaration: bool = False, the_end: str = "the end of the file"
) -> GameSyntaxError | None:
    """Unbalanced brackets, found by scanning the text up to the failing token.

    A closing bracket that matches nothing is reported where it is; a declaration keyword
    or the end of the file reached inside brackets is reported at the bracket left open,
    which is where the fix goes.
    """
    at_end = token is None or token.type in ("$END", "<EOF>")
    closing = not at_end and str(token) in (")", "]", "}")
    opening_decl = not at_end and (declaration or token.type.lower() in _DECLARATION_KEYWORDS)
    if not (at_end or closing or opening_decl):
        return None
    text = source.text
    stop = len(text) if at_end else token.start_pos
    stack: list[tuple[str, int, int]] = []
    line, column, i = 1, 1, 0
    while i < stop:
        char = text[i]
        if char == "#":  # a comment runs to the end of the line
            end = text.find("\n", i)
            end = stop if end == -1 else min(end, stop)
            column += end - i
            i = end
            continue
        if char == '"':  # skip a string, escapes included
            j = i + 1
            while j < stop and text[j] not in '"\n':
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, stop)
            column += j - i
            i = j
            continue
        if char in _CLOSERS:
            stack.append((char, line, column))
        elif char in ")]}" and stack and _CLOSERS[stack[-1][0]] == char:
            stack.pop()
        if char == "\n":
            line, column = line + 1, 1
        else:
            column += 1
        i += 1
    if closing:
        char = str(token)
        if not stack:
            return GameSyntaxError(f"unmatched '{char}'", span=_tok(token), hint="remove it, or add the bracket it closes", source=source)
        opener, open_line, open_column = stack[-1]
        if _CLOSERS[opener] != char:
            return GameSyntaxError(
                f"'{char}' does not match the '{opener}' on line {open_line}",
                span=_tok(token),
                hint=f"close the '{opener}' with '{_CLOSERS[opener]}' first",
                source=source,
            )
        return None
    if stack:
        opener, open_line, open_column = stack[-1]
        where = the_end if at_end else f"'{token}' on line {token.line}"
        return GameSyntaxError(
            f"unclosed '{opener}'",
            span=Span.point(open_line, open_column),
            hint=f"add '{_CLOSERS[opener]}' before {where}",
            source=source,
        )
    return None


@lru_cache(maxsize=1)
def _example_failures() -> tuple[tuple[tuple[str, str | None], UnexpectedInput], ...]:
    """How each example in EXAMPLES fails, computed once (errors are matched against these)."""
    failures = []
    for label, examples in EXAMPLES.items():
        for malformed in examples:
            try:
                _lark().parse(malformed, start="start")
            except UnexpectedInput as exc:
                failures.append((label, exc))
    return tuple(failures)


def _match_example(exc: UnexpectedInput) -> tuple[str, str | None] | None:
    """The label of the example failing in the same parser state as `exc`.

    The rule of lark's `UnexpectedInput.match_examples(..., use_accepts=True)`, against
    cached example failures, with one difference: parser states are compared by their LALR
    state alone. lark also compares the depth of the parser's stack, so an example would
    only match errors at its own nesting depth and in the first declaration of a file.
    """
    candidate = None
    for label, example in _example_failures():
        if _position(example.state) != _position(exc.state):
            continue
        if isinstance(exc, UnexpectedToken) and isinstance(example, UnexpectedToken) and example.accepts != exc.accepts:
            continue
        if isinstance(exc, (UnexpectedToken, UnexpectedEOF)) and isinstance(example, (UnexpectedToken, UnexpectedEOF)):
            if example.token == exc.token:
                return label
        if candidate is None:
            candidate = label
    return candidate


def _position(state):
    """The LALR state of a parser state (lark gives a ParserState, or an int in older versions)."""
    return getattr(state, "position", state)


def _token_span(token: Token | None, source: Source) -> Span:
    if token is None or token.type == "$END" or getattr(token, "line", None) in (None, -1):
        lines = source.text.splitlines() or [""]
        return Span.point(len(lines), len(lines[-1]) + 1)
    return Span(token.line, token.column, token.end_line, token.end_column)


def _tok(token: Token) -> Span:
    return Span(token.line, token.column, token.end_line, token.end_column)


def _meta(meta) -> Span:
    return Span(meta.line, meta.column, meta.end_line, meta.end_column)


def _float(token: Token) -> float:
    """The value of a NUMBER token; one that overflows to infinity is an error, not inf."""
    value = float(token)
    if value == float("inf"):
        raise GameSyntaxError(
            f"the number {_clip(str(token))} is too large", span=_tok(token), hint="numbers must be below 1.7e308"
        )
    return value


def _clip(text: str, width: int = 30) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _whole(text: Token, what: str, minimum: int, example: str) -> int:
    value = _float(text)
    if not value.is_integer() or value < minimum or any(c in text for c in ".eE"):
        raise GameSyntaxError(f"{what} must be a whole number of at least {minimum}", span=_tok(text), hint=example)
    return int(value)


def _binary_rule(op: str):
    def build(self, meta, children):
        left, right = children
        return ast.Binary(op, left, right, _meta(meta))

    return build


@lark.v_args(meta=True)
class _ToAst(lark.Transformer):
    """Build frozen AST nodes from lark's parse tree, keeping every span."""

    # ---- declarations
    def start(self, meta, children):
        header, *decls = children
        return ast.GameFile(header, tuple(decls), _meta(meta))

    def header(self, meta, children):
        name, description = children
        return ast.Header(str(name), _unquote(description) if description else None, _meta(meta))

    def param_decl(self, meta, children):
        name, size, init = children
        return ast.ParamDecl(str(name), size, init, _meta(meta), _tok(name))

    def size(self, meta, children):
        return _whole(children[0], "a parameter's size", 1, "for example: param w[3] = 0")

    def network_decl(self, meta, children):
        name, builder = children
        return ast.NetworkDecl(str(name), builder, _meta(meta), _tok(name))

    def data_decl(self, meta, children):
        name, source = children
        return ast.SampleDecl("data", str(name), source, _meta(meta), _tok(name))

    def latent_decl(self, meta, children):
        name, source = children
        return ast.SampleDecl("latent", str(name), source, _meta(meta), _tok(name))

    def divergence_decl(self, meta, children):
        name, *parts = children
        return ast.DivergenceDecl(str(name), tuple(parts), _meta(meta), _tok(name))

    def part(self, meta, children):
        name, *rest = children
        body = rest[-1]
        params = tuple(str(p) for p in rest[:-1] if p is not None)
        return ast.Part(str(name), params, body, _meta(meta))

    def alias_decl(self, meta, children):
        name, target = children
        return ast.AliasDecl(str(name), ast.Name(str(target), _tok(target)), _meta(meta), _tok(name))

    def let_decl(self, meta, children):
        name, value = children
        return ast.LetDecl(str(name), value, _meta(meta), _tok(name))

    def player_decl(self, meta, children):
        name, controls, maximize, objective = children
        return ast.PlayerDecl(str(name), controls, maximize, objective, _meta(meta), _tok(name))

    def controlled(self, meta, children):
        return tuple(ast.Name(str(t), _tok(t)) for t in children)

    def sense(self, meta, children):
        return children[0].type == "MAXIMIZES"

    def solve_block(self, meta, children):
        return ast.SolveBlock(tuple(children), _meta(meta))

    def setting(self, meta, children):
        key, value = children
        return ast.Setting(key, value, _meta(meta))

    def key(self, meta, children):
        return ".".join(str(t) for t in children)

    # ---- values
    def number(self, meta, children):
        (tok,) = children
        return ast.NumberValue(_float(tok), str(tok), _meta(meta))

    def negative_number(self, meta, children):
        (tok,) = children
        return ast.NumberValue(-_float(tok), "-" + str(tok), _meta(meta))

    def string(self, meta, children):
        return ast.StringValue(_unquote(children[0]), _meta(meta))

    def true(self, meta, children):
        return ast.BoolValue(True, _meta(meta))

    def false(self, meta, children):
        return ast.BoolValue(False, _meta(meta))

    def ident(self, meta, children):
        return ast.IdentValue(str(children[0]), _meta(meta))

    def list(self, meta, children):
        return ast.ListValue(tuple(c for c in children if c is not None), _meta(meta))

    def arrow(self, meta, children):
        source, target = children
        return ast.ArrowValue(source, target, _meta(meta))

    def call_value(self, meta, children):
        name, *args = children
        args = tuple(a if isinstance(a, ast.ValueArg) else ast.ValueArg(None, a, a.span) for a in args if a is not None)
        _positional_after_keyword(args, lambda a: a.name is not None)
        return ast.CallValue(str(name), args, _meta(meta), _tok(name))

    def value_kwarg(self, meta, children):
        name, value = children
        return ast.ValueArg(str(name), value, _meta(meta))

    # ---- expressions
    def num(self, meta, children):
        return ast.Number(_float(children[0]), _meta(meta))

    def name(self, meta, children):
        return ast.Name(str(children[0]), _meta(meta))

    add, sub, mul, div, pow = map(_binary_rule, "+-*/^")

    def neg(self, meta, children):
        return ast.Unary("-", children[0], _meta(meta))

    def pos(self, meta, children):
        return ast.Unary("+", children[0], _meta(meta))

    def index(self, meta, children):
        value, tok = children
        index = _whole(tok, "an index", 0, "indices count from 0: x[0] is the first entry")
        return ast.Index(value, index, _meta(meta))

    def expect(self, meta, children):
        return ast.Expect(children[0], _meta(meta))

    def vector(self, meta, children):
        return ast.Vector(tuple(children), _meta(meta))

    def callee(self, meta, children):
        func, attr = (children + [None])[:2]
        return ast.Name(str(func), _tok(func)), (ast.Name(str(attr), _tok(attr)) if attr else None)

    def call(self, meta, children):
        (func, attr), *args = children
        args = [a for a in args if a is not None]
        positional = tuple(a for a in args if not isinstance(a, ast.Keyword))
        keywords = tuple(a for a in args if isinstance(a, ast.Keyword))
        _positional_after_keyword(args, lambda a: isinstance(a, ast.Keyword))
        return ast.Call(func, attr, positional, keywords, _meta(meta))

    def kwarg(self, meta, children):
        name, value = children
        return ast.Keyword(str(name), value, _meta(meta))


def _positional_after_keyword(args, is_keyword) -> None:
    """`f(a=1, 2)` is an error, in expressions and in values alike."""
    first = next((i for i, a in enumerate(args) if is_keyword(a)), len(args))
    late = next((a for a in args[first:] if not is_keyword(a)), None)
    if late is not None:
        raise GameSyntaxError(
            "a positional argument cannot follow a keyword argument",
            span=late.span,
            hint="put positional arguments first, or name this one too",
        )


def _unquote(token: Token) -> str:
    body = str(token)[1:-1]
    return body.replace('\\"', '"').replace("\\\\", "\\")
