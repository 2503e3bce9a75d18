"""Scoring helpers shared by the suites: full-reference IQA of one image, and calls into the frozen task models
of `gefu.bench.tasks` (build one, classify, detect)."""

from __future__ import annotations

import importlib.util
import logging
import math
from typing import Any

import numpy as np
import torch

from ... import metrics, weights
from .. import tasks
from .base import Metric, mean_finite

log = logging.getLogger(__name__)

IQA_METRICS = (
    Metric("psnr", "PSNR", True, ".2f"),
    Metric("ssim", "SSIM", True, ".4f"),
    Metric("lpips", "LPIPS", False, ".4f"),
)
TIME_METRIC = Metric("time_s", "Time (s)", False, ".3f")

#: PSNR never exceeds this (identical images would give +inf, and one infinity makes the mean infinite). The
#: official GEFU script returns exactly this value when MSE < 1e-10, i.e. min(PSNR, 100 dB).
PSNR_CAP_DB = 100.0
PROTOCOLS = ("standard", "official")


def check_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be 'standard' or 'official', got {protocol!r}")
    return protocol


class IQAScorer:
    """PSNR / SSIM / LPIPS of one image against its reference, with LPIPS skipped (and said so) when its
    weights are not available.

    protocol="standard": an output of another size is resized to the reference bicubically with antialiasing.
    protocol="official": as the official `src/iqa_eval.py` — `cv2.resize` (bilinear, no antialiasing). Both cap
    PSNR at `PSNR_CAP_DB` (the record then says `psnr_capped`), so a mean never contains an infinity.
    """

    def __init__(self, use_lpips: bool = True, net: str = "alex", protocol: str = "standard") -> None:
        self.use_lpips = use_lpips
        self.net = net
        self.protocol = check_protocol(protocol)
        self.lpips_error: str | None = None if use_lpips else "disabled (lpips=False)"

    def check(self, device: torch.device) -> None:
        """Find out before the run whether LPIPS can be computed, cheaply: the `lpips` package and a trunk
        file (gefu's converted one or torchvision's) must be there. The network itself is built on the first
        score (importing `lpips` takes seconds, which a fully cached rerun should not pay)."""
        if not self.use_lpips:
            return
        if importlib.util.find_spec("lpips") is None:
            self.lpips_error = "the lpips package is not installed (pip install lpips==0.1.4)"
        else:
            trunk_files = getattr(weights, "_TORCHVISION_TRUNK_FILES", {})
            candidates = [weights.lpips_trunk_path(self.net)]
            if self.net in trunk_files:
                candidates.append(weights.hub_checkpoints_dir() / trunk_files[self.net])
            if not any(p.is_file() for p in candidates):
                self.lpips_error = f"no LPIPS {self.net} trunk weights ({candidates[0]} is missing)"
        if self.lpips_error:
            log.warning("LPIPS is skipped: %s", self.lpips_error)

    @property
    def has_lpips(self) -> bool:
        return self.lpips_error is None

    def __call__(self, pred: torch.Tensor, ref: torch.Tensor) -> dict[str, float]:
        """pred, ref: (3, H, W) in [0, 1]; pred is resized to the reference size when they differ."""
        r = ref[None].to(pred.device)  # (1, 3, H, W)
        mode = "opencv-bilinear" if self.protocol == "official" else "bicubic"
        p = metrics.match_size(pred[None], r, mode=mode)  # (1, 3, H, W)
        out: dict[str, Any] = {"psnr": float(metrics.psnr(p, r, max_db=PSNR_CAP_DB)[0]),
                               "ssim": float(metrics.ssim(p, r)[0])}
        if out["psnr"] >= PSNR_CAP_DB:
            out["psnr_capped"] = True
        if self.has_lpips:
            out["lpips"] = float(torch.as_tensor(metrics.lpips(p, r, net=self.net)).reshape(-1)[0])
        return out

    def conventions(self) -> dict[str, str]:
        resize = ("cv2.resize to the reference size (bilinear, no antialiasing), as the official script"
                  if self.protocol == "official" else
                  "an output whose size differs from the reference is resized to it (bicubic, antialiased)")
        return {
            "protocol": self.protocol,
            "psnr": "RGB, [0, 1] floats, 10·log10(1/MSE) per image, capped at "
            f"{PSNR_CAP_DB:g} dB (identical images), then the mean over images",
            "ssim": "MATLAB-style: Gaussian window 11, σ 1.5, valid crop, C1 = 0.01², C2 = 0.03², mean over RGB "
            "channels, per image then the mean",
            "lpips": f"official lpips package, {self.net} backbone, inputs mapped to [-1, 1]"
            if self.has_lpips
            else f"skipped — {self.lpips_error} (run `gefu weights provision`)",
            "resize": resize + " before scoring",
        }


def psnr_cap_note(records: list[dict[str, Any]]) -> list[str]:
    """A note when some image's PSNR was capped (it was identical to its reference)."""
    n = sum(1 for r in records if r.get("psnr_capped"))
    return [f"{n} image(s) identical to their reference: PSNR capped at {PSNR_CAP_DB:g} dB (not +inf) in the "
            "mean"] if n else []


def iqa_aggregate(records: list[dict[str, Any]]) -> dict[str, float]:
    """Mean PSNR / SSIM / LPIPS over per-image records (metrics no record has are left out)."""
    out = {k: mean_finite([r.get(k) for r in records]) for k in ("psnr", "ssim", "lpips")}
    return {k: v for k, v in out.items() if not math.isnan(v)}


def boxes_array(boxes: Any) -> np.ndarray:
    """(K, 5) detections / (M, 4) boxes as float64 numpy (an empty list gives (0, 5))."""
    arr = np.asarray(boxes, dtype=np.float64)
    return arr.reshape(0, 5) if arr.size == 0 else arr


def build_task(kind: str, name: str, device: torch.device, **options: Any) -> Any:
    """Create a frozen classifier / detector / segmenter of `gefu.bench.tasks` on `device`."""
    create = {"classifier": tasks.create_classifier, "detector": tasks.create_detector,
              "segmenter": tasks.create_segmenter}[kind]
    try:
        model = create(name, **{k: v for k, v in options.items() if v is not None})
    except TypeError as err:  # a missing / unexpected option of the model's factory
        raise ValueError(f"{kind} {name!r}: {err} (model options are passed as --option suite.KEY=VALUE)") from None
    return model.to(device).eval()


def classify(model: Any, img: torch.Tensor) -> int:
    """img (3, H, W) in [0, 1] → top-1 class index (the classifier moves it to its device)."""
    with torch.inference_mode():
        logits = model(img[None])  # (1, C)
    return int(logits.argmax(dim=-1)[0])


def detect(model: Any, img: torch.Tensor) -> np.ndarray:
    """img (3, H, W) in [0, 1] → detections (K, 5): x1, y1, x2, y2, score (pixels of img)."""
    with torch.inference_mode():
        dets = model(img)
    return boxes_array(dets.detach().cpu().numpy() if isinstance(dets, torch.Tensor) else dets)
