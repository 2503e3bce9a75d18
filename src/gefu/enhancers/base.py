"""The Enhancer contract.

An enhancer is a `torch.nn.Module` called on a float tensor (N, 3, H, W) with values in [0, 1]; it returns
a tensor of the same shape, dtype and device, values in [0, 1]. It has a `name`, moves with `.to(device)`,
never prints, and describes itself with `config()` (the options that change its output — the benchmark
uses it as a cache key).

Classic enhancers are pure numpy functions on one (H, W, 3) float32 image; `NumpyEnhancer` wraps such a
function so it meets the contract on batches and on any device, and checks its options up front against
declared ranges (`Number`, `Choice`, `Flag`, `Numbers`): a NaN, an infinity or an out-of-range value is refused
at construction with the valid range, never discovered (or crashed on) in the middle of a folder.

This module is the contract only: `create_enhancer` / `list_enhancers`, which import the modules that register
enhancers, live in the package (`gefu.enhancers`), which imports this module — not the other way round.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Mapping

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
    #: Peak working memory per pixel of one untiled call, in bytes (None: not known). `gefu enhance` uses it to
    #: tile an image automatically when the untiled call would not fit in the available memory.
    bytes_per_pixel: ClassVar[float | None] = None
    #: Whether calls may run at once on several threads (pure functions that release the GIL and use about one
    #: core each); `gefu enhance` then computes several images at the same time.
    thread_safe: ClassVar[bool] = False

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


def as_image(img: np.ndarray) -> np.ndarray:
    """Validate one image (H, W, 3) for a numpy method and return a float32 copy clipped to [0, 1]."""
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 3 or img.shape[0] < 1 or img.shape[1] < 1:
        raise ValueError(f"expected an RGB image (H, W, 3), got shape {img.shape}")
    return np.clip(img.astype(np.float32, copy=True), 0.0, 1.0)


# ----------------------------------------------------------------------------------------------------------------
# Option ranges
# ----------------------------------------------------------------------------------------------------------------


def _fmt(v: float) -> str:
    return f"{v:g}"


@dataclass(frozen=True)
class Number:
    """A finite number (or an integer) in a range; `low_open` excludes `low` itself."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    integer: bool = False

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a finite number"
        if self.low is not None and self.high is not None:
            return f"{kind} in {'(' if self.low_open else '['}{_fmt(self.low)}, {_fmt(self.high)}]"
        if self.low is not None:
            return f"{kind} {'>' if self.low_open else '>='} {_fmt(self.low)}"
        if self.high is not None:
            return f"{kind} <= {_fmt(self.high)}"
        return kind

    def ok(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
            return False
        v = float(value)
        if not math.isfinite(v) or (self.integer and not v.is_integer()):
            return False
        if self.low is not None and (v <= self.low if self.low_open else v < self.low):
            return False
        return self.high is None or v <= self.high


@dataclass(frozen=True)
class Choice:
    """One of a few values."""

    values: tuple[Any, ...]

    def describe(self) -> str:
        return "one of " + ", ".join(repr(v) if isinstance(v, str) else str(v) for v in self.values)

    def ok(self, value: Any) -> bool:
        return not isinstance(value, bool) and value in self.values


@dataclass(frozen=True)
class Flag:
    """true or false."""

    def describe(self) -> str:
        return "true or false"

    def ok(self, value: Any) -> bool:
        return isinstance(value, bool)


@dataclass(frozen=True)
class Numbers:
    """A non-empty list of numbers, each as `item` says."""

    item: Number

    def describe(self) -> str:
        return f"a non-empty list of numbers, each {self.item.describe().removeprefix('a finite number ')}"

    def ok(self, value: Any) -> bool:
        return isinstance(value, (list, tuple)) and len(value) > 0 and all(self.item.ok(v) for v in value)


Spec = Number | Choice | Flag | Numbers


def check_options(owner: str, options: Mapping[str, Any], specs: Mapping[str, Spec]) -> None:
    """Raise ValueError, naming the option and its valid range, for the first value `specs` refuses."""
    for key, value in options.items():
        spec = specs.get(key)
        if spec is not None and not spec.ok(value):
            raise ValueError(f"{owner}: {key} must be {spec.describe()}, got {value!r}")


class NumpyEnhancer(Enhancer):
    """Wraps a pure function `fn(img (H, W, 3) float32 [0, 1], **options) -> (H, W, 3)` as an Enhancer.

    Runs on the CPU image by image (these methods have no GPU path); results return to the input's device.
    Subclasses declare the valid range of each option in `specs`; they are checked at construction.
    """

    fn: ClassVar[Callable[..., np.ndarray]]
    specs: ClassVar[Mapping[str, Spec]] = {}
    thread_safe = True

    def __init__(self, **options: Any) -> None:
        check_options(self.name, options, self.specs)
        super().__init__(**options)

    def enhance(self, x: torch.Tensor) -> torch.Tensor:
        imgs = x.detach().float().cpu().permute(0, 2, 3, 1).numpy()  # (N, H, W, 3)
        out = [np.asarray(type(self).fn(np.ascontiguousarray(im), **self.options), np.float32) for im in imgs]
        return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2)  # (N, 3, H, W)
