"""Hostile input: the front end never evaluates text, never overflows, never hangs.

Every case is checked twice: through the API (`gamedsl.load` / `gamedsl.loads`) and
through the real command line, `python -m gamedsl check FILE`, which must exit with 3
(invalid game) or 7 (beyond a safety limit) with a compiler-style message and no
traceback, well within a timeout. Starting the command line costs seconds (it imports
torch), so all the hostile files go through one run, in plain and in `--json` form: the
plain run gives each file's message on stderr, the JSON run each file's exit code, which is
the code `gamedsl check FILE` exits with for that file alone.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import gamedsl
from gamedsl.errors import ExitCode, GameCheckError, GameError, GameSyntaxError, LimitError

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 60  # seconds for one command-line run over every file, start-up included

BILINEAR = """game bilinear
param phi = 1
param theta = 1
player Q controls theta minimizes phi * theta
"""
OBJECTIVE = BILINEAR + "player P controls phi maximizes "
DEEP = 10_000
ENDLESS = "/dev/zero"  # stat() says 0 bytes, reading never ends
PAYLOAD = "__import__('os').system('touch PWNED')"
PAYLOAD_DOUBLE = '__import__("os").system("touch PWNED")'

INJECTIONS = {
    "inject_expression": OBJECTIVE + PAYLOAD + "\n",
    "inject_expression_double_quotes": OBJECTIVE + PAYLOAD_DOUBLE + "\n",
    "inject_let": BILINEAR + f"let evil = {PAYLOAD_DOUBLE}\n",
    "inject_param_value": f"game g\nparam phi = {PAYLOAD_DOUBLE}\n",
    "inject_builder_argument": f"game g\nnetwork D = mlp(2 -> 1, hidden={PAYLOAD_DOUBLE})\n",
    "inject_builder": f"game g\nnetwork D = {PAYLOAD_DOUBLE}\n",
    "inject_source": 'game g\ndata x ~ __import__("os")\n',
    "inject_divergence_part": f"game g\ndivergence d {{\n  g1(t) = {PAYLOAD_DOUBLE}\n  g2(t) = -t\n}}\n",
    "inject_solve_value": OBJECTIVE + f"phi * theta\nsolve {{\n  solver = {PAYLOAD_DOUBLE}\n}}\n",
    "inject_solve_key": OBJECTIVE + f"phi * theta\nsolve {{\n  {PAYLOAD_DOUBLE} = 1\n}}\n",
    "inject_header": f"game {PAYLOAD}\n",
    # harmless where text is never interpreted (a comment, a description); refused in the objective
    "inject_comment_description_objective": f'# {PAYLOAD}\ngame g "{PAYLOAD}"\nparam phi = 1\nparam theta = 1\n'
    + f"player Q controls theta minimizes phi * theta\nplayer P controls phi maximizes {PAYLOAD}\n",
}

FILES: dict[str, str | bytes | None] = {
    **INJECTIONS,
    "python_attributes": OBJECTIVE + "().__class__.__bases__\n",
    "eval_solver": OBJECTIVE + 'phi * theta\nsolve {\n  solver = eval("1")\n}\n',
    "eval_expression": OBJECTIVE + 'eval("1")\n',
    "deep_calls": OBJECTIVE + "f(" * DEEP + "phi" + ")" * DEEP + "\n",
    "deep_parentheses": OBJECTIVE + "(" * DEEP + "psi" + ")" * DEEP + " * theta\n",
    "many_minus_signs": OBJECTIVE + "-" * DEEP + "phi * theta\n",
    "deep_expectations": OBJECTIVE + "E[" * DEEP + "phi" + "]" * DEEP + "\n",
    "reverse_let_chain": BILINEAR
    + "".join(f"let l{i} = l{i + 1} + 1\n" for i in range(2000))
    + "let l2000 = phi\nplayer P controls phi maximizes l0 * theta\n",
    "doubling_lets": BILINEAR
    + "let a0 = phi * theta\n"
    + "".join(f"let a{i + 1} = a{i} * a{i}\n" for i in range(60))
    + "player P controls phi maximizes a60\n",
    "doubling_parts": OBJECTIVE + "pearson.g1(" * 60 + "phi" + ")" * 60 + " * theta\n",
    "five_megabytes": BILINEAR + "let a = " + " + ".join(["phi"] * (5 * 2**20 // 6)) + "\n",
    "long_name": OBJECTIVE + "a" * 500_000 + " * theta\n",
    "not_utf8": BILINEAR.encode() + b"player P controls phi \xff\xfe maximizes phi * theta\n",
    "nul_byte": OBJECTIVE + "phi\x00 * theta\n",
    "empty": "",
    "directory": None,  # made a directory below
    "missing": None,  # never created
}


@dataclass
class Batch:
    """The hostile files, and what one command-line run said about each."""

    folder: Path
    stderr: str
    chunks: dict[str, str]  # file -> its part of stderr
    reports: dict[str, dict]  # file -> its --json report
    seconds: float

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.game"

    def assert_cli(self, name: str, code: ExitCode, *phrases: str) -> None:
        file = name if name.startswith("/") else f"{name}.game"
        report = self.reports[file]
        assert not report["ok"]
        assert report["error"]["exit_code"] == code, report
        chunk = self.chunks[file]
        assert re.match(rf"{re.escape(file)}(:\d+:\d+)?: error: ", chunk), chunk[:300]
        for phrase in phrases:
            assert phrase in chunk, chunk[:3000]
        assert len(chunk) < 10_000, "messages stay short, however large the input"


def _run(args: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess, float]:
    import time

    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "gamedsl", "check", *args], cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT
    )
    return result, time.perf_counter() - start


def _make_batch(folder: Path) -> Batch:
    for name, content in FILES.items():
        path = folder / f"{name}.game"
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content, encoding="utf-8")
    (folder / "directory.game").mkdir()
    files = [f"{name}.game" for name in FILES] + [ENDLESS] * Path(ENDLESS).exists()
    plain, seconds = _run(files, folder)
    assert "Traceback" not in plain.stderr, plain.stderr[-5000:]
    assert plain.returncode == ExitCode.LIMIT  # the worst of 3 and 7
    assert plain.stdout == ""
    known = "|".join(map(re.escape, files))
    starts = list(re.finditer(rf"^({known})(:\d+:\d+)?: error: ", plain.stderr, re.MULTILINE))
    chunks = {
        m.group(1): plain.stderr[m.start() : nxt.start() if nxt else None]
        for m, nxt in zip(starts, [*starts[1:], None], strict=True)
    }
    assert sorted(chunks) == sorted(files), "one message per file"
    reports, json_seconds = _run(["--json", *files], folder)
    assert "Traceback" not in reports.stderr
    data = json.loads(reports.stdout)
    by_file = {r["path"] if r["path"].startswith("/") else Path(r["path"]).name: r for r in data}
    return Batch(folder, plain.stderr, chunks, by_file, max(seconds, json_seconds))


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> Batch:
    """The hostile files and the command line's verdicts, made once per test session.

    Under pytest-xdist every worker would otherwise start the command line again; the first
    worker makes the batch in the session's shared temporary folder, the others read it.
    """
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return _make_batch(tmp_path_factory.mktemp("hostile"))
    try:
        from filelock import FileLock  # installed with torch
    except ImportError:
        return _make_batch(tmp_path_factory.mktemp("hostile"))
    shared = tmp_path_factory.getbasetemp().parent  # the same for all workers of this session
    folder, cache = shared / "hostile", shared / "hostile.json"
    with FileLock(str(shared / "hostile.lock")):
        if cache.is_file():
            return Batch(folder, **json.loads(cache.read_text(encoding="utf-8")))
        folder.mkdir()
        made = _make_batch(folder)
        fields = {"stderr": made.stderr, "chunks": made.chunks, "reports": made.reports, "seconds": made.seconds}
        cache.write_text(json.dumps(fields), encoding="utf-8")
        return made


def refused(path: Path | str, code: ExitCode, *phrases: str, kind: type = GameError) -> GameError:
    """`gamedsl.load(path)` fails cleanly with `phrases` in the rendered message."""
    with pytest.raises(GameError) as info:
        gamedsl.load(path)
    exc = info.value
    assert isinstance(exc, kind), f"{type(exc).__name__}: {exc.message}"
    assert exc.code == code, exc.render()
    rendered = exc.render()
    for phrase in phrases:
        assert phrase in rendered, rendered
    if not isinstance(exc, LimitError) and Path(path).is_file():
        assert exc.span is not None
    return exc


def test_the_command_line_is_quick(batch: Batch):
    assert batch.seconds < TIMEOUT


# ---- code injection: nothing is ever evaluated -------------------------------------------


@pytest.mark.parametrize("name", sorted(INJECTIONS))
def test_code_injection_is_never_run(batch: Batch, name: str):
    exc = refused(batch.path(name), ExitCode.INVALID_GAME)
    assert isinstance(exc, (GameSyntaxError, GameCheckError))
    batch.assert_cli(name, ExitCode.INVALID_GAME, exc.message)
    for folder in (batch.folder, ROOT, Path.cwd()):
        assert not (folder / "PWNED").exists()


def test_python_attribute_chains_are_not_the_language(batch: Batch):
    refused(
        batch.path("python_attributes"),
        ExitCode.INVALID_GAME,
        "5:34: error: expected an expression",
        kind=GameSyntaxError,
    )
    batch.assert_cli("python_attributes", ExitCode.INVALID_GAME, "5:34: error: expected an expression")


def test_eval_is_an_unknown_solver(batch: Batch):
    refused(batch.path("eval_solver"), ExitCode.INVALID_GAME, "7:12: error: unknown solver 'eval'")
    batch.assert_cli("eval_solver", ExitCode.INVALID_GAME, "7:12: error: unknown solver 'eval'")


def test_eval_of_a_string_is_no_expression(batch: Batch):
    message = "5:38: error: a string cannot be used in an expression"
    refused(batch.path("eval_expression"), ExitCode.INVALID_GAME, message, kind=GameSyntaxError)
    batch.assert_cli("eval_expression", ExitCode.INVALID_GAME, message)


# ---- nesting: refused by the limits, never a RecursionError --------------------------------


def test_deeply_nested_calls(batch: Batch):
    refused(batch.path("deep_calls"), ExitCode.LIMIT, "nesting is too deep", kind=LimitError)
    batch.assert_cli("deep_calls", ExitCode.LIMIT, "nesting is too deep")


def test_deeply_nested_parentheses(batch: Batch):
    # parentheses leave no trace in the tree, so 10,000 of them are harmless: the error is
    # the undefined name inside
    refused(batch.path("deep_parentheses"), ExitCode.INVALID_GAME, "undefined name 'psi'")
    batch.assert_cli("deep_parentheses", ExitCode.INVALID_GAME, "undefined name 'psi'")


def test_many_unary_minus_signs(batch: Batch):
    refused(batch.path("many_minus_signs"), ExitCode.LIMIT, "nesting is too deep", kind=LimitError)
    batch.assert_cli("many_minus_signs", ExitCode.LIMIT, "nesting is too deep")


def test_deeply_nested_expectations(batch: Batch):
    refused(batch.path("deep_expectations"), ExitCode.LIMIT, "nesting is too deep", kind=LimitError)
    batch.assert_cli("deep_expectations", ExitCode.LIMIT, "nesting is too deep")


def test_long_chain_of_lets_in_reverse_order(batch: Batch):
    # regression: lets were resolved recursively, so 2,000 lets each using the next one
    # ended in a RecursionError
    message = "is nested too deeply once its lets and divergences are expanded"
    refused(batch.path("reverse_let_chain"), ExitCode.LIMIT, message, kind=LimitError)
    batch.assert_cli("reverse_let_chain", ExitCode.LIMIT, message)


def test_lets_that_double_at_each_step(batch: Batch):
    # regression: `let b = a * a` chains are tiny as text but exponential once expanded;
    # walking them hung the checker
    message = "is too large once its lets and divergences are expanded"
    refused(batch.path("doubling_lets"), ExitCode.LIMIT, message, kind=LimitError)
    batch.assert_cli("doubling_lets", ExitCode.LIMIT, message)


def test_nested_divergence_parts_that_double(batch: Batch):
    # pearson.g1(t) = -t - t^2/4 uses t twice: 60 nested applications expand to 2^60 terms
    message = "the objective of player P is too large"
    refused(batch.path("doubling_parts"), ExitCode.LIMIT, message, kind=LimitError)
    batch.assert_cli("doubling_parts", ExitCode.LIMIT, message)


# ---- size, encoding and odd files -----------------------------------------------------------


def test_five_megabyte_line(batch: Batch):
    path = batch.path("five_megabytes")
    assert path.stat().st_size > 5 * 2**20
    refused(path, ExitCode.LIMIT, "file is too large (5.0 MiB; the limit is 1 MiB)", kind=LimitError)
    batch.assert_cli("five_megabytes", ExitCode.LIMIT, "file is too large")
    with pytest.raises(LimitError, match="text is too large"):
        gamedsl.loads(path.read_text(encoding="utf-8"))


def test_a_very_long_name(batch: Batch):
    refused(batch.path("long_name"), ExitCode.LIMIT, "a name is too long (500,000 characters", kind=LimitError)
    batch.assert_cli("long_name", ExitCode.LIMIT, "a name is too long")


def test_bytes_that_are_not_utf8(batch: Batch):
    message = "5:23: error: the file is not valid UTF-8 (byte 0xff)"
    refused(batch.path("not_utf8"), ExitCode.INVALID_GAME, message, "hint: save the file as UTF-8")
    batch.assert_cli("not_utf8", ExitCode.INVALID_GAME, message)


def test_nul_byte(batch: Batch):
    refused(batch.path("nul_byte"), ExitCode.INVALID_GAME, "5:36: error: unexpected character '\\x00'", "NUL byte")
    batch.assert_cli("nul_byte", ExitCode.INVALID_GAME, "unexpected character '\\x00'", "NUL byte")


def test_empty_file(batch: Batch):
    message = "1:1: error: a .game file starts with `game NAME`"
    refused(batch.path("empty"), ExitCode.INVALID_GAME, message)
    batch.assert_cli("empty", ExitCode.INVALID_GAME, message)
    with pytest.raises(GameSyntaxError, match="starts with `game NAME`"):
        gamedsl.loads("")


def test_a_directory(batch: Batch):
    refused(batch.path("directory"), ExitCode.INVALID_GAME, "is a directory")
    batch.assert_cli("directory", ExitCode.INVALID_GAME, "is a directory")


def test_a_missing_file(batch: Batch):
    refused(batch.path("missing"), ExitCode.INVALID_GAME, "no such file")
    batch.assert_cli("missing", ExitCode.INVALID_GAME, "no such file")


@pytest.mark.skipif(not Path(ENDLESS).exists(), reason="needs /dev/zero")
def test_an_endless_device(batch: Batch):
    # stat() says 0 bytes; reading must still stop at the limit
    refused(ENDLESS, ExitCode.LIMIT, "file is too large (more than 1.0 MiB", kind=LimitError)
    batch.assert_cli(ENDLESS, ExitCode.LIMIT, "file is too large")
