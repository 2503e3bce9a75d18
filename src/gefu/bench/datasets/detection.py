"""Detection: DARK FACE, in the layouts it is distributed in.

- the authors' GEFU release and MAET's `UG2`: `DARK_FACE/{image or images or imgs, label, xml, main/val.txt}`
  (`root` may be that folder or the folder holding `DARK_FACE/` or `UG2/`);
- the original challenge release: `image/*.png` + `label/*.txt`.

Annotations come from `label/<stem>.txt` (first line: count, then `x1 y1 x2 y2` per face) or from VOC XML
`xml/<stem>.xml` (`<object><name>Face</name><difficult>…</difficult><bndbox>…`); `difficult` faces become
ignored boxes (neither hit nor miss, `gefu.metrics.voc_ap(ignore=...)`). The official evaluation (MAET's
`UG2FaceDataset`, used by the GEFU release) reads the XML, truncates each coordinate with `int()` and subtracts 1
from every box (`official_boxes=True`); the default keeps the coordinates as written.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np

from .base import DATASETS, Dataset, Sample, child, list_images, load_boxes, nonempty, rel, subdir

_IMAGE_DIRS = ("image", "images", "imgs")
_RELEASE_DIRS = ("DARK_FACE", "UG2", "DarkFace", "Dark_face_2019")


class FaceBoxes(NamedTuple):
    """A DARK FACE target: float32 (M, 4) boxes x1, y1, x2, y2, and (I, 4) ignored (`difficult`) boxes."""

    boxes: np.ndarray
    ignore: np.ndarray


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


def load_voc_faces(path: str | os.PathLike, official_boxes: bool = False) -> FaceBoxes:
    """Read a VOC XML annotation → `FaceBoxes` (objects named 'face', any case; `difficult` ones ignored).

    official_boxes=True applies the official rule: each coordinate `int(float(v))`, then every box − 1.
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise ValueError(f"{path}: not a VOC XML file ({err})") from None
    boxes: list[list[float]] = []
    ignore: list[list[float]] = []
    for obj in root.iter("object"):
        if (obj.findtext("name") or "").strip().lower() != "face":
            continue
        bnd = obj.find("bndbox")
        try:
            xyxy = [float(bnd.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")]  # type: ignore
            difficult = int(float(obj.findtext("difficult") or 0))
        except (AttributeError, TypeError, ValueError):
            raise ValueError(f"{path}: an <object> lacks a numeric <bndbox> xmin/ymin/xmax/ymax") from None
        if official_boxes:
            xyxy = [int(v) - 1 for v in xyxy]
        (ignore if difficult else boxes).append(xyxy)
    out = FaceBoxes(np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(ignore, np.float32).reshape(-1, 4))
    if any(len(b) and np.any(b[:, 2:] < b[:, :2]) for b in out):
        raise ValueError(f"{path}: a box has xmax < xmin or ymax < ymin")
    return out


def _find_root(root: Path, image_dir: str | None) -> Path:
    """The DARK FACE folder: `root` itself or its `DARK_FACE/` / `UG2/` child, whichever holds the images."""
    for cand in [root, *(c for name in _RELEASE_DIRS if (c := child(root, name)) is not None)]:
        if image_dir or any(child(cand, d) is not None for d in _IMAGE_DIRS):
            return cand
    found = ", ".join(sorted(p.name for p in root.iterdir() if p.is_dir())) or "no sub-folders"
    raise FileNotFoundError(
        f"DARK FACE: expected {root}/image/*.png and {root}/label/*.txt, or the release layout "
        f"{root}/DARK_FACE/{{images,xml,main/val.txt}} (found {found}); or pass image_dir=/label_dir="
    )


@DATASETS.register("darkface", "dark-face")
def darkface(
    root: str | os.PathLike,
    image_dir: str | None = None,
    label_dir: str | None = None,
    xml_dir: str | None = None,
    test_list: str | os.PathLike | None = None,
    annotations: Literal["auto", "txt", "xml"] = "auto",
    official_boxes: bool = False,
) -> Dataset:
    """DARK FACE (see the module doc for the layouts). Targets are `FaceBoxes`; ids are `image/1.png`.

    image_dir / label_dir / xml_dir: folders relative to the DARK FACE folder (or absolute); default the first of
    `image`, `images`, `imgs`, then `label` (or `labels`) and `xml`. test_list: the images to use, one name per
    line (with or without extension); default `main/val.txt` when it exists (the paper's 600-image list), else
    every image. annotations: "txt", "xml" or "auto" (txt labels when the label folder exists, else XML).
    official_boxes: XML coordinates as the official evaluation reads them (`int()`, then − 1; XML only).
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"DARK FACE: {root} is not a folder")
    base = _find_root(root, image_dir)
    img_d = subdir(base, image_dir) if image_dir else next(
        (d for n in _IMAGE_DIRS if (d := child(base, n)) is not None), None)
    lab_d = subdir(base, label_dir) if label_dir else (child(base, "label") or child(base, "labels"))
    xml_d = subdir(base, xml_dir or "xml")
    if annotations == "auto":
        annotations = "txt" if lab_d is not None and not official_boxes else "xml"
    if annotations not in ("txt", "xml"):
        raise ValueError(f"annotations must be 'auto', 'txt' or 'xml', got {annotations!r}")
    ann_d = lab_d if annotations == "txt" else xml_d
    if img_d is None or ann_d is None:
        missing = "image folder" if img_d is None else f"{'label' if annotations == 'txt' else 'xml'} folder"
        raise FileNotFoundError(f"DARK FACE: no {missing} in {base} (pass image_dir=/label_dir=/xml_dir=)")
    if official_boxes and annotations != "xml":
        raise ValueError("official_boxes applies to the VOC XML annotations (annotations='xml')")
    stems, list_used = _stems(base, img_d, test_list)
    samples = []
    for stem, image in stems:
        ann = ann_d / f"{stem}.{annotations}"
        if not ann.is_file():
            raise FileNotFoundError(f"DARK FACE: no annotation file {ann} for image {image.name}")
        target = (FaceBoxes(load_boxes(ann), np.zeros((0, 4), np.float32)) if annotations == "txt"
                  else load_voc_faces(ann, official_boxes))
        samples.append(Sample(rel(image, base), image, target))
    return Dataset("darkface", "detection", base, nonempty(samples, "DARK FACE", img_d), classes=("face",),
                   info={"test_list": list_used, "annotations": f"{rel(ann_d, base)}/*.{annotations}",
                         "official_boxes": official_boxes})


def _stems(base: Path, img_d: Path, test_list: str | os.PathLike | None) -> tuple[list[tuple[str, Path]], str | None]:
    """(stem, image) in list order (the test list, `main/val.txt`, or every image by name) and the list used."""
    images = {p.stem: p for p in list_images(img_d)}
    default_list = base / "main" / "val.txt"
    lst = Path(test_list).expanduser() if test_list is not None else default_list if default_list.is_file() else None
    if lst is None:
        return [(s, images[s]) for s in sorted(images, key=lambda s: images[s].name)], None
    wanted = list(dict.fromkeys(_read_list(lst)))
    missing = [n for n in wanted if n not in images]
    if missing:
        raise FileNotFoundError(
            f"DARK FACE: {len(missing)} image(s) of the test list {lst} are not in {img_d} "
            f"(e.g. {', '.join(missing[:3])})"
        )
    return [(s, images[s]) for s in wanted], str(lst)
