"""One image convention for the whole package: float32 tensors, RGB, values in [0, 1], shape (3, H, W) for one
image and (N, 3, H, W) for a batch.

Reading is in two steps so that huge images stay small in memory: `read_image` decodes a file into a
`RawImage` that keeps the file's own integer samples (uint8 for 8-bit files: 3 bytes per pixel), and
`RawImage.tensor(region)` converts the whole image or one tile to the float convention. `load_image` does both.
Writing goes through uint8 arrays (`to_uint8`, `save_array`, `save_image`), atomically. `scan_images` expands
files and folders and reports everything it passes over. Padding and tiling live in `gefu.tiling` (re-exported
here).

Pillow's decompression-bomb limit (`PIL.Image.MAX_IMAGE_PIXELS`) is a process-wide setting. This module never
changes it per call (nor any `warnings` filter); on import it raises it, once, to `MAX_PIXELS` when it is lower,
so that the one limit that applies is `MAX_PIXELS`, checked here on the image header before decoding.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .device import release_free_memory
from .fileio import atomic_path
from .tiling import DEFAULT_OVERLAP, crop_to, pad_to_multiple, tile_apply

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_OVERLAP", "IMAGE_EXTENSIONS", "MAX_PIXELS", "UNSUPPORTED_EXTENSIONS", "WRITABLE_EXTENSIONS",
    "ImageReadError", "RawImage", "Scan", "Skipped", "crop_to", "find_images", "image_size", "load_image",
    "pad_to_multiple", "pil_to_tensor", "read_image", "save_array", "save_image", "scan_images", "tensor_to_pil",
    "tile_apply", "to_uint8",
]  # fmt: skip

_READABLE = set(Image.registered_extensions())

#: Extensions taken as images inside folders (a file named on the command line is always tried).
IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm", ".gif", ".tga"}
    | ({".avif"} & _READABLE)
)

#: Image formats the installed Pillow cannot read: reported (not silently passed over) when found in folders.
UNSUPPORTED_EXTENSIONS = frozenset(
    {".heic", ".heif", ".avif", ".jxl", ".dng", ".cr2", ".cr3", ".nef", ".arw", ".orf", ".rw2", ".raf", ".svg"}
    - _READABLE
)

#: Formats `save_array` / `save_image` write.
WRITABLE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})

#: Refuse images above this many pixels (decompression-bomb guard): 16384 × 16384. The one pixel limit of gefu.
MAX_PIXELS = 16384 * 16384

if Image.MAX_IMAGE_PIXELS is not None and Image.MAX_IMAGE_PIXELS < MAX_PIXELS:
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # once, at import: our own check below is the limit that applies


class ImageReadError(ValueError):
    """An image file could not be read; the message names the file and the reason."""


def _limit_text() -> str:
    side = int(MAX_PIXELS**0.5)
    square = f" ({side}×{side})" if side * side == MAX_PIXELS else ""
    return f"{MAX_PIXELS:,} pixels{square}"


# ----------------------------------------------------------------------------------------------------------------
# Decoded images
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class RawImage:
    """A decoded image in its file's own samples: `array` (H, W) grey or (H, W, 3) RGB, uint8, uint16, int32 or
    float32; `scale` is the sample value that means full white (255, 65535, ...; 1.0 for float images).
    `frames` is how many frames the file holds (only the first is decoded)."""

    array: np.ndarray
    scale: float
    frames: int = 1
    path: Path | None = None

    @property
    def height(self) -> int:
        return int(self.array.shape[0])

    @property
    def width(self) -> int:
        return int(self.array.shape[1])

    @property
    def pixels(self) -> int:
        return self.height * self.width

    def tensor(self, y0: int = 0, y1: int | None = None, x0: int = 0, x1: int | None = None) -> torch.Tensor:
        """Rows y0:y1 and columns x0:x1 (default: all) → float32 (3, h, w) in [0, 1]."""
        a = self.array[y0:y1, x0:x1]
        if a.dtype.kind == "f":
            f = a.astype(np.float32)
        elif a.dtype.itemsize <= 2:  # uint8 / uint16: exact in float32
            f = a.astype(np.float32) / np.float32(self.scale)
        else:  # 32-bit integers: divide in float64 first
            f = (a.astype(np.float64) / self.scale).astype(np.float32)
        if f.ndim == 2:
            f = np.repeat(f[:, :, None], 3, axis=2)
        f = np.clip(f, 0.0, 1.0)
        return torch.from_numpy(np.ascontiguousarray(f)).permute(2, 0, 1).contiguous()  # (3, h, w)


def _rawmode(img: Image.Image) -> str:
    """The decoder's raw mode of an opened (not yet loaded) image, e.g. "I;16B" or "I;32S"; "" when unknown.
    Pillow scales PGM/PPM samples with any maxval above 255 to 16 bits ("ppm" decoder)."""
    for tile in getattr(img, "tile", None) or []:
        codec, args = tile[0], tile[3]
        if codec == "ppm":
            return "I;16"
        if isinstance(args, tuple) and args:
            args = args[0]
        if isinstance(args, str):
            return args
    return ""


def _int_scale(img: Image.Image) -> float:
    """Full-white value of a mode "I" (32-bit integer) image, from its declared bit depth — never from its values.

    TIFF: BitsPerSample and SampleFormat; other files: the decoder's raw mode (16-bit PNG/PGM samples arrive as
    "I;16…", 32-bit ones as "I;32…" or "I"). Unknown sources are taken as 16-bit, the usual origin of mode "I".
    """
    tags = getattr(img, "tag_v2", None)
    if tags is not None and 258 in tags:
        bits = tags[258]
        bits = int(bits[0] if isinstance(bits, tuple) else bits)
        fmt = tags.get(339, 1)
        signed = (fmt[0] if isinstance(fmt, tuple) else fmt) == 2
        return float(2 ** (bits - 1) - 1 if signed else 2**bits - 1)
    raw = _rawmode(img)
    if raw.startswith("I;8"):
        return 255.0
    if raw == "I" or (raw.startswith("I;32") and "S" in raw[4:]):
        return float(2**31 - 1)
    if raw.startswith("I;32"):
        return float(2**32 - 1)
    return 65535.0


_STRIP_PIXELS = 1 << 22  # images above 4 MP are converted in strips of about 1 MP
_TRIM_PIXELS = 1 << 24  # after reading or writing images above 16 MP, free memory goes back to the system


def _to_array(img: Image.Image, dtype=None) -> np.ndarray:
    """np.asarray(img), for big images strip by strip: Pillow's own conversion (tobytes) briefly holds two
    copies of the whole image besides its own 4-byte pixels, which for a 16000² photo is 1.4 GB more."""
    w, h = img.size
    if w * h <= _STRIP_PIXELS:
        return np.asarray(img, dtype=dtype)
    rows = max(1, _STRIP_PIXELS // (4 * w))
    first = np.asarray(img.crop((0, 0, w, min(rows, h))), dtype=dtype)
    out = np.empty((h, *first.shape[1:]), dtype=first.dtype)
    out[: first.shape[0]] = first
    for y0 in range(first.shape[0], h, rows):
        with img.crop((0, y0, w, min(y0 + rows, h))) as strip:
            out[y0 : y0 + strip.height] = np.asarray(strip, dtype=dtype)
    return out


def _pil_to_raw(img: Image.Image, int_scale: float | None = None) -> RawImage:
    """A PIL image → RawImage (no float conversion yet). Alpha is dropped (not composited)."""
    mode = img.mode
    if mode.startswith("I;16"):
        return RawImage(_to_array(img), 65535.0)
    if mode == "I":
        return RawImage(_to_array(img, np.int32), int_scale or _int_scale(img))
    if mode == "F":
        return RawImage(_to_array(img, np.float32), 1.0)
    if mode in ("RGB", "L"):
        return RawImage(_to_array(img), 255.0)
    rgba = img.convert("RGBA" if "A" in mode or mode == "P" else "RGB")
    rgb = rgba.convert("RGB") if rgba.mode != "RGB" else rgba
    if rgba is not rgb:
        rgba.close()
    try:
        return RawImage(_to_array(rgb), 255.0)
    finally:
        rgb.close()  # frees the pixels now, not at the next garbage collection


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """Any PIL image → float32 (3, H, W) in [0, 1].

    Grey images are repeated to three channels; alpha is dropped (not composited); 16- and 32-bit integer and
    float modes are scaled by their declared full range (bit depth), not by the values they happen to hold.
    """
    return _pil_to_raw(img).tensor()


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """float (3, H, W) or (1, 3, H, W) in [0, 1] → uint8 (H, W, 3), rounded to nearest and clipped."""
    if img.ndim == 4:
        if img.shape[0] != 1:
            raise ValueError(f"expected one image, got a batch of {img.shape[0]}")
        img = img[0]
    if img.ndim != 3 or img.shape[0] != 3:
        raise ValueError(f"expected an RGB image (3, H, W), got shape {tuple(img.shape)}")
    return (img.detach().float().clamp(0, 1).cpu().permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)


def tensor_to_pil(img: torch.Tensor) -> Image.Image:
    """float (3, H, W) or (1, 3, H, W) in [0, 1] → 8-bit RGB PIL image (rounded, clipped)."""
    return Image.fromarray(to_uint8(img), mode="RGB")


# ----------------------------------------------------------------------------------------------------------------
# Reading and writing files
# ----------------------------------------------------------------------------------------------------------------


def _check_regular_file(path: Path) -> None:
    try:
        st = path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            raise ImageReadError(f"{path}: broken symbolic link (its target does not exist)") from None
        raise FileNotFoundError(f"{path}: no such file") from None
    except OSError as err:
        raise ImageReadError(f"{path}: cannot read ({err.strerror or err})") from None
    if stat.S_ISDIR(st.st_mode):
        raise ImageReadError(f"{path}: is a folder, not an image file")
    if not stat.S_ISREG(st.st_mode):
        raise ImageReadError(f"{path}: not a regular file ({_kind(st.st_mode)}); give an image file")
    if st.st_size == 0:
        raise ImageReadError(f"{path}: the file is empty")


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a file"


def _open(path: Path) -> Image.Image:
    """Open (header only) with the pixel limit checked; errors name the file."""
    try:
        img = Image.open(path)
    except Image.DecompressionBombError:
        raise ImageReadError(
            f"{path}: refused: more pixels than Pillow's own limit (PIL.Image.MAX_IMAGE_PIXELS = "
            f"{Image.MAX_IMAGE_PIXELS:,}, lowered since gefu was imported); gefu's own limit is {_limit_text()}"
        ) from None
    except UnidentifiedImageError:
        hint = f" ({path.suffix} files need a Pillow plugin; convert them to PNG or JPEG)" if (
            path.suffix.lower() in UNSUPPORTED_EXTENSIONS) else ""
        raise ImageReadError(f"{path}: not an image file Pillow can read{hint}") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageReadError(f"{path}: cannot decode image ({err})") from None
    w, h = img.size
    if w * h > MAX_PIXELS:
        img.close()
        raise ImageReadError(
            f"{path}: refused: {w}×{h} = {w * h:,} pixels, more than the limit of {_limit_text()}; downscale it first"
        )
    return img


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(height, width) of an image file, from its header (no decoding). Errors as `read_image`."""
    path = Path(path)
    _check_regular_file(path)
    with _open(path) as img:
        w, h = img.size
        # EXIF orientations 5-8 swap the sides
        if img.getexif().get(0x0112, 1) in (5, 6, 7, 8):
            w, h = h, w
    return h, w


def read_image(path: str | os.PathLike) -> RawImage:
    """Decode an image file's first frame into a `RawImage` (its own integer samples), EXIF orientation applied.

    Raises FileNotFoundError for a missing file and ImageReadError (a ValueError) naming the file for folders,
    FIFOs and devices, empty, corrupt, truncated or oversized (more than `MAX_PIXELS`) files.
    """
    path = Path(path)
    _check_regular_file(path)
    img = _open(path)
    try:
        frames = int(getattr(img, "n_frames", 1) or 1)
        int_scale = _int_scale(img) if img.mode == "I" else None  # the raw mode is gone after load()
        img.load()
        ImageOps.exif_transpose(img, in_place=True)
        raw = _pil_to_raw(img, int_scale)
    except (OSError, SyntaxError, ValueError) as err:  # truncated or corrupt data
        raise ImageReadError(f"{path}: cannot decode image ({err})") from None
    except MemoryError:
        raise ImageReadError(f"{path}: not enough memory to decode this image") from None
    finally:
        img.close()  # closes the file and frees Pillow's copy of the pixels at once
        if img.size[0] * img.size[1] > _TRIM_PIXELS:
            release_free_memory()
    raw.frames, raw.path = frames, path
    return raw


def load_image(path: str | os.PathLike) -> torch.Tensor:
    """Read any image file Pillow can open → float32 (3, H, W) RGB in [0, 1], EXIF orientation applied.

    Raises FileNotFoundError for a missing file and ImageReadError (a ValueError) naming the file for empty,
    corrupt, truncated, oversized (decompression bomb) files and for things that are not regular files.
    Only the first frame of an animated GIF or a multi-page TIFF is read (logged).
    """
    raw = read_image(path)
    if raw.frames > 1:
        logger.warning("%s has %d frames; only the first is used", path, raw.frames)
    return raw.tensor()


def save_array(arr: np.ndarray, path: str | os.PathLike, quality: int = 95) -> Path:
    """Write uint8 (H, W, 3) as PNG/JPEG/… (format from the suffix), atomically and durably."""
    path = Path(path)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None or path.suffix.lower() not in WRITABLE_EXTENSIONS:
        raise ValueError(f"{path}: unknown image format {path.suffix!r}; use .png or .jpg")
    pil = Image.fromarray(np.ascontiguousarray(arr, dtype=np.uint8), mode="RGB")
    kwargs = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    try:
        with atomic_path(path) as tmp:
            pil.save(tmp, format=fmt, **kwargs)
    finally:
        pil.close()
        if arr.shape[0] * arr.shape[1] > _TRIM_PIXELS:
            release_free_memory()
    return path


def save_image(img: torch.Tensor, path: str | os.PathLike, quality: int = 95) -> Path:
    """Write float (3, H, W) in [0, 1] as 8-bit PNG/JPEG/… (format from the suffix), atomically.

    The file appears complete or not at all: it is written to a temporary file in the same folder, flushed to
    disk, then renamed.
    """
    return save_array(to_uint8(img), path, quality)


# ----------------------------------------------------------------------------------------------------------------
# Finding images in files and folders
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Skipped:
    """Something `scan_images` passed over, and why (one sentence)."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class Scan:
    """`scan_images`' result: `found` (path, relative path) pairs in order, and what was `skipped`."""

    found: list[tuple[Path, Path]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def _walk(folder: Path, rel: Path, ancestors: frozenset[tuple[int, int]], scan: Scan) -> None:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError as err:
        reason = "permission denied" if isinstance(err, PermissionError) else (err.strerror or str(err))
        scan.skipped.append(Skipped(folder, f"cannot read this folder ({reason}); its images were not searched"))
        return
    for entry in entries:
        if entry.name.startswith("."):  # hidden files and folders (and gefu's own temporary files)
            continue
        path, sub = Path(entry.path), rel / entry.name
        suffix = path.suffix.lower()
        try:
            st = path.stat()
        except OSError as err:
            if suffix in IMAGE_EXTENSIONS or entry.is_symlink():
                scan.skipped.append(Skipped(path, _link_problem(path, err)))
            continue
        if stat.S_ISDIR(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if key in ancestors:
                scan.skipped.append(Skipped(path, "symbolic link loop (links back to a folder being searched)"))
                continue
            _walk(path, sub, ancestors | {key}, scan)
        elif suffix in UNSUPPORTED_EXTENSIONS:
            scan.skipped.append(Skipped(path, f"{suffix} images cannot be read here; convert them to PNG or JPEG"))
        elif suffix in IMAGE_EXTENSIONS:
            if stat.S_ISREG(st.st_mode):
                scan.found.append((path, sub))
            else:
                scan.skipped.append(Skipped(path, f"not a regular file ({_kind(st.st_mode)})"))


def _link_problem(path: Path, err: OSError) -> str:
    if err.errno == errno.ELOOP:
        return "symbolic link loop"
    if err.errno == errno.ENOENT:
        return "broken symbolic link (its target does not exist)"
    return f"cannot read ({err.strerror or err})"


def scan_images(paths: Iterable[str | os.PathLike]) -> Scan:
    """Expand files and folders (recursively, following symbolic links) into `(path, relative path)` pairs.

    A file named directly is always taken (whatever its extension) with its name as relative path; files found
    in a folder keep their path relative to that folder, so outputs can mirror the input tree, sorted by name.
    Inside folders only image extensions count and hidden entries are passed over in silence; everything else
    passed over is reported in `skipped`: symbolic link loops, broken links, unreadable sub-folders, image
    formats Pillow cannot read (HEIC, ...), FIFOs and devices, and a named folder that holds no image.
    A path that does not exist raises FileNotFoundError (a typo, not a skip).
    """
    scan = Scan()
    for p in map(Path, paths):
        try:
            st = p.stat()
        except FileNotFoundError:
            if p.is_symlink():
                raise FileNotFoundError(f"{p}: broken symbolic link (its target does not exist)") from None
            raise FileNotFoundError(f"{p}: no such file or folder") from None
        except OSError as err:
            scan.skipped.append(Skipped(p, _link_problem(p, err)))
            continue
        if stat.S_ISDIR(st.st_mode):
            before = len(scan.found)
            _walk(p, Path(), frozenset({(st.st_dev, st.st_ino)}), scan)
            if len(scan.found) == before:
                scan.skipped.append(Skipped(p, "no images in this folder"))
        elif stat.S_ISREG(st.st_mode):
            scan.found.append((p, Path(p.name)))
        else:
            scan.skipped.append(Skipped(p, f"not a regular file ({_kind(st.st_mode)})"))
    return scan


def find_images(paths: Iterable[str | os.PathLike]) -> list[tuple[Path, Path]]:
    """`scan_images(paths).found`; what was skipped is logged (warning). Missing paths raise FileNotFoundError."""
    scan = scan_images(paths)
    for skip in scan.skipped:
        logger.warning("skipped %s", skip)
    return scan.found
