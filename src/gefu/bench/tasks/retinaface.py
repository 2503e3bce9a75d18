"""RetinaFace with a MobileNet-0.25 backbone (Deng et al., CVPR 2020), the WIDER FACE model of
biubug6/Face-Detector-1MB-with-landmark @2b07565 (`weights/mobilenet0.25_Final.pth`, MIT; weight table entry
`retinaface-mnet025`), as its test scripts run it:

- input: the 8-bit BGR image as float, minus the per-channel means (104, 117, 123); no scaling to [0, 1];
- size: the original image (`long_side=None`, `detect.py`'s default), or the WIDER test rule of
  `test_widerface.py` (`long_side=N`: the short side scaled to N unless the long side would pass N, then the
  long side to N; bilinear resize, boxes scaled back);
- outputs of three levels (strides 8, 16, 32; two square priors per cell: 10/20, 32/64, 128/256 px),
  decoded with variances (0.1, 0.2), softmax face probability;
- detections with score ≥ `threshold`, greedy NMS at IoU 0.4 with the official "+1" box areas, then the
  `max_detections` highest (the benchmark's protocol: score ≥ 0.05, ≤ 100 per image; the official WIDER run
  keeps > 0.02 and 750).

Landmarks are predicted but not returned (the Detector contract is boxes + scores).
"""

from __future__ import annotations

import os

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ... import weights
from .base import DETECTORS, Detector, check_images, load_checkpoint, load_into, to_uint8_hwc

BGR_MEAN = (104.0, 117.0, 123.0)
MIN_SIZES = ((10, 20), (32, 64), (128, 256))
STEPS = (8, 16, 32)
VARIANCES = (0.1, 0.2)


def _conv_bn(cin: int, cout: int, stride: int = 1, kernel: int = 3, relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*layers, nn.ReLU(inplace=True)) if relu else nn.Sequential(*layers)


def _conv_dw(cin: int, cout: int, stride: int) -> nn.Sequential:
    """Depthwise 3×3 + BN + ReLU, pointwise 1×1 + BN + ReLU (MobileNetV1 block)."""
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), nn.BatchNorm2d(cin), nn.ReLU(inplace=True),
        nn.Conv2d(cin, cout, 1, 1, 0, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )  # fmt: skip


class MobileNet025(nn.Module):
    """MobileNetV1 ×0.25 trunk; returns the stride-8, 16 and 32 feature maps (64, 128, 256 channels)."""

    def __init__(self) -> None:
        super().__init__()
        self.stage1 = nn.Sequential(_conv_bn(3, 8, 2), _conv_dw(8, 16, 1), _conv_dw(16, 32, 2), _conv_dw(32, 32, 1),
                                    _conv_dw(32, 64, 2), _conv_dw(64, 64, 1))
        self.stage2 = nn.Sequential(_conv_dw(64, 128, 2), *[_conv_dw(128, 128, 1) for _ in range(5)])
        self.stage3 = nn.Sequential(_conv_dw(128, 256, 2), _conv_dw(256, 256, 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        c3 = self.stage1(x)  # (N, 64, H/8, W/8)
        c4 = self.stage2(c3)  # (N, 128, H/16, W/16)
        c5 = self.stage3(c4)  # (N, 256, H/32, W/32)
        return [c3, c4, c5]


class FPN(nn.Module):
    """1×1 laterals to 64 channels, nearest top-down merges with a 3×3 conv after each sum."""

    def __init__(self, in_channels: tuple[int, int, int] = (64, 128, 256), out: int = 64) -> None:
        super().__init__()
        self.output1 = _conv_bn(in_channels[0], out, kernel=1)
        self.output2 = _conv_bn(in_channels[1], out, kernel=1)
        self.output3 = _conv_bn(in_channels[2], out, kernel=1)
        self.merge1 = _conv_bn(out, out)
        self.merge2 = _conv_bn(out, out)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        p3, p4, p5 = self.output1(feats[0]), self.output2(feats[1]), self.output3(feats[2])
        p4 = self.merge2(p4 + F.interpolate(p5, size=p4.shape[-2:], mode="nearest"))
        p3 = self.merge1(p3 + F.interpolate(p4, size=p3.shape[-2:], mode="nearest"))
        return [p3, p4, p5]  # each (N, 64, h, w)


class SSH(nn.Module):
    """Context module: 3×3 (half the channels), 5×5 and 7×7 (a quarter each, as stacked 3×3s), concat, ReLU."""

    def __init__(self, cin: int = 64, cout: int = 64) -> None:
        super().__init__()
        self.conv3X3 = _conv_bn(cin, cout // 2, relu=False)
        self.conv5X5_1 = _conv_bn(cin, cout // 4)
        self.conv5X5_2 = _conv_bn(cout // 4, cout // 4, relu=False)
        self.conv7X7_2 = _conv_bn(cout // 4, cout // 4)
        self.conv7x7_3 = _conv_bn(cout // 4, cout // 4, relu=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c5_1 = self.conv5X5_1(x)
        return F.relu(torch.cat([self.conv3X3(x), self.conv5X5_2(c5_1), self.conv7x7_3(self.conv7X7_2(c5_1))], 1))


class _Head(nn.Module):
    """1×1 conv predicting `per_anchor` values for each of 2 anchors → (N, h·w·2, per_anchor)."""

    def __init__(self, per_anchor: int, cin: int = 64, anchors: int = 2) -> None:
        super().__init__()
        self.per_anchor = per_anchor
        self.conv1x1 = nn.Conv2d(cin, anchors * per_anchor, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv1x1(x).permute(0, 2, 3, 1)  # (N, h, w, 2·k)
        return out.reshape(out.shape[0], -1, self.per_anchor)


class RetinaFaceNet(nn.Module):
    """The network: (N, 3, H, W) mean-subtracted BGR → box offsets (N, P, 4), face probability (N, P),
    landmark offsets (N, P, 10); P = 2 priors per cell over the three levels."""

    def __init__(self) -> None:
        super().__init__()
        self.body = MobileNet025()
        self.fpn = FPN()
        self.ssh1, self.ssh2, self.ssh3 = SSH(), SSH(), SSH()
        self.ClassHead = nn.ModuleList(_Head(2) for _ in range(3))
        self.BboxHead = nn.ModuleList(_Head(4) for _ in range(3))
        self.LandmarkHead = nn.ModuleList(_Head(10) for _ in range(3))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        p3, p4, p5 = self.fpn(self.body(x))
        feats = [self.ssh1(p3), self.ssh2(p4), self.ssh3(p5)]
        loc = torch.cat([h(f) for h, f in zip(self.BboxHead, feats)], dim=1)  # (N, P, 4)
        conf = torch.cat([h(f) for h, f in zip(self.ClassHead, feats)], dim=1)  # (N, P, 2)
        landm = torch.cat([h(f) for h, f in zip(self.LandmarkHead, feats)], dim=1)  # (N, P, 10)
        return loc, conf.softmax(dim=-1)[..., 1], landm


def prior_boxes(height: int, width: int) -> torch.Tensor:
    """Priors (P, 4) as cx, cy, w, h relative to the image, in the network's output order (level, row,
    column, size)."""
    out = []
    for step, sizes in zip(STEPS, MIN_SIZES):
        fh, fw = -(-height // step), -(-width // step)  # ceil
        cy, cx = torch.meshgrid((torch.arange(fh, dtype=torch.float64) + 0.5) * step / height,
                                (torch.arange(fw, dtype=torch.float64) + 0.5) * step / width, indexing="ij")
        for_cell = [torch.stack([cx, cy, torch.full_like(cx, s / width), torch.full_like(cy, s / height)], -1)
                    for s in sizes]  # each (fh, fw, 4)
        out.append(torch.stack(for_cell, dim=2).reshape(-1, 4))  # (fh·fw·2, 4)
    return torch.cat(out).float()


def decode(loc: torch.Tensor, priors: torch.Tensor) -> torch.Tensor:
    """Offsets (P, 4) + priors (P, 4) → boxes x1, y1, x2, y2 relative to the image (P, 4)."""
    centre = priors[:, :2] + loc[:, :2] * VARIANCES[0] * priors[:, 2:]
    size = priors[:, 2:] * torch.exp(loc[:, 2:] * VARIANCES[1])
    return torch.cat([centre - size / 2, centre + size / 2], dim=1)


def nms_plus_one(dets: np.ndarray, iou: float) -> list[int]:
    """Greedy NMS over (K, 5) boxes + scores with the "+1" pixel areas of the official code; kept indices."""
    x1, y1, x2, y2, scores = dets.T
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = scores.argsort()[::-1]
    keep = []
    while order.size > 0:
        i, rest = order[0], order[1:]
        keep.append(int(i))
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        order = rest[inter / (areas[i] + areas[rest] - inter) <= iou]
    return keep


@DETECTORS.register("retinaface", "retinaface-mnet025")
class RetinaFaceDetector(Detector):
    """RetinaFace MobileNet-0.25 (WIDER FACE), official weights and test pipeline; score = face probability."""

    name = "retinaface"

    def __init__(self, checkpoint: str | os.PathLike | None = None, long_side: int | None = None,
                 threshold: float = 0.05, nms: float = 0.4, max_detections: int = 100) -> None:
        super().__init__(checkpoint=str(checkpoint) if checkpoint else None, long_side=long_side,
                         threshold=threshold, nms=nms, max_detections=max_detections)
        path = checkpoint if checkpoint is not None else weights.weight_path("retinaface-mnet025")
        self.net = RetinaFaceNet()
        load_into(self.net, load_checkpoint(path, "detector 'retinaface'", "gefu weights download retinaface-mnet025"),
                  "detector 'retinaface'", path)

    def _resize(self, h: int, w: int) -> float:
        """`test_widerface.py`'s rule for `long_side`; 1 (original size) when it is None."""
        side = self.options["long_side"]
        if side is None:
            return 1.0
        scale = side / min(h, w)
        return side / max(h, w) if np.round(scale * max(h, w)) > side else scale

    def forward(self, image: torch.Tensor) -> np.ndarray:
        bgr = to_uint8_hwc(check_images(image, batched=False))[:, :, ::-1].astype(np.float32)  # (H, W, 3)
        scale = self._resize(*bgr.shape[:2])
        if scale != 1.0:
            bgr = cv2.resize(bgr, None, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
        h, w = bgr.shape[:2]
        x = torch.from_numpy(np.ascontiguousarray((bgr - BGR_MEAN).transpose(2, 0, 1)))[None]  # (1, 3, h, w)
        loc, score, _ = self.net(self._prepare(x))
        boxes = decode(loc[0].float().cpu(), prior_boxes(h, w)) * torch.tensor([w, h, w, h]) / scale  # (P, 4)
        return self._postprocess(boxes.numpy(), score[0].float().cpu().numpy())

    def _postprocess(self, boxes: np.ndarray, scores: np.ndarray) -> np.ndarray:
        keep = scores >= self.options["threshold"]  # the official scripts keep > threshold
        dets = np.concatenate([boxes[keep], scores[keep, None]], axis=1).astype(np.float32)  # (K, 5)
        dets = dets[scores[keep].argsort()[::-1]]
        dets = dets[nms_plus_one(dets, self.options["nms"])]  # sorted by score, highest first
        return dets[: self.options["max_detections"]]
