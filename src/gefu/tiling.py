"""Reflect padding to a multiple of k (and cropping back), and tiled processing with smooth blending.

`tile_apply` runs a function over overlapping tiles of a tensor that is already in memory. `tile_apply_uint8`
does the same for an image that is only read tile by tile (`read(y0, y1, x0, x1)`) and writes a uint8 result
band by band, so that peak memory follows the tile, not the image: a 16000×16000 photo kept as uint8 (768 MB)
needs float buffers of one band of tiles only (3 × tile × width × 4 bytes), not of the whole image (3 GB each).
Both blend with the same raised-cosine weights in the same order, so their results agree to the last bit.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "DEFAULT_OVERLAP", "auto_tile", "crop_to", "pad_to_multiple", "tile_apply", "tile_apply_uint8", "tile_geometry",
]  # fmt: skip

#: Overlap of neighbouring tiles in pixels, the default of every tiled path (library and command line).
DEFAULT_OVERLAP = 32


def pad_to_multiple(x: torch.Tensor, k: int, mode: str = "reflect") -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad (N, C, H, W) on the bottom/right so H and W are multiples of k. Returns (padded, (H, W)).

    Reflect padding needs the pad to be smaller than the side; for tiny images it falls back to replicate.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % k, (-w) % k
    if ph == 0 and pw == 0:
        return x, (h, w)
    if mode == "reflect" and (ph >= h or pw >= w):
        mode = "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), (h, w)


def crop_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Crop (…, H', W') to the top-left (…, H, W): the inverse of `pad_to_multiple`."""
    h, w = size
    return x[..., :h, :w]


def tile_geometry(tile: int, overlap: int, multiple: int = 8) -> tuple[int, int]:
    """The tile size actually used (rounded down to `multiple`, at least `multiple`) and the overlap (at most
    half of it)."""
    if tile <= 0:
        raise ValueError(f"tile must be positive, got {tile}")
    if overlap < 0:
        raise ValueError(f"overlap must be >= 0, got {overlap}")
    tile = max(multiple, tile // multiple * multiple)
    return tile, min(overlap, tile // 2)


def _ramp(n: int, overlap: int, at_start: bool, at_end: bool, device, dtype) -> torch.Tensor:
    """1-D blending weight of one tile: a raised-cosine ramp over `overlap` pixels at inner edges, 1 elsewhere."""
    w = torch.ones(n, device=device, dtype=dtype)
    if overlap > 0:
        r = 0.5 - 0.5 * torch.cos(torch.pi * (torch.arange(overlap, device=device, dtype=dtype) + 0.5) / overlap)
        if not at_start:
            w[:overlap] = r
        if not at_end:
            w[-overlap:] = torch.minimum(w[-overlap:], r.flip(0))
    return w


def _starts(size: int, tile: int, stride: int) -> list[int]:
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile, stride)) + [size - tile]
    return sorted(set(starts))


def tile_apply(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    tile: int,
    overlap: int = DEFAULT_OVERLAP,
    multiple: int = 8,
) -> torch.Tensor:
    """Apply `fn` to overlapping tiles of x (N, C, H, W) and blend the results without seams.

    `fn` maps (N, C, h, w) → (N, C', h, w). Tiles are `tile`×`tile` (rounded down to `multiple`), neighbours overlap
    by `overlap` pixels (at most half a tile) and are blended with raised-cosine weights that sum to one. The
    output is accumulated tile by tile, so peak memory of `fn` depends on the tile size, not on the image. Images
    no larger than a tile are processed whole.
    """
    tile, overlap = tile_geometry(tile, overlap, multiple)
    n, _, h, w = x.shape
    if h <= tile and w <= tile:
        return fn(x)
    stride = tile - overlap
    out = None
    weight_sum = torch.zeros(1, 1, h, w, device=x.device, dtype=torch.float32)
    ys, xs = _starts(h, tile, stride), _starts(w, tile, stride)
    for y0 in ys:
        th = min(tile, h - y0)
        wy = _ramp(th, overlap, y0 == ys[0], y0 == ys[-1], x.device, torch.float32)
        for x0 in xs:
            tw = min(tile, w - x0)
            wx = _ramp(tw, overlap, x0 == xs[0], x0 == xs[-1], x.device, torch.float32)
            y = fn(x[:, :, y0 : y0 + th, x0 : x0 + tw]).float()  # (N, C', th, tw)
            if out is None:
                out = torch.zeros(n, y.shape[1], h, w, device=x.device, dtype=torch.float32)
            wt = (wy[:, None] * wx[None, :])[None, None]  # (1, 1, th, tw)
            out[:, :, y0 : y0 + th, x0 : x0 + tw] += y * wt
            weight_sum[:, :, y0 : y0 + th, x0 : x0 + tw] += wt
    assert out is not None
    return (out / weight_sum).to(x.dtype)


_ROWS = 64  # rows quantised at a time


def _quantize(x: torch.Tensor) -> np.ndarray:
    """float (C, h, w) in [0, 1] → uint8 (h, w, C), rounded as `gefu.imageio.to_uint8` rounds."""
    return (x.clamp(0, 1).cpu().permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)


def tile_apply_uint8(
    fn: Callable[[torch.Tensor], torch.Tensor],
    read: Callable[[int, int, int, int], torch.Tensor],
    size: tuple[int, int],
    tile: int,
    overlap: int = DEFAULT_OVERLAP,
    multiple: int = 8,
) -> np.ndarray:
    """`tile_apply` for an image read tile by tile, with a uint8 result: peak memory follows the tile.

    `read(y0, y1, x0, x1)` returns rows y0:y1 and columns x0:x1 of the image as a (1, C, h, w) float tensor; `fn`
    maps it to (1, C', h, w) in [0, 1]. `size` is (H, W). Returns uint8 (H, W, C'), equal to quantising
    `tile_apply(fn, whole image, tile, overlap, multiple)`. Rows are finished band by band: once the tiles of a
    band are done, the rows above the next band's first row get no more contributions and are quantised into the
    result; only one band (tile rows × W) of float sums is kept.
    """
    h, w = size
    tile, overlap = tile_geometry(tile, overlap, multiple)
    if h <= tile and w <= tile:
        return _quantize(fn(read(0, h, 0, w)).float()[0])
    stride = tile - overlap
    ys, xs = _starts(h, tile, stride), _starts(w, tile, stride)
    out: np.ndarray | None = None
    acc = wsum = None
    top = 0  # image row of acc's first row
    for i, y0 in enumerate(ys):
        th = min(tile, h - y0)
        wy = _ramp(th, overlap, y0 == ys[0], y0 == ys[-1], "cpu", torch.float32)
        r0 = y0 - top
        for x0 in xs:
            tw = min(tile, w - x0)
            wx = _ramp(tw, overlap, x0 == xs[0], x0 == xs[-1], "cpu", torch.float32)
            y = fn(read(y0, y0 + th, x0, x0 + tw)).float().cpu()[0]  # (C', th, tw)
            if out is None:
                out = np.empty((h, w, y.shape[0]), dtype=np.uint8)
                acc = torch.zeros(y.shape[0], tile, w, dtype=torch.float32)  # (C', tile, W)
                wsum = torch.zeros(1, tile, w, dtype=torch.float32)
            wt = (wy[:, None] * wx[None, :])[None]  # (1, th, tw)
            acc[:, r0 : r0 + th, x0 : x0 + tw] += y * wt
            wsum[:, r0 : r0 + th, x0 : x0 + tw] += wt
        done = (ys[i + 1] if i + 1 < len(ys) else h) - top  # rows of acc that are final
        for r in range(0, done, _ROWS):  # a few rows at a time: no image-wide float temporaries
            r1 = min(done, r + _ROWS)
            out[top + r : top + r1] = _quantize(acc[:, r:r1] / wsum[:, r:r1])
        keep = min(th, tile) - done  # rows shared with the next band (about `overlap`): move them to the top
        if keep > 0:
            acc[:, :keep] = acc[:, done : done + keep].clone()
            wsum[:, :keep] = wsum[:, done : done + keep].clone()
        acc[:, max(keep, 0) :].zero_()
        wsum[:, max(keep, 0) :].zero_()
        top += done
    assert out is not None
    return out


def auto_tile(
    bytes_per_pixel: float, size: tuple[int, int], available: float, fraction: float = 0.5, step: int = 256
) -> int | None:
    """The tile side for an image of `size` (H, W) whose untiled processing needs `bytes_per_pixel` × H × W bytes:
    0 when the whole image fits in `fraction` of `available` (no tiling needed), else the largest multiple of
    `step` whose tile fits there, or None when not even a `step`×`step` tile fits."""
    budget = fraction * available
    h, w = size
    if bytes_per_pixel * h * w <= budget:
        return 0
    side = int((budget / bytes_per_pixel) ** 0.5) // step * step
    return side if side >= step else None
