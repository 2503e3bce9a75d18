"""GEFU-mini's image set: the confidence + stability filter for classification labels, and face mosaics whose
boxes land on the faces."""

from __future__ import annotations

import numpy as np
import torch
from scipy import stats

from gefu import metrics
from gefu.bench.suites.mini_images import (FACE_HEIGHTS, MAX_FACES, MOSAIC_SIZE, build_images, candidate_crops,
                                          face_height, face_mosaic, jpeg75, stable_label)
from gefu.bench.tasks import create_detector
from gefu.samples import FACE_BOXES, load_sample, sample_photos


class _Fake(torch.nn.Module):
    """Two classes; the logit gap is set by `score(image)` (3, H, W) → float."""

    def __init__(self, score):
        super().__init__()
        self.score = score

    def forward(self, x):
        s = torch.tensor([float(self.score(im)) for im in x])
        return torch.stack([s, torch.zeros_like(s)], dim=1)


def test_stable_label_needs_confidence_and_stability():
    img = torch.rand(3, 32, 48, generator=torch.Generator().manual_seed(0))
    sure = _Fake(lambda im: 3.0)  # p = sigmoid(3) = 0.95 under every variant
    assert stable_label(sure, img) == (0, torch.sigmoid(torch.tensor(3.0)).item())
    assert stable_label(_Fake(lambda im: 0.2), img) is None  # p = 0.55 < 0.6
    # confident, but the answer flips with a horizontal flip (left half brighter than right → class 0)
    left = torch.cat([torch.ones(3, 32, 24), torch.zeros(3, 32, 24)], dim=2)
    flips = _Fake(lambda im: 40.0 * float(im[:, :, :24].mean() - im[:, :, 24:].mean()))
    assert stable_label(flips, left) is None
    # confident, but ×0.8 brightness changes it (class 0 only above a mean of 0.45)
    grey = torch.full((3, 32, 48), 0.5)
    assert stable_label(_Fake(lambda im: 40.0 * (float(im.mean()) - 0.45)), grey) is None
    # JPEG q75 of a fine checkerboard smooths it: a 'texture detector' changes its answer
    checker = ((torch.arange(48)[None, :] + torch.arange(32)[:, None]) % 2).float().expand(3, 32, 48)

    def contrast(im):  # mean neighbour difference relative to the range: blind to brightness, not to JPEG
        return float(im[:, :, 1:].sub(im[:, :, :-1]).abs().mean() / (im.max() - im.min()))

    texture = _Fake(lambda im: 2000.0 * (contrast(im) - 0.995))
    assert contrast(checker) == 1.0 and contrast(jpeg75(checker)) < 0.99
    assert stable_label(texture, checker) is None


def test_candidate_crops_cover_the_frame():
    crops = candidate_crops(300, 451)
    assert len(crops) == 1 + 4 + 9 and crops[0] == ("full", (0, 300, 0, 451))
    area = sum((y1 - y0) * (x1 - x0) for tag, (y0, y1, x0, x1) in crops if tag.startswith("g3"))
    assert area == 300 * 451


def test_face_mosaic_boxes_are_on_the_faces():
    """A DARK FACE-like frame: 1080×720, many faces of 10–32 px, none overlapping, at most MAX_FACES; and an
    independent detector (MTCNN) finds every face of ≥ 14 px where the boxes say, and no face where none is
    (catches flipped, shifted or rescaled boxes, and face tiles placed without a box)."""
    faces = {n: load_sample(n) for n in FACE_BOXES}
    others = {n: load_sample(n) for n in ("coffee", "chelsea", "rocket")}
    img, boxes = face_mosaic(faces, others, seed=0)
    a, b = face_mosaic(faces, others, seed=0)
    assert torch.equal(a, img) and b == boxes  # deterministic
    assert img.shape == (3, *MOSAIC_SIZE) == (3, 720, 1080) and 30 <= len(boxes) <= MAX_FACES
    arr = np.asarray(boxes)
    assert (arr[:, :2] >= 0).all() and (arr[:, 2] <= 1080).all() and (arr[:, 3] <= 720).all()
    heights = arr[:, 3] - arr[:, 1]
    assert heights.min() >= 0.97 * FACE_HEIGHTS[0] and heights.max() <= 1.03 * FACE_HEIGHTS[1]
    overlap = metrics.box_iou(arr, arr) - np.eye(len(arr))
    assert overlap.max() == 0.0
    det = create_detector("mtcnn")(img)  # min face 20 px (its default): finds faces down to ~14 px
    iou = metrics.box_iou(arr, det[:, :4])  # (faces, detections)
    assert (iou.max(axis=1)[heights >= 14] >= 0.5).mean() >= 0.95
    confident = det[:, 4] >= 0.95
    assert confident.sum() >= 20 and (iou[:, confident].max(axis=0) >= 0.5).mean() >= 0.95


def test_face_heights_are_log_uniform():
    """Face heights follow the log-uniform law on FACE_HEIGHTS (scipy's loguniform as the reference)."""
    rng = np.random.default_rng(0)
    draws = np.array([face_height(rng) for _ in range(4000)])
    assert stats.kstest(draws, stats.loguniform(*FACE_HEIGHTS).cdf).pvalue > 0.01
    assert draws.min() >= FACE_HEIGHTS[0] and draws.max() <= FACE_HEIGHTS[1]


def test_build_images_kinds_and_labels():
    paths = {n: p for n, p in sample_photos().items() if n in ("coffee", "astronaut")}
    crops = [{"name": "coffee.full", "photo": "coffee", "box": [0, 400, 0, 600], "label": 967, "p": 0.96},
             {"name": "coffee.g2-00", "photo": "coffee", "box": [0, 200, 0, 300], "label": 967, "p": 0.89}]
    ims = build_images(paths, 128, 2, crops)
    kinds = [(im.name, im.kind) for im in ims]
    assert kinds == [("astronaut", "photo"), ("coffee", "photo"), ("coffee.g2-00", "crop"),
                     ("faces0", "mosaic"), ("faces1", "mosaic")]
    astro, coffee = ims[0], ims[1]
    assert coffee.label == 967 and astro.label is None  # the whole photo passed: it carries its label
    assert coffee.faces == [] and len(astro.faces) == 1  # photos without faces still count false faces
    x1, y1, x2, y2 = astro.faces[0]
    assert (x1, y1, x2, y2) == tuple(round(v * 128 / 512, 2) for v in FACE_BOXES["astronaut"])
    assert ims[2].faces is None and ims[2].image.shape == (3, 85, 128)


def test_face_mosaic_without_distractor_photos_fills_up_with_background():
    """Only face photos (e.g. `--option suite.photos=astronaut`): once the frame holds MAX_FACES faces the rest
    stays background instead of drawing from an empty list of distractors."""
    faces = {n: load_sample(n) for n in FACE_BOXES}
    img, boxes = face_mosaic(faces, {}, seed=0)
    assert img.shape == (3, *MOSAIC_SIZE) and len(boxes) == MAX_FACES
