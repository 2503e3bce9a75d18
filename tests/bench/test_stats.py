"""Bootstrap intervals (against hand-enumerated bootstrap distributions and scipy.stats.bootstrap), AP from
per-image matches (against gefu.metrics.voc_ap), and the 'bold only when separated' rule."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import bootstrap

from gefu import metrics
from gefu.bench import stats


def test_interval_of_hand_enumerated_bootstrap_distributions():
    # values (0, 1): the resampled mean is 0, 1/2, 1 with probabilities 1/4, 1/2, 1/4 → 95 % interval [0, 1].
    assert stats.mean_interval([0.0, 1.0], n_resamples=20_000) == (0.0, 1.0)
    # values (0, 0, 0, 1): the number of 1s drawn is Binomial(4, 1/4): P(0) = .316, P(≤1) = .738, P(≤2) = .949,
    # P(≤3) = .996 → the 2.5th percentile is 0 and the 97.5th is 3/4.
    assert stats.mean_interval([0.0, 0.0, 0.0, 1.0], n_resamples=20_000) == (0.0, 0.75)


def test_mean_interval_matches_scipy_percentile_bootstrap():
    x = np.random.default_rng(1).normal(10.0, 2.0, size=40)
    lo, hi = stats.mean_interval(x, n_resamples=20_000, seed=3)
    ref = bootstrap((x,), np.mean, n_resamples=20_000, method="percentile", random_state=7).confidence_interval
    assert lo == pytest.approx(ref.low, abs=0.05) and hi == pytest.approx(ref.high, abs=0.05)
    assert lo < x.mean() < hi
    # The generic version (statistic of resampled indices) gives the same interval for the same draws.
    assert stats.bootstrap_interval(lambda idx: float(x[idx].mean()), len(x), 2000, seed=5) == \
        stats.mean_interval(x, 2000, seed=5)


def test_same_draws_for_every_method():
    a, b = stats.resample_indices(7, 50, seed=2), stats.resample_indices(7, 50, seed=2)
    assert np.array_equal(a, b) and a.shape == (50, 7) and a.min() >= 0 and a.max() < 7
    assert stats.percentile_interval(np.array([np.nan, np.nan])) != stats.percentile_interval(np.array([1.0, 2.0]))


def _random_case(rng, n_images):
    dets, gts = [], []
    for _ in range(n_images):
        m = int(rng.integers(0, 4))
        xy = rng.uniform(0, 80, size=(m, 2))
        gt = np.concatenate([xy, xy + rng.uniform(10, 30, size=(m, 2))], axis=1)
        k = int(rng.integers(0, 6))
        if m and k:
            base = gt[rng.integers(0, m, size=k)] + rng.normal(0, 4, size=(k, 4))
        else:
            xy2 = rng.uniform(0, 80, size=(k, 2))
            base = np.concatenate([xy2, xy2 + 20], axis=1)
        dets.append(np.concatenate([base, rng.uniform(0.05, 1, size=(k, 1))], axis=1))
        gts.append(gt)
    return dets, gts


def test_ap_from_matches_equals_voc_ap_on_any_subset():
    rng = np.random.default_rng(0)
    for trial in range(30):
        dets, gts = _random_case(rng, int(rng.integers(1, 7)))
        matches = [stats.match_detections(d, g) for d, g in zip(dets, gts)]
        idx = rng.integers(0, len(dets), size=len(dets))  # a bootstrap draw, with repeats
        got = stats.ap_from_matches([matches[i][0] for i in idx], [matches[i][1] for i in idx],
                                    sum(len(gts[i]) for i in idx))
        want = metrics.voc_ap([dets[i] for i in idx], [gts[i] for i in idx])
        assert (np.isnan(got) and np.isnan(want)) or got == pytest.approx(want, abs=1e-12), trial


def test_significantly_best():
    # higher is better: 0.9 [0.85, 0.95] vs 0.8 [0.7, 0.84] → separated; vs 0.8 [0.7, 0.86] → not.
    assert stats.significantly_best([0.8, 0.9], [(0.7, 0.84), (0.85, 0.95)], True) == 1
    assert stats.significantly_best([0.8, 0.9], [(0.7, 0.86), (0.85, 0.95)], True) is None
    # lower is better (LPIPS): 0.2 [0.15, 0.25] vs 0.4 [0.3, 0.5]
    assert stats.significantly_best([0.4, 0.2], [(0.3, 0.5), (0.15, 0.25)], False) == 1
    assert stats.significantly_best([0.4, 0.4], [(0.1, 0.2), (0.5, 0.6)], True) is None  # a tie is never bold
    assert stats.significantly_best([0.4], [(0.3, 0.5)], True) is None
