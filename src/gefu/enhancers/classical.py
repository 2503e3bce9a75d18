"""Classic low-light enhancers: identity, gamma, HE, CLAHE, MSRCR, LIME and DUAL.

Every method is a pure numpy function on ONE image `img` (H, W, 3) float32 RGB in [0, 1] that returns
(H, W, 3) float32 in [0, 1]; a thin `NumpyEnhancer` subclass registers it under its name so that
`gefu.create_enhancer("lime", alpha=0.15)` gives a batch-capable `torch.nn.Module`. All methods handle any
size down to 1×1.

LIME and DUAL (and LIME's solvers) live in `gefu.enhancers.lime`; they are registered here with the others.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from .base import ENHANCERS, Choice, Flag, Number, Numbers, NumpyEnhancer
from .base import as_image as _as_image
from .lime import (  # re-exported: the classic methods in one place
    LIME_SOLVERS, MULTIRES_MIN_PIXELS, dual, exposure_fusion, lime, lime_illumination, lime_system, lime_weights,
)

__all__ = [
    "identity",
    "gamma_correction",
    "histogram_equalization",
    "clahe",
    "gaussian_blur",
    "msrcr",
    "lime_weights",
    "lime_system",
    "lime_illumination",
    "lime",
    "exposure_fusion",
    "dual",
    "LIME_SOLVERS",
    "MULTIRES_MIN_PIXELS",
]


# ----------------------------------------------------------------------------------------------------------
# Point operations and histogram methods
# ----------------------------------------------------------------------------------------------------------


def identity(img: np.ndarray) -> np.ndarray:
    """No enhancement (the baseline row of every table): (H, W, 3) [0, 1] → the same image."""
    return _as_image(img)


def gamma_correction(img: np.ndarray, gamma: float = 0.4) -> np.ndarray:
    """`img ** gamma` per channel; gamma < 1 brightens. (H, W, 3) [0, 1] → (H, W, 3) [0, 1]."""
    if gamma <= 0:
        raise ValueError(f"gamma must be > 0, got {gamma}")
    return np.power(_as_image(img), np.float32(gamma))


def _scale_to_value(img: np.ndarray, v: np.ndarray, v_new: np.ndarray) -> np.ndarray:
    """Multiply RGB by v_new / v per pixel: keeps HSV hue and saturation, sets HSV value to v_new."""
    ratio = np.where(v > 0, v_new / np.maximum(v, 1e-12), 0.0)  # (H, W)
    out = img * ratio[..., None]
    black = v <= 0  # a black pixel has no hue: it becomes grey at the new value
    out[black] = v_new[black, None]
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def histogram_equalization(img: np.ndarray, bins: int = 256) -> np.ndarray:
    """Global histogram equalisation of the HSV value channel V = max(R, G, B); hue and saturation kept.

    V is quantised to `bins` levels and mapped through its normalised cumulative histogram,
    v' = (cdf(v) − cdf_min) / (N − cdf_min) (the textbook definition: the darkest level maps to 0).
    (H, W, 3) float [0, 1] → (H, W, 3) float32 [0, 1].
    """
    img = _as_image(img)
    v = img.max(axis=2)  # (H, W)
    q = np.minimum((v * bins).astype(np.int64), bins - 1)  # (H, W) level index
    cdf = np.cumsum(np.bincount(q.ravel(), minlength=bins)).astype(np.float64)  # (bins,)
    cdf_min = cdf[q.min()]
    denom = cdf[-1] - cdf_min
    if denom <= 0:  # a single level: nothing to equalise
        return img
    v_new = ((cdf[q] - cdf_min) / denom).astype(np.float32)
    return _scale_to_value(img, v, v_new)


def clahe(img: np.ndarray, clip_limit: float = 2.0, tiles: int = 8) -> np.ndarray:
    """Contrast-limited adaptive HE (OpenCV) of the L channel of CIE Lab; a and b (colour) kept.

    L is processed at 16-bit precision so that the few levels of a dark 8-bit photo are not merged.
    `clip_limit` is OpenCV's clip limit, `tiles` the number of tiles per side.
    (H, W, 3) float [0, 1] → (H, W, 3) float32 [0, 1].
    """
    img = _as_image(img)
    lab = cv2.cvtColor(img, cv2.COLOR_RGB2Lab)  # (H, W, 3) float32, L in [0, 100]
    l16 = np.round(lab[..., 0] * (65535.0 / 100.0)).astype(np.uint16)
    op = cv2.createCLAHE(clipLimit=float(clip_limit), tileGridSize=(int(tiles), int(tiles)))
    lab[..., 0] = op.apply(l16).astype(np.float32) * (100.0 / 65535.0)
    return np.clip(cv2.cvtColor(lab, cv2.COLOR_Lab2RGB), 0.0, 1.0)


# ----------------------------------------------------------------------------------------------------------
# Multi-scale Retinex with colour restoration
# ----------------------------------------------------------------------------------------------------------


def gaussian_blur(x: np.ndarray, sigma: float, max_sigma_px: float = 8.0) -> np.ndarray:
    """Gaussian blur with replicated borders, (H, W) or (H, W, C) float32 → same shape.

    A large sigma is applied on a copy downscaled by the integer factor f = floor(sigma / max_sigma_px)
    (exact f×f block means), then upsampled bilinearly: the blur removes what the block averaging loses,
    and it costs O(HW / f²) instead of O(HW·sigma). The image is first padded by replication (two blocks
    beyond the border, then up to a multiple of f) so the small image's own border replication matches
    the full-resolution one. Deviation from the exact blur is below 1 % of the range (see the tests).
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    f = int(sigma // max_sigma_px)
    if f < 2:
        return cv2.GaussianBlur(x, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE).reshape(x.shape)
    h, w = x.shape[:2]
    top = left = 2 * f
    bottom = 2 * f + (-h) % f
    right = 2 * f + (-w) % f
    xp = cv2.copyMakeBorder(x, top, bottom, left, right, cv2.BORDER_REPLICATE)  # (H', W'[, C])
    hp, wp = xp.shape[:2]
    small = cv2.resize(xp, (wp // f, hp // f), interpolation=cv2.INTER_AREA)  # exact block means
    small = cv2.GaussianBlur(small, (0, 0), sigma / f, borderType=cv2.BORDER_REPLICATE)
    big = cv2.resize(small, (wp, hp), interpolation=cv2.INTER_LINEAR)
    return big[top : top + h, left : left + w].reshape(x.shape)


def msrcr(
    img: np.ndarray,
    sigmas: tuple[float, ...] = (15.0, 80.0, 250.0),
    alpha: float = 125.0,
    beta: float = 46.0,
    low_clip: float = 0.01,
    high_clip: float = 0.01,
) -> np.ndarray:
    """Multi-scale Retinex with colour restoration (Jobson, Rahman, Woodell 1997), simplest colour balance.

    MSR_c = mean_n [log I_c − log(G_σn ∗ I_c)] over `sigmas`; colour restoration
    C_c = beta · [log(alpha · I_c) − log Σ_k I_k]; MSRCR_c = C_c · MSR_c. The usual final gain/offset is
    replaced by the simplest colour balance of Limare et al. (IPOL 2011): per channel, clip the `low_clip`
    and `high_clip` fractions of pixels and stretch linearly to [0, 1]. Intensities are on the 8-bit scale
    plus 1 (log-safe). Large sigmas use a downscaled blur (`gaussian_blur`).
    (H, W, 3) float [0, 1] → (H, W, 3) float32 [0, 1].
    """
    img = _as_image(img)
    x = img.astype(np.float32) * 255.0 + 1.0  # (H, W, 3) in [1, 256]
    log_x = np.log(x)
    msr = np.zeros_like(x)
    for s in sigmas:
        msr += log_x - np.log(gaussian_blur(x, s))
    msr /= len(sigmas)
    crf = beta * (np.log(alpha * x) - np.log(x.sum(axis=2, keepdims=True)))  # (H, W, 3)
    out = crf * msr
    flat = out.reshape(-1, 3)
    lo = np.quantile(flat, low_clip, axis=0)
    hi = np.quantile(flat, 1.0 - high_clip, axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    res = (out - lo) / span
    res[..., hi <= lo] = 0.5  # a constant channel has no contrast to stretch
    return np.clip(res, 0.0, 1.0).astype(np.float32)


# ----------------------------------------------------------------------------------------------------------
# Registered enhancers
# ----------------------------------------------------------------------------------------------------------
# Valid option ranges (checked at construction) and peak working memory of one untiled call, measured with
# ru_maxrss on a 1500×1000 image (numpy float copies, cv2 buffers; LIME's exact sparse LU grows faster than
# linearly with the image, so its figure is a floor for larger images).

_GAMMA = Number(0, 10, low_open=True)
_LIME_SPECS = {
    "alpha": Number(0, 1000), "gamma": _GAMMA, "weight_strategy": Choice((1, 2, 3)),
    "sigma": Number(0, 100, low_open=True), "eps": Number(0, 1, low_open=True),
    "t_floor": Number(0, 1, low_open=True), "denoise": Flag(), "denoise_strength": Number(0, 100),
    "solver": Choice(LIME_SOLVERS), "downscale": Number(1, 64),
}  # fmt: skip
_LIME_BYTES = {"direct": 1300.0, "cg": 250.0, "multires": 350.0}


def _lime_bytes_per_pixel(options: dict[str, Any]) -> float:
    solver = options.get("solver", "auto")
    if solver == "auto":
        solver = "cg" if options.get("weight_strategy", 3) == 1 else "multires"
    return _LIME_BYTES[solver]


@ENHANCERS.register("none")
class Identity(NumpyEnhancer):
    """No enhancement: the baseline."""

    name = "none"
    fn = staticmethod(identity)
    bytes_per_pixel = 30.0

    def __init__(self) -> None:
        super().__init__()


@ENHANCERS.register("gamma")
class Gamma(NumpyEnhancer):
    """Gamma correction `x ** gamma` (gamma < 1 brightens)."""

    name = "gamma"
    fn = staticmethod(gamma_correction)
    specs = {"gamma": _GAMMA}
    bytes_per_pixel = 30.0

    def __init__(self, gamma: float = 0.4) -> None:
        super().__init__(gamma=gamma)


@ENHANCERS.register("he")
class HistogramEqualization(NumpyEnhancer):
    """Histogram equalisation of the HSV value channel (colours kept)."""

    name = "he"
    fn = staticmethod(histogram_equalization)
    specs = {"bins": Number(2, 65536, integer=True)}
    bytes_per_pixel = 90.0

    def __init__(self, bins: int = 256) -> None:
        super().__init__(bins=bins)


@ENHANCERS.register("clahe")
class CLAHE(NumpyEnhancer):
    """OpenCV CLAHE on the L channel of Lab."""

    name = "clahe"
    fn = staticmethod(clahe)
    specs = {"clip_limit": Number(0, 1000), "tiles": Number(1, 256, integer=True)}
    bytes_per_pixel = 70.0

    def __init__(self, clip_limit: float = 2.0, tiles: int = 8) -> None:
        super().__init__(clip_limit=clip_limit, tiles=tiles)


@ENHANCERS.register("msrcr")
class MSRCR(NumpyEnhancer):
    """Multi-scale Retinex with colour restoration and simplest colour balance."""

    name = "msrcr"
    fn = staticmethod(msrcr)
    specs = {
        "sigmas": Numbers(Number(0, 10000, low_open=True)), "alpha": Number(0, 1e6, low_open=True),
        "beta": Number(-1e6, 1e6), "low_clip": Number(0, 0.49), "high_clip": Number(0, 0.49),
    }  # fmt: skip
    bytes_per_pixel = 130.0

    def __init__(
        self,
        sigmas: tuple[float, ...] | list[float] | float = (15.0, 80.0, 250.0),
        alpha: float = 125.0,
        beta: float = 46.0,
        low_clip: float = 0.01,
        high_clip: float = 0.01,
    ) -> None:
        if isinstance(sigmas, (int, float)) and not isinstance(sigmas, bool):
            sigmas = [sigmas]  # one scale
        super().__init__(sigmas=sigmas, alpha=alpha, beta=beta, low_clip=low_clip, high_clip=high_clip)
        self.options["sigmas"] = [float(s) for s in sigmas]


@ENHANCERS.register("lime")
class LIME(NumpyEnhancer):
    """LIME (TIP 2017): structure-aware illumination map, R = I / T^γ."""

    name = "lime"
    fn = staticmethod(lime)
    specs = _LIME_SPECS

    def __init__(
        self,
        alpha: float = 0.15,
        gamma: float = 0.8,
        weight_strategy: int = 3,
        sigma: float = 2.0,
        eps: float = 1e-3,
        t_floor: float = 1e-3,
        denoise: bool = False,
        denoise_strength: float = 20.0,
        solver: str = "auto",
        downscale: float = 2.0,
    ) -> None:
        super().__init__(
            alpha=alpha, gamma=gamma, weight_strategy=weight_strategy, sigma=sigma, eps=eps,
            t_floor=t_floor, denoise=denoise, denoise_strength=denoise_strength, solver=solver,
            downscale=downscale,
        )  # fmt: skip

    @property
    def bytes_per_pixel(self) -> float:  # type: ignore[override]
        return _lime_bytes_per_pixel(self.options)


@ENHANCERS.register("dual")
class DUAL(NumpyEnhancer):
    """DUAL (CGF 2019): LIME on I and on 1 − I, fused with the input by Mertens exposure fusion."""

    name = "dual"
    fn = staticmethod(dual)
    specs = {k: v for k, v in _LIME_SPECS.items() if k not in ("t_floor", "denoise", "denoise_strength")}

    def __init__(
        self,
        alpha: float = 0.15,
        gamma: float = 0.6,
        weight_strategy: int = 3,
        sigma: float = 3.0,
        eps: float = 1e-3,
        solver: str = "auto",
        downscale: float = 2.0,
    ) -> None:
        super().__init__(
            alpha=alpha, gamma=gamma, weight_strategy=weight_strategy, sigma=sigma, eps=eps, solver=solver,
            downscale=downscale,
        )  # fmt: skip

    @property
    def bytes_per_pixel(self) -> float:  # type: ignore[override]
        return 2 * _lime_bytes_per_pixel(self.options) + 50.0  # two LIME solves side by side, then fusion
