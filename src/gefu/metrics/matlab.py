"""The few MATLAB image functions that MATLAB-released metrics (NIQE) depend on, reproduced exactly.

- `rgb2gray_uint8`: MATLAB `rgb2gray` on a uint8 image. Its luminance row is the first row of the inverse of
  the NTSC (YIQ → RGB) matrix, ≈ (0.298936, 0.587043, 0.114021) — not BT.601's rounded (0.299, 0.587, 0.114) —
  and the uint8 result is rounded half away from zero and saturated, as MATLAB converts doubles to integers.
- `rgb2ycbcr_y_uint8`: the Y channel of MATLAB `rgb2ycbcr` on uint8 (BT.601 studio range, 16..235), the
  luminance that super-resolution code (BasicSR) feeds to NIQE.
- `imresize`: MATLAB `imresize(A, scale)` for double images with its default method, bicubic (Keys' cubic,
  a = -0.5) with antialiasing when shrinking (the kernel is stretched by 1/scale and scaled by scale), output
  size ceil(scale · size), 'symmetric' (mirror, edge pixel repeated) boundary handling, weights normalised to
  sum 1 per output pixel, rows first then columns. No rounding: a double image stays double.
- `fspecial_gaussian`: MATLAB `fspecial('gaussian', size, sigma)`.

Everything works in float64 numpy, like MATLAB doubles.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["RGB2GRAY_COEFFS", "rgb2gray_uint8", "rgb2ycbcr_y_uint8", "imresize", "fspecial_gaussian"]

# First row of inv(NTSC → RGB); MATLAB's rgb2gray computes exactly this (documented as 0.2989 R + 0.5870 G
# + 0.1140 B).
_NTSC_TO_RGB = np.array([[1.0, 0.956, 0.621], [1.0, -0.272, -0.647], [1.0, -1.106, 1.703]])
RGB2GRAY_COEFFS: np.ndarray = np.linalg.inv(_NTSC_TO_RGB)[0]  # (3,)


def rgb2gray_uint8(rgb: np.ndarray) -> np.ndarray:
    """MATLAB `rgb2gray` of a uint8 (H, W, 3) RGB image → uint8 (H, W)."""
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb2gray_uint8 expects a uint8 (H, W, 3) array, got {rgb.dtype} {rgb.shape}")
    y = rgb.astype(np.float64) @ RGB2GRAY_COEFFS  # (H, W)
    return np.clip(np.floor(y + 0.5), 0, 255).astype(np.uint8)  # round half away from zero (y ≥ 0)


def rgb2ycbcr_y_uint8(rgb: np.ndarray) -> np.ndarray:
    """Y of MATLAB `rgb2ycbcr` of a uint8 (H, W, 3) RGB image → uint8 (H, W): 16 + (65.481 R + 128.553 G
    + 24.966 B) / 255, rounded."""
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"rgb2ycbcr_y_uint8 expects a uint8 (H, W, 3) array, got {rgb.dtype} {rgb.shape}")
    y = 16.0 + rgb.astype(np.float64) @ np.array([65.481, 128.553, 24.966]) / 255.0
    return np.clip(np.floor(y + 0.5), 0, 255).astype(np.uint8)


def fspecial_gaussian(size: int, sigma: float) -> np.ndarray:
    """MATLAB `fspecial('gaussian', size, sigma)`: (size, size), sums to 1."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * sigma**2))
    g[g < np.finfo(np.float64).eps * g.max()] = 0
    return g / g.sum()


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's 'bicubic')."""
    ax = np.abs(x)
    ax2, ax3 = ax**2, ax**3
    return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))


def _contributions(in_len: int, out_len: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Per output pixel, the input indices (0-based) and weights MATLAB's imresize uses along one axis.

    Returns (indices, weights), both (out_len, P).
    """
    width = 4.0
    if scale < 1:  # antialiasing: stretch the kernel to the output's sampling rate
        kernel = lambda x: scale * _cubic(scale * x)  # noqa: E731
        width = width / scale
    else:
        kernel = _cubic
    x = np.arange(1, out_len + 1, dtype=np.float64)  # 1-based output coordinates
    u = x / scale + 0.5 * (1 - 1 / scale)  # the matching input coordinate (1-based)
    left = np.floor(u - width / 2)
    taps = int(math.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps)[None, :]  # (out_len, taps), 1-based
    w = kernel(u[:, None] - idx)
    w = w / w.sum(axis=1, keepdims=True)
    # 'symmetric' boundary: mirror with the edge pixel repeated.
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    idx = mirror[np.mod(idx.astype(np.int64) - 1, 2 * in_len)]
    keep = np.any(w != 0, axis=0)  # drop all-zero tap columns
    return idx[:, keep], w[:, keep]


def _resize_axis(a: np.ndarray, axis: int, out_len: int, scale: float) -> np.ndarray:
    idx, w = _contributions(a.shape[axis], out_len, scale)
    a = np.moveaxis(a, axis, 0)  # (L, ...)
    out = np.einsum("op,op...->o...", w, a[idx])  # (out_len, ...)
    return np.moveaxis(out, 0, axis)


def imresize(a: np.ndarray, scale: float) -> np.ndarray:
    """MATLAB `imresize(a, scale)` (bicubic, antialiased when shrinking) of a double (H, W[, C]) array."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim not in (2, 3):
        raise ValueError(f"imresize expects an (H, W) or (H, W, C) array, got shape {a.shape}")
    if scale <= 0:
        raise ValueError(f"scale must be positive, got {scale}")
    out = a
    for axis in (0, 1):  # equal scales: MATLAB resizes rows first
        out = _resize_axis(out, axis, int(math.ceil(scale * a.shape[axis])), scale)
    return out
