"""Training data for SCUF: unpaired low/normal-light folders, per-image captions, paired validation images.

Layout (CycleGAN-style; explicit folders may be given instead)::

    DATA/trainA/…   low-light images      (also train_A/)      + captions file, e.g. trainA/captions.tsv
    DATA/trainB/…   normal-light images   (also train_B/)      + captions file, e.g. trainB/captions.tsv

Captions files (written by ``gefu caption``) are TSV/CSV with a ``filepath`` column and a ``caption`` (or
``title``) column, or JSONL with the same keys. ``filepath`` may be absolute, relative to the captions file or
the image folder, or a bare file name; it is matched to the images in that order.

Sampling is a pure function of ``(seed, index)`` where ``index`` counts micro-batches over the whole run
(``(step·grad_accum + micro)·world_size + rank``): the low-light images are visited in a fresh random order each
epoch, each is paired with a normal-light image drawn at random, and crop offsets and flips are drawn from the
same seeded stream. Resuming at step k therefore reproduces exactly the batches an uninterrupted run would have
seen, with no data-loader state to save.

Preparation (``DataConfig.preparation``):

- ``official``: resize to ``resize``×``resize`` (384², LANCZOS, aspect not kept — as the official code), random
  ``crop``×``crop`` crop (256), random horizontal flip;
- ``crop``: a random ``crop``×``crop`` crop of the image at its own resolution (images smaller than the crop
  are first upscaled so the short side equals it), random flip when ``hflip``.

Every problem a user can fix (missing or empty folders, unreadable images, images without a caption) raises
before training starts, listing the offending files.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..imageio import ImageReadError, find_images, load_image, pil_to_tensor, tensor_to_pil
from .caption_files import domain_captions, find_captions_file, load_captions, match_captions
from .fields import check_fields, option, to_dict
from .rewrite import CAPTION_REWRITES

__all__ = [
    "DataConfig",
    "TrainBatch",
    "UnpairedData",
    "PairedValData",
    "resolve_domain_dirs",
    "find_val_pairs",
    "load_captions",
    "match_captions",
    "find_captions_file",
    "check_images",
    "build_train_data",
    "build_val_data",
    "PREPARATIONS",
]

log = logging.getLogger(__name__)

PREPARATIONS = ("official", "crop")
LOW_NAMES = ("trainA", "train_A")
NORMAL_NAMES = ("trainB", "train_B")
VAL_LOW_NAMES = ("low", "Low", "input", "testA", "test_A", "A", "lq")
VAL_NORMAL_NAMES = ("high", "High", "normal", "Normal", "gt", "GT", "target", "testB", "test_B", "B")


@dataclass
class DataConfig:
    """Where the training data lives and how a training crop is made."""

    SECTION: ClassVar[str] = "data"

    root: str | None = None  # folder holding trainA/ and trainB/ (or train_A/, train_B/)
    low: str | None = None  # low-light folder (overrides root/trainA)
    normal: str | None = None  # normal-light folder (overrides root/trainB)
    captions_low: str | None = None  # captions file of the low folder (default: <low>/captions.{tsv,csv,jsonl})
    captions_normal: str | None = None  # captions file of the normal folder
    # night → day rewrite applied to the captions when they are read (gefu.scuf.rewrite): "none" (use them as
    # written), "words" (gefu's whole-word rewrite) or "official" (the released code's substring table; the official
    # preset, so raw BLIP captions give the official training captions; applying it to already rewritten
    # captions changes nothing)
    caption_rewrite: str = option("none", choices=CAPTION_REWRITES)
    val: str | None = None  # paired validation folder with low/ and high/ (or normal/, testA/ testB/ …) inside
    val_low: str | None = None  # or the two validation folders explicitly (paired by file name)
    val_normal: str | None = None
    val_max_images: int = option(0, ge=0)  # validate on the first N pairs only (0: all)
    val_size: int = option(0, ge=0)  # resize validation pairs so the short side is this many pixels (0: native)
    # "official" (resize 384² → random crop 256 → flip) | "crop" (random crop)
    preparation: str = option("official", choices=PREPARATIONS)
    resize: int = option(384, ge=8)
    crop: int = option(256, ge=8)
    hflip: bool = True
    seed: int = 0  # seeds the pairing, order, crops and flips
    num_workers: int = option(0, ge=0)  # DataLoader worker processes that prefetch training batches

    def __post_init__(self) -> None:
        check_fields(self)
        if self.preparation == "official" and self.crop > self.resize:
            raise ValueError(f"data.crop ({self.crop}) cannot exceed data.resize ({self.resize})")

    def to_dict(self) -> dict:
        return to_dict(self)


@dataclass
class TrainBatch:
    """One micro-batch: ``low`` and ``normal`` (B, 3, crop, crop) float32 in [0, 1], their files and captions."""

    low: torch.Tensor
    normal: torch.Tensor
    low_paths: list[str]
    normal_paths: list[str]
    low_captions: list[str] | None
    normal_captions: list[str] | None


# ----------------------------------------------------------------------------------------------------------------
# Folders
# ----------------------------------------------------------------------------------------------------------------


def _first_existing(root: Path, names: Sequence[str]) -> Path | None:
    return next((root / n for n in names if (root / n).is_dir()), None)


def resolve_domain_dirs(cfg: DataConfig) -> tuple[Path, Path]:
    """The (low, normal) training folders from ``cfg`` (explicit paths win over ``root``)."""
    root = Path(cfg.root).expanduser() if cfg.root else None
    if root is not None and not root.is_dir():
        raise FileNotFoundError(f"data folder {root} does not exist")
    dirs = []
    for explicit, names, what in ((cfg.low, LOW_NAMES, "low-light"), (cfg.normal, NORMAL_NAMES, "normal-light")):
        if explicit:
            d = Path(explicit).expanduser()
            if not d.is_dir():
                raise FileNotFoundError(f"{what} folder {d} does not exist")
        elif root is not None:
            d = _first_existing(root, names)
            if d is None:
                raise FileNotFoundError(
                    f"{root} has no {what} folder: expected one of {', '.join(names)} inside it "
                    f"(or pass the folder explicitly)"
                )
        else:
            raise ValueError(f"no {what} training folder: give a data root with {names[0]}/ or an explicit folder")
        dirs.append(d)
    return dirs[0], dirs[1]


def _list_images(folder: Path, what: str) -> list[tuple[Path, Path]]:
    images = find_images([folder])
    if not images:
        raise ValueError(f"the {what} folder {folder} contains no images (png, jpg, bmp, tif, webp, …)")
    return images


def check_images(paths: Iterable[Path], min_size: int = 1) -> None:
    """Open every image header (no full decode) and raise one ImageReadError listing all unreadable files.

    ``min_size``: images whose short side is below it are reported too.
    """
    bad: list[str] = []
    for p in paths:
        try:
            if Path(p).stat().st_size == 0:
                raise ValueError("the file is empty")
            with Image.open(p) as img:
                size = img.size
                img.verify()  # checks the structure (and PNG checksums) without decoding the pixels
            if min(size) < min_size:
                bad.append(f"{p} (only {size[0]}×{size[1]} pixels, need at least {min_size})")
        except Exception as err:  # noqa: BLE001 - any failure means the file is unusable
            bad.append(f"{p} ({err.__class__.__name__}: {err})")
    if bad:
        shown = "\n  ".join(bad[:10])
        more = f"\n  … and {len(bad) - 10} more" if len(bad) > 10 else ""
        raise ImageReadError(f"{len(bad)} image(s) cannot be used for training:\n  {shown}{more}")


# ----------------------------------------------------------------------------------------------------------------
# Seeded sampling and preparation
# ----------------------------------------------------------------------------------------------------------------

_STREAM_ORDER, _STREAM_PAIR, _STREAM_AUG = 1, 2, 3


def _rng(seed: int, stream: int, *index: int) -> np.random.Generator:
    """An independent numpy generator for (seed, stream, index…) — the same numbers in any process, any time."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, stream, *index])


def _prepare(img: torch.Tensor, cfg: DataConfig, rng: np.random.Generator) -> torch.Tensor:
    """One image (3, H, W) [0, 1] → a training crop (3, crop, crop) [0, 1], following ``cfg.preparation``."""
    c = cfg.crop
    if cfg.preparation == "official":
        pil = tensor_to_pil(img).resize((cfg.resize, cfg.resize), Image.LANCZOS)
        img = pil_to_tensor(pil)
    else:
        h, w = img.shape[-2:]
        if min(h, w) < c:  # upscale so the crop fits
            scale = c / min(h, w)
            size = (max(c, round(h * scale)), max(c, round(w * scale)))
            img = F.interpolate(img[None], size=size, mode="bicubic", antialias=True, align_corners=False)[0]
            img = img.clamp(0, 1)
    h, w = img.shape[-2:]
    y0 = int(rng.integers(0, h - c + 1))
    x0 = int(rng.integers(0, w - c + 1))
    img = img[:, y0 : y0 + c, x0 : x0 + c]
    if cfg.hflip and rng.random() < 0.5:
        img = img.flip(-1)
    return img.contiguous()


class UnpairedData:
    """Unpaired low/normal images with optional captions; ``batch(index, batch_size)`` is deterministic.

    Build it with ``build_train_data(cfg, need_captions)`` so every check runs before training.
    """

    def __init__(
        self,
        low: Sequence[Path],
        normal: Sequence[Path],
        cfg: DataConfig,
        low_captions: Sequence[str] | None = None,
        normal_captions: Sequence[str] | None = None,
    ) -> None:
        if not low or not normal:
            raise ValueError("both the low-light and the normal-light image lists must be non-empty")
        self.low = [Path(p) for p in low]
        self.normal = [Path(p) for p in normal]
        self.cfg = cfg
        self.low_captions = list(low_captions) if low_captions is not None else None
        self.normal_captions = list(normal_captions) if normal_captions is not None else None
        self._order_cache: tuple[int, np.ndarray] | None = None

    def _low_order(self, epoch: int) -> np.ndarray:
        if self._order_cache is None or self._order_cache[0] != epoch:
            self._order_cache = (epoch, _rng(self.cfg.seed, _STREAM_ORDER, epoch).permutation(len(self.low)))
        return self._order_cache[1]

    def indices(self, sample: int) -> tuple[int, int]:
        """(low index, normal index) of the ``sample``-th training sample of the run."""
        epoch, pos = divmod(sample, len(self.low))
        low_idx = int(self._low_order(epoch)[pos])
        normal_idx = int(_rng(self.cfg.seed, _STREAM_PAIR, sample).integers(0, len(self.normal)))
        return low_idx, normal_idx

    def item(self, sample: int) -> tuple[torch.Tensor, torch.Tensor, int, int]:
        """The ``sample``-th (low crop, normal crop, low index, normal index)."""
        li, ni = self.indices(sample)
        rng = _rng(self.cfg.seed, _STREAM_AUG, sample)
        low = _prepare(load_image(self.low[li]), self.cfg, rng)
        normal = _prepare(load_image(self.normal[ni]), self.cfg, rng)
        return low, normal, li, ni

    def batch(self, index: int, batch_size: int = 1) -> TrainBatch:
        """Micro-batch number ``index`` of the run (samples ``index·B … index·B + B − 1``)."""
        items = [self.item(index * batch_size + j) for j in range(batch_size)]
        lows, normals, lis, nis = zip(*items)
        return TrainBatch(
            low=torch.stack(lows),
            normal=torch.stack(normals),
            low_paths=[str(self.low[i]) for i in lis],
            normal_paths=[str(self.normal[i]) for i in nis],
            low_captions=[self.low_captions[i] for i in lis] if self.low_captions is not None else None,
            normal_captions=[self.normal_captions[i] for i in nis] if self.normal_captions is not None else None,
        )


class MicroBatches(torch.utils.data.Dataset):
    """``UnpairedData`` micro-batches ``index_of(i)`` for i = 0, 1, … as a Dataset (for DataLoader prefetching)."""

    def __init__(self, data: UnpairedData, indices: Sequence[int], batch_size: int) -> None:
        self.data, self.indices, self.batch_size = data, list(indices), batch_size

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> TrainBatch:
        return self.data.batch(self.indices[i], self.batch_size)


def build_train_data(cfg: DataConfig, need_captions: bool) -> UnpairedData:
    """Find, check and (if ``need_captions``) caption-match the training images; raises before any training."""
    low_dir, normal_dir = resolve_domain_dirs(cfg)
    low = _list_images(low_dir, "low-light")
    normal = _list_images(normal_dir, "normal-light")
    check_images([p for p, _ in low + normal])
    low_caps = normal_caps = None
    if need_captions:
        low_caps = domain_captions(low, low_dir, cfg.captions_low, "low-light", cfg.caption_rewrite)
        normal_caps = domain_captions(normal, normal_dir, cfg.captions_normal, "normal-light", cfg.caption_rewrite)
    log.info("training data: %d low-light images in %s, %d normal-light in %s", len(low), low_dir,
             len(normal), normal_dir)
    return UnpairedData([p for p, _ in low], [p for p, _ in normal], cfg, low_caps, normal_caps)


# ----------------------------------------------------------------------------------------------------------------
# Paired validation
# ----------------------------------------------------------------------------------------------------------------

_DOMAIN_WORDS = re.compile(r"(?i)(?<![a-z])(low|normal|high|dark|bright|gt|input|target)(?![a-z])")


def _loose_key(rel: Path) -> str:
    """A pairing key with domain words removed: LOL's ``low00690`` and ``normal00690`` both give ``00690``."""
    stem = rel.with_suffix("").as_posix()
    return "/".join(_DOMAIN_WORDS.sub("", part).strip("_-. ") for part in stem.lower().split("/"))


def find_val_pairs(low_dir: Path, normal_dir: Path) -> list[tuple[Path, Path]]:
    """Pair the images of two folders by relative path without extension, else by name minus domain words."""
    low = _list_images(low_dir, "validation low-light")
    normal = _list_images(normal_dir, "validation normal-light")
    for keyfn in (lambda r: r.with_suffix("").as_posix(), _loose_key):
        nmap: dict[str, Path] = {}
        for p, r in normal:
            nmap.setdefault(keyfn(r), p)
        pairs = [(p, nmap[keyfn(r)]) for p, r in low if keyfn(r) in nmap]
        if len(pairs) == len(low) and len({keyfn(r) for _, r in low}) == len(low):
            return pairs
    unmatched = [str(p) for p, r in low if _loose_key(r) not in {_loose_key(rn) for _, rn in normal}]
    raise ValueError(
        f"cannot pair the validation images of {low_dir} and {normal_dir} by file name; "
        f"{len(unmatched) or 'some'} low-light image(s) have no partner, e.g. {', '.join(unmatched[:3])}"
    )


def _val_dirs(cfg: DataConfig) -> tuple[Path, Path] | None:
    if cfg.val_low or cfg.val_normal:
        if not (cfg.val_low and cfg.val_normal):
            raise ValueError("give both validation folders (low and normal), or a validation folder with both")
        dirs = (Path(cfg.val_low).expanduser(), Path(cfg.val_normal).expanduser())
        for d in dirs:
            if not d.is_dir():
                raise FileNotFoundError(f"validation folder {d} does not exist")
        return dirs
    if cfg.val:
        root = Path(cfg.val).expanduser()
        if not root.is_dir():
            raise FileNotFoundError(f"validation folder {root} does not exist")
        low, normal = _first_existing(root, VAL_LOW_NAMES), _first_existing(root, VAL_NORMAL_NAMES)
        if low is None or normal is None:
            raise FileNotFoundError(
                f"{root} must hold a low-light folder ({', '.join(VAL_LOW_NAMES[:4])}, …) and a normal-light "
                f"folder ({', '.join(VAL_NORMAL_NAMES[:4])}, …) with images paired by file name"
            )
        return low, normal
    return None


class PairedValData:
    """Paired validation images: ``pairs[i] = (low path, normal path)``; ``load(i)`` → two (1, 3, H, W) in [0, 1]."""

    def __init__(self, pairs: Sequence[tuple[Path, Path]], size: int = 0) -> None:
        self.pairs = list(pairs)
        self.size = size

    def __len__(self) -> int:
        return len(self.pairs)

    def _load(self, path: Path) -> torch.Tensor:
        img = load_image(path)[None]  # (1, 3, H, W)
        if self.size:
            h, w = img.shape[-2:]
            scale = self.size / min(h, w)
            size = (max(1, round(h * scale)), max(1, round(w * scale)))
            img = F.interpolate(img, size=size, mode="bicubic", antialias=True, align_corners=False).clamp(0, 1)
        return img

    def load(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        low_path, normal_path = self.pairs[i]
        low, normal = self._load(low_path), self._load(normal_path)
        if low.shape != normal.shape:
            raise ValueError(f"validation pair {low_path} / {normal_path} differ in size: "
                             f"{tuple(low.shape[-2:])} vs {tuple(normal.shape[-2:])}")
        return low, normal


def build_val_data(cfg: DataConfig) -> PairedValData | None:
    """The paired validation set from ``cfg`` (None when none is configured), checked before training."""
    dirs = _val_dirs(cfg)
    if dirs is None:
        return None
    pairs = find_val_pairs(*dirs)
    if cfg.val_max_images:
        pairs = pairs[: cfg.val_max_images]
    check_images([p for pair in pairs for p in pair])
    return PairedValData(pairs, size=cfg.val_size)
