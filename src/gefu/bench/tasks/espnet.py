"""ESPNet (Mehta et al., ECCV 2018), the Cityscapes model of sacmehta/ESPNet @afe71c3
(`pretrained/decoder/espnet_p_2_q_8.pth`, MIT; weight table entry `espnet-cityscapes`): the full network
(ESPNet-C encoder with p = 2, q = 8 plus the RUM decoder), as `test/VisualizeResults.py` runs it:

- input: the 8-bit BGR image as float, minus the per-channel means (72.39, 82.91, 73.16) and divided by the
  stds (45.32, 46.15, 44.91) (BGR order, training-set statistics), bilinearly resized to 1024×512 and then
  divided by 255 once more (the official script does; the network was trained that way);
- output: 20 logits at 1024×512, the 19 Cityscapes train ids and a background class (index 19).

gefu then resizes the logits bilinearly to the input size and takes the argmax (the official script saves the
1024×512 map); background becomes 255 (ignored), as the official `relabel` makes it unlabeled.
"""

from __future__ import annotations

import os

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ... import weights
from ..datasets import CITYSCAPES_CLASSES
from .base import SEGMENTERS, Segmenter, check_images, load_checkpoint, load_into, to_uint8_hwc

BGR_MEAN = (72.3923111, 82.90893555, 73.15840149)
BGR_STD = (45.3192215, 46.15289307, 44.91483307)
NUM_OUTPUTS = 20  # 19 train ids + background
BACKGROUND = 19
IGNORE = 255


class CBR(nn.Module):
    """Conv k×k (stride s, no bias) + BN (eps 1e-3) + PReLU."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-3)
        self.act = nn.PReLU(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class BR(nn.Module):
    """BN (eps 1e-3) + PReLU."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(c, eps=1e-3)
        self.act = nn.PReLU(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(x))


class C(nn.Module):
    """Plain conv k×k (optionally dilated), no bias, 'same' padding."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, d: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, (k - 1) // 2 * d, dilation=d, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class ESP(nn.Module):
    """Efficient spatial pyramid: reduce (1×1, or 3×3 stride 2 when `down`) to n = cout/5 channels, five
    parallel dilated 3×3 (d = 1, 2, 4, 8, 16), hierarchical sums, concat; residual when `add`, then BN +
    PReLU. The key names follow the official DownSamplerB / DilatedParllelResidualBlockB."""

    def __init__(self, cin: int, cout: int, add: bool = True, down: bool = False) -> None:
        super().__init__()
        n = cout // 5
        n1 = cout - 4 * n
        self.c1 = C(cin, n, 3, 2) if down else C(cin, n, 1)
        self.d1 = C(n, n1, 3, d=1)
        self.d2, self.d4, self.d8, self.d16 = (C(n, n, 3, d=d) for d in (2, 4, 8, 16))
        self.add = add and not down
        if down:  # DownSamplerB keeps bn/act at top level
            self.bn, self.act = nn.BatchNorm2d(cout, eps=1e-3), nn.PReLU(cout)
        else:
            self.bn = BR(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.c1(x)  # (N, n, h, w)
        a1 = self.d2(r)
        a2 = a1 + self.d4(r)
        a3 = a2 + self.d8(r)
        a4 = a3 + self.d16(r)
        out = torch.cat([self.d1(r), a1, a2, a3, a4], 1)  # (N, cout, h, w)
        if self.add:
            out = x + out
        return self.act(self.bn(out)) if isinstance(self.bn, nn.BatchNorm2d) else self.bn(out)


class InputProjection(nn.Module):
    """The image average-pooled (3×3, stride 2, pad 1) `times` times."""

    def __init__(self, times: int) -> None:
        super().__init__()
        self.pool = nn.ModuleList(nn.AvgPool2d(3, stride=2, padding=1) for _ in range(times))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for pool in self.pool:
            x = pool(x)
        return x


class ESPNetEncoder(nn.Module):
    """ESPNet-C: (N, 3, H, W) → features at 1/2 (16 ch), 1/4 (131 ch) and 1/8 (classes) of the input."""

    def __init__(self, classes: int = NUM_OUTPUTS, p: int = 2, q: int = 8) -> None:
        super().__init__()
        self.level1 = CBR(3, 16, 3, 2)
        self.sample1, self.sample2 = InputProjection(1), InputProjection(2)
        self.b1 = BR(16 + 3)
        self.level2_0 = ESP(16 + 3, 64, down=True)
        self.level2 = nn.ModuleList(ESP(64, 64) for _ in range(p))
        self.b2 = BR(128 + 3)
        self.level3_0 = ESP(128 + 3, 128, down=True)
        self.level3 = nn.ModuleList(ESP(128, 128) for _ in range(q))
        self.b3 = BR(256)
        self.classifier = C(256, classes, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        out0 = self.level1(x)  # (N, 16, H/2, W/2)
        cat0 = self.b1(torch.cat([out0, self.sample1(x)], 1))  # (N, 19, H/2, W/2)
        down1 = self.level2_0(cat0)  # (N, 64, H/4, W/4)
        out1 = down1
        for layer in self.level2:
            out1 = layer(out1)
        cat1 = self.b2(torch.cat([out1, down1, self.sample2(x)], 1))  # (N, 131, H/4, W/4)
        down2 = self.level3_0(cat1)  # (N, 128, H/8, W/8)
        out2 = down2
        for layer in self.level3:
            out2 = layer(out2)
        cls = self.classifier(self.b3(torch.cat([down2, out2], 1)))  # (N, classes, H/8, W/8)
        return out0, cat1, cls


def _up2(classes: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(classes, classes, 2, stride=2, bias=False)


class ESPNetNet(nn.Module):
    """ESPNet: encoder + RUM decoder; (N, 3, H, W), H and W multiples of 8 → logits (N, classes, H, W)."""

    def __init__(self, classes: int = NUM_OUTPUTS, p: int = 2, q: int = 8) -> None:
        super().__init__()
        self.encoder = ESPNetEncoder(classes, p, q)
        self.level3_C = C(128 + 3, classes, 1)
        self.br = nn.BatchNorm2d(classes, eps=1e-3)
        self.conv = CBR(16 + classes, classes, 3)
        self.up_l3 = nn.Sequential(_up2(classes))
        self.combine_l2_l3 = nn.Sequential(BR(2 * classes), ESP(2 * classes, classes, add=False))
        self.up_l2 = nn.Sequential(_up2(classes), BR(classes))
        self.classifier = _up2(classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out0, cat1, cls = self.encoder(x)
        l3 = self.up_l3(self.br(cls))  # (N, C, H/4, W/4)
        l2 = self.up_l2(self.combine_l2_l3(torch.cat([self.level3_C(cat1), l3], 1)))  # (N, C, H/2, W/2)
        return self.classifier(self.conv(torch.cat([l2, out0], 1)))  # (N, C, H, W)


def with_bn_counters(net: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Checkpoints saved by PyTorch < 0.4 (as the official ones) lack BatchNorm's `num_batches_tracked`
    counter, which eval mode never reads; add it (0) for each BN the network has. Everything else stays strict."""
    extra = {k: torch.tensor(0) for k in net.state_dict() if k.endswith(".num_batches_tracked") and k not in state}
    return {**state, **extra}


def preprocess(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(3, H, W) RGB in [0, 1] → (1, 3, h, w) as the official test script feeds it; size = (w, h)."""
    bgr = to_uint8_hwc(image)[:, :, ::-1].astype(np.float32)  # (H, W, 3), 8-bit values
    bgr = (bgr - np.float32(BGR_MEAN)) / np.float32(BGR_STD)
    bgr = cv2.resize(bgr, size) / np.float32(255)  # bilinear, then the extra /255
    return torch.from_numpy(np.ascontiguousarray(bgr.transpose(2, 0, 1)))[None]


@SEGMENTERS.register("espnet")
class ESPNetSegmenter(Segmenter):
    """ESPNet on Cityscapes (official weights and test preprocessing): (3, H, W) → (H, W) train ids 0..18,
    255 where the network says background. `size` (w, h) is the network input, 1024×512 officially; None
    keeps the image size (rounded to multiples of 8)."""

    name = "espnet"

    def __init__(self, checkpoint: str | os.PathLike | None = None, size: tuple[int, int] | None = (1024, 512)) -> None:
        super().__init__(checkpoint=str(checkpoint) if checkpoint else None, size=list(size) if size else None)
        path = checkpoint if checkpoint is not None else weights.weight_path("espnet-cityscapes")
        self.net = ESPNetNet()
        what = "segmenter 'espnet'"
        state = load_checkpoint(path, what, "gefu weights download espnet-cityscapes")
        load_into(self.net, with_bn_counters(self.net, state), what, path)
        self.classes = CITYSCAPES_CLASSES

    def logits(self, image: torch.Tensor) -> torch.Tensor:
        """The network's 20 logits (20, h, w) at its input size (the `Segmenter.logits` contract)."""
        h, w = image.shape[-2:]
        size = tuple(self.options["size"]) if self.options["size"] else (max(8, round(w / 8) * 8),
                                                                          max(8, round(h / 8) * 8))
        return self.net(self._prepare(preprocess(check_images(image, batched=False), size)))[0]  # (20, h, w)

    def forward(self, image: torch.Tensor) -> np.ndarray:
        out = F.interpolate(self.logits(image)[None].float(), size=image.shape[-2:], mode="bilinear",
                            align_corners=False)
        labels = out[0].argmax(dim=0).cpu().numpy().astype(np.int64)  # (H, W)
        labels[labels == BACKGROUND] = IGNORE
        return labels
