"""Sample grids: a batch of images (N, C, H, W) in [-1, 1] tiled into one picture."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch


def image_grid(images: torch.Tensor, nrow: int | None = None, pad: int = 2, scale: int | None = None) -> np.ndarray:
    """An RGB uint8 array (H', W', 3): `nrow` images per row (default: a square), separated
    by `pad` grey pixels; small images are enlarged `scale` times (default: to about 64
    pixels per image) so that 8x8 or 16x16 samples stay visible."""
    from gamedsl.data.images import to_uint8

    x = to_uint8(images).numpy()  # (N, C, H, W)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"a grid needs images (N, 1 or 3, H, W), got {tuple(x.shape)}")
    n, c, h, w = x.shape
    if c == 1:
        x = np.repeat(x, 3, axis=1)
    scale = scale or max(1, 64 // max(h, w))
    if scale > 1:
        x = x.repeat(scale, axis=2).repeat(scale, axis=3)
        h, w = h * scale, w * scale
    nrow = nrow or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / nrow)
    grid = np.full((rows * (h + pad) + pad, nrow * (w + pad) + pad, 3), 128, dtype=np.uint8)
    for i in range(n):
        r, col = divmod(i, nrow)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        grid[top : top + h, left : left + w] = x[i].transpose(1, 2, 0)
    return grid


def save_png(array: np.ndarray, path: str | Path) -> None:
    from PIL import Image

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
