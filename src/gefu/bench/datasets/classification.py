"""Classification datasets: CODaN, generic labelled folders (ImageFolder style)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from .base import CODAN_CLASSES, DATASETS, Dataset, Sample, child, find_base, list_images, nonempty, rel


def _class_folders(base: Path, classes: Sequence[str], what: str) -> list[tuple[int, str, Path]]:
    found, missing = [], []
    for i, name in enumerate(classes):
        d = child(base, name)
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
    base = find_base(root, [split, f"data/{split}", ""], CODAN_CLASSES, "CODaN",
                      f"{split}/{{{','.join(CODAN_CLASSES)}}}/*.jpg")
    samples = [
        Sample(rel(p, base), p, i)
        for i, _, d in _class_folders(base, CODAN_CLASSES, "CODaN")
        for p in list_images(d, recursive=True)
    ]
    return Dataset("codan", "classification", base, nonempty(samples, "CODaN", base), classes=CODAN_CLASSES,
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
        Sample(rel(p, root), p, i)
        for i, _, d in _class_folders(root, classes, "labelled dataset")
        for p in list_images(d, recursive=True)
    ]
    return Dataset("labelled", "classification", root, nonempty(samples, "labelled dataset", root),
                   classes=tuple(classes))
