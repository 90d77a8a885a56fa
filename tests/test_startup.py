"""Start-up: the commands that only read (`check`, `--version`, every `--help`) import no torch.

`gamedsl check` runs whenever a .game file is saved (editors, pre-commit hooks) and must
answer in a fraction of a second; torch alone takes seconds to import, scipy, matplotlib and
sympy most of one. So these commands, and the solvers' declarations they read (names,
parameters, ranges, capabilities), import none of them. Each probe runs in a fresh
interpreter, since the test process itself has torch loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys

from gamedsl.cli.app import COMMANDS
from tests.conftest import ROOT

HEAVY = ("torch", "scipy", "matplotlib", "sympy", "tensorboard", "sklearn")
CATALOG = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "games").glob("*.game"))

# Runs each argument list through the entry point in turn and reports, after each, the heavy
# modules loaded so far: the first list that shows one is the command that imported it.
PROBE = """
import contextlib, io, json, sys
from gamedsl.cli.app import main

commands, heavy = json.loads(sys.argv[1]), json.loads(sys.argv[2])
report = []
for args in commands:
    sys.argv = ["gamedsl", *args]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code
    report.append({"args": args, "code": code, "heavy": sorted(m for m in heavy if m in sys.modules)})
print(json.dumps(report))
"""


def probe(code: str, *args: str) -> str:
    result = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_check_version_and_every_help_import_no_torch():
    commands = [["check", "games/mog.game"], ["check", *CATALOG], ["--version"], ["--help"], ["solvers"]]
    commands += [[name, "--help"] for name in COMMANDS]
    report = json.loads(probe(PROBE, json.dumps(commands), json.dumps(HEAVY)))
    assert [r["args"] for r in report] == commands
    for r in report:
        assert r["code"] == 0, r
        assert not r["heavy"], f"`gamedsl {' '.join(r['args'])}` imported {', '.join(r['heavy'])}"


def test_the_solvers_declarations_need_no_torch_and_the_engine_loads_on_first_use():
    code = f"""
import sys
import solvers
from solvers import optimizers
for registry in (solvers.SOLVERS, optimizers.OPTIMIZERS):
    for name in registry.available():
        registry.describe(name)
        registry.cls(name).summary
        registry.get(name)
declared = [solvers.SOLVERS.cls(n).vectorizes for n in solvers.available()]
print(sorted(m for m in {HEAVY!r} if m in sys.modules))
print(solvers.Run.__module__, solvers.solve.__module__, solvers.NonFinite.__module__, "torch" in sys.modules)
"""
    lines = probe(code).splitlines()
    assert lines[0] == "[]", f"reading the declarations imported {lines[0]}"
    assert lines[1] == "solvers.run solvers.run solvers.run True"


def test_the_checker_the_settings_and_the_registries_import_no_torch():
    code = f"""
import importlib, pkgutil, sys
import gamedsl.semantics, gamedsl.library
modules = ["gamedsl.nets", "gamedsl.nets.builders", "gamedsl.data", "gamedsl.data.sources"]  # beside torch modules
for package in (gamedsl.semantics, gamedsl.library):
    modules += [f"{{package.__name__}}.{{m.name}}" for m in pkgutil.iter_modules(package.__path__)]
for name in modules:
    importlib.import_module(name)
print(len(modules), sorted(m for m in {HEAVY!r} if m in sys.modules))
"""
    count, heavy = probe(code).split(" ", 1)
    assert int(count) > 5 and heavy.strip() == "[]", heavy
