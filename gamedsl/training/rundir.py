"""Run directories: how their files are claimed, read back and written without loss.

A run directory is read back by `--resume`, `plot`, `sample` and `spectrum`, and it may
have been damaged, truncated or tampered with since it was written. Every read goes
through `read_file`: a regular file only (a named pipe would hang, `/dev/zero` would never
end), no link, at most a size cap. Every write goes through `write_atomic`: a temporary
file in the same directory, flushed and synced, then renamed over the old name. A full
disk, a read-only file system or a kill therefore leaves the previous file whole, never
a half-written one, and a link planted in the directory is replaced, never written
through. A failed write is one `OutputError` (exit 10) that names the file.

`claim` takes a new `--out` directory (refusing one that already holds files, unless
`--force`) and `Lock` keeps two processes from writing one directory at once.
"""

from __future__ import annotations

import errno
import fcntl
import io
import json
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import IO, Any, Callable

from gamedsl.errors import CheckpointError, OutputError, UsageError

CONFIG = "config.json"
METRICS = "metrics.json"
LOCK = ".gamedsl.lock"
MAX_JSON = 16 << 20  # config.json holds a game (at most 1 MiB) and settings; metrics.json a few KiB
TEMPORARY = ".tmp"
# What gamedsl writes into a run directory; `--force` removes exactly these before a new run.
OUTPUTS = (
    CONFIG, METRICS, "checkpoint.pt", "samples.npy", "samples.png", "params", "snapshots", "grids", "spectra",
    "spectrum.npz", "spectrum.png", "figure2.png", "grid.png",
)  # fmt: skip


def _mode() -> int:
    """0666 less the umask: what `open()` would have given a new file (mkstemp gives 0600)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def describe_os_error(exc: OSError) -> str:
    return exc.strerror or str(exc)


def existing(path: Path, option: str = "RUN_DIR") -> Path:
    """A run directory given on the command line: it must exist, be a directory and hold config.json.

    A path that does not exist or is not a directory is a usage error (exit 2) naming it;
    a directory without config.json is not a run directory (exit 5)."""
    path = Path(path)
    if str(path) == "":
        raise UsageError(f"{option} is empty", hint="give the directory of a run, e.g. runs/mog-consensus-...")
    try:
        info = path.stat()
    except FileNotFoundError:
        raise UsageError(f"{option} {path}: no such directory", hint="give the --out directory of a run") from None
    except OSError as exc:
        raise UsageError(f"{option} {path}: {describe_os_error(exc)}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise UsageError(f"{option} {path} is not a directory", hint="give the --out directory of a run, not a file in it")
    if not os.path.lexists(path / CONFIG):
        raise CheckpointError(f"{path} is not a run directory (no {CONFIG})", hint="give the --out directory of a run")
    return path


def open_regular(path: Path) -> IO[bytes]:
    """A regular file of a run directory opened for reading, or a CheckpointError (exit 5).

    Opened without following a final link and without blocking, and checked with fstat
    before anything is read, so that a FIFO, a device or a link never hangs or leads
    elsewhere."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise CheckpointError(f"{path} is missing") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise CheckpointError(f"{path} is a link; a run directory holds its own files, not links") from None
        raise CheckpointError(f"{path} cannot be read ({describe_os_error(exc)})") from None
    handle = os.fdopen(fd, "rb")
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        handle.close()
        raise CheckpointError(f"{path} is not a regular file")
    return handle


def read_file(path: Path, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes (see `open_regular`)."""
    with open_regular(path) as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > limit:
            raise CheckpointError(f"{path} is too large ({size:,} bytes; at most {limit:,} expected)")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise CheckpointError(f"{path} is too large (more than {limit:,} bytes)")
    return data


def refuse_links(directory: Path) -> None:
    """A run directory holds its own files: a link in place of one of gamedsl's outputs
    would have the next write land outside it (exit 5 names it)."""
    for name in OUTPUTS:
        path = Path(directory) / name
        if path.is_symlink():
            raise CheckpointError(
                f"{path} is a link; a run directory holds its own files, not links",
                hint="replace the link by the file it points to, or remove it",
            )


def read_json(path: Path, limit: int = MAX_JSON) -> Any:
    data = read_file(path, limit)
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"{path} is damaged: not valid JSON ({_first_line(exc)})") from None
    except RecursionError:
        raise CheckpointError(f"{path} is damaged: nested too deeply") from None


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def subdirectory(directory: Path, name: str) -> Path:
    """DIR/name as a real directory, created if needed; a link there is refused."""
    path = Path(directory) / name
    if path.is_symlink():
        raise CheckpointError(f"{path} is a link; a run directory holds its own files, not links")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {path} ({describe_os_error(exc)})") from None
    return path


def write_atomic(path: Path, write: Callable[[IO[bytes]], Any] | bytes | str) -> Path:
    """Write `path` whole or not at all: temporary file, flush, fsync, rename.

    `write` is the content (bytes or text) or a function that writes to a binary handle
    (np.save, torch.save, savefig). On any OSError the temporary file is removed, the old
    file stays as it was, and an OutputError says what failed."""
    path = Path(path)
    fd, tmp = None, None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", suffix=TEMPORARY, dir=path.parent)
        if callable(write):  # serialise in memory: a failing disk is then an OSError of write() below
            buffer = io.BytesIO()
            write(buffer)
            write = buffer.getvalue()
        with os.fdopen(fd, "wb") as handle:
            fd = None
            handle.write(write.encode() if isinstance(write, str) else write)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, _mode())
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise OutputError(
            f"cannot write {path} ({describe_os_error(exc)})",
            hint="free some space or choose a writable --out; files written before are intact",
        ) from None
    finally:
        if fd is not None:
            os.close(fd)
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    return path


def write_json(path: Path, data: Any) -> Path:
    return write_atomic(path, json.dumps(data, indent=2) + "\n")


def clean_temporaries(directory: Path) -> list[Path]:
    """Remove the temporary files a killed writer left (call while holding the lock)."""
    removed = []
    for folder in (Path(directory), *(Path(directory) / name for name in OUTPUTS)):
        if not folder.is_dir() or folder.is_symlink():
            continue
        for tmp in folder.glob(f".*{TEMPORARY}"):
            try:
                tmp.unlink()
                removed.append(tmp)
            except OSError:
                pass
    return removed


class Lock:
    """An exclusive lock on a run directory (flock on DIR/.gamedsl.lock), held for the run.

    The kernel drops it when the process ends, however it ends, so a crash never leaves a
    stale lock behind."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.handle = None

    def acquire(self) -> "Lock":
        path = self.directory / LOCK
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, _mode())
        except OSError as exc:
            raise OutputError(f"cannot lock {self.directory} ({describe_os_error(exc)})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise UsageError(
                f"another gamedsl process is writing to {self.directory}",
                hint="wait for it to finish, or choose another --out",
            ) from None
        self.handle = fd
        return self

    def release(self) -> None:
        if self.handle is not None:
            os.close(self.handle)
            self.handle = None


def claim(path: Path, force: bool = False, what: str = "run") -> Lock:
    """Take `path` as the directory of a new run (or sweep): created if needed, locked, and empty.

    A directory that already holds files is refused, since writing a new run into it would
    mix the two runs' files (resume it with --resume); `force` removes gamedsl's outputs
    there first, and nothing else."""
    path = Path(path)
    if str(path) == "":
        raise UsageError("--out is empty", hint="give a directory for the run's files, e.g. --out runs/try1")
    if path.is_symlink() and not path.is_dir():
        raise UsageError(f"--out {path} is a link to nothing")
    if path.exists() and not path.is_dir():
        raise UsageError(f"--out {path} exists and is not a directory", hint="give a directory for the run's files")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--out {path}: cannot create the directory ({describe_os_error(exc)})") from None
    lock = Lock(path).acquire()
    try:
        refuse_links(path)
        present = sorted(p.name for p in path.iterdir() if p.name != LOCK)
        if present and not force:
            held = "a run" if CONFIG in present and what == "run" else "files"
            raise UsageError(
                f"--out {path} already holds {held} ({', '.join(present[:5])}{', ...' if len(present) > 5 else ''})",
                hint=f"continue it with `gamedsl solve --resume {path}`, choose another --out, or pass --force "
                "to replace gamedsl's files there" if held == "a run" else
                "choose an empty or new directory" + (", or pass --force" if what == "run" else ""),
            )
        if force:
            for name in present:
                if name in OUTPUTS or name.startswith("events.out.tfevents") or name.endswith(TEMPORARY):
                    target = path / name
                    if target.is_dir() and not target.is_symlink():
                        shutil.rmtree(target)
                    else:
                        target.unlink()
    except OSError as exc:
        lock.release()
        raise OutputError(f"cannot prepare {path} ({describe_os_error(exc)})") from None
    except BaseException:
        lock.release()
        raise
    return lock


def log_directory(path: Path) -> Path:
    """A --logdir: a directory that exists or can be made (TensorBoard writes in a thread,
    where a failure would be silent)."""
    path = Path(path)
    if str(path) == "":
        raise UsageError("--logdir is empty", hint="omit it to log into the run directory")
    if path.exists() and not path.is_dir():
        raise UsageError(f"--logdir {path} exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"--logdir {path}: cannot create the directory ({describe_os_error(exc)})") from None
    return path


def output_file(path: Path, suffixes: tuple[str, ...], option: str = "--output") -> Path:
    """A file a command will write (`plot -o`, `sample -o`, `spectrum --out`): a supported
    suffix, a parent that exists or can be made, and not a directory."""
    path = Path(path)
    if str(path) == "" or path.name in ("", ".", ".."):
        raise UsageError(f"{option} needs a file name", hint=f"for example {option} out{suffixes[0]}")
    if path.suffix.lower() not in suffixes:
        raise UsageError(f"{option} {path}: the file must end in {' or '.join(suffixes)}")
    if path.is_dir():
        raise UsageError(f"{option} {path} is a directory", hint=f"give a file name, e.g. {path / ('out' + suffixes[0])}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{option} {path}: cannot create {path.parent} ({describe_os_error(exc)})") from None
    return path
