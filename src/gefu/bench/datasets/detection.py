"""Detection: DARK FACE."""

from __future__ import annotations

import os
from pathlib import Path

from .base import DATASETS, Dataset, Sample, child, list_images, load_boxes, nonempty, rel


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
    img_d = child(root, image_dir) if image_dir else (child(root, "image") or child(root, "images"))
    lab_d = child(root, label_dir) if label_dir else (child(root, "label") or child(root, "labels"))
    if img_d is None or lab_d is None:
        raise FileNotFoundError(
            f"DARK FACE: expected {root}/image/*.png and {root}/label/*.txt "
            f"(found {', '.join(sorted(p.name for p in root.iterdir() if p.is_dir())) or 'no sub-folders'})"
        )
    images = {p.stem: p for p in list_images(img_d)}
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
        samples.append(Sample(rel(images[stem], root), images[stem], load_boxes(label)))
    return Dataset("darkface", "detection", root, nonempty(samples, "DARK FACE", img_d), classes=("face",),
                   info={"test_list": str(test_list) if test_list else None})
