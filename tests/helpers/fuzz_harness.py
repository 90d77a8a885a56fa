"""Run generated games through `gamedsl check` and a 2-step `gamedsl solve`; classify the outcome.

Each game runs in a long-lived worker process, so that torch is imported once and not for
every game. The worker caps its address space (`RLIMIT_AS`, 4 GiB by default) and calls
`gamedsl.cli.app.main` in-process with `sys.argv` set, exactly as the console script
does; it reports the exit code, or the exception that escaped `main` with its traceback.
The parent gives every command a time limit: a worker that does not answer in time is
killed (the game "hangs") and a fresh one started, as after a worker that died. `solve`
gets `--set memory_limit=` half the cap, so that what gamedsl's own estimate lets run fits.

Outcomes, per game (`Outcome.label`):

- `ok`: check and solve exit 0;
- `exit N (name) at check|solve`: a documented exit code (gamedsl.errors.ExitCode), a
  clean refusal, which is fine;
- `traceback`: an exception other than SystemExit escaped `main`; grouped by type, message
  and the last frame in gamedsl/ or solvers/;
- `memory`: an allocation failed under the address-space cap (MemoryError, torch's
  "can't allocate memory");
- `hang`: no answer within the time limit;
- `killed`: the worker died (a signal, the OOM killer);
- `undocumented exit N`: an exit code that ExitCode does not list.

The last five are bugs (`Outcome.bad`). The worker is this file run as a script
(`python fuzz_harness.py --worker`): it imports nothing from tests/, so it runs the
gamedsl found first on its PYTHONPATH, which the parent sets to the gamedsl it imported
itself (the checkout under test, e.g. `PYTHONPATH=/old/checkout`).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

MEMORY_LIMIT = 4 << 30
MEMORY_SETTING = "memory_limit"  # gamedsl's estimate-based limit, in GiB (gamedsl/semantics/settings.py), where it exists
SOLVE_STEPS = 2
MEMORY_MESSAGES = ("can't allocate memory", "bad_alloc", "Cannot allocate memory", "out of memory")
BAD_KINDS = ("traceback", "memory", "hang", "killed", "undocumented")


# ---- the worker (runs in its own process) -------------------------------------------------------


def _worker(limit: int) -> None:
    """Read one JSON job per line on stdin, answer one JSON line per job on the original stdout."""
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    from gamedsl.cli.app import main  # warm: torch, typer, lark

    channel.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        job = json.loads(line)
        channel.write(json.dumps(_run(main, job["argv"], job["log"])) + "\n")


def _exit_with_parent(parent: int) -> None:
    """A worker does not outlive its harness (a killed benchmark, an interrupted test run),
    even in the middle of a game that never ends."""
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(1)


def _run(main, argv: list[str], log: str) -> dict:
    """`gamedsl ARGV` in this process, its stdout and stderr into the file `log`."""
    import signal
    import traceback

    saved = {fd: os.dup(fd) for fd in (1, 2)}
    argv_before = sys.argv
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    out = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    result: dict = {"code": None}
    try:
        for fd in (1, 2):
            os.dup2(out, fd)
        sys.argv = ["gamedsl", *argv]
        try:
            main()
            result["code"] = 0
        except SystemExit as exc:
            result["code"] = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException as exc:  # noqa: BLE001 - any escape from main is the finding
            frames = traceback.extract_tb(exc.__traceback__)
            ours = [f for f in frames if re.search(r"[/\\](gamedsl|solvers)[/\\]", f.filename)]
            last = ours[-1] if ours else (frames[-1] if frames else None)
            message = str(exc).strip().splitlines()
            result.update(
                error=type(exc).__name__,
                message=message[0][:300] if message else "",
                frame=f"{_short(last.filename)}:{last.lineno} in {last.name}" if last else "",
                traceback="".join(traceback.format_exception(exc))[-20000:],
                memory=isinstance(exc, MemoryError) or any(m in str(exc) for m in MEMORY_MESSAGES),
            )
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)
        os.close(out)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        sys.argv = argv_before
    return result


def _short(filename: str) -> str:
    match = re.search(r"[/\\]((gamedsl|solvers)[/\\].*)$", filename)
    return match.group(1) if match else filename


# ---- outcomes -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What one command did: a kind (ok, exit, traceback, memory, hang, killed, undocumented),
    the stage (check or solve), the exit code, and for exceptions their type, first line,
    last frame in gamedsl/ or solvers/ and full traceback."""

    kind: str
    stage: str
    code: int | None = None
    error: str = ""
    message: str = ""
    frame: str = ""
    traceback: str = ""
    output: str = ""
    seconds: float = 0.0

    @property
    def bad(self) -> bool:
        return self.kind in BAD_KINDS

    @property
    def label(self) -> str:
        if self.kind == "ok":
            return "ok"
        if self.kind == "exit":
            return f"exit {self.code} ({_code_name(self.code)}) at {self.stage}"
        if self.kind == "undocumented":
            return f"undocumented exit {self.code} at {self.stage}"
        return f"{self.kind} at {self.stage}"

    @property
    def group(self) -> str:
        """What tells one bug from another: the exception, its message with the numbers and
        quoted names taken out, and where in gamedsl it was raised."""
        if self.kind in ("traceback", "memory"):
            message = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", self.message)
            message = re.sub(r"\d+(\.\d+)?(e[+-]?\d+)?", "N", message)[:120]
            return f"{self.kind}: {self.error}: {message} [{self.frame}]"
        return self.label


def _code_name(code: int | None) -> str:
    from gamedsl.errors import ExitCode

    try:
        return ExitCode(code).name.lower()
    except ValueError:
        return "undocumented"


def _documented(code: int) -> bool:
    return _code_name(code) != "undocumented"


def classify(answer: dict | None, stage: str, seconds: float, output: str, died: int | None = None) -> Outcome:
    """The outcome of one worker answer; `answer` None: no answer in time (`died` None) or
    the worker died with this return code."""
    if answer is None:
        kind = "hang" if died is None else "killed"
        message = "" if died is None else f"worker exited with {died}" + (f" (signal {-died})" if died < 0 else "")
        return Outcome(kind, stage, message=message, output=output, seconds=seconds)
    if "error" in answer:
        kind = "memory" if answer.get("memory") else "traceback"
        fields = {k: answer[k] for k in ("error", "message", "frame", "traceback")}
        return Outcome(kind, stage, code=None, output=output, seconds=seconds, **fields)
    code = answer["code"]
    kind = "ok" if code == 0 else "exit" if _documented(code) else "undocumented"
    return Outcome(kind, stage, code=code, output=output, seconds=seconds)


# ---- the parent side ----------------------------------------------------------------------------


def code_root() -> Path:
    """The checkout whose gamedsl this process imported: the workers run the same one."""
    import gamedsl

    return Path(gamedsl.__file__).resolve().parent.parent


class Worker:
    """One worker process; `call` runs a gamedsl command in it with a time limit."""

    def __init__(self, home: Path, memory_limit: int = MEMORY_LIMIT, start_timeout: float = 180):
        self.home = home
        self.memory_limit = memory_limit
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        root = code_root()
        env = dict(
            os.environ,
            PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
            OMP_NUM_THREADS="1",
            MKL_NUM_THREADS="1",
            COLUMNS="120",
            MPLBACKEND="Agg",
            GAMEDSL_CACHE=str(self.home / "cache"),
        )
        env.pop("GAMEDSL_DATA", None)
        work = self.home / "cwd"
        work.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker", str(self.memory_limit)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=work,
            env=env,
            text=True,
        )
        self.starts += 1
        answer = self._read(self.start_timeout)
        if not answer or not answer.get("ready"):
            code = self.stop()
            raise RuntimeError(
                f"the fuzz worker did not start (exit {code}); run it by hand: {sys.executable} {__file__} --worker"
            )

    def _read(self, timeout: float) -> dict | None:
        assert self.proc is not None and self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return None
        line = self.proc.stdout.readline()
        return json.loads(line) if line else None

    def stop(self) -> int | None:
        """Kill the worker (it holds no data worth keeping) and reap it."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.kill()
        code = self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream:
                stream.close()
        self.proc = None
        return code

    def call(self, argv: list[str], stage: str, log: Path, timeout: float) -> Outcome:
        if self.proc is None:
            self.start()
        assert self.proc is not None and self.proc.stdin is not None
        began = time.perf_counter()
        try:
            self.proc.stdin.write(json.dumps({"argv": argv, "log": str(log)}) + "\n")
            self.proc.stdin.flush()
            answer = self._read(timeout)
        except (BrokenPipeError, OSError, ValueError):
            answer = None
        seconds = time.perf_counter() - began
        died = None
        if answer is None:
            alive = self.proc.poll() is None
            code = self.stop()
            died = None if alive else code
        output = _tail(log)
        outcome = classify(answer, stage, seconds, output, died)
        if outcome.kind in ("memory", "hang", "killed") and self.proc is not None:
            self.stop()  # a fresh worker after a failed allocation: nothing half-allocated leaks into the next game
        return outcome


def _tail(path: Path, limit: int = 4000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - limit))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def prepare_data(root: Path) -> Path:
    """The files the sources read, tiny: CIFAR-10 pickles in the real layout, a folder of PNG
    images and arrays of points (tests/helpers/game_generator.py names them)."""
    import numpy as np
    from PIL import Image

    from gamedsl.data.images import write_cifar10
    from tests.helpers.game_generator import IMAGE_FOLDER, IMAGE_FOLDER_SIDE, POINT_DIM, POINT_FILES

    if not (root / "cifar-10-batches-py").is_dir():
        write_cifar10(root / "cifar-10-batches-py", per_batch=8)
    folder = root / IMAGE_FOLDER
    if not folder.is_dir():
        (folder / "sub").mkdir(parents=True)
        rng = np.random.default_rng(0)
        for i in range(6):
            h, w = IMAGE_FOLDER_SIDE + int(rng.integers(0, 8)), IMAGE_FOLDER_SIDE + int(rng.integers(0, 8))
            where = folder / "sub" if i % 2 else folder
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(where / f"img{i}.png")
    points = np.random.default_rng(1).normal(size=(64, POINT_DIM))
    writers = {".npy": np.save, ".npz": np.savez, ".csv": lambda path, array: np.savetxt(path, array, delimiter=",")}
    for name in POINT_FILES:
        path = root / name
        if not path.exists():
            writers[path.suffix](path, points)
    return root


@dataclass
class Result:
    """One case and what happened to it."""

    case: object  # game_generator.Case
    outcome: Outcome

    def as_dict(self) -> dict:
        o = self.outcome
        return {"case": asdict(self.case), "outcome": asdict(o), "label": o.label, "group": o.group}


class Harness:
    """Runs cases one after another in one worker: `check FILE`, then (if check is happy)
    `solve FILE --steps 2 --out DIR -q --data-dir DATA` plus the case's own flags."""

    def __init__(self, home: Path, data: Path, timeout: float = 60, memory_limit: int = MEMORY_LIMIT):
        home.mkdir(parents=True, exist_ok=True)
        self.home = home
        self.data = data
        self.timeout = timeout
        self.worker = Worker(home, memory_limit)

    def run(self, case) -> Result:
        scratch = Path(tempfile.mkdtemp(prefix=f"{case.name}-", dir=self.home))
        try:
            game = scratch / "case.game"
            game.write_text(case.text, encoding="utf-8")
            outcome = self.worker.call(["check", str(game)], "check", scratch / "check.log", self.timeout)
            if outcome.kind == "ok":
                argv = ["solve", str(game), "--steps", str(SOLVE_STEPS), "--out", str(scratch / "run"), "-q"]
                argv += ["--data-dir", str(self.data), *self.limit_flags(), *case.args]
                outcome = self.worker.call(argv, "solve", scratch / "solve.log", self.timeout)
            return Result(case, outcome)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def limit_flags(self) -> list[str]:
        """`--set memory_limit=N` (GiB), half the worker's cap, when gamedsl has that setting:
        a game that gamedsl lets run must then fit, so a failed allocation means that its
        memory estimate is wrong. A case's own `--set memory_limit` comes later and wins."""
        from gamedsl.semantics.settings import KEYS

        if MEMORY_SETTING not in KEYS:
            return []
        return ["--set", f"{MEMORY_SETTING}={max(1, self.worker.memory_limit // 2 // 2**30)}"]

    def close(self) -> None:
        self.worker.stop()


@dataclass
class Report:
    """Counts by outcome, and the bad results grouped."""

    results: list[Result] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def bad(self) -> list[Result]:
        return [r for r in self.results if r.outcome.bad]

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.results:
            counts[r.outcome.label] = counts.get(r.outcome.label, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def groups(self) -> dict[str, list[Result]]:
        groups: dict[str, list[Result]] = {}
        for r in self.bad:
            groups.setdefault(r.outcome.group, []).append(r)
        return dict(sorted(groups.items(), key=lambda kv: -len(kv[1])))

    def table(self) -> str:
        """Counts by outcome, then each bad group with its count and the shortest case."""
        counts = self.counts()
        width = max([len(k) for k in counts] + [7])
        lines = [f"{len(self.results)} games in {self.seconds:.0f} s", f"{'outcome':<{width}}  count"]
        lines += [f"{label:<{width}}  {n:>5}" for label, n in counts.items()]
        for group, members in self.groups().items():
            shortest = min(members, key=lambda r: len(r.case.text))
            lines.append(f"\n{len(members)} x {group}\n  e.g. {shortest.case.name} {' '.join(shortest.case.args)}")
        return "\n".join(lines)


def run_corpus(
    seed: int,
    count: int | None,
    budget: float,
    home: Path,
    profile=None,
    timeout: float = 60,
    jobs: int = 1,
    progress=None,
) -> Report:
    """Cases 0, 1, 2, ... of corpus `seed` (at most `count`), started until `budget` seconds
    have passed; `jobs` workers side by side. Which cases run depends only on the seed and
    on how many fit in the budget: the corpus is always the same sequence."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.helpers.game_generator import Profile, generate

    profile = profile or Profile()
    home.mkdir(parents=True, exist_ok=True)
    data = prepare_data(home / "data")
    began = time.perf_counter()
    report = Report()
    counter = itertools.count()  # shared by the lanes; next() on it is atomic

    def lane(n: int) -> list[Result]:
        harness = Harness(home / f"lane{n}", data, timeout)
        done = []
        try:
            while time.perf_counter() - began < budget:
                index = next(counter)
                if count is not None and index >= count:
                    break
                result = harness.run(generate(seed, index, profile))
                done.append(result)
                if progress:
                    progress(result)
        finally:
            harness.close()
        return done

    with ThreadPoolExecutor(jobs) as pool:
        for done in pool.map(lane, range(jobs)):
            report.results += done
    report.results.sort(key=lambda r: r.case.index)
    report.seconds = time.perf_counter() - began
    return report


if __name__ == "__main__" and sys.argv[1:2] == ["--worker"]:
    _worker(int(sys.argv[2]) if len(sys.argv) > 2 else MEMORY_LIMIT)
