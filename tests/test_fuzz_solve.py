"""The solve fuzzer: generated valid games through `gamedsl check` and a 2-step `gamedsl solve`.

tests/helpers/game_generator.py writes games that the language accepts, with random
builders, sources, sizes, names, settings, solvers and optimizers, and hostile choices now
and then; tests/helpers/fuzz_harness.py runs each in a worker process under a 4 GiB
address-space cap and a time limit. A clean refusal (a documented exit code) is fine; a
traceback, a failed allocation, a hang or a dead worker is a bug. Here a fixed corpus runs
for about half a minute; `-m slow` runs five minutes of another, and
`python benchmarks/fuzz_solve.py --minutes 30` as long as you like.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from functools import lru_cache

import pytest

import gamedsl
import solvers
from gamedsl.data.sources import SOURCES
from gamedsl.errors import GameError
from gamedsl.library.functions import FUNCTIONS
from gamedsl.nets.builders import BUILDERS
from gamedsl.semantics.settings import KEYS
from tests.helpers import fuzz_harness
from tests.helpers.fuzz_harness import Outcome, classify, run_corpus
from tests.helpers.game_generator import HOSTILE_NAMES, QUICK, Profile, generate

CI_SEED = 12
CI_GAMES = 100
CI_BUDGET_S = 30  # stop starting games after this long; the games run are a prefix of the corpus


def _bad_report(report) -> str:
    lines = [report.table(), ""]
    for group, members in report.groups().items():
        r = min(members, key=lambda r: len(r.case.text))
        lines += [f"---- {group}: {r.case.name} {' '.join(r.case.args)}", r.case.text]
        lines.append(r.outcome.traceback or r.outcome.output)
    return "\n".join(lines)


def test_a_fixed_corpus_checks_and_solves_without_traceback_hang_or_memory_failure(tmp_path):
    report = run_corpus(CI_SEED, CI_GAMES, CI_BUDGET_S, tmp_path, QUICK, timeout=60)
    print(report.table())
    assert not report.bad, _bad_report(report)
    reached = sum(r.outcome.stage == "solve" for r in report.results)
    assert reached >= len(report.results) // 2, report.table()  # the point: most games get past check


@pytest.mark.slow
def test_five_minutes_of_generated_games(tmp_path):
    report = run_corpus(seed=5, count=None, budget=300, home=tmp_path, profile=Profile(), timeout=120)
    print(report.table())
    assert not report.bad, _bad_report(report)


# ---- the generator ---------------------------------------------------------------------------


@lru_cache(maxsize=None)
def _corpus(n: int, seed: int = 3) -> tuple:
    return tuple(generate(seed, i) for i in range(n))


def test_cases_depend_only_on_seed_and_index():
    assert generate(4, 7) == generate(4, 7)
    assert generate(4, 7).text != generate(4, 8).text


def _benign(case) -> bool:
    return not any(":" not in f and f != "network-of-constant" for f in case.features)


def test_generated_games_are_valid_by_construction_and_the_hostile_ones_are_clean_errors():
    """Games without hostile choices pass check; the hostile ones (an out-of-range setting,
    a size beyond a limit) pass or are refused with a GameError, never anything else."""
    outcomes = Counter()
    for case in _corpus(300)[:150]:
        try:
            gamedsl.loads(case.text)
            outcomes[_benign(case), "ok"] += 1
        except GameError as exc:
            outcomes[_benign(case), f"exit {int(exc.code)}"] += 1
    benign = sum(n for (b, _), n in outcomes.items() if b)
    assert outcomes[True, "ok"] >= 0.9 * benign, outcomes
    assert outcomes[True, "ok"] + outcomes[False, "ok"] >= 0.5 * sum(outcomes.values()), outcomes


def test_the_corpus_reaches_every_registered_builder_source_solver_optimizer_setting_and_function():
    """The vocabularies come from the registries, so a new builder, solver or setting is
    fuzzed without touching the generator; this notices when one is never drawn."""
    texts = [c.text + " " + " ".join(c.args) for c in _corpus(300)]
    words = Counter(w for t in texts for w in set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", t)))
    vocabulary = {
        "builders": set(BUILDERS),
        "sources": {s for s in SOURCES},
        "solvers": set(solvers.available()),
        "optimizers": set(solvers.optimizers.available()),
        "settings": set(KEYS),
        "functions": set(FUNCTIONS),
    }
    missing = {what: sorted(names - set(words)) for what, names in vocabulary.items() if names - set(words)}
    assert not missing
    assert any(name in words for name in ("train", "eval", "type", "to", "float", "keys", "update", "forward"))
    assert "train" in HOSTILE_NAMES and "state_dict" in HOSTILE_NAMES


def test_hostile_choices_appear_and_a_benign_share_has_none():
    features = [set(c.features) for c in _corpus(300)]
    seen = set().union(*features)
    hostile = ("attribute-name", "huge-size", "huge-network", "constant-folding", "hyperparameter-range", "hostile-set")
    for feature in hostile:
        assert feature in seen, feature
    benign = sum(_benign(c) for c in _corpus(300))
    assert 0.2 * len(features) <= benign <= 0.7 * len(features)


def test_image_sources_are_drawn_only_when_the_profile_allows_them():
    texts = "\n".join(c.text for c in (generate(3, i, QUICK) for i in range(200)))
    assert "cifar10(" in texts and "image_folder(" in texts
    assert "digits(" not in texts


# ---- the harness's classification ------------------------------------------------------------


def test_exit_codes_tracebacks_and_silence_are_classified():
    assert classify({"code": 0}, "solve", 1.0, "").label == "ok"
    refused = classify({"code": 3}, "check", 0.1, "")
    assert (refused.kind, refused.bad, refused.label) == ("exit", False, "exit 3 (invalid_game) at check")
    assert classify({"code": 57}, "solve", 0.1, "").bad
    crash = {"code": None, "error": "KeyError", "message": "\"attribute 'train' already exists\""}
    crash |= {"frame": "gamedsl/x.py:1 in f", "traceback": "", "memory": False}
    assert classify(crash, "solve", 0.1, "").kind == "traceback"
    assert classify(crash | {"memory": True}, "solve", 0.1, "").kind == "memory"
    assert classify(None, "solve", 60, "").kind == "hang"
    assert classify(None, "solve", 1, "", died=-9).kind == "killed"


def test_groups_ignore_names_and_numbers_but_not_the_place():
    def crash(message, frame):
        return Outcome("traceback", "solve", error="KeyError", message=message, frame=frame)

    a = crash("attribute 'train' already exists", "gamedsl/compile/torch_game.py:80 in __init__")
    b = crash("attribute 'eval' already exists", "gamedsl/compile/torch_game.py:80 in __init__")
    c = crash("attribute 'eval' already exists", "gamedsl/compile/torch_game.py:82 in __init__")
    assert a.group == b.group != c.group


def test_the_worker_reports_what_escapes_main(tmp_path):
    """`_run` is what the worker does with each job: here with stand-ins for main."""

    def raises(exc):
        def main():
            os.write(2, b"some output\n")  # to the file descriptor, as the worker's stderr is
            raise exc

        return main

    log = str(tmp_path / "log")
    assert fuzz_harness._run(raises(SystemExit(4)), [], log) == {"code": 4}
    answer = fuzz_harness._run(raises(KeyError("attribute 'train' already exists")), [], log)
    assert answer["error"] == "KeyError" and not answer["memory"] and "test_fuzz_solve.py" in answer["frame"]
    assert fuzz_harness._run(raises(MemoryError()), [], log)["memory"]
    alloc = RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8 bytes")
    assert fuzz_harness._run(raises(alloc), [], log)["memory"]
    assert "some output" in (tmp_path / "log").read_text()


@pytest.mark.slow
def test_a_worker_that_hangs_or_dies_is_replaced(tmp_path):
    worker = fuzz_harness.Worker(tmp_path)
    game = tmp_path / "bilinear.game"
    game.write_text((fuzz_harness.code_root() / "games" / "bilinear.game").read_text())
    try:
        assert worker.call(["check", str(game)], "check", tmp_path / "a.log", timeout=60).kind == "ok"
        slow = ["solve", str(game), "--steps", "100000000", "--out", str(tmp_path / "run"), "-q"]
        assert worker.call(slow, "solve", tmp_path / "b.log", timeout=2).kind == "hang"
        assert worker.proc is None
        assert worker.call(["check", str(game)], "check", tmp_path / "c.log", timeout=60).kind == "ok"
        worker.proc.kill()
        assert worker.call(["check", str(game)], "check", tmp_path / "d.log", timeout=60).kind == "killed"
        assert worker.starts == 2
    finally:
        worker.stop()
