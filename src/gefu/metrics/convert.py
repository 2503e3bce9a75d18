"""Images as the 8-bit arrays that MATLAB- and OpenCV-based no-reference metrics (NIQE, BRISQUE) read."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["uint8_images"]


def _one(x: np.ndarray) -> np.ndarray:
    """Float (H, W[, 3]) in [0, 1] → uint8, rounded from ·255 (exact for images read from 8-bit files)."""
    return np.clip(np.floor(x.astype(np.float64) * 255 + 0.5), 0, 255).astype(np.uint8)


def uint8_images(img: torch.Tensor | np.ndarray) -> list[np.ndarray]:
    """A batch as uint8 arrays, (H, W, 3) RGB or (H, W) grey, one per image.

    img: a float tensor (N, 3|1, H, W) / (3|1, H, W) in [0, 1] (the gefu convention), or one numpy image
    (H, W, 3) / (H, W): uint8 as is, float in [0, 1].
    """
    if isinstance(img, torch.Tensor):
        batch = img[None] if img.ndim == 3 else img
        if batch.ndim != 4 or batch.shape[1] not in (1, 3):
            raise ValueError(f"expected an image tensor (N, 3|1, H, W) or (3|1, H, W), got {tuple(img.shape)}")
        hwc = batch.detach().cpu().double().permute(0, 2, 3, 1).numpy()  # (N, H, W, C)
        return [_one(x[..., 0] if x.shape[2] == 1 else x) for x in hwc]
    x = np.asarray(img)
    if x.ndim not in (2, 3) or (x.ndim == 3 and x.shape[2] != 3):
        raise ValueError(f"expected a numpy image (H, W, 3) or (H, W), got shape {x.shape}")
    return [x if x.dtype == np.uint8 else _one(x)]
