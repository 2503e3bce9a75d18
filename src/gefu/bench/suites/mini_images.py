"""GEFU-mini's clean images and their labels, built from the photographs that installed packages ship
(`gefu.samples`): whole photos, classification crops the frozen classifier is sure and stable about, and mosaics of
many small faces.

- **photos**: every sample photo, downscaled to `max_side` (IQA; face detection: the face boxes of
  `gefu.samples.FACE_BOXES`, none on the others, so every false face counts);
- **crops**: the photo itself and its 2×2 and 3×3 grid cells, kept when the classifier's top-1 on the crop has
  p ≥ `MIN_CONFIDENCE` and survives a horizontal flip, JPEG quality 75 and ×0.8 brightness (`stable_label`): a
  label the model itself is unsure of measures nothing (classification only);
- **mosaics**: GEFU-mini's DARK FACE: frames of DARK FACE's size (1080×720) densely tiled with many small faces
  (face photos cropped head-and-shoulders around their known face box, shrunk to faces of 10–32 px, drawn
  log-uniformly, flipped at random; up to `MAX_FACES` per frame) among crops of the other photos (distractors);
  ground truth = the face boxes carried through crop, scale, flip and placement (face detection and IQA).

Why the mosaics look like this: DARK FACE's faces are mostly tiny, and small faces are what night takes from a
detector (the signal of a 10-px face sinks into the noise long before a 60-px face's does); an earlier design with
14–64-px faces on 512×384 canvases lost only 10 AP points at the darkest level. The floor of 10 px is set on the
clean images alone, so that the task measures the darkness and not the detector: RetinaFace MobileNet-0.25 (smallest
anchor 10 px) finds about nine in ten clean faces of 10–14 px but only about half of those of 8 px.
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
#: A mosaic's size (H, W): DARK FACE's frame size.
MOSAIC_SIZE = (720, 1080)
#: Range of the mosaics' face heights (px), drawn log-uniformly (`face_height`).
FACE_HEIGHTS = (10.0, 32.0)
#: Faces per mosaic at most (the protocol keeps 100 detections per image: room for false ones).
MAX_FACES = 60
#: Chance that a column of a shelf is a stack of faces rather than a distractor crop.
FACE_SHARE = 0.4
#: Shelf (row) heights in px, drawn uniformly: the largest face tile (a 32-px face with its context) fits.
SHELF_HEIGHTS = (88, 168)
GAP = 2  # px between tiles


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
# Faces: mosaics of many small faces among distractors
# ----------------------------------------------------------------------------------------------------------------


def mosaic_design() -> dict[str, Any]:
    """The constants that shape the mosaics (part of the suite's cache key)."""
    return {"size": MOSAIC_SIZE, "heights": FACE_HEIGHTS, "max_faces": MAX_FACES, "face_share": FACE_SHARE,
            "shelves": SHELF_HEIGHTS, "gap": GAP}


def face_height(rng: np.random.Generator, heights: tuple[float, float] = FACE_HEIGHTS) -> float:
    """A face height (px) drawn log-uniformly in [lo, hi] = heights: as many faces of 12–16 px as of 24–32 px."""
    return float(np.exp(rng.uniform(np.log(heights[0]), np.log(heights[1]))))


def _face_tile(img: torch.Tensor, box: tuple[float, ...], face_h: float, flip: bool,
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


def _distractor_tile(img: torch.Tensor, h: int, w: int, rng: np.random.Generator) -> torch.Tensor:
    """A random crop of a photo without faces with the aspect of (h, w), 30–70 % of its short side, scaled to h×w."""
    H, W = img.shape[-2:]
    ch = int(min(H, W * h / w) * (0.3 + 0.4 * rng.random()))
    cw = max(1, round(ch * w / h))
    y, x = int(rng.integers(0, H - ch + 1)), int(rng.integers(0, W - cw + 1))
    return resize_to(img[:, y:y + ch, x:x + cw], h, w)


def face_mosaic(face_photos: dict[str, torch.Tensor], others: dict[str, torch.Tensor], seed: int,
                size: tuple[int, int] = MOSAIC_SIZE, max_faces: int = MAX_FACES, face_share: float = FACE_SHARE,
                heights: tuple[float, float] = FACE_HEIGHTS) -> tuple[torch.Tensor, list[list[float]]]:
    """A (3, H, W) mosaic and its face boxes (x1, y1, x2, y2), deterministic in `seed`.

    The canvas is tiled densely: shelves (rows) of random height, filled left to right with columns; a column is,
    with probability `face_share` (while fewer than `max_faces` faces are placed), a stack of face tiles (faces
    of `face_height` px, flipped at random, as many as the shelf holds), otherwise one crop of a photo without
    faces (distractor) as high as the shelf. A face box is the photo's known box carried through crop, scale,
    flip and placement."""
    rng = np.random.default_rng(seed)
    H, W = size
    canvas = torch.full((3, H, W), 0.45)
    boxes: list[list[float]] = []
    faces, distract = sorted(face_photos), sorted(others)
    y = 0
    while y < H:
        shelf_h = int(rng.integers(SHELF_HEIGHTS[0], SHELF_HEIGHTS[1] + 1))
        if H - (y + shelf_h + GAP) < SHELF_HEIGHTS[0]:  # no room for another shelf: this one takes the rest
            shelf_h = H - y
        x = 0
        while x < W:
            if faces and len(boxes) < max_faces and (rng.random() < face_share or not distract):
                x = _face_column(canvas, boxes, face_photos, faces, x, y, shelf_h, max_faces, heights, rng)
            else:
                w = min(int(round(shelf_h * rng.uniform(0.6, 1.6))), W - x)
                img = others[distract[int(rng.integers(len(distract)))]] if distract else None
                if img is not None and w >= 8:  # without a photo to draw from (or room), it stays background
                    canvas[:, y:y + shelf_h, x:x + w] = _distractor_tile(img, shelf_h, w, rng)
                x += w + GAP
        y += shelf_h + GAP
    return to_8bit(canvas), boxes


def _face_column(canvas: torch.Tensor, boxes: list[list[float]], face_photos: dict[str, torch.Tensor],
                 faces: list[str], x: int, y: int, shelf_h: int, max_faces: int, heights: tuple[float, float],
                 rng: np.random.Generator) -> int:
    """Stack face tiles top to bottom at column x of the shelf at y (height shelf_h); append their boxes; return
    the next column's x. Tiles that would leave the canvas or the shelf are not placed."""
    W = canvas.shape[-1]
    top, width = y, 0
    while True:
        name = faces[int(rng.integers(len(faces)))]
        tile, fb = _face_tile(face_photos[name], FACE_BOXES[name], face_height(rng, heights),
                              bool(rng.random() < 0.5), rng)
        th, tw = tile.shape[-2:]
        if top + th > y + shelf_h or x + tw > W or len(boxes) >= max_faces:
            break
        canvas[:, top:top + th, x:x + tw] = tile
        boxes.append([round(fb[0] + x, 2), round(fb[1] + top, 2), round(fb[2] + x, 2), round(fb[3] + top, 2)])
        top += th + GAP
        width = max(width, tw)
    return x + (width + GAP if width else GAP)


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
