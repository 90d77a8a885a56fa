"""Points read from a local file: `data x ~ points(path="ring.npy", dim=2)`.

The file holds N points of dimension `dim`: an array (N, dim) in a .npy file or in one
entry of a .npz archive, or a .csv text file with one point per line. It is read once,
when the game is compiled, into a float64 tensor kept in memory; a batch is a uniform
draw with replacement from its rows, indexed with the sampler's own `torch.Generator`
(one per shard), so a seed fixes the stream and a checkpoint restores it.

The format of a .csv file: UTF-8 text, one point per line, its `dim` numbers separated by
commas (spaces around them allowed); an optional first line of column names (it is a
header when none of its fields is a number); blank lines and everything after a `#`
are ignored.

Safety: nothing is unpickled (an array of Python objects is refused, never loaded), the
file is opened without blocking and must be a regular file (a named pipe or a device
never hangs a run), and a file, or an entry of a .npz archive once uncompressed, may hold
at most MAX_BYTES. Every problem is a `DataError` (exit 4) naming the file and what is
wrong with it.

Where: a relative path is looked up under the data root, as for image data sets
(`gamedsl solve --data-dir DIR`, else $GAMEDSL_DATA, else ~/.cache/gamedsl/data); see
gamedsl/data/images.py.
"""

from __future__ import annotations

import errno
import math
import os
import stat
import zipfile
from pathlib import Path
from typing import IO, Callable

import numpy as np
import torch

from gamedsl.data import images
from gamedsl.data.samplers import Sampler
from gamedsl.errors import DataError

MAX_BYTES = 1 << 30  # 1 GiB: 67 million 2-D points in float64
NUMERIC_KINDS = "iuf"  # signed and unsigned integers, floats


def layout(dim: int) -> str:
    """The hint of every error: what a points file must hold."""
    return (
        f"a points file holds N points of dimension {dim}: a .npy array of shape (N, {dim}), one such array in a "
        f".npz archive, or a .csv file with {dim} comma-separated numbers per line (an optional header line first); "
        f"at most {MAX_BYTES / 2**30:g} GiB; a relative path is looked up under the data root "
        f"(--data-dir DIR or $GAMEDSL_DATA; now {images.data_root()})"
    )


class PointsSampler(Sampler):
    """Uniform draws with replacement from the rows of a float64 tensor (N, d). The rows are
    loaded when the sampler is built, or at the first draw inside `images.deferred()`."""

    def __init__(self, shape: tuple[int, ...], load: Callable[[], torch.Tensor]):
        self.shape = tuple(shape)
        self._load = load
        self._rows: torch.Tensor | None = None
        if not images._defer:
            self.rows  # noqa: B018 - load now, so that a bad file stops the run before it starts

    @property
    def rows(self) -> torch.Tensor:
        if self._rows is None:
            self._rows = self._load()
        return self._rows

    def sample(self, n, generator, dtype):
        rows = self.rows
        index = torch.randint(len(rows), (n,), generator=generator)
        return rows[index].to(dtype).reshape(n, *self.shape)


def load_points(path: str, dim: int, key: str | None = None, standardize: bool = False) -> torch.Tensor:
    """The points of a .npy, .npz or .csv file as a float64 tensor (N, dim), checked: numbers
    only, all finite, at least one point (two different ones to standardize), the declared dimension."""
    file = images.resolve(path, "")
    suffix = file.suffix.lower()
    lines = None  # a .csv file's line numbers, one per point, to say where a bad point is
    with _open(file, dim) as handle:
        if suffix == ".npy":
            array = _read_npy(handle, file, dim)
        elif suffix == ".npz":
            array = _read_npz(handle, file, dim, key)
        else:
            array, lines = _read_csv(handle, file, dim)
    array = _as_points(array, file, dim, lines)
    if standardize:
        array = _standardized(array, file, dim)
    return torch.from_numpy(array)


def _open(file: Path, dim: int) -> IO[bytes]:
    """The file opened for reading without blocking, checked to be a regular file of at most
    MAX_BYTES before anything is read (a FIFO or a device would block or never end)."""
    try:
        fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise DataError(f"points file not found: {file}", hint=layout(dim)) from None
    except OSError as exc:
        what = "is a folder, not a file" if exc.errno == errno.EISDIR else f"cannot be read ({exc.strerror or exc})"
        raise _bad(file, dim, what) from None
    info = os.fstat(fd)
    problem = None
    if stat.S_ISDIR(info.st_mode):
        problem = "is a folder, not a file"
    elif not stat.S_ISREG(info.st_mode):
        problem = f"is {'a named pipe' if stat.S_ISFIFO(info.st_mode) else 'a device or a socket'}, not a regular file"
    elif info.st_size > MAX_BYTES:
        problem = f"is too large: {info.st_size:,} bytes, more than the limit of {MAX_BYTES:,}"
    elif info.st_size == 0:
        problem = "is empty"
    if problem:
        os.close(fd)
        raise _bad(file, dim, problem)
    return os.fdopen(fd, "rb")


def _bad(file: Path, dim: int, what: str) -> DataError:
    return DataError(f"the points file {file} {what}", hint=layout(dim))


def _header(stream: IO[bytes], file: Path, dim: int, what: str = "") -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from the .npy header of the file (or of the array `what` of a .npz
    archive), checked before any data are read: numbers, not Python objects, at most MAX_BYTES."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(stream)
    except (ValueError, EOFError):
        raise _bad(file, dim, f"is not a NumPy .npy file{what}: it does not start with NumPy's header") from None
    try:
        shape, _, dtype = (fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0)(stream)
    except (ValueError, EOFError, SyntaxError) as exc:
        raise _bad(file, dim, f"has a damaged .npy header{what} ({_first_line(exc)})") from None
    if dtype.hasobject:
        raise _bad(file, dim, f"holds an array of Python objects{what}; gamedsl never unpickles data: save numbers")
    if dtype.kind not in NUMERIC_KINDS:
        raise _bad(file, dim, f"holds an array of {_kind(dtype)}{what}, not of real numbers")
    size = math.prod(shape) * dtype.itemsize
    if size > MAX_BYTES:
        raise _bad(file, dim, f"holds an array{what} of {size:,} bytes, more than the limit of {MAX_BYTES:,}")
    return shape, dtype


def _kind(dtype: np.dtype) -> str:
    kinds = {"b": "booleans", "c": "complex numbers", "U": "text", "S": "bytes", "V": "records", "M": "dates", "m": "durations"}
    return f"{kinds[dtype.kind]} ({dtype})" if dtype.kind in kinds else str(dtype)


def _first_line(exc: Exception) -> str:
    return str(exc).splitlines()[0][:100] if str(exc) else type(exc).__name__


def _read_array(stream: IO[bytes], file: Path, dim: int, shape: tuple, dtype: np.dtype, what: str = "") -> np.ndarray:
    try:
        return np.lib.format.read_array(stream, allow_pickle=False)
    except (ValueError, EOFError, OSError, zipfile.BadZipFile):  # data cut short, a damaged archive entry
        raise _bad(
            file, dim, f"is damaged{what}: its header announces an array of shape {shape} of {dtype}, but its data "
            "cannot be read (is the file truncated?)"
        ) from None


def _read_npy(handle: IO[bytes], file: Path, dim: int) -> np.ndarray:
    shape, dtype = _header(handle, file, dim)
    handle.seek(0)
    return _read_array(handle, file, dim, shape, dtype)


def _read_npz(handle: IO[bytes], file: Path, dim: int, key: str | None) -> np.ndarray:
    try:
        archive = zipfile.ZipFile(handle)
        names = [info.filename for info in archive.infolist() if info.filename.endswith(".npy")]
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise _bad(file, dim, f"is not a .npz archive ({_first_line(exc)})") from None
    keys = [name[: -len(".npy")] for name in names]
    listing = ", ".join(f"'{k}'" for k in keys[:20]) + (f" and {len(keys) - 20} more" if len(keys) > 20 else "")
    if not keys:
        raise _bad(file, dim, "is a .npz archive with no arrays")
    if key is None:
        if len(keys) > 1:
            raise _bad(file, dim, f"holds {len(keys)} arrays ({listing}); choose one with key=\"...\"")
        key = keys[0]
    elif key not in keys:
        raise _bad(file, dim, f"has no array '{key}'; its arrays: {listing}")
    what = f" (array '{key}')"
    member = names[keys.index(key)]
    try:
        with archive.open(member) as stream:
            shape, dtype = _header(stream, file, dim, what)
        with archive.open(member) as stream:
            return _read_array(stream, file, dim, shape, dtype, what)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:  # a damaged entry, an unknown compression
        raise _bad(file, dim, f"is a damaged .npz archive{what} ({_first_line(exc)})") from None


def _read_csv(handle: IO[bytes], file: Path, dim: int) -> tuple[np.ndarray, list[int]]:
    """The numbers of a .csv file (see the module's docstring), and the line of each point."""
    try:
        text = handle.read().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _bad(file, dim, f"is not UTF-8 text (byte {exc.start:,}): a .csv file holds numbers as text") from None
    lines = [(number, _content(line)) for number, line in enumerate(text.splitlines(), 1)]
    lines = [(number, line) for number, line in lines if line]
    if lines and all(_number(field) is None for field in lines[0][1].split(",")):
        lines = lines[1:]  # the header: column names
    if not lines:
        raise _bad(file, dim, "holds no points")
    try:
        array = np.loadtxt([line for _, line in lines], delimiter=",", dtype=np.float64, ndmin=2)
    except ValueError:  # find the line, to say where and what
        width = len(lines[0][1].split(","))
        for number, line in lines:
            fields = line.split(",")
            if len(fields) != width:
                raise _bad(file, dim, f"has {_count(len(fields), 'field')} on line {number} but {width} on line {lines[0][0]}") from None
            bad = next((f.strip() for f in fields if _number(f) is None), None)
            if bad is not None:
                raise _bad(file, dim, f"has '{bad[:40]}' on line {number}, which is not a number") from None
        raise _bad(file, dim, "is not a comma-separated table of numbers") from None
    return array, [number for number, _ in lines]


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _content(line: str) -> str:
    """A .csv line without its comment and surrounding spaces."""
    return line.split("#", 1)[0].strip()


def _number(field: str) -> float | None:
    try:
        return float(field)
    except ValueError:
        return None


def _numbers(line: str) -> list[float] | None:
    values = [_number(field) for field in line.split(",")]
    return None if None in values else values


def _as_points(array: np.ndarray, file: Path, dim: int, lines: list[int] | None = None) -> np.ndarray:
    """(N, dim) float64 from an array of numbers: a vector (N,) is N points when dim is 1."""
    if array.ndim == 1 and dim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[1] != dim:
        got = f"points of dimension {array.shape[1]}" if array.ndim == 2 else f"an array of shape {tuple(array.shape)}"
        raise _bad(file, dim, f"holds {got}, but the declaration says dim={dim}")
    if array.shape[0] == 0:
        raise _bad(file, dim, "holds no points")
    array = np.ascontiguousarray(array, dtype=np.float64)
    finite = np.isfinite(array).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        first = f"on line {lines[bad[0]]:,}" if lines else f"point {bad[0] + 1:,} (counting from 1)"
        raise _bad(file, dim, f"holds {_count(len(bad), 'point')} with a NaN or infinite coordinate; the first is {first}")
    return array


def _standardized(array: np.ndarray, file: Path, dim: int) -> np.ndarray:
    """Every coordinate shifted and scaled to mean 0 and standard deviation 1 over the file's points."""
    spread = array.std(axis=0)
    flat = np.flatnonzero(~(spread > 0))
    if len(flat):
        raise _bad(
            file, dim, f"cannot be standardized: coordinate {flat[0] + 1} is the same for every point "
            f"({len(array):,} points)"
        )
    return (array - array.mean(axis=0)) / spread

