"""Reflectance teachers for SCUF's reflectance-consistency loss (paper Sec. 3.3, DESIGN §2.5).

Two teachers behind one interface, ``ReflectanceTeacher``: ``teacher(img) -> R`` with ``img`` RGB (B, 3, H, W)
in [0, 1] and ``R`` (B, 3, H, W) in [0, 1]. Both are frozen (no trainable parameters, no gradients needed).

- ``DecomNet``: the decomposition network of RetinexNet (Wei et al., BMVC 2018), as in the PyTorch port the
  SCUF authors load. Input: the channel max concatenated FIRST, then RGB (4 channels); a 9×9 conv 4→64 with
  no activation; five 3×3 conv 64→64 + ReLU; a 3×3 conv 64→4; every conv pads by replication.
  ``R = sigmoid(out[:, :3])``, ``L = sigmoid(out[:, 3:])``.
- ``classic_reflectance``: a weight-free single-scale Retinex estimate, ``R = I / max(blur(max_c I), eps)``
  clamped to [0, 1]: the illumination is a Gaussian-smoothed brightest channel (as in LIME's initial map),
  so training can run when no DecomNet weights are at hand. It is a rougher teacher; say so in results.

Usage::

    teacher = load_reflectance_teacher("path/to/retinexnet_decom.pth")  # or None → classic fallback
    r = teacher(img)  # (B, 3, H, W) in [0, 1]
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..enhancers.layers import BorderConv2d

__all__ = [
    "ReflectanceTeacher",
    "DecomNet",
    "ClassicReflectance",
    "classic_reflectance",
    "load_decomnet",
    "load_reflectance_teacher",
]

log = logging.getLogger(__name__)


class ReflectanceTeacher(nn.Module):
    """A frozen image → reflectance map. ``forward(img (B,3,H,W) [0,1]) -> R (B,3,H,W) [0,1]``."""

    #: short name written into training logs and configs
    kind: str = "base"

    def reflectance(self, img: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        if img.ndim != 4 or img.shape[1] != 3:
            raise ValueError(f"reflectance teacher expects (B, 3, H, W) RGB, got {tuple(img.shape)}")
        return self.reflectance(img)


class DecomNet(ReflectanceTeacher):
    """RetinexNet's decomposition network. ``decompose(img) -> (R (B,3,H,W), L (B,1,H,W))``, both in [0, 1].

    Parameter names match the released PyTorch port (``net1_conv0``, ``net1_convs.{0,2,4,6,8}``, ``net1_recon``),
    so its state dict loads strictly once the ``DecomNet.`` prefix is stripped (see ``load_decomnet``).
    """

    kind = "decomnet"

    def __init__(self, channels: int = 64, kernel_size: int = 3) -> None:
        super().__init__()
        big = kernel_size * 3  # 9×9 shallow feature extraction
        # BorderConv2d: nn.Conv2d with the same replicate padding, without a padded copy of each 64-channel map
        self.net1_conv0 = BorderConv2d(4, channels, big, padding=big // 2, padding_mode="replicate")
        layers: list[nn.Module] = []
        for _ in range(5):
            layers += [
                BorderConv2d(channels, channels, kernel_size, padding=kernel_size // 2, padding_mode="replicate"),
                nn.ReLU(inplace=True),
            ]
        self.net1_convs = nn.Sequential(*layers)
        self.net1_recon = BorderConv2d(channels, 4, kernel_size, padding=kernel_size // 2, padding_mode="replicate")

    def decompose(self, img: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """img (B, 3, H, W) in [0, 1] → reflectance (B, 3, H, W), illumination (B, 1, H, W), both in [0, 1]."""
        x = torch.cat([img.amax(dim=1, keepdim=True), img], dim=1)  # (B, 4, H, W): max first, then RGB
        feats = self.net1_conv0(x)  # (B, 64, H, W), no activation (as in the original)
        feats = self.net1_convs(feats)  # (B, 64, H, W)
        out = self.net1_recon(feats)  # (B, 4, H, W)
        return torch.sigmoid(out[:, :3]), torch.sigmoid(out[:, 3:4])

    def reflectance(self, img: torch.Tensor) -> torch.Tensor:
        return self.decompose(img)[0]


def _gaussian_kernel1d(sigma: float, device, dtype) -> torch.Tensor:
    radius = max(1, int(math.ceil(3.0 * sigma)))
    x = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()  # (2r+1,)


def classic_reflectance(img: torch.Tensor, sigma: float = 15.0, eps: float = 0.05) -> torch.Tensor:
    """Weight-free Retinex reflectance ``I / max(blur(max_c I), eps)`` clamped to [0, 1].

    img (B, 3, H, W) in [0, 1] → (B, 3, H, W) in [0, 1]. The illumination estimate is the brightest channel
    blurred by a separable Gaussian of std ``sigma`` pixels (reflect padding; replicate for tiny images);
    ``eps`` keeps near-black pixels from exploding into noise.
    """
    if sigma <= 0 or eps <= 0:
        raise ValueError(f"sigma and eps must be positive, got sigma={sigma}, eps={eps}")
    illum = img.amax(dim=1, keepdim=True)  # (B, 1, H, W)
    k = _gaussian_kernel1d(sigma, img.device, img.dtype)
    r = k.numel() // 2
    h, w = illum.shape[-2:]
    mode = "reflect" if r < h and r < w else "replicate"
    illum = F.pad(illum, (r, r, r, r), mode=mode)
    illum = F.conv2d(illum, k.view(1, 1, 1, -1))  # horizontal pass
    illum = F.conv2d(illum, k.view(1, 1, -1, 1))  # vertical pass → (B, 1, H, W)
    return (img / illum.clamp_min(eps)).clamp(0.0, 1.0)


class ClassicReflectance(ReflectanceTeacher):
    """``classic_reflectance`` as a module (the fallback teacher when no DecomNet weights are given)."""

    kind = "classic"

    def __init__(self, sigma: float = 15.0, eps: float = 0.05) -> None:
        super().__init__()
        self.sigma = sigma
        self.eps = eps

    def reflectance(self, img: torch.Tensor) -> torch.Tensor:
        return classic_reflectance(img, sigma=self.sigma, eps=self.eps)

    def extra_repr(self) -> str:
        return f"sigma={self.sigma}, eps={self.eps}"


def load_decomnet(path: str | os.PathLike) -> DecomNet:
    """Load RetinexNet DecomNet weights (a ``.pth`` state dict, keys ``DecomNet.net1_conv0.*`` …) → frozen DecomNet.

    Accepts keys with or without the ``DecomNet.`` prefix (and a ``module.`` prefix from DataParallel); other
    sub-networks of a full RetinexNet file (``RelightNet.*``) are ignored. Loads on CPU with
    ``weights_only=True``; move the module to your device afterwards.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: RetinexNet DecomNet weights not found. Pass the path of a RetinexNet decomposition "
            "checkpoint (e.g. retinexnet_decom.pth), or omit it to use the weight-free classic teacher."
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any unpickling failure is a user-file problem
        raise ValueError(f"{path}: cannot read as a torch state dict ({err})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict, found {type(state).__name__}")
    cleaned: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        k = key[len("module.") :] if key.startswith("module.") else key
        if k.startswith("DecomNet."):
            k = k[len("DecomNet.") :]
        elif "." in k and not k.startswith("net1_"):
            continue  # e.g. RelightNet.* in a full RetinexNet checkpoint
        cleaned[k] = value
    net = DecomNet()
    try:
        net.load_state_dict(cleaned, strict=True)
    except RuntimeError as err:
        raise ValueError(f"{path}: not a RetinexNet DecomNet checkpoint ({err})") from None
    net.requires_grad_(False)
    return net.eval()


def load_reflectance_teacher(weights: str | os.PathLike | None = None, **classic_options) -> ReflectanceTeacher:
    """DecomNet from ``weights`` when given, else the classic weight-free teacher (logged as a warning)."""
    if weights:
        return load_decomnet(weights)
    log.warning(
        "no RetinexNet weights given: using the classic Retinex reflectance (I / blur(max_c I)) as teacher"
    )
    return ClassicReflectance(**classic_options).eval()
