"""The Enhancer contract.

An enhancer is a `torch.nn.Module` called on a float tensor (N, 3, H, W) with values in [0, 1]; it returns
a tensor of the same shape, dtype and device, values in [0, 1]. It has a `name`, moves with `.to(device)`,
never prints, and describes itself with `config()` (the options that change its output — the benchmark
uses it as a cache key).

Classic enhancers are pure numpy functions on one (H, W, 3) float32 image; `NumpyEnhancer` wraps such a
function so it meets the contract on batches and on any device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import numpy as np
import torch

from ..registry import Registry

ENHANCERS: Registry["Enhancer"] = Registry("enhancer")


def check_image_batch(x: torch.Tensor) -> None:
    """Raise ValueError unless `x` is a floating tensor (N, 3, H, W)."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"expected a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected a batch of RGB images (N, 3, H, W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"expected a float tensor in [0, 1], got dtype {x.dtype}")


@dataclass(frozen=True)
class PublishedFigure:
    """A method paper's own result on a test set, as printed there (for tables beside gefu's measurement).

    `source` says where it is printed, e.g. "IAT paper (BMVC 2022, arXiv:2205.14871v3), Table 1"."""

    psnr: float
    ssim: float | None
    source: str


class Enhancer(torch.nn.Module):
    """Base class: subclasses implement `enhance(x)`; `forward` validates input and clamps output."""

    name: ClassVar[str] = "enhancer"
    #: the method paper's own LOL-v1 (eval15) PSNR/SSIM, where that paper prints one; None otherwise.
    published_lol_v1: ClassVar[PublishedFigure | None] = None

    def __init__(self, **options: Any) -> None:
        super().__init__()
        self.options: dict[str, Any] = dict(options)

    def config(self) -> dict[str, Any]:
        """Name and options: everything that determines the output (JSON-serialisable)."""
        return {"name": self.name, **self.options}

    @property
    def device(self) -> torch.device:
        for t in self.parameters():
            return t.device
        for t in self.buffers():
            return t.device
        return torch.device("cpu")

    def enhance(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, 3, H, W) float in [0, 1] → (N, 3, H, W), same dtype and device, in [0, 1]."""
        check_image_batch(x)
        y = self.enhance(x)
        return y.clamp(0.0, 1.0).to(dtype=x.dtype, device=x.device)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v!r}" for k, v in self.options.items())


class NumpyEnhancer(Enhancer):
    """Wraps a pure function `fn(img (H, W, 3) float32 [0, 1], **options) -> (H, W, 3)` as an Enhancer.

    Runs on the CPU image by image (these methods have no GPU path); results return to the input's device.
    """

    fn: ClassVar[Callable[..., np.ndarray]]

    def enhance(self, x: torch.Tensor) -> torch.Tensor:
        imgs = x.detach().float().cpu().permute(0, 2, 3, 1).numpy()  # (N, H, W, 3)
        out = [np.asarray(type(self).fn(np.ascontiguousarray(im), **self.options), np.float32) for im in imgs]
        return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2)  # (N, 3, H, W)


def create_enhancer(name: str, **options: Any) -> Enhancer:
    """Build a registered enhancer by name, e.g. `create_enhancer("lime", alpha=0.15)`."""
    from . import _load_all  # registers the built-in enhancers

    _load_all()
    return ENHANCERS.create(name, **options)


def list_enhancers() -> list[str]:
    """Names of all registered enhancers."""
    from . import _load_all

    _load_all()
    return ENHANCERS.names()
