"""Benchmark metrics as pure functions (torchmetrics style); the table columns (name, direction, format) are
`gefu.bench.suites.Metric`.

Conventions follow the GEFU benchmark (DESIGN §3):

- images are RGB float tensors (N, 3, H, W) in [0, 1]; per-image values come back as a tensor (N,) and the
  caller averages (PSNR/SSIM/LPIPS are "per image, then mean");
- PSNR = 10·log10(1 / MSE) over all pixels and channels of one image;
- SSIM is the MATLAB reference (Wang et al. `ssim_index.m`): 11×11 Gaussian window, σ = 1.5, 'valid' filtering
  (no padding: the map is (H-10)×(W-10)), C1 = 0.01², C2 = 0.03², population (not sample) statistics, computed
  per channel and averaged over channels. No automatic downsampling (that is a later `ssim.m` addition);
- LPIPS is the official `lpips` package (v0.1 linear heads) with inputs mapped to [-1, 1];
- detection AP is VOC all-point ("area") AP at IoU 0.5, IoU without the legacy +1, greedy matching by score;
- mIoU comes from one confusion matrix accumulated over the whole set.

Detection AP, mIoU and top-1 are fractions in [0, 1]; reports multiply by 100.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import torch
import torch.nn.functional as F

log = logging.getLogger(__name__)

__all__ = [
    "psnr",
    "ssim",
    "lpips",
    "match_size",
    "box_iou",
    "voc_ap",
    "confusion_matrix",
    "iou_from_confusion",
    "mean_iou",
    "top1",
]


def _as_batch(x: torch.Tensor, name: str) -> torch.Tensor:
    """(3, H, W) or (N, C, H, W) → (N, C, H, W)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4:
        raise ValueError(f"{name} must have shape (N, C, H, W) or (C, H, W), got {tuple(x.shape)}")
    return x


def _check_pair(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    pred, target = _as_batch(pred, "pred"), _as_batch(target, "target")
    if pred.shape != target.shape:
        raise ValueError(
            f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape; "
            "resize the prediction to the ground truth first (gefu.metrics.match_size)"
        )
    return pred, target


def match_size(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Resize `pred` (N, C, h, w) to the spatial size of `target` (N, C, H, W) if they differ (IQA protocol).

    Bicubic with antialiasing, clamped to [0, 1]; returns `pred` itself when the sizes already agree.
    """
    pred, target = _as_batch(pred, "pred"), _as_batch(target, "target")
    if pred.shape[-2:] == target.shape[-2:]:
        return pred
    out = F.interpolate(pred, size=target.shape[-2:], mode="bicubic", antialias=True, align_corners=False)
    return out.clamp(0, 1)


# ----------------------------------------------------------------------------------------------------------------
# PSNR / SSIM
# ----------------------------------------------------------------------------------------------------------------


def psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio per image, in dB.

    pred, target: (N, 3, H, W) (or (3, H, W)) in [0, data_range]. Returns (N,) float64 on the input device;
    identical images give +inf.
    """
    pred, target = _check_pair(pred, target)
    mse = (pred.double() - target.double()).pow(2).flatten(1).mean(dim=1)  # (N,)
    return 10.0 * torch.log10(data_range**2 / mse)


def _gaussian_1d(size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Normalised 1-D Gaussian; its outer product equals MATLAB's fspecial('gaussian', size, sigma)."""
    x = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _filter_valid(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' filtering of (N, C, H, W) with the 1-D kernel g (k,) → (N, C, H-k+1, W-k+1)."""
    c = x.shape[1]
    k = g.numel()
    x = F.conv2d(x, g.view(1, 1, k, 1).expand(c, 1, k, 1), groups=c)  # along H
    return F.conv2d(x, g.view(1, 1, 1, k).expand(c, 1, 1, k), groups=c)  # along W


def ssim(
    pred: torch.Tensor,
    target: torch.Tensor,
    data_range: float = 1.0,
    win_size: int = 11,
    sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """MATLAB-style SSIM per image: Gaussian window (11, σ 1.5), valid crop, mean over pixels then channels.

    pred, target: (N, C, H, W) (or (C, H, W)) in [0, data_range] with H, W ≥ win_size. Returns (N,) float64.
    Computed in float64 so that it matches scikit-image's reference to ~1e-7.
    """
    pred, target = _check_pair(pred, target)
    if min(pred.shape[-2:]) < win_size:
        raise ValueError(f"SSIM needs images of at least {win_size}×{win_size}, got {tuple(pred.shape[-2:])}")
    x, y = pred.double(), target.double()
    g = _gaussian_1d(win_size, sigma, torch.float64, x.device)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2

    mu_x, mu_y = _filter_valid(x, g), _filter_valid(y, g)  # (N, C, H', W')
    sxx = _filter_valid(x * x, g) - mu_x**2
    syy = _filter_valid(y * y, g) - mu_y**2
    sxy = _filter_valid(x * y, g) - mu_x * mu_y
    s_map = ((2 * mu_x * mu_y + c1) * (2 * sxy + c2)) / ((mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2))
    return s_map.mean(dim=(2, 3)).mean(dim=1)  # per channel, then over channels → (N,)


# ----------------------------------------------------------------------------------------------------------------
# LPIPS (official package; trunk weights provisioned offline by gefu.weights)
# ----------------------------------------------------------------------------------------------------------------

_LPIPS_CACHE: dict[tuple[str, str, str], torch.nn.Module] = {}
_LPIPS_LOCK = threading.Lock()


def _build_lpips(net: str, cache_dir: Path | None) -> torch.nn.Module:
    """The official `lpips.LPIPS(net)` in eval mode, with its backbone weights found offline."""
    from . import weights

    return weights.load_lpips(net, cache_dir=cache_dir)


def lpips(
    pred: torch.Tensor,
    target: torch.Tensor,
    net: Literal["alex", "vgg"] = "alex",
    cache_dir: str | Path | None = None,
) -> torch.Tensor:
    """LPIPS distance (official `lpips` package, v0.1) per image; lower is more similar.

    pred, target: (N, 3, H, W) (or (3, H, W)) in [0, 1], mapped to [-1, 1] here. Computed in float32 on the
    inputs' device (the network is cached per (net, device)). Returns (N,) float32.
    The AlexNet/VGG trunk comes from `gefu weights provision` (or torchvision's own checkpoint in the torch hub
    cache); a clear FileNotFoundError says what to run when neither is there.
    """
    pred, target = _check_pair(pred, target)
    if net not in ("alex", "vgg"):
        raise ValueError(f"LPIPS net must be 'alex' or 'vgg', got {net!r}")
    device = pred.device
    key = (net, str(device), str(cache_dir or ""))
    with _LPIPS_LOCK:
        model = _LPIPS_CACHE.get(key)
        if model is None:
            model = _build_lpips(net, Path(cache_dir) if cache_dir is not None else None).to(device)
            _LPIPS_CACHE[key] = model
    with torch.no_grad():
        d = model(pred.float() * 2 - 1, target.float() * 2 - 1)  # (N, 1, 1, 1)
    return d.flatten()


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
) -> float:
    """VOC all-point average precision for one class over a set of images, in [0, 1].

    detections: per image an array (K, 5) of x1, y1, x2, y2, score (K may be 0).
    ground_truths: per image an array (M, 4) of x1, y1, x2, y2 (M may be 0).
    All detections of the set are ranked by score; each is a true positive when its best-overlapping
    ground-truth box in the same image has IoU ≥ `iou_threshold` and was not taken by a higher-scored
    detection (mmdetection's rule, which the paper's detector evaluation used; the VOC devkit uses a strict >,
    which differs only at exact equality). AP = area under the precision envelope (all points, "area" mode).
    Returns nan when the set has no ground-truth box at all (recall is undefined).
    """
    if len(detections) != len(ground_truths):
        raise ValueError(f"{len(detections)} detection arrays for {len(ground_truths)} ground-truth arrays")
    scores, tps, n_gt = [], [], 0
    for i, (det, gt) in enumerate(zip(detections, ground_truths)):
        det = np.asarray(det, dtype=np.float64).reshape(-1, 5) if np.size(det) else np.zeros((0, 5))
        gt = np.asarray(gt, dtype=np.float64).reshape(-1, 4) if np.size(gt) else np.zeros((0, 4))
        n_gt += len(gt)
        order = np.argsort(-det[:, 4], kind="stable")
        det = det[order]
        tp = np.zeros(len(det), dtype=bool)
        if len(gt):
            iou = box_iou(det[:, :4], gt)  # (K, M)
            taken = np.zeros(len(gt), dtype=bool)
            for k in range(len(det)):
                j = int(np.argmax(iou[k]))
                if iou[k, j] >= iou_threshold and not taken[j]:
                    tp[k], taken[j] = True, True
        scores.append(det[:, 4])
        tps.append(tp)
    if n_gt == 0:
        return float("nan")
    score = np.concatenate(scores)
    tp = np.concatenate(tps)[np.argsort(-score, kind="stable")]
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
    `ignore_index` or outside [0, num_classes) are skipped. Predictions outside [0, num_classes) land in the
    last column ("no valid class"): they count as misses for the true class and as nobody's false positive.
    Sum matrices of several calls to accumulate over a set.
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
        keep = (t >= 0) & (t < num_classes)
        if ignore_index is not None:
            keep &= t != ignore_index
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
