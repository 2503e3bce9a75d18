"""No-reference image quality: NIQE and BRISQUE, per image, lower is better, on the 8-bit image.

**NIQE**, the Natural Image Quality Evaluator (Mittal, Soundararajan & Bovik, IEEE SPL 2013), as the authors'
MATLAB release computes it (`computequality.m`, `computefeature.m`, `estimateaggdparam.m`).

Per image:

1. luminance: MATLAB `rgb2gray` of the uint8 image (`matlab.rgb2gray_uint8`), as double in [0, 255];
2. crop to a whole number of 96×96 blocks (bottom/right remainder dropped);
3. at two scales (full, then MATLAB `imresize(im, 0.5)`, bicubic with antialiasing): MSCN coefficients
   (im - μ) / (σ + 1) with μ, σ from a 7×7 Gaussian window (σ = 7/6), 'replicate' borders; per block
   (96×96, then 48×48) 18 features: an AGGD fit of the coefficients (α, mean β) and of the products with
   the four neighbours (right, down, down-right, down-left; circular within the block: α, η, βl, βr);
4. fit a Gaussian (mean, covariance over blocks; NaN-aware like MATLAB `nanmean`/`nancov`) to the 36-d
   block features and return sqrt((μp - μd)ᵀ pinv((Σp + Σd)/2) (μp - μd)) against the release's pristine
   model (`niqe-pris-params` in `gefu.weights`: `mu_pris_param` (1, 36), `cov_pris_param` (36, 36)).

Validated against the release's own outputs (see README "Metrics"): within 1 % of the MATLAB figures.

**BRISQUE** (Mittal, Moorthy & Bovik, IEEE TIP 2012) as OpenCV contrib computes it: `cv2.quality.QualityBRISQUE`
with its LIVE-trained SVM model and feature range files (`brisque-model`, `brisque-range` in `gefu.weights`)
(≈ 0 pristine … 100 heavily distorted; values slightly outside that range occur).

OpenCV reads 8-bit BGR: it converts to grey with BGR weights, then scales by 1/255. gefu images are RGB, so
they are quantised to 8 bits and the channels reversed here; feeding RGB as if it were BGR swaps the red and
blue weights of the grey conversion and moves the score by up to ~5 points.
"""

from __future__ import annotations

import functools
import threading
import warnings
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import torch
from scipy import ndimage
from scipy.special import gamma

from .. import weights
from .convert import uint8_images
from .matlab import fspecial_gaussian, imresize, rgb2gray_uint8, rgb2ycbcr_y_uint8

__all__ = ["niqe", "niqe_gray", "load_niqe_model", "NIQE_BLOCK", "brisque"]


# ----------------------------------------------------------------------------------------------------------------
# NIQE (MATLAB release)
# ----------------------------------------------------------------------------------------------------------------

NIQE_BLOCK = 96  # the release's (and the pristine model's) block size
_WINDOW = fspecial_gaussian(7, 7 / 6)  # (7, 7)
_GAM = 0.2 + 0.001 * np.arange(9801)  # MATLAB 0.2:0.001:10
_R_GAM = gamma(2 / _GAM) ** 2 / (gamma(1 / _GAM) * gamma(3 / _GAM))  # (9801,)
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))  # circshift offsets of computefeature.m
_FLAT = 1e-8  # grey levels: a 7×7 neighbourhood whose range is below this is flat (see _mscn)


@functools.lru_cache(maxsize=4)
def load_niqe_model(path: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(mu (36,), cov (36, 36)) of the pristine model; default: the `niqe-pris-params` weight file."""
    path = Path(path) if path is not None else weights.weight_path("niqe-pris-params")
    with np.load(path) as z:
        mu = np.asarray(z["mu_pris_param"], dtype=np.float64).reshape(-1)
        cov = np.asarray(z["cov_pris_param"], dtype=np.float64)
    if mu.shape != (36,) or cov.shape != (36, 36):
        raise ValueError(f"{path}: expected a NIQE model with mu (36,) and cov (36, 36), got {mu.shape}, {cov.shape}")
    return mu, cov


def _aggd(v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AGGD fit of `estimateaggdparam.m`, batched: v (B, n) → alpha, beta_l, beta_r, each (B,).

    An empty side gives NaN (MATLAB's mean of nothing) and then alpha = 0.2 (MATLAB's `min` of all-NaN
    picks the first entry), which `nanmean` keeps in the alpha column.
    """
    neg, pos = v < 0, v > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        left = np.sqrt((v**2 * neg).sum(1) / neg.sum(1))
        right = np.sqrt((v**2 * pos).sum(1) / pos.sum(1))
        gammahat = left / right
        rhat = np.abs(v).mean(1) ** 2 / (v**2).mean(1)
        rhatnorm = rhat * (gammahat**3 + 1) * (gammahat + 1) / (gammahat**2 + 1) ** 2
    alpha = _GAM[np.argmin((_R_GAM[None, :] - rhatnorm[:, None]) ** 2, axis=1)]  # NaN row → index 0
    ratio = np.sqrt(gamma(1 / alpha) / gamma(3 / alpha))
    return alpha, left * ratio, right * ratio


def _block_features(blocks: np.ndarray) -> np.ndarray:
    """`computefeature.m` for a stack of MSCN blocks (B, h, w) → (B, 18)."""
    flat = blocks.reshape(len(blocks), -1)  # (B, h·w)
    alpha, bl, br = _aggd(flat)
    feats = [alpha, (bl + br) / 2]
    for shift in _SHIFTS:
        pair = flat * np.roll(blocks, shift, axis=(1, 2)).reshape(len(blocks), -1)
        alpha, bl, br = _aggd(pair)
        eta = (br - bl) * gamma(2 / alpha) / gamma(1 / alpha)
        feats += [alpha, eta, bl, br]
    return np.stack(feats, axis=1)


def _mscn(im: np.ndarray) -> np.ndarray:
    """Mean-subtracted contrast-normalised coefficients, 'replicate' borders (imfilter) → same shape.

    Where the whole 7×7 neighbourhood is flat (range ≤ `_FLAT`, far below any real variation: the smallest
    bicubic weight product is ~1e-4 grey levels) the coefficient is set to its exact value, 0. Deviation from
    the release, on purpose: there MATLAB returns floating-point residue (±1e-15) whose sign depends on the
    summation order, and because the AGGD fit counts negative and positive samples, that residue moves NIQE
    of images with flat areas by several percent (TID2013 I19, 31 % flat: 9.13 with residue, 8.67 exact,
    8.64 from MATLAB).
    """
    mu = ndimage.correlate(im, _WINDOW, mode="nearest")
    sigma = np.sqrt(np.abs(ndimage.correlate(im * im, _WINDOW, mode="nearest") - mu * mu))
    out = (im - mu) / (sigma + 1)
    span = ndimage.maximum_filter(im, size=7, mode="nearest") - ndimage.minimum_filter(im, size=7, mode="nearest")
    out[span <= _FLAT] = 0.0
    return out


def _blocks(x: np.ndarray, size: int) -> np.ndarray:
    """(H, W) with H, W multiples of `size` → (nH·nW, size, size)."""
    h, w = x.shape
    return x.reshape(h // size, size, w // size, size).transpose(0, 2, 1, 3).reshape(-1, size, size)


def _pinv(a: np.ndarray) -> np.ndarray:
    """MATLAB `pinv`: SVD, singular values below max(size)·eps(max σ) dropped."""
    u, s, vt = np.linalg.svd(a)
    keep = s > max(a.shape) * np.spacing(s.max())
    return (vt[keep].T / s[keep]) @ u[:, keep].T


def _mvg_distance(feat: np.ndarray, mu_p: np.ndarray, cov_p: np.ndarray) -> float:
    """Distance between the pristine Gaussian and the one fitted to the block features (B, 36)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column: "mean of empty slice"
        mu_d = np.nanmean(feat, axis=0)  # (36,)
    complete = feat[~np.isnan(feat).any(axis=1)]  # nancov: rows with a NaN are dropped
    if len(complete) == 0 or np.isnan(mu_d).any():
        return float("nan")
    # MATLAB's cov of a single observation is zeros; np.cov would give NaN.
    cov_d = np.cov(complete, rowvar=False) if len(complete) > 1 else np.zeros((36, 36))
    d = mu_p - mu_d
    return float(np.sqrt(d @ _pinv((cov_p + cov_d) / 2) @ d))


def niqe_gray(gray: np.ndarray, model: tuple[np.ndarray, np.ndarray] | None = None,
              block: int = NIQE_BLOCK) -> float:
    """NIQE of one grey image (H, W) given in [0, 255] (uint8 or double): `computequality.m` with no overlap.

    The image must hold at least one block × block tile (after cropping to whole blocks).
    """
    mu_p, cov_p = model if model is not None else load_niqe_model()
    im = np.asarray(gray, dtype=np.float64)
    if im.ndim != 2:
        raise ValueError(f"niqe_gray expects an (H, W) array, got shape {im.shape}")
    nh, nw = im.shape[0] // block, im.shape[1] // block
    if nh == 0 or nw == 0:
        raise ValueError(f"NIQE needs images of at least {block}×{block} pixels, got {im.shape[0]}×{im.shape[1]}")
    im = im[: nh * block, : nw * block]
    feats = []
    for scale in (1, 2):
        feats.append(_block_features(_blocks(_mscn(im), block // scale)))  # (nh·nw, 18)
        if scale == 1:
            im = imresize(im, 0.5)
    return _mvg_distance(np.concatenate(feats, axis=1), mu_p, cov_p)


def niqe(
    img: torch.Tensor | np.ndarray,
    model_path: str | Path | None = None,
    luminance: Literal["gray", "y"] = "gray",
) -> torch.Tensor:
    """NIQE per image (lower is better), as the authors' MATLAB release computes it on 8-bit images.

    img: RGB float (N, 3, H, W) / (3, H, W) in [0, 1] (grey (N, 1, H, W) is used as luminance directly), or
    one uint8 (H, W, 3) / (H, W) array. Pixels are quantised to 8 bits (round(x·255)), RGB goes through MATLAB
    `rgb2gray` (luminance="gray", the release's own conversion and the default) or, with luminance="y", the
    Y of MATLAB `rgb2ycbcr` (what BasicSR-style super-resolution code reports; NIQE differs by a few %).
    Each image needs at least 96×96 pixels. model_path: a pristine model .npz (default: the
    release's, `niqe-pris-params`). Returns (N,) float64; nan for an image without any textured block.
    """
    if luminance not in ("gray", "y"):
        raise ValueError(f"luminance must be 'gray' or 'y', got {luminance!r}")
    to_luma = rgb2gray_uint8 if luminance == "gray" else rgb2ycbcr_y_uint8
    model = load_niqe_model(str(model_path) if model_path is not None else None)
    out = []
    for u8 in uint8_images(img):
        gray = to_luma(u8) if u8.ndim == 3 else u8
        out.append(niqe_gray(gray, model))
    return torch.tensor(out, dtype=torch.float64)


# ----------------------------------------------------------------------------------------------------------------
# BRISQUE (OpenCV contrib)
# ----------------------------------------------------------------------------------------------------------------

_BRISQUE_CACHE: dict[tuple[str, str], object] = {}
_BRISQUE_LOCK = threading.Lock()


def _model(model_path: str | Path | None, range_path: str | Path | None):
    """The cached `cv2.quality.QualityBRISQUE` for these files (default: the weight table's)."""
    if not hasattr(cv2, "quality"):
        raise ImportError(
            "BRISQUE needs OpenCV's contrib modules (cv2.quality): "
            "pip uninstall opencv-python-headless && pip install 'opencv-contrib-python-headless<5'"
        )
    model = str(model_path if model_path is not None else weights.weight_path("brisque-model"))
    rng = str(range_path if range_path is not None else weights.weight_path("brisque-range"))
    with _BRISQUE_LOCK:
        if (model, rng) not in _BRISQUE_CACHE:
            _BRISQUE_CACHE[(model, rng)] = cv2.quality.QualityBRISQUE_create(model, rng)
        return _BRISQUE_CACHE[(model, rng)]


def brisque(
    img: torch.Tensor | np.ndarray,
    model_path: str | Path | None = None,
    range_path: str | Path | None = None,
) -> torch.Tensor:
    """BRISQUE per image (lower is better), OpenCV contrib's `QualityBRISQUE` on the 8-bit image.

    img: RGB float (N, 3, H, W) / (3, H, W) in [0, 1] (grey (N, 1, H, W) is passed as grey), or one uint8
    RGB (H, W, 3) / grey (H, W) array. Returns (N,) float64.
    """
    scorer = _model(model_path, range_path)
    out = []
    for u8 in uint8_images(img):
        bgr = np.ascontiguousarray(u8[..., ::-1]) if u8.ndim == 3 else u8
        with _BRISQUE_LOCK:
            out.append(float(scorer.compute(bgr)[0]))
    return torch.tensor(out, dtype=torch.float64)
