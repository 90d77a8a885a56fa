"""AST back to source text, with only the parentheses that precedence needs.

Used by summaries (`gamedsl check`), reports and JSON output. Parsing the result gives an
equal AST (a property test checks this).
"""

from __future__ import annotations

from gamedsl.syntax import ast

_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "unary": 3, "^": 4, "atom": 5}


def number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(float(value))


def expr(node: ast.Expr) -> str:
    return _expr(node)[0]


def _expr(node: ast.Expr) -> tuple[str, int]:
    match node:
        case ast.Number(value=v):
            return number(v), _PRECEDENCE["atom"]
        case ast.Name(id=name):
            return name, _PRECEDENCE["atom"]
        case ast.Unary(op=op, operand=x):
            text, prec = _expr(x)
            return op + _wrap(text, prec, _PRECEDENCE["unary"]), _PRECEDENCE["unary"]
        case ast.Binary(op=op, left=a, right=b):
            mine = _PRECEDENCE[op]
            left, lp = _expr(a)
            right, rp = _expr(b)
            if op == "^":  # right-associative: a^b^c = a^(b^c); the base must bind tighter
                left = _wrap(left, lp, mine + 1)
                right = _wrap(right, rp, _PRECEDENCE["unary"])
            else:
                left = _wrap(left, lp, mine)
                right = _wrap(right, rp, mine + 1)
            spaced = f" {op} " if op in "+-" else op if op == "^" else f" {op} "
            return left + spaced + right, mine
        case ast.Call():
            args = [expr(a) for a in node.args] + [f"{k.name}={expr(k.value)}" for k in node.kwargs]
            return f"{node.callee}({', '.join(args)})", _PRECEDENCE["atom"]
        case ast.Index(value=v, index=i):
            text, prec = _expr(v)
            return f"{_wrap(text, prec, _PRECEDENCE['atom'])}[{i}]", _PRECEDENCE["atom"]
        case ast.Expect(body=b):
            return f"E[{expr(b)}]", _PRECEDENCE["atom"]
        case ast.Vector(items=items):
            return "[" + ", ".join(expr(i) for i in items) + "]", _PRECEDENCE["atom"]
    raise AssertionError(node)


def _wrap(text: str, inner: int, needed: int) -> str:
    return f"({text})" if inner < needed else text


def value(node: ast.Value) -> str:
    match node:
        case ast.NumberValue(text=text):
            return text
        case ast.BoolValue(value=b):
            return "true" if b else "false"
        case ast.StringValue(value=s):
            return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
        case ast.IdentValue(name=n):
            return n
        case ast.ListValue(items=items):
            return "[" + ", ".join(value(i) for i in items) + "]"
        case ast.ArrowValue(source=s, target=t):
            return f"{value(s)} -> {value(t)}"
        case ast.CallValue(name=n, args=args):
            parts = [value(a.value) if a.name is None else f"{a.name}={value(a.value)}" for a in args]
            return f"{n}({', '.join(parts)})"
    raise AssertionError(node)
