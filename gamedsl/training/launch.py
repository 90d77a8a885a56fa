"""`gamedsl solve FILE --nproc N`: N local worker processes of the same command.

A small launcher of our own rather than torchrun's elastic agent, for three reasons:
- it listens on the loopback interface only: it binds the rendezvous socket to
  127.0.0.1 itself and hands it to rank 0's TCPStore (`master_listen_fd`), and gloo
  is told to use `lo` (torchrun's store listens on every interface);
- one message, once: workers say what happened (rank 0 the run's messages, any worker its
  own usage error); the launcher speaks only when a worker dies without a word (a kill);
- signals: the workers run in a session of their own, so a Ctrl-C in the terminal
  reaches the launcher alone, which passes each signal on exactly once (a first signal
  stops the run after a step with a checkpoint, a second at once).

`torchrun --nproc-per-node N -m gamedsl solve FILE` still works: workers then find
torchrun's usual environment instead of ours (see parallel.from_environment).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

from gamedsl.errors import ExitCode

LOOPBACK = "127.0.0.1"
MARK = "GAMEDSL_LAUNCHED"  # set for our workers: they rendezvous through rank 0's store on 127.0.0.1
STORE_FD = "GAMEDSL_STORE_FD"  # rank 0's inherited, already listening rendezvous socket
GRACE = 30.0  # seconds the others get to finish once one worker has stopped with an error


def worker_arguments(argv: list[str]) -> list[str]:
    """The command line without --nproc (the workers are the processes)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


def launch(nproc: int, argv: list[str], say=lambda text: sys.stderr.write(text + "\n")) -> int:
    """Run `python -m gamedsl ARGV` as `nproc` ranks; return the exit code to use."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((LOOPBACK, 0))
    listener.listen(nproc * 4)
    port = listener.getsockname()[1]
    base = dict(
        os.environ,
        WORLD_SIZE=str(nproc), LOCAL_WORLD_SIZE=str(nproc), MASTER_ADDR=LOOPBACK, MASTER_PORT=str(port),
        GLOO_SOCKET_IFNAME="lo", NCCL_SOCKET_IFNAME="lo", **{MARK: "1"},
    )  # fmt: skip
    base.setdefault("OMP_NUM_THREADS", "1")
    procs: list[subprocess.Popen] = []
    command = [sys.executable, "-m", "gamedsl", *worker_arguments(argv)]
    for rank in range(nproc):
        env = dict(base, RANK=str(rank), LOCAL_RANK=str(rank), GROUP_RANK="0")
        fds = ()
        if rank == 0:
            env[STORE_FD] = str(listener.fileno())
            fds = (listener.fileno(),)
        procs.append(subprocess.Popen(command, env=env, pass_fds=fds, start_new_session=True))
    listener.close()  # rank 0 holds it now

    received: list[int] = []

    def forward(signum, frame) -> None:
        received.append(signum)
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _wait(procs, received, say, _run_directory(argv))
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run_directory(argv: list[str]) -> str | None:
    for i, arg in enumerate(argv):
        for option in ("--out", "--resume"):
            if arg == option and i + 1 < len(argv):
                return argv[i + 1]
            if arg.startswith(option + "="):
                return arg.split("=", 1)[1]
    return None


def _wait(procs: list[subprocess.Popen], received: list[int], say, directory: str | None) -> int:
    first_failure: tuple[int, int] | None = None  # (rank, code) of the first worker that failed
    deadline = None
    while any(p.poll() is None for p in procs):
        for rank, proc in enumerate(procs):
            code = proc.poll()
            if code not in (None, 0) and first_failure is None:
                first_failure = (rank, code)
                deadline = time.monotonic() + GRACE
        if deadline is not None and time.monotonic() > deadline:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
        time.sleep(0.05)
    codes = [p.returncode for p in procs]
    if first_failure is None:  # every worker ended between two polls
        first_failure = next(((rank, code) for rank, code in enumerate(codes) if code), None)
    if first_failure is None:
        return 0
    known = {int(c) for c in ExitCode if c > 0}
    rank, code = first_failure
    if code in known and code != ExitCode.PEER_FAILED:
        if codes[0] != code:  # rank 0 speaks for the run; a rank that alone stopped is named here
            say(f"gamedsl: error: worker rank {rank} stopped with exit code {code} ({ExitCode(code).name.lower()})")
        return code
    if received:
        return int(ExitCode.INTERRUPTED)
    if codes[0] != ExitCode.PEER_FAILED:  # rank 0 did not report it itself
        failed = next((r, c) for r, c in enumerate(codes) if c not in (0, ExitCode.PEER_FAILED))
        how = f"was killed by {signal.Signals(-failed[1]).name}" if failed[1] < 0 else f"failed with exit code {failed[1]}"
        say(f"gamedsl: error: worker rank {failed[0]} {how}; the last checkpoint of the run is intact")
        if directory:
            say(f"hint: resume with: gamedsl solve --resume {directory} --nproc {len(procs)}")
    return int(ExitCode.PEER_FAILED)
