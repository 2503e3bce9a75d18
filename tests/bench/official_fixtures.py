"""Small deterministic fixtures shared by the official-protocol tests (and by the side-by-side runs of the
authors' evaluation code that produced the recorded expected values; see test_official_protocols.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image


def tiny_faces() -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Six images of small faces (5–12 px): per image (faces (5, 4), difficult faces (1, 4), detections (7, 5)).

    Each face is detected 0.2 px off its annotation; the difficult face is detected too (score 0.8), and one
    false positive per image. Scores are distinct among the counted detections (no ranking ties).
    """
    out = []
    for i in range(6):
        gt, diff, dets = [], [], []
        for j in range(6):
            w = 5 + (i + 2 * j) % 8
            x1, y1 = 20 * j + 3.6 + 0.3 * i, 15 * i + 4.7
            box = [x1, y1, x1 + w, y1 + w + 1]
            if j == 5:
                diff.append(box)
                dets.append([x1 + 0.2, y1, x1 + w + 0.2, y1 + w + 1, 0.8])
            else:
                gt.append(box)
                dets.append([x1 + 0.2, y1 - 0.1, x1 + w + 0.2, y1 + w + 0.9, 0.9 - 0.031 * j - 0.0107 * i])
        dets.append([150 + i, 10 + i, 156 + i, 17 + i, 0.55 + 0.05 * i])  # a false positive
        out.append((np.array(gt), np.array(diff), np.array(dets)))
    return out


def write_darkface_release(root: Path) -> Path:
    """`root/DARK_FACE/{images/<i>.png, xml/<i>.xml, main/val.txt}` of `tiny_faces` (image i is filled with 10·i,
    so a detector can tell which image it sees). Returns the DARK_FACE folder."""
    base = root / "DARK_FACE"
    (base / "images").mkdir(parents=True)
    (base / "xml").mkdir()
    (base / "main").mkdir()
    for i, (gt, diff, _) in enumerate(tiny_faces()):
        Image.fromarray(np.full((100, 180, 3), 10 * i, np.uint8)).save(base / "images" / f"{i}.png")
        objs = "".join(
            f"<object><name>Face</name><difficult>{d}</difficult><bndbox><xmin>{b[0]:.1f}</xmin>"
            f"<ymin>{b[1]:.1f}</ymin><xmax>{b[2]:.1f}</xmax><ymax>{b[3]:.1f}</ymax></bndbox></object>"
            for boxes, d in ((gt, 0), (diff, 1)) for b in boxes
        )
        (base / "xml" / f"{i}.xml").write_text(
            f"<annotation><size><width>180</width><height>100</height><depth>3</depth></size>{objs}</annotation>")
    (base / "main" / "val.txt").write_text("".join(f"{i}\n" for i in range(6)))
    return base


class TinyFaceDetector:
    """Returns `tiny_faces`' detections of the image whose pixels are 10·i (plus 150 low-score boxes on image 0,
    which the 0.05 / 100-per-image rule must drop)."""

    def __call__(self, image: torch.Tensor) -> np.ndarray:
        i = int(round(float(image[0, 0, 0]) * 255 / 10))
        dets = tiny_faces()[i][2]
        if i == 0:
            extra = np.array([[170, 90, 175, 95, s] for s in np.linspace(0.01, 0.049, 150)])
            dets = np.concatenate([dets, extra])
        return dets.astype(np.float32)


def tiny_face_detector() -> TinyFaceDetector:
    return TinyFaceDetector()


#: A colour per trainId (0..18) for the segmentation fixture; void pixels are black.
PALETTE = np.array([[128, 64, 128], [244, 35, 232], [70, 70, 70], [102, 102, 156], [190, 153, 153],
                    [153, 153, 153], [250, 170, 30], [220, 220, 0], [107, 142, 35], [152, 251, 152],
                    [70, 130, 180], [220, 20, 60], [255, 0, 0], [0, 0, 142], [0, 0, 70], [0, 60, 100],
                    [0, 80, 100], [0, 0, 230], [119, 11, 32]], dtype=np.float32) / 255.0


class TinySegmenter(nn.Module):
    """A fixed segmenter for fixtures with 20 output logits (19 classes + void, like the official RefineNet):
    minus the squared distance of a 3×3 local mean colour to each class colour, computed at 1/2 resolution and
    upsampled, so a downscaled input gives different logits and multi-scale summation moves the boundaries."""

    def __init__(self) -> None:
        super().__init__()
        palette = torch.from_numpy(np.concatenate([PALETTE, np.zeros((1, 3), np.float32)]))  # (20, 3)
        self.register_buffer("palette", palette)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batched = x.ndim == 4
        x = x if batched else x[None]  # (N, 3, H, W)
        h, w = x.shape[-2:]
        small = F.avg_pool2d(F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False), 2, ceil_mode=True)
        d = ((small[:, None] - self.palette[None, :, :, None, None]) ** 2).sum(dim=2)  # (N, 20, h/2, w/2)
        out = F.interpolate(-8.0 * d, size=(h, w), mode="bilinear", align_corners=True)  # (N, 20, H, W)
        return out if batched else out[0]


def tiny_segmenter() -> TinySegmenter:
    return TinySegmenter().eval()


def write_bdd_fixture(root: Path) -> list[Path]:
    """Two 48×80 images with trainId labels (0, 1, 2, 8, 10, 13 and 255): 70 % the class colour of `PALETTE`
    (black where void), 30 % a real photo crop for texture, 8-bit. Layout of the authors' release."""
    from gefu.samples import load_sample

    photo = (load_sample("astronaut").permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    (root / "images" / "test").mkdir(parents=True)
    (root / "labels" / "test").mkdir(parents=True)
    paths = []
    for k, (y, x) in enumerate(((40, 60), (200, 150))):
        lab = np.full((48, 80), 255, np.uint8)
        lab[:16] = 10  # sky
        lab[16:30, :40] = 2  # building
        lab[16:30, 40:] = 8  # vegetation
        lab[30:, :] = 0  # road
        lab[36:44, 20 + 20 * k: 40 + 20 * k] = 13  # car
        lab[30:34, 60:] = 1  # sidewalk
        Image.fromarray(lab, mode="L").save(root / "labels" / "test" / f"n{k}.png")
        colour = np.where(lab[..., None] == 255, 0.0, PALETTE[np.minimum(lab, 18)]) * 255.0  # (48, 80, 3)
        texture = photo[y: y + 192: 4, x: x + 320: 4].astype(np.float32)  # (48, 80, 3)
        img = Image.fromarray((0.7 * colour + 0.3 * texture).round().astype(np.uint8))
        img.save(root / "images" / "test" / f"n{k}.png")
        paths.append(root / "images" / "test" / f"n{k}.png")
    return paths
