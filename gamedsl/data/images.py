"""Real image data: CIFAR-10, a folder of images (e.g. CelebA), and scikit-learn's digits.

Every data set is decoded once into one uint8 tensor (N, C, H, W), kept in memory (and,
for folders of image files, cached on disk), so that a training step draws a batch by
indexing that tensor with indices from the sampler's own `torch.Generator` and scaling to
[-1, 1]: no Python loop per sample, no file access per step.

Nothing here downloads anything. Missing or malformed data raise `DataError` (exit code
4) with where gamedsl looked, the layout it expects and where to get the data.

Where data live: a relative `path` in a `.game` file is looked up under the *data root*:
`gamedsl solve --data-dir DIR`, else `$GAMEDSL_DATA`, else ~/.cache/gamedsl/data. Decoded
image folders are cached under `$GAMEDSL_CACHE` (default ~/.cache/gamedsl).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pickle
import sys
from collections import OrderedDict
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from gamedsl.data.samplers import Sampler
from gamedsl.errors import DataError

CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"
CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_SPLITS = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
CIFAR_SPLITS["all"] = CIFAR_SPLITS["train"] + CIFAR_SPLITS["test"]
CIFAR_LAYOUT = (
    f"expected the CIFAR-10 python version: a folder {CIFAR_FOLDER}/ holding data_batch_1 ... data_batch_5 "
    "and test_batch, each a pickled dict whose b'data' is a uint8 array (N, 3072) (red, green, blue planes "
    f"of 32x32 pixels, row by row) and b'labels' a list of N labels; get cifar-10-python.tar.gz from {CIFAR_URL}, "
    "unpack it in the data root (--data-dir DIR or $GAMEDSL_DATA) or pass cifar10(path=\"...\"); "
    "gamedsl never downloads data"
)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".ppm", ".tif", ".tiff")

_data_root: Path | None = None  # set by `gamedsl solve --data-dir`
_defer = False  # see deferred()
_loaded: "OrderedDict[tuple, torch.Tensor]" = OrderedDict()  # decoded data sets, most recent last
_KEEP = 4


# ---- locations ----------------------------------------------------------------------------


def set_data_root(path: str | Path | None) -> None:
    """The folder relative data paths are looked up in (`--data-dir`); None: the default."""
    global _data_root
    _data_root = None if path is None else Path(path).expanduser()


def data_root_chosen() -> bool:
    """Whether the user named the data root (--data-dir or $GAMEDSL_DATA)."""
    return _data_root is not None or bool(os.environ.get("GAMEDSL_DATA"))


def data_root() -> Path:
    if _data_root is not None:
        return _data_root
    env = os.environ.get("GAMEDSL_DATA")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "gamedsl" / "data"


def cache_root() -> Path:
    """Where gamedsl keeps what it computes once: decoded image folders, the digits classifier."""
    env = os.environ.get("GAMEDSL_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "gamedsl"


def resolve(path: str | None, default: str) -> Path:
    """A data path from a .game file: absolute (or ~) as is, relative under the data root."""
    if path is None:
        return data_root() / default
    p = Path(path).expanduser()
    return p if p.is_absolute() else data_root() / p


@contextlib.contextmanager
def deferred():
    """Build image samplers without reading their data until the first batch is drawn, for
    commands that only use the generator (`gamedsl sample`)."""
    global _defer
    old, _defer = _defer, True
    try:
        yield
    finally:
        _defer = old


# ---- the sampler ------------------------------------------------------------------------------


class ImageSampler(Sampler):
    """Uniform draws (with replacement) from a uint8 image tensor (N, C, H, W), scaled to [-1, 1]."""

    def __init__(self, shape: tuple[int, int, int], load: Callable[[], torch.Tensor]):
        self.shape = tuple(shape)
        self._load = load
        self._images: torch.Tensor | None = None
        if not _defer:
            self.images  # noqa: B018 - load now, so that missing data stop the run before it starts

    @property
    def images(self) -> torch.Tensor:
        if self._images is None:
            images = self._load()
            assert tuple(images.shape[1:]) == self.shape and images.dtype == torch.uint8, (images.shape, self.shape)
            self._images = images
        return self._images

    def __len__(self) -> int:
        return len(self.images)

    def sample(self, n, generator, dtype):
        images = self.images
        index = torch.randint(len(images), (n,), generator=generator)
        return to_float(images[index], dtype)


def to_float(images: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 [0, 255] -> [-1, 1]."""
    return images.to(dtype).mul_(2.0 / 255.0).sub_(1.0)


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> uint8 [0, 255] (values outside are clipped)."""
    return ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def _remember(key: tuple, load: Callable[[], torch.Tensor]) -> torch.Tensor:
    if key in _loaded:
        _loaded.move_to_end(key)
        return _loaded[key]
    value = load()
    _loaded[key] = value
    while len(_loaded) > _KEEP:
        _loaded.popitem(last=False)
    return value


def _stamp(files: list[Path]) -> tuple:
    stats = [f.stat() for f in files]
    return tuple((str(f), s.st_size, s.st_mtime_ns) for f, s in zip(files, stats))


# ---- CIFAR-10 ---------------------------------------------------------------------------------


class _NumpyOnly(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays, nothing else: a data file cannot run code."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    }  # fmt: skip

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        if module.startswith("numpy.core") and hasattr(np, "_core"):
            module = module.replace("numpy.core", "numpy._core", 1)  # numpy 2 renamed the module
        if module == "_codecs":
            import _codecs

            return _codecs.encode
        return getattr(sys.modules.get(module) or __import__(module, fromlist=[name]), name)


def read_cifar_batch(path: Path) -> np.ndarray:
    """The images of one CIFAR-10 batch file as uint8 (N, 3, 32, 32)."""
    try:
        with open(path, "rb") as handle:
            data = _NumpyOnly(io.BytesIO(handle.read()), encoding="bytes").load()
    except OSError as exc:
        raise DataError(f"cannot read {path} ({exc.strerror or exc})", hint=CIFAR_LAYOUT) from None
    except Exception as exc:  # a truncated or foreign file raises anything from EOFError to ValueError
        detail = str(exc).splitlines()[0][:100] if str(exc) else type(exc).__name__
        raise DataError(f"{path} is not a CIFAR-10 batch: it does not unpickle ({detail})", hint=CIFAR_LAYOUT) from None
    if not isinstance(data, dict):
        raise DataError(f"{path} is not a CIFAR-10 batch: it holds a {type(data).__name__}, not a dict", hint=CIFAR_LAYOUT)
    images = data.get(b"data", data.get("data"))
    if images is None:
        keys = ", ".join(sorted(repr(k) for k in data)[:6]) or "none"
        raise DataError(f"{path} is not a CIFAR-10 batch: no b'data' entry (keys: {keys})", hint=CIFAR_LAYOUT)
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 2 or images.shape[1] != 3072:
        raise DataError(
            f"{path} is not a CIFAR-10 batch: b'data' is a {images.dtype} array of shape {tuple(images.shape)}, "
            "not uint8 (N, 3072)",
            hint=CIFAR_LAYOUT,
        )
    return images.reshape(-1, 3, 32, 32)


def load_cifar10(path: str | None, split: str) -> torch.Tensor:
    folder = resolve(path, CIFAR_FOLDER)
    if not folder.is_dir():
        where = "" if path is not None else f" (the data root is {data_root()})"
        raise DataError(f"CIFAR-10 not found: {folder} is not a folder{where}", hint=CIFAR_LAYOUT)
    files = [folder / name for name in CIFAR_SPLITS[split]]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        raise DataError(f"CIFAR-10 not found: {folder} has no {', '.join(missing)}", hint=CIFAR_LAYOUT)

    def load() -> torch.Tensor:
        return torch.from_numpy(np.concatenate([read_cifar_batch(f) for f in files]))

    return _remember(("cifar10", _stamp(files)), load)


def write_cifar10(folder: str | Path, per_batch: int = 16, seed: int = 0, corrupt: str | None = None) -> Path:
    """Write a tiny data set in the CIFAR-10 python layout (random images), for tests and
    benchmarks that need no download. `corrupt`: "truncate" or "shape" spoils data_batch_1."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in CIFAR_SPLITS["all"]:
        batch = {
            b"batch_label": name.encode(),
            b"labels": [int(k) for k in rng.integers(0, 10, per_batch)],
            b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
            b"filenames": [f"{name}_{i}.png".encode() for i in range(per_batch)],
        }
        if corrupt == "shape" and name == "data_batch_1":
            batch[b"data"] = batch[b"data"][:, :1000]
        blob = pickle.dumps(batch, protocol=2)
        if corrupt == "truncate" and name == "data_batch_1":
            blob = blob[: len(blob) // 2]
        (folder / name).write_bytes(blob)
    return folder


# ---- a folder of images (CelebA and the like) ------------------------------------------------------


def _folder_layout(folder: Path) -> str:
    return (
        f"expected a folder of image files ({', '.join(s[1:] for s in IMAGE_SUFFIXES[:4])}, ...), possibly in "
        f"subfolders; for CelebA, unpack img_align_celeba.zip (from the CelebA page, "
        f"https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html) so that {folder} holds the .jpg files; "
        "a relative path is looked up under the data root (--data-dir DIR or $GAMEDSL_DATA); "
        "gamedsl never downloads data"
    )


def _decode(args: tuple[str, int, int | None, int]) -> np.ndarray:
    """One file: centre crop (to `crop`, or to a square), resize to size x size, as (C, size, size)."""
    from PIL import Image

    name, size, crop, channels = args
    with Image.open(name) as image:
        image = image.convert("RGB" if channels == 3 else "L")
        w, h = image.size
        side = min(w, h) if crop is None else crop
        if side > min(w, h):
            raise ValueError(f"the image is {w}x{h}, smaller than the crop {crop}x{crop}")
        left, top = (w - side) // 2, (h - side) // 2
        image = image.crop((left, top, left + side, top + side))
        if side != size:
            image = image.resize((size, size), Image.Resampling.LANCZOS if side > size else Image.Resampling.BICUBIC)
        array = np.asarray(image, dtype=np.uint8)
    return array[None] if channels == 1 else array.transpose(2, 0, 1)


def load_image_folder(path: str, size: int, crop: int | None, channels: int) -> torch.Tensor:
    folder = resolve(path, "")
    if not folder.is_dir():
        raise DataError(f"image folder not found: {folder} is not a folder", hint=_folder_layout(folder))
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise DataError(f"no images in {folder}", hint=_folder_layout(folder))
    stamp = _stamp(files)
    digest = hashlib.sha256(repr((stamp, size, crop, channels)).encode()).hexdigest()[:16]
    cache = cache_root() / "images" / f"{folder.name or 'images'}-{size}-{digest}.npy"

    def load() -> torch.Tensor:
        if cache.is_file():
            try:
                array = np.load(cache)
                if array.shape == (len(files), channels, size, size) and array.dtype == np.uint8:
                    return torch.from_numpy(array)
            except (OSError, ValueError):
                pass  # a damaged cache is rebuilt
        work = [(str(f), size, crop, channels) for f in files]
        if len(work) > 2000:
            print(f"decoding {len(work):,} images from {folder} (once; cached in {cache.parent})", file=sys.stderr)
        array = np.empty((len(files), channels, size, size), dtype=np.uint8)
        for i, item in enumerate(work):
            try:
                array[i] = _decode(item)
            except Exception as exc:  # PIL raises many types for a broken file
                detail = str(exc).splitlines()[0][:100] if str(exc) else type(exc).__name__
                raise DataError(f"cannot read the image {files[i]} ({detail})", hint=_folder_layout(folder)) from None
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(".tmp.npy")
            np.save(tmp, array)
            os.replace(tmp, cache)
        except OSError:
            pass  # no cache: decode again next time
        return torch.from_numpy(array)

    return _remember(("folder", digest), load)


# ---- scikit-learn's handwritten digits ---------------------------------------------------------------


def load_digits(size: int) -> torch.Tensor:
    """The 1,797 8x8 handwritten digits shipped inside scikit-learn (values 0..16), white on
    black, resized to size x size (bicubic), as uint8 (N, 1, size, size)."""

    def load() -> torch.Tensor:
        from sklearn.datasets import load_digits as sklearn_digits

        images = torch.from_numpy(sklearn_digits().images).to(torch.float32).unsqueeze(1) / 16.0
        if size != 8:
            images = torch.nn.functional.interpolate(images, size=(size, size), mode="bicubic", align_corners=False, antialias=size < 8)
        return (images.clamp(0, 1) * 255).round().to(torch.uint8)

    return _remember(("digits", size), load)


def digit_labels() -> np.ndarray:
    from sklearn.datasets import load_digits as sklearn_digits

    return sklearn_digits().target
