"""Uncertainty of benchmark numbers: percentile bootstrap over images, and the pieces that make it fast for
detection AP.

Every cell of a GEFU-mini table is a statistic of a set of images (a mean PSNR, a top-1 rate, an AP over all the
images' detections). Its 95 % interval is the percentile bootstrap: draw the set's images with replacement
`n_resamples` times, recompute the statistic on each draw, take the 2.5th and 97.5th percentiles (Efron &
Tibshirani 1993, §13.3). The draws depend only on (number of images, seed), so every method of a table is
resampled with the same draws (a paired comparison).

Detection AP is not a mean over images, but each image's matching (which detection hits which face) does not
depend on the other images, so it is computed once per image (`match_detections`) and each draw only concatenates
and ranks (`ap_from_matches`); together they equal `gefu.metrics.voc_ap`.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from ..metrics import tasks

#: Draws per interval (the percentiles' Monte-Carlo error is then ~0.5 % of the interval's width).
N_RESAMPLES = 1000


def resample_indices(n: int, n_resamples: int = N_RESAMPLES, seed: int = 0) -> np.ndarray:
    """(n_resamples, n) int64: each row a draw of n indices in [0, n) with replacement (seeded)."""
    return np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))


def percentile_interval(replicates: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """(low, high) percentiles of the finite replicates ((nan, nan) when none is finite)."""
    r = np.asarray(replicates, dtype=np.float64)
    r = r[np.isfinite(r)]
    if r.size == 0:
        return float("nan"), float("nan")
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(r, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def bootstrap_interval(statistic: Callable[[np.ndarray], float], n: int, n_resamples: int = N_RESAMPLES,
                       seed: int = 0, confidence: float = 0.95) -> tuple[float, float]:
    """Percentile-bootstrap interval of `statistic(indices)` over sets of n items drawn with replacement."""
    if n == 0:
        return float("nan"), float("nan")
    idx = resample_indices(n, n_resamples, seed)
    return percentile_interval(np.array([statistic(row) for row in idx]), confidence)


def mean_interval(values: Sequence[float], n_resamples: int = N_RESAMPLES, seed: int = 0,
                  confidence: float = 0.95) -> tuple[float, float]:
    """Bootstrap interval of the mean of `values` (vectorised)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return float("nan"), float("nan")
    idx = resample_indices(v.size, n_resamples, seed)
    return percentile_interval(v[idx].mean(axis=1), confidence)


# Detection AP, per-image matching once, then any subset: `gefu.metrics.tasks` owns both halves of voc_ap.
def match_detections(det: np.ndarray, gt: np.ndarray, iou_threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """One image: detections (K, 5) and ground truth (M, 4) → (scores (K,), true-positive flags (K,))."""
    score, tp, _ = tasks.match_detections(det, gt, iou_threshold)
    return score, tp


ap_from_matches = tasks.ap_from_matches


def significantly_best(values: Sequence[float | None], intervals: Sequence[tuple[float, float] | None],
                       higher_is_better: bool) -> int | None:
    """Index of the best value when its interval does not overlap the runner-up's interval, else None (a
    conservative test: non-overlapping 95 % intervals)."""
    cand = [(i, v, iv) for i, (v, iv) in enumerate(zip(values, intervals))
            if v is not None and iv is not None and np.isfinite(v) and all(np.isfinite(iv))]
    if len(cand) < 2:
        return None
    cand.sort(key=lambda t: t[1], reverse=higher_is_better)
    (i0, v0, (lo0, hi0)), (_, v1, (lo1, hi1)) = cand[0], cand[1]
    if v0 == v1:
        return None
    separated = lo0 > hi1 if higher_is_better else hi0 < lo1
    return i0 if separated else None
