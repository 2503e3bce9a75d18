"""Full-reference image quality: PSNR, MATLAB-style SSIM and LPIPS, per image (see the package docstring for
the conventions), plus `match_size` for predictions whose size differs from the reference."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from .. import weights

log = logging.getLogger(__name__)

__all__ = ["psnr", "ssim", "lpips", "match_size"]


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


def match_size(
    pred: torch.Tensor, target: torch.Tensor, mode: Literal["bicubic", "opencv-bilinear"] = "bicubic"
) -> torch.Tensor:
    """Resize `pred` (N, C, h, w) to the spatial size of `target` (N, C, H, W) if they differ (IQA protocol).

    mode="bicubic" (default): bicubic with antialiasing, clamped to [0, 1]. mode="opencv-bilinear": what the
    official GEFU IQA script does — `cv2.resize(pred, (W, H))` (INTER_LINEAR, no antialiasing) on the float64
    HWC image. Returns `pred` itself when the sizes already agree (cv2.resize to the same size is a copy).
    """
    pred, target = _as_batch(pred, "pred"), _as_batch(target, "target")
    if pred.shape[-2:] == target.shape[-2:]:
        return pred
    h, w = target.shape[-2:]
    if mode == "opencv-bilinear":
        import cv2

        arrs = pred.detach().double().cpu().permute(0, 2, 3, 1).numpy()  # (N, h, w, C)
        out = np.stack([np.atleast_3d(cv2.resize(a, (w, h), interpolation=cv2.INTER_LINEAR)) for a in arrs])
        return torch.from_numpy(out).permute(0, 3, 1, 2).to(device=pred.device, dtype=pred.dtype)
    if mode != "bicubic":
        raise ValueError(f"mode must be 'bicubic' or 'opencv-bilinear', got {mode!r}")
    out = F.interpolate(pred, size=(h, w), mode="bicubic", antialias=True, align_corners=False)
    return out.clamp(0, 1)


# ----------------------------------------------------------------------------------------------------------------
# PSNR / SSIM
# ----------------------------------------------------------------------------------------------------------------


def psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0,
         max_db: float | None = None) -> torch.Tensor:
    """Peak signal-to-noise ratio per image, in dB: 10·log10(data_range² / MSE).

    pred, target: (N, 3, H, W) (or (3, H, W)) in [0, data_range]. Returns (N,) float64 on the input device.
    Identical images give +inf, unless `max_db` caps the value (the official GEFU script returns 100 dB when
    MSE < 1e-10, i.e. `max_db=100` with data_range 1): a mean over images must never average an infinity.
    """
    pred, target = _check_pair(pred, target)
    mse = (pred.double() - target.double()).pow(2).flatten(1).mean(dim=1)  # (N,)
    out = 10.0 * torch.log10(data_range**2 / mse)
    return out if max_db is None else out.clamp(max=float(max_db))


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
