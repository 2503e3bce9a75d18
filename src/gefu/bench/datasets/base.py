"""The dataset interface (`Sample`, `Dataset`, the registry), the helpers every loader shares (listing images,
finding sub-folders case-insensitively, pairing files by name), and the target readers."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Literal, Sequence

import numpy as np
from PIL import Image

from ...imageio import IMAGE_EXTENSIONS
from ...registry import Registry

log = logging.getLogger(__name__)

Task = Literal["iqa", "classification", "detection", "segmentation"]

#: CODaN's 10 classes in the dataset's own order (class index = position).
CODAN_CLASSES = ("Bicycle", "Car", "Motorbike", "Bus", "Boat", "Cat", "Dog", "Bottle", "Cup", "Chair")

#: Cityscapes' 19 evaluation classes, in trainId order (0..18); 255 = ignore.
CITYSCAPES_CLASSES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
    "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle",
)  # fmt: skip


@dataclass(frozen=True)
class Sample:
    """One benchmark item: a stable id (relative path), the input image, and the task's target."""

    id: str
    image: Path
    target: Any


@dataclass
class Dataset:
    """A list of samples plus what a runner needs to score them."""

    name: str
    task: Task
    root: Path
    samples: list[Sample]
    classes: tuple[str, ...] = ()  # class names (classification, segmentation)
    ignore_index: int | None = None  # segmentation label to skip
    info: dict[str, Any] = field(default_factory=dict)  # layout facts worth reporting (split, subsets, ...)

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def __getitem__(self, i: int) -> Sample:
        return self.samples[i]

    @property
    def num_classes(self) -> int:
        return len(self.classes)


DATASETS: Registry[Dataset] = Registry("dataset")


def load_dataset(name: str, root: str | os.PathLike, **options: Any) -> Dataset:
    """Build the dataset registered as `name` (see `list_datasets()`) from the folder `root`."""
    return DATASETS.create(name, root=root, **options)


def list_datasets() -> list[str]:
    return DATASETS.names()


# ----------------------------------------------------------------------------------------------------------------
# Helpers: listing, locating sub-folders, pairing by name
# ----------------------------------------------------------------------------------------------------------------


def list_images(folder: Path, recursive: bool = False) -> list[Path]:
    """Image files in `folder` (hidden files skipped), sorted by name."""
    it = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(
        p for p in it
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def child(folder: Path, name: str) -> Path | None:
    """Sub-folder of `folder` called `name`, matched case-insensitively (exact match preferred)."""
    exact = folder / name
    if exact.is_dir():
        return exact
    if not folder.is_dir():
        return None
    hits = [p for p in folder.iterdir() if p.is_dir() and p.name.lower() == name.lower()]
    return hits[0] if len(hits) == 1 else None


def find_base(root: Path, candidates: Sequence[str], required: Sequence[str], what: str, layout: str) -> Path:
    """The first of root/candidate (in order) that holds every `required` sub-folder, or a clear error."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{what}: {root} is not a folder")
    for cand in candidates:
        base = root
        for part in Path(cand).parts if cand else ():
            base = child(base, part) if base is not None else None
        if base is not None and all(child(base, r) is not None for r in required):
            return base
    listing = ", ".join(sorted(p.name for p in root.iterdir() if p.is_dir())[:12]) or "no sub-folders"
    raise FileNotFoundError(f"{what}: expected the layout {layout} under {root}, found {listing}")


def rel(path: Path, base: Path) -> str:
    return path.relative_to(base).as_posix()


_NUMBER = re.compile(r"\d+")


def key_number(path: Path) -> str:
    """Pairing key 'number': the last run of digits in the file stem, without leading zeros."""
    nums = _NUMBER.findall(path.stem)
    if not nums:
        raise ValueError(f"{path}: no number in the file name to pair by")
    return str(int(nums[-1]))


def key_stem(path: Path) -> str:
    return path.stem


def pair_by_key(
    inputs: Iterable[Path],
    targets: Iterable[Path],
    key: Callable[[Path], str],
    what: str,
    strict: bool = True,
    target_key: Callable[[Path], str] | None = None,
) -> list[tuple[Path, Path]]:
    """Match inputs to targets by `key(path)` (`target_key` for targets, if different); errors name duplicates
    and files without a partner. strict=False drops unmatched files with a warning (duplicates always raise).
    """

    def index(paths: Iterable[Path], side: str) -> dict[str, Path]:
        keyfn = key if side == "input" or target_key is None else target_key
        out: dict[str, Path] = {}
        for p in paths:
            k = keyfn(p)
            if k in out:
                raise ValueError(f"{what}: {out[k].name} and {p.name} in the {side} folder have the same key {k!r}")
            out[k] = p
        return out

    a, b = index(inputs, "input"), index(targets, "target")
    missing_b = sorted(set(a) - set(b))
    missing_a = sorted(set(b) - set(a))
    if missing_a or missing_b:
        parts = []
        if missing_b:
            examples = ", ".join(a[k].name for k in missing_b[:3])
            parts.append(f"{len(missing_b)} input(s) without a target (e.g. {examples})")
        if missing_a:
            examples = ", ".join(b[k].name for k in missing_a[:3])
            parts.append(f"{len(missing_a)} target(s) without an input (e.g. {examples})")
        msg = f"{what}: {'; '.join(parts)}"
        if strict:
            raise ValueError(msg + " — files are paired by name; pass strict=False to skip unpaired files")
        log.warning("%s; skipping them", msg)
    return [(a[k], b[k]) for k in sorted(set(a) & set(b), key=lambda k: a[k].name)]


def nonempty(samples: list[Sample], what: str, where: Path) -> list[Sample]:
    if not samples:
        raise ValueError(f"{what}: no images found in {where}")
    return samples


# ----------------------------------------------------------------------------------------------------------------
# Target readers
# ----------------------------------------------------------------------------------------------------------------


def load_boxes(path: str | os.PathLike) -> np.ndarray:
    """Read a DARK FACE label file → float32 (M, 4) boxes x1, y1, x2, y2.

    Format: the first line is the number of faces M, then M lines `x1 y1 x2 y2` (extra columns are ignored).
    """
    path = Path(path)
    lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    if not lines:
        raise ValueError(f"{path}: empty label file (expected a count on the first line)")
    try:
        count = int(float(lines[0][0]))
        rows = [[float(v) for v in ln[:4]] for ln in lines[1:]]
    except ValueError:
        raise ValueError(f"{path}: not a DARK FACE label file (first line: count, then 'x1 y1 x2 y2' lines)") from None
    if count != len(rows) or any(len(r) != 4 for r in rows):
        raise ValueError(f"{path}: header says {count} boxes but {len(rows)} box lines follow (need 4 numbers each)")
    boxes = np.asarray(rows, dtype=np.float32).reshape(-1, 4)
    if len(boxes) and np.any(boxes[:, 2:] < boxes[:, :2]):
        raise ValueError(f"{path}: a box has x2 < x1 or y2 < y1 (expected x1 y1 x2 y2, not x y w h)")
    return boxes


def load_label(path: str | os.PathLike, num_classes: int | None = None, ignore_index: int | None = 255) -> np.ndarray:
    """Read a segmentation label PNG of class ids (trainIds; 255 = ignore) → int64 (H, W).

    With `num_classes`, a value outside [0, num_classes) other than `ignore_index` is an error naming the file
    (a Cityscapes labelIds PNG, ids 0–33, would otherwise be scored on the pixels that happen to be < 19).
    """
    path = Path(path)
    with Image.open(path) as img:
        if img.mode not in ("L", "P", "I", "I;16", "I;16L", "I;16B"):
            raise ValueError(
                f"{path}: label images must hold class ids (mode L/P/I), got mode {img.mode}; colour-coded masks "
                "must be converted to trainId PNGs first"
            )
        label = np.asarray(img).astype(np.int64)
    if num_classes is not None:
        values = np.unique(label)
        bad = [int(v) for v in values if not (0 <= v < num_classes) and v != ignore_index]
        if bad:
            raise ValueError(
                f"{path}: label values {bad[:8]} are outside [0, {num_classes}) and are not the ignore index "
                f"{ignore_index}; the labels must be trainIds (Cityscapes labelIds, 0–33, must be converted first)"
            )
    return label


def subdir(root: Path, rel_path: str) -> Path | None:
    """`root/rel_path` with every part matched like `child` (case-insensitively), or None."""
    base: Path | None = root
    for part in Path(rel_path).parts:
        base = child(base, part) if base is not None else None
    return base
