"""Task metrics: detection (IoU, VOC all-point AP), segmentation (confusion matrix, mIoU) and classification
(top-1). Fractions in [0, 1]; reports multiply by 100."""

from __future__ import annotations

from typing import Literal, Sequence

import numpy as np
import torch

__all__ = ["box_iou", "voc_ap", "match_detections", "ap_from_matches", "confusion_matrix", "iou_from_confusion",
           "mean_iou", "top1"]


# ----------------------------------------------------------------------------------------------------------------
# Detection: VOC all-point AP
# ----------------------------------------------------------------------------------------------------------------


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU between boxes a (K, 4) and b (M, 4) in x1, y1, x2, y2 (continuous coordinates, no +1) → (K, M)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def voc_ap(
    detections: Sequence[np.ndarray],
    ground_truths: Sequence[np.ndarray],
    iou_threshold: float = 0.5,
    ignore: Sequence[np.ndarray] | None = None,
) -> float:
    """VOC all-point average precision for one class over a set of images, in [0, 1].

    detections: per image an array (K, 5) of x1, y1, x2, y2, score (K may be 0).
    ground_truths: per image an array (M, 4) of x1, y1, x2, y2 (M may be 0).
    ignore: optional, per image an array (I, 4) of ignored ground-truth boxes (VOC `difficult`): neither hit
    nor miss — they do not count towards recall, and a detection whose best overlap is one of them is neither
    a true nor a false positive.
    All detections of the set are ranked by score; each is matched to its best-overlapping box of the same
    image (ignored ones included); IoU ≥ `iou_threshold` with a box no higher-scored detection took makes it a
    true positive (mmdetection's `tpfp_default`, which the paper's detector evaluation used; the VOC devkit
    uses a strict >, which differs only at exact equality). AP = area under the precision envelope (all
    points, "area" mode). Returns nan when the set has no (non-ignored) ground-truth box (recall is undefined).
    """
    if len(detections) != len(ground_truths) or (ignore is not None and len(ignore) != len(ground_truths)):
        raise ValueError(f"{len(detections)} detection arrays for {len(ground_truths)} ground-truth arrays"
                         + (f" and {len(ignore)} ignore arrays" if ignore is not None else ""))
    scores, tps, n_gt = [], [], 0
    for i, (det, gt) in enumerate(zip(detections, ground_truths)):
        score, tp, n = match_detections(det, gt, iou_threshold, None if ignore is None else ignore[i])
        scores.append(score)
        tps.append(tp)
        n_gt += n
    return ap_from_matches(scores, tps, n_gt)


def match_detections(det: np.ndarray, gt: np.ndarray, iou_threshold: float = 0.5,
                     ignore: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """One image's matching for `voc_ap` → (scores (K',), true-positive flags (K',), number of counted boxes).

    det (K, 5), gt (M, 4), ignore (I, 4) or None. Detections are taken by descending score; each goes to its
    best-overlapping box (ignored ones included); IoU ≥ threshold with a box no higher-scored detection took is a
    true positive. Detections that went to an ignored box are dropped (K' ≤ K). An image's matching does not
    depend on the other images, so a bootstrap can match once and rank any subset (`ap_from_matches`).
    """
    det = np.asarray(det, dtype=np.float64).reshape(-1, 5) if np.size(det) else np.zeros((0, 5))
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 4) if np.size(gt) else np.zeros((0, 4))
    ign = np.zeros((0, 4)) if ignore is None or not np.size(ignore) else \
        np.asarray(ignore, dtype=np.float64).reshape(-1, 4)
    det = det[np.argsort(-det[:, 4], kind="stable")]
    tp = np.zeros(len(det), dtype=bool)
    counted = np.ones(len(det), dtype=bool)  # False: matched an ignored box
    boxes = np.concatenate([gt, ign])
    if len(boxes) and len(det):
        iou = box_iou(det[:, :4], boxes)  # (K, M + I)
        taken = np.zeros(len(gt), dtype=bool)
        for k in range(len(det)):
            j = int(np.argmax(iou[k]))
            if iou[k, j] < iou_threshold:
                continue
            if j >= len(gt):
                counted[k] = False
            elif not taken[j]:
                tp[k], taken[j] = True, True
    return det[counted, 4], tp[counted], len(gt)


def ap_from_matches(scores: Sequence[np.ndarray], tps: Sequence[np.ndarray], n_gt: int) -> float:
    """VOC all-point AP from per-image (scores, true-positive flags) and the number of counted ground-truth boxes;
    nan when there is none."""
    if n_gt == 0:
        return float("nan")
    score = np.concatenate(list(scores)) if len(scores) else np.zeros(0)
    tp = (np.concatenate(list(tps)) if len(tps) else np.zeros(0, dtype=bool))[np.argsort(-score, kind="stable")]
    tp_cum = np.cumsum(tp)
    fp_cum = np.cumsum(~tp)
    recall = tp_cum / n_gt
    precision = tp_cum / np.maximum(tp_cum + fp_cum, np.finfo(np.float64).eps)
    # All-point interpolation: precision envelope (monotone from the right), area under the step curve.
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


# ----------------------------------------------------------------------------------------------------------------
# Segmentation: mIoU from a confusion matrix accumulated over the set
# ----------------------------------------------------------------------------------------------------------------


def confusion_matrix(
    preds: np.ndarray | Sequence[np.ndarray],
    labels: np.ndarray | Sequence[np.ndarray],
    num_classes: int,
    ignore_index: int | None = 255,
) -> np.ndarray:
    """Pixel confusion matrix (num_classes, num_classes + 1), rows = ground truth, columns = prediction.

    preds, labels: one (H, W) integer array or a sequence of them (same shapes pairwise). Pixels whose label is
    `ignore_index` are skipped; any other label outside [0, num_classes) is an error (e.g. Cityscapes labelIds
    given for trainIds: silently dropping them would score half the pixels). Predictions outside
    [0, num_classes) land in the last column ("no valid class"): they count as misses for the true class and as
    nobody's false positive. Sum matrices of several calls to accumulate over a set.
    """
    if isinstance(preds, np.ndarray) and preds.ndim == 2:
        preds, labels = [preds], [labels]
    if len(preds) != len(labels):
        raise ValueError(f"{len(preds)} predictions for {len(labels)} label maps")
    cm = np.zeros((num_classes, num_classes + 1), dtype=np.int64)
    for i, (p, t) in enumerate(zip(preds, labels)):
        p, t = np.asarray(p), np.asarray(t)
        if p.shape != t.shape:
            raise ValueError(
                f"image {i}: prediction {p.shape} and label {t.shape} differ in shape; resize the prediction "
                "to the label with nearest-neighbour interpolation first"
            )
        t = t.astype(np.int64).ravel()
        p = p.astype(np.int64).ravel()
        keep = t != ignore_index if ignore_index is not None else np.ones(t.shape, dtype=bool)
        bad = keep & ((t < 0) | (t >= num_classes))
        if bad.any():
            raise ValueError(
                f"label map {i}: values {sorted(set(np.unique(t[bad]).tolist()))[:8]} are outside [0, {num_classes}) "
                f"and are not the ignore index {ignore_index}"
            )
        t, p = t[keep], p[keep]
        p = np.where((p >= 0) & (p < num_classes), p, num_classes)
        cm += np.bincount(t * (num_classes + 1) + p, minlength=num_classes * (num_classes + 1)).reshape(
            num_classes, num_classes + 1
        )
    return cm


def iou_from_confusion(
    cm: np.ndarray, absent: Literal["nan", "zero"] = "nan"
) -> tuple[float, np.ndarray]:
    """(mIoU, per-class IoU (C,)) from a (C, C) or (C, C + 1) confusion matrix (rows ground truth).

    A class is *absent* when it is neither in the ground truth nor predicted (union 0). absent="nan" (standard,
    mmseg/Cityscapes style) gives it IoU nan and leaves it out of the mean; absent="zero" (the official GEFU
    segmentation script) scores it 0 and averages over all C classes. A class predicted but not in the ground
    truth has IoU 0 under both conventions.
    """
    if absent not in ("nan", "zero"):
        raise ValueError(f"absent must be 'nan' or 'zero', got {absent!r}")
    cm = np.asarray(cm, dtype=np.float64)
    c = cm.shape[0]
    tp = np.diag(cm[:, :c])
    gt = cm.sum(axis=1)  # includes out-of-range predictions (misses)
    pred = cm[:, :c].sum(axis=0)
    union = gt + pred - tp
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
    if absent == "zero":
        iou = np.nan_to_num(iou, nan=0.0)
        return float(iou.mean()), iou
    if np.all(np.isnan(iou)):
        return float("nan"), iou
    return float(np.nanmean(iou)), iou


def mean_iou(
    preds: np.ndarray | Sequence[np.ndarray],
    labels: np.ndarray | Sequence[np.ndarray],
    num_classes: int,
    ignore_index: int | None = 255,
    absent: Literal["nan", "zero"] = "nan",
) -> tuple[float, np.ndarray]:
    """Mean IoU over a set: one confusion matrix accumulated over all pixels of all images.

    preds, labels: sequences of (H, W) integer arrays (class ids; `ignore_index` pixels in labels are skipped).
    Returns (mIoU in [0, 1], per-class IoU (num_classes,)); see `iou_from_confusion` for `absent`.
    """
    return iou_from_confusion(confusion_matrix(preds, labels, num_classes, ignore_index), absent=absent)


# ----------------------------------------------------------------------------------------------------------------
# Classification
# ----------------------------------------------------------------------------------------------------------------


def _as_tensor(x: torch.Tensor | np.ndarray | Sequence[int]) -> torch.Tensor:
    return x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))


def top1(
    logits_or_labels: torch.Tensor | np.ndarray | Sequence[int],
    labels: torch.Tensor | np.ndarray | Sequence[int],
) -> float:
    """Top-1 accuracy in [0, 1].

    logits_or_labels: logits/scores (N, C) (argmax is taken) or predicted class ids (N,).
    labels: true class ids (N,). Returns nan for an empty set.
    """
    pred = _as_tensor(logits_or_labels)
    true = _as_tensor(labels).reshape(-1)
    if pred.ndim == 2:
        pred = pred.argmax(dim=1)
    elif pred.ndim != 1:
        raise ValueError(f"expected logits (N, C) or labels (N,), got shape {tuple(pred.shape)}")
    if pred.shape[0] != true.shape[0]:
        raise ValueError(f"{pred.shape[0]} predictions for {true.shape[0]} labels")
    if true.numel() == 0:
        return float("nan")
    return float((pred.cpu().long() == true.cpu().long()).double().mean())
