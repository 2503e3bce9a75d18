"""Benchmark datasets with their real on-disk layouts (DESIGN §3), and generic paired / labelled folders.

Every loader returns a `Dataset`: a task name, the class names where they matter, and a list of `Sample`s with a
stable `id` (the image's path relative to the dataset folder, POSIX style), the input image path and the target:

=================  ====================================================  ==========================================
task               loaders                                               `Sample.target`
=================  ====================================================  ==========================================
``iqa``            lol-v2-real, lsrw, paired                             Path of the normal-light reference image
``classification`` codan, labelled                                       int class index into `Dataset.classes`
``detection``      darkface                                              float32 array (M, 4) of x1, y1, x2, y2
``segmentation``   bdd-night                                             Path of the trainId label PNG (`load_label`)
=================  ====================================================  ==========================================

Pairs are always matched by file name (or by the number in it), never by listing order; a file without a
partner, or two files claiming the same partner, is an error that names them.

    ds = load_dataset("lol-v2-real", "~/data/LOL-v2")
    for s in ds: print(s.id, s.image, s.target)
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Literal, Sequence

import numpy as np
from PIL import Image

from ..imageio import IMAGE_EXTENSIONS
from ..registry import Registry

log = logging.getLogger(__name__)

__all__ = [
    "Sample",
    "Dataset",
    "DATASETS",
    "load_dataset",
    "list_datasets",
    "load_boxes",
    "load_label",
    "CODAN_CLASSES",
    "CITYSCAPES_CLASSES",
    "lol_v2_real",
    "lsrw",
    "codan",
    "darkface",
    "bdd_night",
    "paired",
    "labelled",
]

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


def _images(folder: Path, recursive: bool = False) -> list[Path]:
    """Image files in `folder` (hidden files skipped), sorted by name."""
    it = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(
        p for p in it
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def _child(folder: Path, name: str) -> Path | None:
    """Sub-folder of `folder` called `name`, matched case-insensitively (exact match preferred)."""
    exact = folder / name
    if exact.is_dir():
        return exact
    if not folder.is_dir():
        return None
    hits = [p for p in folder.iterdir() if p.is_dir() and p.name.lower() == name.lower()]
    return hits[0] if len(hits) == 1 else None


def _find_base(root: Path, candidates: Sequence[str], required: Sequence[str], what: str, layout: str) -> Path:
    """The first of root/candidate (in order) that holds every `required` sub-folder, or a clear error."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"{what}: {root} is not a folder")
    for cand in candidates:
        base = root
        for part in Path(cand).parts if cand else ():
            base = _child(base, part) if base is not None else None
        if base is not None and all(_child(base, r) is not None for r in required):
            return base
    listing = ", ".join(sorted(p.name for p in root.iterdir() if p.is_dir())[:12]) or "no sub-folders"
    raise FileNotFoundError(f"{what}: expected the layout {layout} under {root}, found {listing}")


def _rel(path: Path, base: Path) -> str:
    return path.relative_to(base).as_posix()


_NUMBER = re.compile(r"\d+")


def _key_number(path: Path) -> str:
    """Pairing key 'number': the last run of digits in the file stem, without leading zeros."""
    nums = _NUMBER.findall(path.stem)
    if not nums:
        raise ValueError(f"{path}: no number in the file name to pair by")
    return str(int(nums[-1]))


def _key_stem(path: Path) -> str:
    return path.stem


def _pair(
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


def _nonempty(samples: list[Sample], what: str, where: Path) -> list[Sample]:
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


def load_label(path: str | os.PathLike) -> np.ndarray:
    """Read a segmentation label PNG of class ids (trainIds; 255 = ignore) → int64 (H, W)."""
    path = Path(path)
    with Image.open(path) as img:
        if img.mode not in ("L", "P", "I", "I;16", "I;16L", "I;16B"):
            raise ValueError(
                f"{path}: label images must hold class ids (mode L/P/I), got mode {img.mode}; colour-coded masks "
                "must be converted to trainId PNGs first"
            )
        return np.asarray(img).astype(np.int64)


# ----------------------------------------------------------------------------------------------------------------
# IQA: LOL-v2-real, LSRW, generic paired folders
# ----------------------------------------------------------------------------------------------------------------


@DATASETS.register("lol-v2-real", "lol", "lolv2-real")
def lol_v2_real(root: str | os.PathLike, split: str = "Test", strict: bool = True) -> Dataset:
    """LOL-v2-real: `Real_captured/<split>/{Low,Normal}`, pairs `low00690.png` ↔ `normal00690.png` by number.

    `root` may be the LOL-v2 folder, its `Real_captured` folder or the split folder itself. Ids are
    `Low/low00690.png` (relative to the split folder).
    """
    root = Path(root).expanduser()
    base = _find_base(
        root, [f"Real_captured/{split}", split, ""], ["Low", "Normal"], "LOL-v2-real",
        f"Real_captured/{split}/{{Low,Normal}}",
    )
    low, normal = _child(base, "Low"), _child(base, "Normal")
    pairs = _pair(_images(low), _images(normal), _key_number, f"LOL-v2-real ({base})", strict)
    samples = [Sample(_rel(a, base), a, b) for a, b in pairs]
    return Dataset("lol-v2-real", "iqa", base, _nonempty(samples, "LOL-v2-real", low), info={"split": split})


@DATASETS.register("lsrw")
def lsrw(root: str | os.PathLike, subsets: Sequence[str] = ("Huawei", "Nikon"), strict: bool = True) -> Dataset:
    """LSRW evaluation set: `Eval/{Huawei,Nikon}/{low,high}`, pairs by identical file stem.

    `root` may be the LSRW folder or its `Eval` folder. Ids are `Huawei/low/2.jpg` (relative to `Eval`).
    """
    if isinstance(subsets, str):
        subsets = [s for s in subsets.split(",") if s]
    root = Path(root).expanduser()
    base = _find_base(root, ["Eval", ""], list(subsets), "LSRW", f"Eval/{{{','.join(subsets)}}}/{{low,high}}")
    samples: list[Sample] = []
    for name in subsets:
        sub = _child(base, name)
        low, high = _child(sub, "low"), _child(sub, "high")
        if low is None or high is None:
            raise FileNotFoundError(f"LSRW: expected {sub}/low and {sub}/high")
        pairs = _pair(_images(low), _images(high), _key_stem, f"LSRW {name} ({sub})", strict)
        samples += [Sample(_rel(a, base), a, b) for a, b in pairs]
    return Dataset("lsrw", "iqa", base, _nonempty(samples, "LSRW", base), info={"subsets": list(subsets)})


@DATASETS.register("paired")
def paired(
    root: str | os.PathLike,
    low: str = "low",
    high: str = "high",
    key: Literal["stem", "number"] = "stem",
    recursive: bool = False,
    strict: bool = True,
) -> Dataset:
    """Generic paired folders `root/<low>` and `root/<high>` (absolute paths also work), paired by file stem
    (key="stem") or by the last number in the name (key="number", e.g. `low12.png` ↔ `normal12.png`).

    Ids are relative to `root`. recursive=True pairs files in sub-folders by their relative path + key.
    """
    root = Path(root).expanduser()
    low_dir, high_dir = root / low, root / high
    for d in (low_dir, high_dir):
        if not d.is_dir():
            raise FileNotFoundError(f"paired dataset: {d} is not a folder (expected {root}/{{{low},{high}}})")
    if key not in ("stem", "number"):
        raise ValueError(f"key must be 'stem' or 'number', got {key!r}")
    keyfn = _key_stem if key == "stem" else _key_number

    def rel_key(base: Path) -> Callable[[Path], str]:
        return lambda p: (p.parent.relative_to(base) / keyfn(p)).as_posix()

    pairs = _pair(
        _images(low_dir, recursive), _images(high_dir, recursive), rel_key(low_dir), f"paired ({root})", strict,
        target_key=rel_key(high_dir),
    )
    samples = [Sample(_rel(x, root), x, y) for x, y in pairs]
    return Dataset("paired", "iqa", root, _nonempty(samples, "paired dataset", low_dir), info={"key": key})


# ----------------------------------------------------------------------------------------------------------------
# Classification: CODaN, generic labelled folders
# ----------------------------------------------------------------------------------------------------------------


def _class_folders(base: Path, classes: Sequence[str], what: str) -> list[tuple[int, str, Path]]:
    found, missing = [], []
    for i, name in enumerate(classes):
        d = _child(base, name)
        (found.append((i, name, d)) if d is not None else missing.append(name))
    if missing:
        present = ", ".join(sorted(p.name for p in base.iterdir() if p.is_dir())) or "none"
        raise FileNotFoundError(f"{what}: class folder(s) {', '.join(missing)} missing in {base} (found: {present})")
    return found


@DATASETS.register("codan")
def codan(root: str | os.PathLike, split: str = "test_night") -> Dataset:
    """CODaN: `<split>/<Class>/*.jpg` with the 10 classes of `CODAN_CLASSES` (their order = class index).

    `root` may be the CODaN folder, its `data` folder, or the split folder. Ids are `Cat/xxx.jpg`.
    """
    root = Path(root).expanduser()
    base = _find_base(root, [split, f"data/{split}", ""], CODAN_CLASSES, "CODaN",
                      f"{split}/{{{','.join(CODAN_CLASSES)}}}/*.jpg")
    samples = [
        Sample(_rel(p, base), p, i)
        for i, _, d in _class_folders(base, CODAN_CLASSES, "CODaN")
        for p in _images(d, recursive=True)
    ]
    return Dataset("codan", "classification", base, _nonempty(samples, "CODaN", base), classes=CODAN_CLASSES,
                   info={"split": split})


@DATASETS.register("labelled", "labeled", "folders")
def labelled(root: str | os.PathLike, classes: Sequence[str] | None = None) -> Dataset:
    """Generic labelled folders `root/<class>/*` (ImageFolder style). Class order: `classes` if given, else
    the sorted sub-folder names. Ids are `<class>/<file>`."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"labelled dataset: {root} is not a folder")
    if isinstance(classes, str):
        classes = [c for c in classes.split(",") if c]
    if classes is None:
        classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not classes:
            raise FileNotFoundError(f"labelled dataset: no class sub-folders in {root} (expected {root}/<class>/*.jpg)")
    samples = [
        Sample(_rel(p, root), p, i)
        for i, _, d in _class_folders(root, classes, "labelled dataset")
        for p in _images(d, recursive=True)
    ]
    return Dataset("labelled", "classification", root, _nonempty(samples, "labelled dataset", root),
                   classes=tuple(classes))


# ----------------------------------------------------------------------------------------------------------------
# Detection: DARK FACE
# ----------------------------------------------------------------------------------------------------------------


def _read_list(path: Path) -> list[str]:
    """Names from a list file: one per line, blank lines and '#' comments skipped; compared by stem."""
    if not path.is_file():
        raise FileNotFoundError(f"test list {path} does not exist")
    names = []
    for ln in path.read_text().splitlines():
        ln = ln.split("#", 1)[0].strip()
        if ln:
            names.append(Path(ln.split()[0]).stem)
    return names


@DATASETS.register("darkface", "dark-face")
def darkface(
    root: str | os.PathLike,
    image_dir: str | None = None,
    label_dir: str | None = None,
    test_list: str | os.PathLike | None = None,
) -> Dataset:
    """DARK FACE: images in `image/` (or `images/`), labels `label/<stem>.txt` (first line: count, then
    `x1 y1 x2 y2` per face). `test_list` (optional) names the images to use, one per line (with or without
    extension; the paper's protocol is a 600-image list). Ids are `image/1.png`.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"DARK FACE: {root} is not a folder")
    img_d = _child(root, image_dir) if image_dir else (_child(root, "image") or _child(root, "images"))
    lab_d = _child(root, label_dir) if label_dir else (_child(root, "label") or _child(root, "labels"))
    if img_d is None or lab_d is None:
        raise FileNotFoundError(
            f"DARK FACE: expected {root}/image/*.png and {root}/label/*.txt "
            f"(found {', '.join(sorted(p.name for p in root.iterdir() if p.is_dir())) or 'no sub-folders'})"
        )
    images = {p.stem: p for p in _images(img_d)}
    if test_list is not None:
        wanted = _read_list(Path(test_list).expanduser())
        missing = [n for n in wanted if n not in images]
        if missing:
            raise FileNotFoundError(
                f"DARK FACE: {len(missing)} image(s) of the test list are not in {img_d} "
                f"(e.g. {', '.join(missing[:3])})"
            )
        stems = list(dict.fromkeys(wanted))
    else:
        stems = sorted(images, key=lambda s: images[s].name)
    samples = []
    for stem in stems:
        label = lab_d / f"{stem}.txt"
        if not label.is_file():
            raise FileNotFoundError(f"DARK FACE: no label file {label} for image {images[stem].name}")
        samples.append(Sample(_rel(images[stem], root), images[stem], load_boxes(label)))
    return Dataset("darkface", "detection", root, _nonempty(samples, "DARK FACE", img_d), classes=("face",),
                   info={"test_list": str(test_list) if test_list else None})


# ----------------------------------------------------------------------------------------------------------------
# Segmentation: BDD100k-night (Cityscapes trainIds)
# ----------------------------------------------------------------------------------------------------------------

_LABEL_SUFFIXES = ("_gtFine_labelTrainIds", "_labelTrainIds", "_trainIds", "_train_ids", "_train_id", "_trainid",
                   "_label", "_mask")


def _label_key(path: Path) -> str:
    stem = path.stem
    for suffix in _LABEL_SUFFIXES:
        if stem.lower().endswith(suffix.lower()):
            return stem[: -len(suffix)]
    return stem


@DATASETS.register("bdd-night", "bdd100k-night")
def bdd_night(
    root: str | os.PathLike,
    image_dir: str | None = None,
    label_dir: str | None = None,
    strict: bool = True,
) -> Dataset:
    """BDD100k-night segmentation: images and Cityscapes trainId label PNGs (19 classes, 255 = ignore), paired by
    name (`xxx.jpg` ↔ `xxx.png` / `xxx_train_id.png` / `xxx_labelTrainIds.png`). Folders default to the first of
    `images`+`labels`, `image`+`label`, `img`+`gt` that exists. Ids are `images/xxx.jpg`.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"BDD100k-night: {root} is not a folder")
    if image_dir or label_dir:
        img_d, lab_d = _child(root, image_dir or "images"), _child(root, label_dir or "labels")
    else:
        img_d = lab_d = None
        for a, b in (("images", "labels"), ("image", "label"), ("img", "gt")):
            if _child(root, a) is not None and _child(root, b) is not None:
                img_d, lab_d = _child(root, a), _child(root, b)
                break
    if img_d is None or lab_d is None:
        raise FileNotFoundError(
            f"BDD100k-night: expected {root}/images/*.jpg and {root}/labels/*.png (trainIds), or pass "
            "image_dir=/label_dir="
        )
    labels = [p for p in _images(lab_d) if p.suffix.lower() == ".png"]
    pairs = _pair(_images(img_d), labels, _key_stem, f"BDD100k-night ({root})", strict, target_key=_label_key)
    samples = [Sample(_rel(a, root), a, b) for a, b in pairs]
    return Dataset("bdd-night", "segmentation", root, _nonempty(samples, "BDD100k-night", img_d),
                   classes=CITYSCAPES_CLASSES, ignore_index=255)
