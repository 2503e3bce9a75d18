"""Segmentation: BDD100k-night (Cityscapes trainIds)."""

from __future__ import annotations

import os
from pathlib import Path

from .base import (CITYSCAPES_CLASSES, DATASETS, Dataset, Sample, key_stem, list_images, nonempty, pair_by_key, rel,
                   subdir)

_LABEL_SUFFIXES = ("_gtFine_labelTrainIds", "_labelTrainIds", "_trainIds", "_train_ids", "_train_id", "_trainid",
                   "_label", "_mask")


def _label_key(path: Path) -> str:
    stem = path.stem
    for suffix in _LABEL_SUFFIXES:
        if stem.lower().endswith(suffix.lower()):
            return stem[: -len(suffix)]
    return stem


#: (images, labels) folder pairs tried in order: the authors' release (`images/test`, `labels/test`) first.
_LAYOUTS = (("images/test", "labels/test"), ("images", "labels"), ("image", "label"), ("img", "gt"))


@DATASETS.register("bdd-night", "bdd100k-night")
def bdd_night(
    root: str | os.PathLike,
    image_dir: str | None = None,
    label_dir: str | None = None,
    strict: bool = True,
) -> Dataset:
    """BDD100k-night segmentation: images and Cityscapes trainId label PNGs (19 classes, 255 = ignore), paired by
    name (`xxx.jpg` ↔ `xxx.png` / `xxx_train_id.png` / `xxx_labelTrainIds.png`). Folders default to the first of
    `images/test`+`labels/test` (the authors' release), `images`+`labels`, `image`+`label`, `img`+`gt` that
    exists; `image_dir=` / `label_dir=` (relative to `root`, or absolute) choose others. Ids are relative to
    `root`, e.g. `images/test/xxx.jpg`.

    Pairing is by name; the official script pairs the sorted listings of both folders by position, which is the
    same pairing whenever every image has its label.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"BDD100k-night: {root} is not a folder")
    if image_dir or label_dir:
        img_d, lab_d = subdir(root, image_dir or "images"), subdir(root, label_dir or "labels")
    else:
        img_d = lab_d = None
        for a, b in _LAYOUTS:
            if subdir(root, a) is not None and subdir(root, b) is not None and list_images(subdir(root, a)):
                img_d, lab_d = subdir(root, a), subdir(root, b)
                break
    if img_d is None or lab_d is None:
        raise FileNotFoundError(
            f"BDD100k-night: expected {root}/images/test/*.jpg and {root}/labels/test/*.png (trainIds; or "
            "images/ + labels/), or pass image_dir=/label_dir="
        )
    labels = [p for p in list_images(lab_d) if p.suffix.lower() == ".png"]
    pairs = pair_by_key(list_images(img_d), labels, key_stem, f"BDD100k-night ({root})", strict, target_key=_label_key)
    samples = [Sample(rel(a, root), a, b) for a, b in pairs]
    return Dataset("bdd-night", "segmentation", root, nonempty(samples, "BDD100k-night", img_d),
                   classes=CITYSCAPES_CLASSES, ignore_index=255,
                   info={"images": rel(img_d, root) if img_d != root else ".", "labels": rel(lab_d, root)})
