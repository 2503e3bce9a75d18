"""GEFU-mini's clean images and their labels, built from the photographs that installed packages ship
(`gefu.samples`): whole photos, classification crops the frozen classifier is sure and stable about, and mosaics of
many small faces.

- **photos**: every sample photo, downscaled to `max_side` (IQA; face detection: the face boxes of
  `gefu.samples.FACE_BOXES`, none on the others, so every false face counts);
- **crops**: the photo itself and its 2×2 and 3×3 grid cells, kept when the classifier's top-1 on the crop has
  p ≥ `MIN_CONFIDENCE` and survives a horizontal flip, JPEG quality 75 and ×0.8 brightness (`stable_label`): a
  label the model itself is unsure of measures nothing (classification only);
- **mosaics**: face photos cropped around their face, shrunk to faces of 14–64 px, flipped at random, tiled with
  crops of the other photos (distractors) on a 512×384 canvas; ground truth = the face boxes carried through the
  crop, scale and flip (face detection and IQA).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ...imageio import load_image
from ...samples import FACE_BOXES

#: A classification label needs the classifier's top-1 probability on the clean crop to reach this.
MIN_CONFIDENCE = 0.6
#: Face heights (px) drawn for the mosaics' face tiles.
FACE_SIZES = (14, 18, 22, 28, 36, 48, 64)
MOSAIC_SIZE = (384, 512)  # (H, W)


@dataclass
class MiniImage:
    """One clean image of the set. kind: "photo" | "crop" | "mosaic"; `faces`: ground-truth boxes (None: the
    image is not scored for faces); `label`: classifier class index (None: not scored for classification)."""

    name: str
    kind: str
    image: torch.Tensor  # (3, H, W) float32, 8-bit levels
    source: str
    faces: list[list[float]] | None = None
    label: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def to_8bit(img: torch.Tensor) -> torch.Tensor:
    return (img.clamp(0, 1) * 255.0).round() / 255.0


def downscale(img: torch.Tensor, max_side: int) -> torch.Tensor:
    """(3, H, W) → (3, h, w) with max(h, w) <= max_side (area interpolation, aspect kept, 8-bit quantised)."""
    h, w = img.shape[-2:]
    if max(h, w) > max_side:
        s = max_side / max(h, w)
        img = F.interpolate(img[None], size=(round(h * s), round(w * s)), mode="area")[0]
    return to_8bit(img)


def resize_to(img: torch.Tensor, h: int, w: int) -> torch.Tensor:
    return F.interpolate(img[None], size=(h, w), mode="area" if h < img.shape[-2] else "bilinear",
                         align_corners=None if h < img.shape[-2] else False)[0]


# ----------------------------------------------------------------------------------------------------------------
# Classification: candidate crops and the confidence + stability filter
# ----------------------------------------------------------------------------------------------------------------


def candidate_crops(h: int, w: int) -> list[tuple[str, tuple[int, int, int, int]]]:
    """The whole frame and the cells of its 2×2 and 3×3 grids: (tag, (y0, y1, x0, x1)) in pixels."""
    out = [("full", (0, h, 0, w))]
    for n in (2, 3):
        for i in range(n):
            for j in range(n):
                out.append((f"g{n}-{i}{j}", (i * h // n, (i + 1) * h // n, j * w // n, (j + 1) * w // n)))
    return out


def jpeg75(img: torch.Tensor) -> torch.Tensor:
    """Round trip through JPEG at quality 75 (PIL), (3, H, W) in [0, 1]."""
    arr = (img.permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=75)
    with Image.open(buf) as im:
        out = np.asarray(im.convert("RGB")).copy()
    return torch.from_numpy(out).permute(2, 0, 1).float() / 255.0


def stable_label(classifier: Any, img: torch.Tensor) -> tuple[int, float] | None:
    """(class, p) when the classifier's top-1 on img (3, H, W) has p ≥ MIN_CONFIDENCE and is unchanged under a
    horizontal flip, JPEG q75 and ×0.8 brightness; None otherwise."""
    variants = [img, img.flip(-1), jpeg75(img), to_8bit(img * 0.8)]
    with torch.inference_mode():
        probs = classifier(torch.stack(variants)).float().softmax(dim=-1)  # (4, C)
    top = probs.argmax(dim=-1)
    p = float(probs[0, top[0]])
    if p < MIN_CONFIDENCE or not bool((top == top[0]).all()):
        return None
    return int(top[0]), p


def classification_crops(classifier: Any, originals: dict[str, torch.Tensor], max_side: int) -> list[dict[str, Any]]:
    """The crops (of the full-resolution originals, then downscaled to max_side) that pass `stable_label`:
    [{"name", "photo", "box": (y0, y1, x0, x1), "label", "p"}]."""
    kept = []
    for photo, img in originals.items():
        for tag, (y0, y1, x0, x1) in candidate_crops(*img.shape[-2:]):
            crop = downscale(img[:, y0:y1, x0:x1], max_side)
            if min(crop.shape[-2:]) < 64:
                continue
            got = stable_label(classifier, crop)
            if got is not None:
                kept.append({"name": f"{photo}.{tag}", "photo": photo, "box": [y0, y1, x0, x1],
                             "label": got[0], "p": round(got[1], 4)})
    return kept


# ----------------------------------------------------------------------------------------------------------------
# Faces: mosaics of small faces among distractors
# ----------------------------------------------------------------------------------------------------------------


def _face_tile(img: torch.Tensor, box: tuple[float, ...], face_h: int, flip: bool,
               rng: np.random.Generator) -> tuple[torch.Tensor, list[float]]:
    """A head-and-shoulders crop around `box`, scaled so the face is face_h px high → (tile, face box in it)."""
    x1, y1, x2, y2 = box
    bh, bw = y2 - y1, x2 - x1
    side = 2.0 * max(bh, bw) * (1.0 + 0.3 * rng.random())  # context around the face
    cy, cx = (y1 + y2) / 2 + bh * 0.15, (x1 + x2) / 2
    H, W = img.shape[-2:]
    t0, l0 = int(max(0, cy - side / 2)), int(max(0, cx - side / 2))
    b0, r0 = int(min(H, cy + side / 2)), int(min(W, cx + side / 2))
    s = face_h / bh
    th, tw = max(1, round((b0 - t0) * s)), max(1, round((r0 - l0) * s))
    tile = resize_to(img[:, t0:b0, l0:r0], th, tw)
    fb = [(x1 - l0) * tw / (r0 - l0), (y1 - t0) * th / (b0 - t0), (x2 - l0) * tw / (r0 - l0),
          (y2 - t0) * th / (b0 - t0)]
    if flip:
        tile = tile.flip(-1)
        fb = [tw - fb[2], fb[1], tw - fb[0], fb[3]]
    return tile, fb


def _distractor_tile(img: torch.Tensor, side: int, rng: np.random.Generator) -> torch.Tensor:
    """A random square-ish crop of a photo without faces, scaled to about `side` px."""
    H, W = img.shape[-2:]
    c = int(min(H, W) * (0.3 + 0.4 * rng.random()))
    y, x = int(rng.integers(0, H - c + 1)), int(rng.integers(0, W - c + 1))
    return resize_to(img[:, y:y + c, x:x + c], side, side)


def face_mosaic(face_photos: dict[str, torch.Tensor], others: dict[str, torch.Tensor], seed: int,
                size: tuple[int, int] = MOSAIC_SIZE) -> tuple[torch.Tensor, list[list[float]]]:
    """A (3, H, W) mosaic and its face boxes: shelves of tiles, left to right, top to bottom; about two in three
    tiles are faces (sizes from FACE_SIZES), the rest distractors. Deterministic in `seed`."""
    rng = np.random.default_rng(seed)
    H, W = size
    canvas = torch.full((3, H, W), 0.45)
    boxes: list[list[float]] = []
    faces, distract = sorted(face_photos), sorted(others)
    y = 0
    while True:
        shelf: list[tuple[torch.Tensor, list[float] | None]] = []
        x = 0
        while True:
            if faces and (rng.random() < 0.67 or not distract):
                name = faces[int(rng.integers(len(faces)))]
                tile, fb = _face_tile(face_photos[name], FACE_BOXES[name], int(rng.choice(FACE_SIZES)),
                                      bool(rng.random() < 0.5), rng)
            else:
                tile = _distractor_tile(others[distract[int(rng.integers(len(distract)))]],
                                        int(rng.integers(28, 110)), rng)
                fb = None
            if x + tile.shape[-1] > W:
                break
            shelf.append((tile, None if fb is None else [fb[0] + x, fb[1], fb[2] + x, fb[3]]))
            x += tile.shape[-1] + 2
        shelf_h = max((t.shape[-2] for t, _ in shelf), default=0)
        if not shelf or y + shelf_h > H:
            break
        x = 0
        for tile, fb in shelf:
            th, tw = tile.shape[-2:]
            canvas[:, y:y + th, x:x + tw] = tile
            if fb is not None:
                boxes.append([round(fb[0], 2), round(fb[1] + y, 2), round(fb[2], 2), round(fb[3] + y, 2)])
            x += tw + 2
        y += shelf_h + 2
    return to_8bit(canvas), boxes


# ----------------------------------------------------------------------------------------------------------------
# The whole set
# ----------------------------------------------------------------------------------------------------------------


def build_images(paths: dict[str, Any], max_side: int, n_mosaics: int, crops: list[dict[str, Any]] | None,
                 seed: int = 0) -> list[MiniImage]:
    """The clean images: photos, then the chosen classification crops (None: no classifier; a photo whose whole
    frame passed carries the label itself), then the mosaics.
    Pure and deterministic for given inputs."""
    originals = {name: load_image(p)[:3] for name, p in paths.items()}
    out: list[MiniImage] = []
    for name, img in originals.items():
        small = downscale(img, max_side)
        s = small.shape[-1] / img.shape[-1]
        faces = [[round(v * s, 2) for v in FACE_BOXES[name]]] if name in FACE_BOXES else []
        out.append(MiniImage(name, "photo", small, name, faces=faces))
    labels = {c["photo"]: c for c in crops or [] if c["name"].endswith(".full")}
    for im in out:
        if im.name in labels:  # the whole photo passed the filter: it carries the label itself
            im.label, im.meta["p"] = labels[im.name]["label"], labels[im.name]["p"]
    for c in crops or []:
        if c["photo"] in originals and not c["name"].endswith(".full"):
            y0, y1, x0, x1 = c["box"]
            out.append(MiniImage(c["name"], "crop", downscale(originals[c["photo"]][:, y0:y1, x0:x1], max_side),
                                 c["photo"], label=c["label"], meta={"p": c["p"]}))
    face_photos = {n: originals[n] for n in originals if n in FACE_BOXES}
    others = {n: originals[n] for n in originals if n not in FACE_BOXES}
    if face_photos:
        for i in range(n_mosaics):
            img, boxes = face_mosaic(face_photos, others, seed=seed * 1000 + i)
            out.append(MiniImage(f"faces{i}", "mosaic", img, "+".join(sorted(face_photos)), faces=boxes))
    return out
