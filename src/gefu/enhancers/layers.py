"""Building blocks that keep the CNN enhancers near the hardware's convolution rate (issue 12).

On a CPU, the convolutions of these networks run at the conv rate; what slows a network down is everything
between them: a padded copy of the input before each reflect- or replicate-padded conv, a concatenated copy
before a conv on a skip connection, a fresh tensor for each activation or BatchNorm, and large per-pixel
chains (1×1 convs, GELU) that stream tensors of 64 channels through memory. Fresh tensors of more than a few
tens of MB are worse than their copy: the allocator maps new pages for each, and the page faults cost as much
as the copy. The helpers below compute the same values without those copies:

- `BorderConv2d` / `padded_conv2d`: a reflect/replicate-padded conv computed as a zero-padded conv whose border
  rows and columns are recomputed from thin padded strips (no padded copy of the whole input);
- `conv_cat(conv, parts)`: conv(cat(parts)) as a sum of convs over the matching input-channel slices of the
  weight (no concatenated copy);
- `ConvBNReLU`: conv → BatchNorm → ReLU with the BatchNorm folded into the conv in eval mode;
- `in_bands(fn, x)`, `pixel_matrix` / `band_slices`: per-pixel chains (1×1 convs as matrix products, pointwise
  ops) computed band by band of rows, so their wide intermediates stay in the CPU cache.

Each one gives the plain composition's values within float rounding (tests check 1e-5). `reference_ops()` runs
the plain eager compositions instead (padded copy, cat, separate BatchNorm, whole-image per-pixel chains): the
benchmark and the tests compare the two paths.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Iterator, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

_REFERENCE: ContextVar[bool] = ContextVar("gefu_reference_ops", default=False)


@contextmanager
def reference_ops() -> Iterator[None]:
    """Within this block the helpers below run the plain eager compositions (for checks and benchmarks)."""
    token = _REFERENCE.set(True)
    try:
        yield
    finally:
        _REFERENCE.reset(token)


def fused() -> bool:
    """Whether the copy-free compositions are in use (False inside `reference_ops()`)."""
    return not _REFERENCE.get()


# ----------------------------------------------------------------------------------------------------------------
# Convolutions without padded or concatenated copies
# ----------------------------------------------------------------------------------------------------------------


def padded_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: tuple[int, int],
                  mode: str, groups: int = 1) -> torch.Tensor:
    """`F.conv2d(F.pad(x, padding, mode), weight, bias, groups=groups)` for a stride-1, undilated conv that keeps
    the size (kernel = 2·padding + 1), without the padded copy of x: a zero-padded conv is right everywhere but
    in the `padding` outermost rows and columns, which are recomputed from strips of 2·padding rows (columns)
    padded with `mode` ("reflect", "replicate", ...). x: (N, C, H, W) with H ≥ 2·ph, W ≥ 2·pw → (N, C_out, H, W).
    """
    ph, pw = padding
    h, w = x.shape[-2:]
    if not fused() or weight.shape[-2:] != (2 * ph + 1, 2 * pw + 1) or h < 2 * ph or w < 2 * pw:
        return F.conv2d(F.pad(x, (pw, pw, ph, ph), mode=mode), weight, bias, groups=groups)
    y = F.conv2d(x, weight, bias, 1, (ph, pw), 1, groups)  # (N, C_out, H, W), zero-padded at the border

    def strip(t: torch.Tensor, pad: tuple[int, int, int, int]) -> torch.Tensor:  # padded strip, valid conv
        return F.conv2d(F.pad(t, pad, mode=mode), weight, bias, groups=groups)

    # output rows i < ph read input rows i − ph … i + ph ⊂ [−ph, 2·ph): the first 2·ph rows, padded above and at
    # the sides, give exactly those ph output rows (likewise at the bottom and for the columns)
    if ph:
        y[..., :ph, :] = strip(x[..., : 2 * ph, :], (pw, pw, ph, 0))
        y[..., h - ph :, :] = strip(x[..., h - 2 * ph :, :], (pw, pw, 0, ph))
    if pw:
        y[..., :, :pw] = strip(x[..., :, : 2 * pw], (pw, 0, ph, ph))
        y[..., :, w - pw :] = strip(x[..., :, w - 2 * pw :], (0, pw, ph, ph))
    return y


class BorderConv2d(nn.Conv2d):
    """`nn.Conv2d` whose reflect/replicate padding makes no padded copy of the input (`padded_conv2d`; same
    parameters, same values within float rounding). Strided, dilated or size-changing convs, and zero padding,
    run `nn.Conv2d`'s own path."""

    def _conv_forward(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        if (self.padding_mode == "zeros" or self.stride != (1, 1) or self.dilation != (1, 1)
                or not isinstance(self.padding, tuple)):  # padding="same"/"valid"
            return super()._conv_forward(x, weight, bias)
        return padded_conv2d(x, weight, bias, self.padding, self.padding_mode, self.groups)


def conv_cat(conv: nn.Conv2d, parts: Sequence[torch.Tensor]) -> torch.Tensor:
    """`conv(torch.cat(parts, 1))` without the concatenated copy: the sum of the convs of each part with its
    slice of the weight's input channels, each padded the conv's way (ungrouped convs).
    parts: (N, C_i, H, W) with Σ C_i = conv.in_channels → (N, C_out, H', W')."""
    if sum(p.shape[1] for p in parts) != conv.in_channels:
        raise ValueError(f"conv_cat: parts have {sum(p.shape[1] for p in parts)} channels, the conv takes "
                         f"{conv.in_channels}")
    if not fused() or conv.groups != 1:
        return conv(torch.cat(list(parts), 1))
    y, start = None, 0
    for part in parts:
        c = part.shape[1]
        z = conv._conv_forward(part, conv.weight[:, start : start + c], conv.bias if y is None else None)
        y = z if y is None else y.add_(z)
        start += c
    assert y is not None
    return y


class ConvBNReLU(nn.Sequential):
    """conv → BatchNorm2d → ReLU (children 0, 1, 2, so checkpoints of the plain `nn.Sequential` load unchanged).

    In eval mode the BatchNorm's running statistics are folded into the conv's weight and bias (w·s, (b − μ)·s
    + β with s = γ / √(σ² + ε)), so no normalised copy is made; in training mode it is the plain sequence.
    """

    def __init__(self, conv: nn.Conv2d, bn: nn.BatchNorm2d, act: nn.Module | None = None) -> None:
        super().__init__(conv, bn, act if act is not None else nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv, bn, act = self[0], self[1], self[2]
        if (self.training or not fused() or bn.running_mean is None or bn.weight is None
                or not isinstance(act, nn.ReLU)):
            return super().forward(x)
        scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)  # (C,)
        mean = bn.running_mean if conv.bias is None else bn.running_mean - conv.bias
        bias = bn.bias - mean * scale
        return conv._conv_forward(x, conv.weight * scale.view(-1, 1, 1, 1), bias).relu_()


# ----------------------------------------------------------------------------------------------------------------
# Per-pixel chains, band by band
# ----------------------------------------------------------------------------------------------------------------

#: bytes of input per band: with a per-pixel chain a few times wider than its inputs, a band's working set stays
#: within a core's share of the cache (measured on a 2-core EPYC: 1–4 MB bands run the IAT MLP and the Zero-DCE
#: curve steps 2–3× faster than whole 600×400 images; much smaller bands lose it again to per-call overhead).
BAND_BYTES = 2 << 20


def in_bands(fn: Callable[..., torch.Tensor], *inputs: torch.Tensor, out: torch.Tensor | None = None,
             rows: int | None = None) -> torch.Tensor:
    """`fn(*inputs)` for a per-pixel `fn` (1×1 convs, pointwise ops: each output pixel depends on the same pixel
    of the inputs only), computed a band of rows at a time so its intermediates stay in the CPU cache.

    inputs: (N, C_i, H, W), channels_last. `rows` per band (default: `BAND_BYTES` of input). Returns `out`, or a
    new channels_last tensor; `out` may be one of the inputs (each band is read before it is written). Banded on
    the CPU, for channels_last inputs that autograd does not track; otherwise (and under `reference_ops()`)
    `fn(*inputs)` in one call.
    """
    x = inputs[0]
    if rows is None:
        row_bytes = x.shape[0] * x.shape[-1] * sum(t.shape[1] * t.element_size() for t in inputs)
        rows = max(1, BAND_BYTES // max(1, row_bytes))
    recording = torch.is_grad_enabled() and any(t.requires_grad for t in inputs)
    banded = (fused() and x.device.type == "cpu" and not recording and x.shape[-2] > rows
              and all(t.is_contiguous(memory_format=torch.channels_last) for t in inputs))
    if not banded:
        y = fn(*inputs)
        return y if out is None else out.copy_(y)
    for r in range(0, x.shape[-2], rows):
        y = fn(*(t[..., r : r + rows, :] for t in inputs))
        if out is None:
            out = torch.empty((*y.shape[:2], *x.shape[-2:]), dtype=y.dtype, device=y.device,
                              memory_format=torch.channels_last)
        out[..., r : r + rows, :] = y
    assert out is not None
    return out


def pixel_matrix(x: torch.Tensor) -> torch.Tensor:
    """The (N·H·W, C) matrix of pixels of a channels_last (N, C, H, W) tensor: a view, so writes go to x."""
    if not x.is_contiguous(memory_format=torch.channels_last):
        raise ValueError("pixel_matrix needs a channels_last tensor")
    return x.permute(0, 2, 3, 1).view(-1, x.shape[1])


def band_slices(x: torch.Tensor, *others: torch.Tensor) -> list[slice]:
    """Row slices of `pixel_matrix(x)` in bands of whole image rows holding about `BAND_BYTES` of x and `others`
    (the same pixels in other tensors); one slice off the CPU, where cache blocking does not apply."""
    n, w = x.shape[0] * x.shape[-2] * x.shape[-1], x.shape[-1]
    if x.device.type != "cpu":
        return [slice(0, n)]
    row_bytes = w * sum(t.shape[1] * t.element_size() for t in (x, *others))
    step = w * max(1, BAND_BYTES // max(1, row_bytes))
    return [slice(i, min(i + step, n)) for i in range(0, n, step)]


__all__ = [
    "BAND_BYTES", "BorderConv2d", "ConvBNReLU", "band_slices", "conv_cat", "fused", "in_bands", "padded_conv2d",
    "pixel_matrix", "reference_ops",
]
