"""One image convention for the whole package: float32 tensors, RGB, values in [0, 1], shape (3, H, W) for one
image and (N, 3, H, W) for a batch.

Also: atomic saving, reflect padding to a multiple of k (and cropping back), and tiled processing with smooth
blending so that memory depends on the tile size, not on the image.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

from .fileio import atomic_path

IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm", ".gif", ".tga"}
)

#: Refuse images above this many pixels (decompression-bomb guard; 16k × 16k).
MAX_PIXELS = 16384 * 16384


class ImageReadError(ValueError):
    """An image file could not be read; the message names the file and the reason."""


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """Any PIL image → float32 (3, H, W) in [0, 1].

    Grey images are repeated to three channels; alpha is dropped (not composited); 16- and 32-bit integer and
    float modes are scaled by their full range rather than clipped to 8 bits.
    """
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        arr = np.asarray(img, dtype=np.uint16).astype(np.float32) / 65535.0
    elif mode == "I":
        arr = np.asarray(img, dtype=np.int32).astype(np.float64)
        # 'I' files are usually 16-bit PNGs opened as 32-bit; scale by the range the values actually use.
        arr = (arr / (65535.0 if arr.max(initial=0) > 255 else 255.0)).astype(np.float32)
    elif mode == "F":
        arr = np.asarray(img, dtype=np.float32)
    else:
        if mode not in ("RGB", "L"):
            img = img.convert("RGBA" if "A" in mode or mode == "P" else "RGB").convert("RGB")
        arr = np.asarray(img, dtype=np.uint8).astype(np.float32) / 255.0
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    arr = np.clip(arr, 0.0, 1.0)
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).contiguous()  # (3, H, W)


def tensor_to_pil(img: torch.Tensor) -> Image.Image:
    """float (3, H, W) or (1, 3, H, W) in [0, 1] → 8-bit RGB PIL image (rounded, clipped)."""
    if img.ndim == 4:
        if img.shape[0] != 1:
            raise ValueError(f"tensor_to_pil takes one image, got a batch of {img.shape[0]}")
        img = img[0]
    if img.ndim != 3 or img.shape[0] != 3:
        raise ValueError(f"expected an RGB image (3, H, W), got shape {tuple(img.shape)}")
    arr = (img.detach().float().clamp(0, 1).cpu().permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(arr, mode="RGB")


def load_image(path: str | os.PathLike) -> torch.Tensor:
    """Read any image file Pillow can open → float32 (3, H, W) RGB in [0, 1], EXIF orientation applied.

    Raises FileNotFoundError for a missing file and ImageReadError (a ValueError) naming the file for empty,
    corrupt, truncated or oversized (decompression bomb) files.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ImageReadError(f"{path}: the file is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            old_limit = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = MAX_PIXELS
            try:
                with Image.open(path) as img:
                    img.load()
                    img = ImageOps.exif_transpose(img)
                    return pil_to_tensor(img)
            finally:
                Image.MAX_IMAGE_PIXELS = old_limit
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageReadError(f"{path}: refused, too many pixels (limit {MAX_PIXELS:,}): {err}") from None
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: not an image file Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageReadError(f"{path}: cannot decode image ({err})") from None


def save_image(img: torch.Tensor, path: str | os.PathLike, quality: int = 95) -> Path:
    """Write float (3, H, W) in [0, 1] as 8-bit PNG/JPEG/… (format from the suffix), atomically.

    The file appears complete or not at all: it is written to a temporary file in the same folder, then renamed.
    """
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unknown image format {path.suffix!r}; use .png or .jpg")
    pil = tensor_to_pil(img)
    kwargs = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    with atomic_path(path) as tmp:
        pil.save(tmp, format=fmt, **kwargs)
    return path


def find_images(paths: Iterable[str | os.PathLike]) -> list[tuple[Path, Path]]:
    """Expand files and folders (recursively) into `(path, relative path)` pairs, sorted within each folder.

    A file given directly keeps just its name as relative path; files found in a folder keep their path relative
    to that folder, so outputs can mirror the input tree. Hidden files are skipped; only image extensions count
    inside folders (a file named explicitly is always taken, whatever its extension).
    """
    found: list[tuple[Path, Path]] = []
    for p in map(Path, paths):
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                rel = f.relative_to(p)
                if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS and not any(
                    part.startswith(".") for part in rel.parts
                ):
                    found.append((f, rel))
        elif p.exists():
            found.append((p, Path(p.name)))
        else:
            raise FileNotFoundError(f"{p}: no such file or folder")
    return found


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
    overlap: int = 32,
    multiple: int = 8,
) -> torch.Tensor:
    """Apply `fn` to overlapping tiles of x (N, C, H, W) and blend the results without seams.

    `fn` maps (N, C, h, w) → (N, C', h, w). Tiles are `tile`×`tile` (rounded down to `multiple`), neighbours overlap
    by `overlap` pixels and are blended with raised-cosine weights that sum to one. The output is accumulated tile by
    tile, so peak memory of `fn` depends on the tile size, not on the image. Images no larger than a tile are
    processed whole.
    """
    if tile <= 0:
        raise ValueError(f"tile must be positive, got {tile}")
    tile = max(multiple, tile // multiple * multiple)
    overlap = max(0, min(overlap, tile // 2))
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
