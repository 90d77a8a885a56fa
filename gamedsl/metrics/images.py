"""Image metrics: an offline digits score, and the Inception score and FID when available.

**Digits (offline, no download).** A small convolutional classifier is trained once on
scikit-learn's 8x8 handwritten digits (fixed seed, 80 % of the images, a few seconds on a
CPU) and cached in `$GAMEDSL_CACHE/digits_classifier-v3.pt` (default ~/.cache/gamedsl).
Generated images of any size are resized to 8x8 and classified. Two numbers follow the
recipes of the Inception score and the FID with this classifier in place of Inception:

* the *classifier score* exp(E_x KL(p(y|x) || p(y))), between 1 and 10: high when each
  sample is confidently one digit and the ten digits are equally frequent;
* the *Fréchet distance* between Gaussians fitted to the classifier's 128 penultimate
  features of generated and of all 1,797 real digits (resized to the generated size and
  back, like the samples): low when both feature distributions agree in mean and
  covariance; real digits against themselves score 0, a finite sample a little more.

What they do not measure: anything the classifier does not see (at 8x8 fine detail is
lost), memorisation of the 1,797 training digits, or realism beyond what a small network
trained on these digits has learnt; they are comparable only with the same classifier and
sample count, never with published Inception scores or FIDs.

**Inception score and FID** (CIFAR-10, CelebA) come from torch-fidelity, an optional
extra (`pip install 'gamedsl[images]'`), and only when the Inception weights are present
locally: `$GAMEDSL_INCEPTION_WEIGHTS`, else `$GAMEDSL_CACHE/weights-inception-2015-12-05-6726825d.pth`,
else torch's hub cache. gamedsl never downloads them; without them it says so.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

CLASSIFIER_VERSION = 3
INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + INCEPTION_FILE


# ---- the digits classifier -------------------------------------------------------------------


class DigitsNet(nn.Module):
    """8x8 grey digit in [-1, 1] -> 10 logits; `features` gives the 128 penultimate units."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 4 * 4, 128), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Linear(128, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def classifier_path() -> Path:
    from gamedsl.data.images import cache_root

    return cache_root() / f"digits_classifier-v{CLASSIFIER_VERSION}.pt"


def _real_digits() -> tuple[torch.Tensor, np.ndarray]:
    from gamedsl.data.images import digit_labels, load_digits, to_float

    return to_float(load_digits(8)), digit_labels()


def train_classifier(seed: int = 0, epochs: int = 20) -> tuple[DigitsNet, dict]:
    """Train on a fixed 80 % of the digits; report the accuracy on the other 20 %."""
    images, labels = _real_digits()
    labels = torch.from_numpy(labels).long()
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
    cut = int(0.8 * len(images))
    train, test = order[:cut], order[cut:]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = DigitsNet().float()
        optimizer = torch.optim.Adam(net.parameters(), lr=2e-3)
        g = torch.Generator().manual_seed(seed + 1)
        for _ in range(epochs):
            perm = train[torch.randperm(len(train), generator=g)]
            for start in range(0, len(perm), 64):
                idx = perm[start : start + 64]
                x = images[idx]
                # a pixel of jitter makes the classifier less brittle to generated strokes
                shift = torch.randint(-1, 2, (2,), generator=g).tolist()
                x = torch.roll(x, shifts=shift, dims=(2, 3))
                loss = nn.functional.cross_entropy(net(x), labels[idx])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
    net.eval()
    with torch.no_grad():
        accuracy = float((net(images[test]).argmax(1) == labels[test]).float().mean())
    return net, {"test_accuracy": accuracy}


def load_classifier() -> tuple[DigitsNet, dict]:
    """The cached classifier, trained and written on first use."""
    path = classifier_path()
    net = DigitsNet().float()
    if path.is_file():
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
            net.load_state_dict(data["state"])
            net.eval()
            return net, {k: v for k, v in data.items() if k != "state"}
        except Exception:  # a damaged or foreign cache file is rebuilt
            pass
    net, info = train_classifier()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save({"state": net.state_dict(), **info}, tmp)
        os.replace(tmp, path)
    except OSError:
        pass
    return net, info


def _to_digit_input(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) in [-1, 1] -> (N, 1, 8, 8): grey, resized with antialiasing."""
    x = images.detach().to(device="cpu", dtype=torch.float32)
    if x.shape[1] != 1:
        x = x.mean(1, keepdim=True)
    if x.shape[-2:] != (8, 8):
        x = nn.functional.interpolate(x, size=(8, 8), mode="bilinear", align_corners=False, antialias=True)
    return x.clamp(-1, 1)


def frechet(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """|mu1 - mu2|^2 + Tr(C1 + C2 - 2 (C1 C2)^(1/2)), as in the FID; NaN for non-finite samples
    (a diverged generator), whose matrix square root scipy would search for minutes."""
    from scipy import linalg

    if not all(np.isfinite(a).all() for a in (mu1, cov1, mu2, cov2)):
        return float("nan")

    with warnings.catch_warnings():  # a singular product (collapsed samples) is handled below
        warnings.simplefilter("ignore")
        covmean = linalg.sqrtm(cov1 @ cov2)
        if not np.isfinite(covmean).all():  # regularise, as the reference FID code does
            offset = np.eye(len(cov1)) * 1e-6
            covmean = linalg.sqrtm((cov1 + offset) @ (cov2 + offset))
    covmean = covmean.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * np.trace(covmean))


def inception_style_score(probs: torch.Tensor) -> float:
    """exp(E_x KL(p(y|x) || p(y))) of class probabilities (N, K)."""
    p = probs.double().clamp_min(1e-12)
    marginal = p.mean(0, keepdim=True)
    return float(torch.exp((p * (p.log() - marginal.log())).sum(1).mean()))


def _features(net: DigitsNet, images: torch.Tensor) -> tuple[np.ndarray, torch.Tensor]:
    x = _to_digit_input(images)
    with torch.no_grad():
        features = torch.cat([net.features(x[i : i + 1024]) for i in range(0, len(x), 1024)])
        probs = torch.softmax(net.head(features), 1)
    return features.double().numpy(), probs


def _gaussian(f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return f.mean(0), (np.cov(f, rowvar=False) if len(f) > 1 else np.zeros((f.shape[1], f.shape[1])))


_REAL: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}


def _real_statistics(net: DigitsNet, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Feature mean and covariance of all real digits at the generated images' size, taken
    through the same resize to 8x8, so that a perfect generator scores a distance near 0."""
    from gamedsl.data.images import load_digits, to_float

    side = shape[-1] if len(shape) == 3 and shape[-1] == shape[-2] else 8
    key = (str(classifier_path()), side)
    if key not in _REAL:
        _REAL[key] = _gaussian(_features(net, to_float(load_digits(side)))[0])
    return _REAL[key]


def digits_scores(images: torch.Tensor) -> dict:
    """Classifier score and Fréchet distance of generated digits (N, C, H, W) in [-1, 1]."""
    net, _ = load_classifier()
    f, probs = _features(net, images)
    mu, cov = _gaussian(f)
    real_mu, real_cov = _real_statistics(net, tuple(images.shape[1:]))
    return {
        "classifier_score": inception_style_score(probs),
        "frechet_distance": frechet(mu, cov, real_mu, real_cov),
        "samples": len(f),
        "classes": torch.bincount(probs.argmax(1), minlength=10).tolist(),
    }


def digits_reference(size: int = 8) -> dict:
    """The classifier score of the real digits at `size`, and the classifier's held-out accuracy."""
    from gamedsl.data.images import load_digits, to_float

    _, info = load_classifier()
    real = digits_scores(to_float(load_digits(size)))
    return {"real_classifier_score": real["classifier_score"], "classifier_test_accuracy": info["test_accuracy"]}


# ---- Inception score and FID (optional) ----------------------------------------------------------


def inception_weights() -> Path | None:
    from gamedsl.data.images import cache_root

    env = os.environ.get("GAMEDSL_INCEPTION_WEIGHTS")
    candidates = [Path(env).expanduser()] if env else []
    candidates.append(cache_root() / INCEPTION_FILE)
    candidates.append(Path(torch.hub.get_dir()) / "checkpoints" / INCEPTION_FILE)
    return next((p for p in candidates if p.is_file()), None)


def inception_unavailable() -> str | None:
    """Why the Inception score and FID cannot be computed here, or None if they can."""
    try:
        import torch_fidelity  # noqa: F401
    except ImportError:
        return "the Inception score and FID need torch-fidelity: pip install 'gamedsl[images]'"
    if inception_weights() is None:
        from gamedsl.data.images import cache_root

        return (
            f"the Inception score and FID need the Inception weights {INCEPTION_FILE} on this machine; gamedsl never "
            f"downloads them: fetch {INCEPTION_URL} yourself and put it in {cache_root()} or point "
            "$GAMEDSL_INCEPTION_WEIGHTS at it"
        )
    return None


class _Uint8Images(torch.utils.data.Dataset):
    def __init__(self, images: torch.Tensor):
        self.images = images

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        x = self.images[i]
        return x.expand(3, *x.shape[1:]) if x.shape[0] == 1 else x


def inception_scores(fake: torch.Tensor, real: torch.Tensor, splits: int = 10) -> dict:
    """Inception score of `fake` and FID between `fake` and `real` (uint8, (N, C, H, W)) with
    torch-fidelity's port of the reference Inception network; never downloads."""
    reason = inception_unavailable()
    if reason:
        return {"available": False, "reason": reason}
    import torch_fidelity

    metrics = torch_fidelity.calculate_metrics(
        input1=_Uint8Images(fake),
        input2=_Uint8Images(real),
        isc=True,
        fid=True,
        isc_splits=splits,
        feature_extractor_weights_path=str(inception_weights()),
        cuda=torch.cuda.is_available(),
        cache=False,
        datasets_download=False,
        verbose=False,
    )
    return {
        "available": True,
        "inception_score": float(metrics["inception_score_mean"]),
        "inception_score_std": float(metrics["inception_score_std"]),
        "fid": float(metrics["frechet_inception_distance"]),
        "samples": len(fake),
    }


def finite(value: float) -> float | None:
    return value if isinstance(value, float) and math.isfinite(value) else None
