"""Syntax errors in words a person understands.

`EXAMPLES` maps a (message, hint) pair to small malformed programs. When the parser fails,
lark's `match_examples` re-parses these and picks the message whose failure happens in the
same parser state, as lark's own grammar loader does. Anything unmatched falls back to
"unexpected X; expected Y" with token names translated into words.
"""

from __future__ import annotations

import unicodedata

_H = "game g\n"  # every example starts with a valid header

EXAMPLES: dict[tuple[str, str | None], list[str]] = {
    ("a .game file starts with `game NAME`", 'write for example: game my_game "what it is"'): [
        "let a = 1",
        "player D controls D maximizes x",
        "network G = mlp(1 -> 1)",
    ],
    ("the game needs a name", 'write for example: game my_game "what it is"'): [
        "game",
        'game "x"',
    ],
    ("expected a declaration", "declarations start with param, network, data, latent, divergence, let, player or solve"): [
        _H + "x = 1",
        _H + "foo bar",
        _H + "1",
    ],
    ("missing '=' after the name", "for example: let u = phi * theta"): [
        _H + "let a 1",
        _H + "let a",
        _H + "param p 1",
        _H + "network G mlp(1 -> 1)",
        _H + "divergence d g",
    ],
    ("a data or latent declaration uses '~'", "write for example: data x ~ ring(modes=8, radius=1, std=0.01)"): [
        _H + "data x = ring(8)",
        _H + "latent z = normal(16)",
        _H + "data x ring(8)",
    ],
    ("expected a source such as ring(...) or normal(16)", None): [
        _H + "data x ~ 3",
        _H + "latent z ~ z",
        _H + "data x ~ ",
    ],
    ("expected a builder such as mlp(IN -> OUT, hidden=[...])", None): [
        _H + "network G = 3",
        _H + "network G = G",
        _H + "network G = ",
    ],
    ("a player says what it controls", "write for example: player D controls D maximizes ..."): [
        _H + "player D maximizes x",
        _H + "player D D maximizes x",
        _H + "player D",
    ],
    ("a player maximizes or minimizes an objective", "write for example: player G controls G minimizes ..."): [
        _H + "player D controls D x",
        _H + "player D controls D",
        _H + "player D controls D = x",
    ],
    ("expected an expression", None): [
        _H + "let a = ",
        _H + "let a = *",
        _H + "let a = 1 + ",
        _H + "let a = 1 + * 2",
        _H + "let a = f(",
        _H + "let a = )",
        _H + "let a = (",
        _H + "let a = 1 * ",
        _H + "let a = 1 /",
        _H + "let a = -",
    ],
    ("use '^' for powers", "for example: x^2"): [
        _H + "let a = 2 ** 3",
    ],
    ("an expectation is written with square brackets: E[...]", None): [
        _H + "let a = E(x)",
        _H + "let a = E x",
    ],
    ("missing ',' between arguments", "separate arguments with ','"): [
        _H + "let a = f(x y)",
        _H + "let a = f(x 1)",
        _H + "network G = mlp(1 -> 1 hidden=[1])",
        _H + "let a = f(x=y z)",
        _H + "let a = f(x=1 z)",
        _H + "let a = f(x=(y) z)",
        _H + "network G = mlp(1 -> 1, bias=true init=ones)",
    ],
    ("unclosed '('", "add ')'"): [
        _H + "let a = f(x",
        _H + "let a = (x + 1",
        _H + "let a = f(x, y",
        _H + "network G = mlp(1 -> 1",
    ],
    ("unclosed '['", "add ']'"): [
        _H + "let a = E[x",
        _H + "network G = mlp(1 -> 1, hidden=[1, 2)",
        _H + "param p = [1, 2",
    ],
    ("unclosed '{'", "add '}'"): [
        _H + "solve { steps = 1",
        _H + "divergence d { g1(t) = t",
    ],
    ("settings are not separated by ','", "write one `key = value` after the other, on new lines or with spaces"): [
        _H + "solve { steps = 1, }",
        _H + "solve { steps = 1, batch = 2 }",
        _H + "solve { solver = simga, }",
        _H + "solve { solver = consensus(gamma=1), steps = 2 }",
        _H + 'solve { device = "cpu", }',
        _H + "solve { x = [1], }",
        _H + "solve { x = 1 -> 2, }",
        _H + "solve { x = true, }",
        _H + "solve { x = -1, }",
    ],
    ("a divergence part is written `g1(t) = EXPR`", "for example: divergence js { g1(t) = -softplus(t)  g2(t) = softplus(-t) }"): [
        _H + "divergence d { g1 = t }",
        _H + "divergence d { g1(t) t }",
        _H + "divergence d { 1 }",
    ],
    ("a setting is written `key = value`", "for example: solve { steps = 1000 }"): [
        _H + "solve { steps 1 }",
        _H + "solve { 1 }",
        _H + "solve { steps = }",
    ],
    ("expected a value: a number, true/false, a name, a string, a list or a call", None): [
        _H + "param p = ",
        _H + "param p = p +",
        _H + "network G = mlp(hidden=)",
    ],
    ("a vector literal has at least one entry", "for example: [x[0], 1]"): [
        _H + "let a = []",
    ],
    ("an index is a whole number from 0 in square brackets", "for example: x[0]"): [
        _H + "let a = x[-1]",
        _H + "let a = x[i]",
        _H + "let a = x[]",
    ],
    ("two values in a row", "separate arguments with ',' and declarations need no separator"): [
        _H + "param p = 1 2",
    ],
    ("a size is written in square brackets after the name", "for example: param w[3] = 0"): [
        _H + "param w(3) = 0",
    ],
}

_OPERATORS = {"PLUS", "MINUS", "STAR", "SLASH", "CIRCUMFLEX"}
_DECLARATIONS = {"PARAM", "NETWORK", "DATA", "LATENT", "DIVERGENCE", "LET", "PLAYER", "SOLVE"}
_WORDS = {
    "NAME": "a name",
    "NUMBER": "a number",
    "STRING": "a string",
    "MAXIMIZES": "'maximizes'",
    "MINIMIZES": "'minimizes'",
    "$END": "the end of the file",
}


def describe_expected(expected, parser) -> str:
    """Turn a set of terminal names into an English list."""
    names = set(expected)
    words = []
    if _DECLARATIONS <= names:
        words.append("a declaration")
        names -= _DECLARATIONS
    if len(names & _OPERATORS) >= 3:
        words.append("an operator")
        names -= _OPERATORS
    for name in sorted(names, key=lambda n: (n not in _WORDS, n)):
        words.append(_WORDS.get(name) or _literal(name, parser))
    words = list(dict.fromkeys(words))
    if len(words) > 7:
        words = words[:7] + ["…"]
    if len(words) <= 1:
        return words[0] if words else "something else"
    return ", ".join(words[:-1]) + " or " + words[-1]


def _literal(name: str, parser) -> str:
    try:
        pattern = parser.get_terminal(name).pattern
    except KeyError:
        return name.lower()
    return f"'{pattern.value}'" if pattern.type == "str" else name.lower()


def describe_found(token) -> str:
    if token is None or token.type == "$END":
        return "end of file"
    text = str(token)
    if len(text) > 30:
        text = text[:27] + "..."
    kind = {"NAME": "name", "NUMBER": "number", "STRING": "string"}.get(token.type)
    return f"{kind} '{text}'" if kind else f"'{text}'"


# Characters that word processors, web pages and keyboards substitute for the ASCII ones
# the language uses. NFKC normalisation (below) covers full-width forms such as '（'.
LOOKALIKES = {
    "\u2212": "-",  # minus sign
    "\u2010": "-",  # hyphen
    "\u2011": "-",  # non-breaking hyphen
    "\u2012": "-",  # figure dash
    "\u2013": "-",  # en dash
    "\u2014": "-",  # em dash
    "\u2015": "-",  # horizontal bar
    "\u00d7": "*",  # multiplication sign
    "\u22c5": "*",  # dot operator
    "\u00b7": "*",  # middle dot
    "\u2217": "*",  # asterisk operator
    "\u2219": "*",  # bullet operator
    "\u00f7": "/",  # division sign
    "\u2215": "/",  # division slash
    "\u2044": "/",  # fraction slash
    "\u201c": '"',  # left double quotation mark
    "\u201d": '"',  # right double quotation mark
    "\u201e": '"',  # double low-9 quotation mark
    "\u201f": '"',  # double high-reversed-9 quotation mark
    "\u00ab": '"',  # left-pointing guillemet
    "\u00bb": '"',  # right-pointing guillemet
    "\u2033": '"',  # double prime
    "\u2018": "'",  # left single quotation mark
    "\u2019": "'",  # right single quotation mark
    "\u201a": "'",  # single low-9 quotation mark
    "\u2032": "'",  # prime
    "\u2192": "->",  # rightwards arrow
}


def lookalike(char: str) -> str | None:
    """The ASCII text that `char` imitates, if it imitates one."""
    if char in LOOKALIKES:
        return LOOKALIKES[char]
    plain = unicodedata.normalize("NFKC", char)
    return plain if plain != char and plain.isascii() and plain.isprintable() else None


def hint_for_character(char: str) -> str | None:
    if char == "\0":
        return "a NUL byte: is this a binary file?"
    if char.isspace():
        return f"an invisible space character (U+{ord(char):04X}); use an ordinary space"
    if unicodedata.category(char) == "Cf":  # zero-width spaces, joiners, byte-order marks
        name = unicodedata.name(char, "FORMAT CHARACTER")
        return f"an invisible character (U+{ord(char):04X} {name}); delete it"
    ascii_text = lookalike(char)
    if ascii_text is not None and ascii_text.isdigit():
        return f"'{char}' is a superscript; write powers with '^', as in x^{ascii_text}"
    if ascii_text == "'":
        return f"'{char}' is a typographic quote; strings use straight double quotes: \"like this\""
    if ascii_text is not None and not char.isalnum():
        name = unicodedata.name(char, "").lower()
        called = f"U+{ord(char):04X} {name}" if name else f"U+{ord(char):04X}"
        return f"'{char}' ({called}) looks like '{ascii_text}'; type the ASCII '{ascii_text}'"
    if char.isalpha():
        return "names are written with the letters A-Z and a-z, digits and '_'"
    return {
        "'": 'strings use double quotes: "like this"',
        '"': 'a string ends with \'"\' on the same line',
        ";": "declarations need no ';'",
        ":": "write `name = value`; types are not annotated",
        "!": "there is no '!' operator",
        "@": "use dot(a, b) for inner products",
        "%": "there is no '%' operator",
        "|": "use abs(x) for absolute values",
        "&": "there are no logical operators in expressions",
        "<": "there are no comparisons in expressions",
        ">": "there are no comparisons in expressions; arrows are written '->'",
        "`": None,
        "\\": None,
    }.get(char, "only letters, digits, operators + - * / ^ and brackets are part of the language")
