"""Statistics of a (low-light, normal-light) pair in linear camera space, to calibrate `gefu.bench.camera` on real
captures (LOL-v1) and to check that the calibrated simulation reproduces them.

Both images are unprocessed with the same camera model (`camera.unprocess`), so the numbers live in the raw space
where the simulation adds its light and noise:

- exposure per channel: Σ low / Σ high over the pixels the normal-light shot does not saturate; `exposure` is the
  green channel's, `cast` the R and B ratios to it;
- noise: the low shot's residual around its expected value (the normal-light shot scaled by the local low/high
  gain, Gaussian σ = `blur` px), binned by that expected value; `fit_noise` fits variance = shot · mean + read
  (the Poisson-Gaussian model) by least squares over the bins of all pairs, weighted by pixel count.

Everything the estimator gets wrong (alignment, the ISP's denoising, 8-bit rounding) it gets wrong in the same way on
a simulated pair made from the same normal-light shots, which is how the calibration script closes the loop: it
adjusts the noise parameters until the simulated pairs give the real pairs' statistics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from .camera import CAMERA, Camera, LowLight, capture, unprocess


@dataclass
class PairStats:
    exposure: np.ndarray  # (3,) Σ low / Σ high per channel (R, G, B)
    bin_mean: np.ndarray  # (K,) expected low-shot value per bin (raw units)
    bin_var: np.ndarray  # (K,) residual variance per bin
    bin_count: np.ndarray  # (K,) pixels per bin


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of each channel of (3, H, W) float64 (radius 3σ, mirrored borders)."""
    out = gaussian_filter(x.numpy(), sigma=(0, sigma, sigma), mode="mirror", truncate=3.0)
    return torch.from_numpy(out)


def pair_statistics(low: torch.Tensor, high: torch.Tensor, camera: Camera = CAMERA, blur: float = 3.0,
                    bins: np.ndarray | None = None, saturated: float = 0.95) -> PairStats:
    """Exposure and noise statistics of one pair; low, high: (3, H, W) sRGB in [0, 1] of the same scene."""
    lo, hi = unprocess(low, camera), unprocess(high, camera)  # (3, H, W) float64
    ok = (high <= saturated).all(dim=0)  # (H, W) not saturated in the high shot
    exposure = np.array([float(lo[c][ok].sum() / hi[c][ok].sum().clamp_min(1e-12)) for c in range(3)])
    gain = _blur(lo, blur) / _blur(hi, blur).clamp_min(1e-6)  # (3, H, W) local low/high factor
    expected = gain * hi
    resid = (lo - expected).numpy().ravel()
    mean = expected.numpy().ravel()
    keep = np.broadcast_to(ok.numpy(), lo.shape).ravel()
    resid, mean = resid[keep], mean[keep]
    edges = bins if bins is not None else default_bins()
    idx = np.digitize(mean, edges) - 1
    k = len(edges) - 1
    count = np.bincount(idx[(idx >= 0) & (idx < k)], minlength=k).astype(np.float64)
    sel = (idx >= 0) & (idx < k)
    s1 = np.bincount(idx[sel], weights=resid[sel], minlength=k)
    s2 = np.bincount(idx[sel], weights=resid[sel] ** 2, minlength=k)
    m1 = np.bincount(idx[sel], weights=mean[sel], minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = s2 / count - (s1 / count) ** 2
        bin_mean = m1 / count
    return PairStats(exposure, bin_mean, var, count)


def default_bins() -> np.ndarray:
    """Expected-value bins (raw units) for the noise curve: log-spaced over the range of a dark shot."""
    return np.geomspace(2e-4, 0.04, 22)


def fit_noise(stats: list[PairStats], min_count: int = 500) -> tuple[float, float]:
    """(shot, read): weighted least squares of variance = shot · mean + read over the bins of all pairs."""
    mean = np.concatenate([s.bin_mean for s in stats])
    var = np.concatenate([s.bin_var for s in stats])
    cnt = np.concatenate([s.bin_count for s in stats])
    ok = (cnt >= min_count) & np.isfinite(var) & np.isfinite(mean)
    a = np.stack([mean[ok], np.ones(ok.sum())], axis=1)
    w = np.sqrt(cnt[ok]) / np.maximum(var[ok], 1e-12)  # relative error weighting: every bin counts alike
    (shot, read), *_ = np.linalg.lstsq(a * w[:, None], var[ok] * w, rcond=None)
    return float(shot), float(read)


def summarize(stats: list[PairStats]) -> dict[str, float | list[float]]:
    """The statistics the calibration matches: exposure percentiles 10 / 50 / 90 (green channel), the median cast
    (R/G, 1, B/G), and the fitted noise curve (shot, read)."""
    expo = np.array([s.exposure for s in stats])  # (P, 3)
    green = expo[:, 1]
    cast = np.median(expo / expo[:, 1:2], axis=0)
    shot, read = fit_noise(stats)
    return {
        "exposure_p10": float(np.quantile(green, 0.10)),
        "exposure_p50": float(np.quantile(green, 0.50)),
        "exposure_p90": float(np.quantile(green, 0.90)),
        "cast": [float(c) for c in cast],
        "shot": shot,
        "read": read,
    }


def simulate_like(high: torch.Tensor, exposure: np.ndarray, shot: float, read: float, seed: int,
                  camera: Camera = CAMERA) -> torch.Tensor:
    """A simulated low shot of a real pair's normal-light image (3, H, W): that pair's own per-channel exposure
    (so only the noise differs from the real low shot's conditions), even light, then `shot` / `read` noise."""
    e = [float(v) for v in exposure]
    level = LowLight(exposure=e[1], cast=(e[0] / e[1], 1.0, e[2] / e[1]), shot=shot, read=read)
    return capture(high, level, seed, camera).image


def calibrate(pairs: list[tuple[torch.Tensor, torch.Tensor]], rounds: int = 4,
              camera: Camera = CAMERA) -> dict[str, object]:
    """Fit the low-light parameters to real (low, high) pairs; returns the fit, the real statistics and the
    statistics of the simulation with the fitted parameters (made from the same normal-light shots).

    Exposure and cast are measured directly. The noise parameters start at the real pairs' fitted curve and are
    rescaled each round by real / simulated, until the simulated pairs give the real pairs' noise curve through
    the same estimator (its biases — 8-bit rounding, the ISP, the blur — cancel)."""
    real_stats = [pair_statistics(lo, hi, camera) for lo, hi in pairs]
    real = summarize(real_stats)
    shot, read = float(real["shot"]), float(real["read"])
    history = []
    for r in range(rounds):
        sim_stats = [pair_statistics(simulate_like(hi, st.exposure, shot, read, seed=1000 * r + i, camera=camera),
                                     hi, camera) for i, ((_, hi), st) in enumerate(zip(pairs, real_stats))]
        sim = summarize(sim_stats)
        history.append({"shot": shot, "read": read, "sim_shot": sim["shot"], "sim_read": sim["read"]})
        shot *= float(real["shot"]) / max(float(sim["shot"]), 1e-12)
        read *= float(real["read"]) / max(float(sim["read"]), 1e-15)
    final = [pair_statistics(simulate_like(hi, st.exposure, shot, read, seed=99_000 + i, camera=camera), hi, camera)
             for i, ((_, hi), st) in enumerate(zip(pairs, real_stats))]
    fit = {k: real[k] for k in ("exposure_p10", "exposure_p50", "exposure_p90", "cast")}
    fit.update(shot=shot, read=read)
    return {"fit": fit, "real": real, "simulated": summarize(final), "rounds": history}
