"""The registries of data and latent sources (`data x ~ ring(...)`) and parameter initialisers.

Like builders, each source is a signature, a shape rule and a factory; the grammar never
names them. `mixture` exposes the means and spread of 2-D mixtures for the mode metrics
and density pictures; `constant` gives the value of deterministic sources to the sympy
compiler; `reads_files` marks the sources that read local files under the data root.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from gamedsl.errors import GameCheckError
from gamedsl.library.signature import REQUIRED, Arg, Bool, Choice, Float, Int, Numeric, Shape, Signature, Text, normalize_shape


@dataclass(frozen=True)
class Source:
    signature: Signature
    kinds: frozenset[str]  # "data", "latent"
    shape: Callable[[dict[str, Any]], Shape]
    sampler: Callable[[dict[str, Any]], Any]  # args -> gamedsl.data.samplers.Sampler
    constant: Callable[[dict[str, Any]], Any] | None = None  # deterministic value, if any
    mixture: Callable[[dict[str, Any]], tuple[Any, float]] | None = None  # (means, std) of a 2-D mixture
    reads_files: bool = False  # reads local files under the data root (a resumed run must look in the same place)


SOURCES: dict[str, Source] = {}


def register_source(source: Source) -> Source:
    SOURCES[source.signature.name] = source
    return source


def _ring_means(v):
    from gamedsl.data.samplers import ring_means

    return ring_means(v["modes"], v["radius"])


def _grid_means(v):
    from gamedsl.data.samplers import grid_means

    return grid_means(v["size"], v["spacing"])


def _mixture_sampler(means):
    def build(v):
        from gamedsl.data.samplers import Mixture

        return Mixture(means(v), v["std"], v["balanced"])

    return build


register_source(
    Source(
        Signature(
            "ring",
            (
                Arg("modes", Int(1, maximum=1_000_000), 8, "number of Gaussians (at most a million)"),
                Arg("radius", Float(positive=True), 1.0, "radius of the circle"),
                Arg("std", Float(positive=True), 0.01, "standard deviation of each Gaussian"),
                Arg("balanced", Bool(), False, "sample i of a batch comes from mode i mod modes (the authors' code)"),
            ),
            "Gaussians evenly spaced on a circle: the paper's Figure 2 data.",
        ),
        frozenset({"data"}),
        lambda v: (2,),
        _mixture_sampler(_ring_means),
        mixture=lambda v: (_ring_means(v), v["std"]),
    )
)

register_source(
    Source(
        Signature(
            "grid",
            (
                Arg("size", Int(1, maximum=1_000), 5, "modes per side (at most 1,000)"),
                Arg("spacing", Float(positive=True), 2.0, "distance between neighbouring modes"),
                Arg("std", Float(positive=True), 0.05, "standard deviation of each Gaussian"),
                Arg("balanced", Bool(), False, "sample i of a batch comes from mode i mod size^2"),
            ),
            "A size x size grid of Gaussians centred at the origin (the 25-Gaussian benchmark).",
        ),
        frozenset({"data"}),
        lambda v: (2,),
        _mixture_sampler(_grid_means),
        mixture=lambda v: (_grid_means(v), v["std"]),
    )
)


# ---- the 2-D toy sets of the GAN literature (gamedsl/data/samplers.py): fresh draws, no file --------


def _toy(name):
    def build(v):
        from gamedsl.data import samplers

        return getattr(samplers, name)(**v)

    return build


register_source(
    Source(
        Signature(
            "swiss_roll",
            (Arg("noise", Float(minimum=0.0, maximum=1e6), 0.25, "standard deviation of the Gaussian noise, before the division by 7.5"),),
            "WGAN-GP's 2-D Swiss roll: scikit-learn's make_swiss_roll in the (x, z) plane, divided by 7.5.",
        ),
        frozenset({"data"}),
        lambda v: (2,),
        _toy("SwissRoll"),
    )
)

register_source(
    Source(
        Signature(
            "two_moons",
            (Arg("noise", Float(minimum=0.0, maximum=1e6), 0.05, "standard deviation of the Gaussian noise"),),
            "scikit-learn's make_moons: two interleaved half circles of radius 1.",
        ),
        frozenset({"data"}),
        lambda v: (2,),
        _toy("TwoMoons"),
    )
)

register_source(
    Source(
        Signature(
            "spiral",
            (
                Arg("arms", Int(1, maximum=1_000), 2, "number of arms, evenly turned about the origin"),
                Arg("turns", Float(positive=True, maximum=1_000.0), 1.5, "turns of each arm"),
                Arg("noise", Float(minimum=0.0, maximum=1e6), 0.1, "standard deviation of the Gaussian noise"),
            ),
            "FFJORD's two-arm spiral (2spirals) without its uniform jitter: (-t cos t, t sin t) / 3.",
        ),
        frozenset({"data"}),
        lambda v: (2,),
        _toy("Spiral"),
    )
)


def _dirac_shape(v) -> Shape:
    value = v["value"]
    return normalize_shape((len(value),) if isinstance(value, tuple) else ())


def _dirac(v):
    from gamedsl.data.samplers import Dirac

    return Dirac(v["value"])


register_source(
    Source(
        Signature("dirac", (Arg("value", Numeric(), REQUIRED, "the single point"),), "All mass at one point."),
        frozenset({"data", "latent"}),
        _dirac_shape,
        _dirac,
        constant=lambda v: v["value"],
    )
)


def _vector_shape(v) -> Shape:
    if v["dim"] is not None:
        return normalize_shape((v["dim"],))
    sizes = {len(x) for x in (v.get("mean"), v.get("std")) if isinstance(x, tuple)}
    return normalize_shape((sizes.pop(),)) if sizes else ()


def _check_sizes(*names):
    def validate(values, spans):
        expected = values["dim"]
        for name in names:
            value = values[name]
            if isinstance(value, tuple):
                if expected is None:
                    expected = len(value)
                elif len(value) != expected:
                    raise GameCheckError(
                        f"'{name}' has {len(value)} entries but the distribution has dimension {expected}",
                        span=spans.get(name, spans[""]),
                    )

    return validate


def _normal(v):
    from gamedsl.data.samplers import Normal

    shape = _vector_shape(v)
    return Normal(shape, v["mean"], v["std"])


def _uniform(v):
    from gamedsl.data.samplers import Uniform

    return Uniform(_vector_shape(v), v["low"], v["high"])


register_source(
    Source(
        Signature(
            "normal",
            (
                Arg("dim", Int(1), None, "dimension (or give mean/std as lists)"),
                Arg("mean", Numeric(), 0.0, "mean: a number or a list"),
                Arg("std", Numeric(), 1.0, "standard deviation: a number or a list"),
            ),
            "A Gaussian with diagonal covariance; `normal(16)` is the standard 16-dimensional one.",
            validate=_check_sizes("mean", "std"),
        ),
        frozenset({"data", "latent"}),
        _vector_shape,
        _normal,
    )
)


def _check_interval(values, spans):
    if not values["low"] < values["high"]:
        raise GameCheckError("'low' must be smaller than 'high'", span=spans.get("low", spans[""]))


register_source(
    Source(
        Signature(
            "uniform",
            (
                Arg("dim", Int(1), None, "dimension"),
                Arg("low", Float(), -1.0, "lower end"),
                Arg("high", Float(), 1.0, "upper end"),
            ),
            "Independent uniform coordinates on [low, high] (DCGAN's latent prior).",
            validate=_check_interval,
        ),
        frozenset({"data", "latent"}),
        _vector_shape,
        _uniform,
    )
)

# ---- parameter initialisers: `param w[3] = normal(0, 0.1)` ------------------------------

INITIALIZERS: dict[str, Signature] = {
    s.name: s
    for s in (
        Signature(
            "normal",
            (Arg("mean", Float(), 0.0, "mean"), Arg("std", Float(minimum=0.0), 1.0, "standard deviation")),
            "Independent Gaussian entries.",
        ),
        Signature(
            "uniform",
            (Arg("low", Float(), -1.0, "lower end"), Arg("high", Float(), 1.0, "upper end")),
            "Independent uniform entries.",
            validate=_check_interval,
        ),
    )
}

# ---- real images (gamedsl/data/images.py): loaded when the game is compiled, never at check time --

IMAGE_SOURCES = ("cifar10", "image_folder", "digits")


def _naming(name, build):
    """The sampler factory `build`, whose DataError (missing or malformed data) names the
    source, so that Session.create points the error at the declaration."""

    def named(v):
        from gamedsl.errors import DataError

        try:
            return build(v)
        except DataError as exc:
            exc.origin = name
            raise

    return named


def _image_sampler(shape, load, name):
    def build(v):
        from gamedsl.data.images import ImageSampler

        return ImageSampler(shape(v), lambda: load(v))

    return _naming(name, build)


def _cifar10(v):
    from gamedsl.data.images import load_cifar10

    return load_cifar10(v["path"], v["split"])


def _image_folder(v):
    from gamedsl.data.images import load_image_folder

    return load_image_folder(v["path"], v["size"], v["crop"], v["channels"])


def _digits(v):
    from gamedsl.data.images import load_digits

    return load_digits(v["size"])


def _check_crop(values, spans):
    if values["crop"] is not None and values["crop"] < values["size"]:
        raise GameCheckError(
            f"a crop of {values['crop']} pixels is smaller than the image size {values['size']}",
            span=spans.get("crop", spans[""]),
            hint="images are cropped first, then resized: the paper crops CelebA to 160 and resizes to 64",
        )


def _check_folder(values, spans):
    _not_empty(values, spans)
    _check_crop(values, spans)
    if values["channels"] not in (1, 3):
        raise GameCheckError(
            f"channels is 1 (grey) or 3 (colour), got {values['channels']}", span=spans.get("channels", spans[""])
        )


def _not_empty(values, spans):
    if values["path"] is not None and not values["path"].strip():
        raise GameCheckError("the path is empty", span=spans.get("path", spans[""]))


register_source(
    Source(
        Signature(
            "cifar10",
            (
                Arg("path", Text(), None, "the cifar-10-batches-py folder; default: under the data root"),
                Arg("split", Choice(choices=("train", "test", "all")), "train", "train (data_batch_1..5), test (test_batch) or all"),
            ),
            "CIFAR-10 (the python version), 32x32 colour images scaled to [-1, 1]. Never downloaded.",
            validate=_not_empty,
        ),
        frozenset({"data"}),
        lambda v: (3, 32, 32),
        _image_sampler(lambda v: (3, 32, 32), _cifar10, "cifar10"),
        reads_files=True,
    )
)

register_source(
    Source(
        Signature(
            "image_folder",
            (
                Arg("path", Text(), REQUIRED, "a folder of image files (searched recursively); relative to the data root"),
                Arg("size", Int(1), 64, "side of the square images after resizing"),
                Arg("crop", Int(1), None, "side of the centre crop taken first (CelebA: 160); default: the largest square"),
                Arg("channels", Int(1), 3, "3 (colour) or 1 (grey)"),
            ),
            "Every image in a folder (e.g. CelebA), centre-cropped, resized and scaled to [-1, 1].",
            validate=_check_folder,
        ),
        frozenset({"data"}),
        lambda v: (v["channels"], v["size"], v["size"]),
        _image_sampler(lambda v: (v["channels"], v["size"], v["size"]), _image_folder, "image_folder"),
        reads_files=True,
    )
)



register_source(
    Source(
        Signature(
            "digits",
            (Arg("size", Int(1), 32, "side of the images: scikit-learn's 8x8 digits are resized to size x size"),),
            "The 1,797 handwritten 8x8 digits that ship inside scikit-learn, white on black, resized and scaled "
            "to [-1, 1]: real image data that needs no download.",
        ),
        frozenset({"data"}),
        lambda v: (1, v["size"], v["size"]),
        _image_sampler(lambda v: (1, v["size"], v["size"]), _digits, "digits"),
    )
)

# ---- points from a local file (gamedsl/data/points.py): read when the game is compiled, never at check time --


def _points(v):
    from gamedsl.data.points import PointsSampler, load_points

    shape = normalize_shape((v["dim"],))
    return PointsSampler(shape, lambda: load_points(v["path"], v["dim"], v["key"], v["standardize"]))


POINTS_SUFFIXES = (".npy", ".npz", ".csv")  # checked here, at check time, without reading the file


def _check_points(values, spans):
    from pathlib import PurePath

    _not_empty(values, spans)
    suffix = PurePath(values["path"]).suffix.lower()
    if suffix not in POINTS_SUFFIXES:
        raise GameCheckError(
            f"a points file is a .npy, .npz or .csv file, not '{suffix or values['path']}'",
            span=spans.get("path", spans[""]),
            hint="save the array with numpy.save (.npy) or numpy.savez (.npz), or write it as comma-separated text (.csv)",
        )
    if values["key"] is not None and suffix != ".npz":
        raise GameCheckError(
            f"key names an array of a .npz archive; a {suffix} file holds one array", span=spans.get("key", spans[""])
        )


register_source(
    Source(
        Signature(
            "points",
            (
                Arg("path", Text(), REQUIRED, "a .npy, .npz or .csv file of N points; relative to the data root"),
                Arg("dim", Int(1), REQUIRED, "dimension of each point: the file holds an array (N, dim)"),
                Arg("key", Text(), None, "the array of a .npz archive; default: its only one"),
                Arg("standardize", Bool(), False, "shift and scale each coordinate to mean 0 and standard deviation 1"),
            ),
            "Points read from a local file, drawn uniformly with replacement.",
            validate=_check_points,
        ),
        frozenset({"data"}),
        lambda v: (v["dim"],),
        _naming("points", _points),
        reads_files=True,
    )
)
