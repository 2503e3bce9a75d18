"""ESPNetv2 (Mehta et al., CVPR 2019), the Cityscapes model of sacmehta/EdgeNets @2b232d3
(`model/segmentation/model_zoo/espnetv2/espnetv2_s_2.0_city_1024x512.pth`, MIT; weight table entry
`espnetv2-cityscapes`): width s = 2.0, EESP encoder (levels 1–4 of the ImageNet network, input reinforcement)
and the efficient-pyramid-pooling decoder, as `test_segmentation.py` runs it:

- input: the RGB image resized to 1024×512 with PIL's bilinear filter, to [0, 1], ImageNet mean/std;
- output: 20 logits at the input size (19 Cityscapes train ids and background, index 19); argmax, then the
  label map resized back to the image with nearest neighbour (PIL), as the official script saves it.

Background becomes 255 (ignored), as the official `relabel` makes it unlabeled.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from ... import weights
from ..datasets import CITYSCAPES_CLASSES
from .base import SEGMENTERS, Segmenter, check_images, load_checkpoint, load_into, normalize_imagenet, to_uint8_hwc

CHANNELS = (32, 128, 256, 512)  # s = 2.0, levels 1–4
NUM_OUTPUTS = 20  # 19 train ids + background
BACKGROUND, IGNORE = 19, 255
_DILATION = {3: 1, 5: 2, 7: 3, 9: 4, 11: 5, 13: 6, 15: 7, 17: 8}  # EESP: receptive field → dilation


def _cbr(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    """Conv (no bias, 'same' padding) + BN (+ PReLU); keys conv/bn/act like the official CBR/CB."""
    mods = {"conv": nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
            "bn": nn.BatchNorm2d(cout)}
    if act:
        mods["act"] = nn.PReLU(cout)
    return nn.Sequential(OrderedDict(mods))


class _Conv(nn.Module):
    """Holds one conv as `.conv` (the official C / CDilated key layout)."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class EESP(nn.Module):
    """Extremely efficient spatial pyramid: grouped 1×1 reduce to n = cout/k, k depthwise 3×3 branches with
    growing dilation (receptive fields 3, 5, … capped at r_lim) summed hierarchically, BN + PReLU, grouped 1×1
    expand; residual + PReLU at stride 1, plain output at stride 2 (the down-sampler adds its own)."""

    def __init__(self, cin: int, cout: int, stride: int = 1, k: int = 4, r_lim: int = 7) -> None:
        super().__init__()
        self.stride = stride
        n = cout // k
        self.proj_1x1 = _cbr(cin, n, 1, groups=k)
        sizes = sorted(s if s <= r_lim else 3 for s in (3 + 2 * i for i in range(k)))
        self.spp_dw = nn.ModuleList(
            _Conv(nn.Conv2d(n, n, 3, stride, _DILATION[s], dilation=_DILATION[s], groups=n, bias=False)) for s in sizes
        )
        self.conv_1x1_exp = _cbr(cout, cout, 1, groups=k, act=False)
        self.br_after_cat = nn.Sequential(OrderedDict(bn=nn.BatchNorm2d(cout), act=nn.PReLU(cout)))
        self.module_act = nn.PReLU(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.proj_1x1(x)
        outs = [self.spp_dw[0](r)]
        for branch in self.spp_dw[1:]:
            outs.append(branch(r) + outs[-1])
        out = self.conv_1x1_exp(self.br_after_cat(torch.cat(outs, 1)))  # (N, cout, h, w)
        if self.stride == 2:
            return out
        return self.module_act(out + x if out.shape == x.shape else out)


class DownSampler(nn.Module):
    """Stride-2 block: [avg-pool(x), EESP(x)] concatenated, plus a projection of the image pooled to the same
    size (input reinforcement), then PReLU."""

    def __init__(self, cin: int, cout: int, k: int = 4, r_lim: int = 9) -> None:
        super().__init__()
        self.eesp = EESP(cin, cout - cin, stride=2, k=k, r_lim=r_lim)
        self.avg = nn.AvgPool2d(3, stride=2, padding=1)
        self.inp_reinf = nn.Sequential(_cbr(3, 3, 3), _cbr(3, cout, 1, act=False))
        self.act = nn.PReLU(cout)

    def forward(self, x: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        pooled = self.avg(x)
        out = torch.cat([pooled, self.eesp(x)], 1)
        while image.shape[2] != pooled.shape[2]:
            image = F.avg_pool2d(image, 3, stride=2, padding=1)
        return self.act(out + self.inp_reinf(image))


class Encoder(nn.Module):
    """ESPNetv2 levels 1–4 (s = 2.0): features at 1/2, 1/4, 1/8, 1/16 with 32, 128, 256, 512 channels."""

    def __init__(self) -> None:
        super().__init__()
        c = CHANNELS
        self.level1 = _cbr(3, c[0], 3, 2)
        self.level2_0 = DownSampler(c[0], c[1], r_lim=13)
        self.level3_0 = DownSampler(c[1], c[2], r_lim=11)
        self.level3 = nn.ModuleList(EESP(c[2], c[2], r_lim=9) for _ in range(3))
        self.level4_0 = DownSampler(c[2], c[3], r_lim=9)
        self.level4 = nn.ModuleList(EESP(c[3], c[3], r_lim=7) for _ in range(7))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        l1 = self.level1(x)
        l2 = self.level2_0(l1, x)
        l3 = self.level3_0(l2, x)
        for layer in self.level3:
            l3 = layer(l3)
        l4 = self.level4_0(l3, x)
        for layer in self.level4:
            l4 = layer(l4)
        return [l1, l2, l3, l4]


class _Shuffle(nn.Module):
    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        return x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class _CBR(nn.Module):
    """The decoder's conv + BN + PReLU (keys cbr.0/1/2, the official cnn_utils layout)."""

    def __init__(self, cin: int, cout: int, k: int, groups: int = 1) -> None:
        super().__init__()
        self.cbr = nn.Sequential(nn.Conv2d(cin, cout, k, 1, (k - 1) // 2, groups=groups, bias=False),
                                 nn.BatchNorm2d(cout), nn.PReLU(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cbr(x)


class _BR(nn.Module):
    """The decoder's BN + PReLU (keys br.0/1)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.br = nn.Sequential(nn.BatchNorm2d(c), nn.PReLU(c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.br(x)


class PyramidPool(nn.Module):
    """Efficient pyramid pooling: project, depthwise 3×3 at scales 2, 1.5, 1, 0.5, 0.1 (min 5 px), merge."""

    SCALES = (2.0, 1.5, 1.0, 0.5, 0.1)

    def __init__(self, cin: int, proj: int, cout: int, last_br: bool = True) -> None:
        super().__init__()
        self.projection_layer = _CBR(cin, proj, 1)
        self.stages = nn.ModuleList(nn.Conv2d(proj, proj, 3, 1, 1, groups=proj, bias=False) for _ in self.SCALES)
        n = len(self.SCALES)
        self.merge_layer = nn.Sequential(_BR(proj * n), _Shuffle(n), _CBR(proj * n, proj, 3, groups=proj),
                                         nn.Conv2d(proj, cout, 1, bias=not last_br))
        self.br = _BR(cout) if last_br else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.projection_layer(x)
        h, w = x.shape[-2:]
        outs = []
        for scale, stage in zip(self.SCALES, self.stages):
            hs, ws = max(5, math.ceil(h * scale)), max(5, math.ceil(w * scale))
            if scale < 1:
                y = F.interpolate(stage(F.adaptive_avg_pool2d(x, (hs, ws))), (h, w), mode="bilinear", align_corners=True)
            elif scale > 1:
                y = F.adaptive_avg_pool2d(stage(F.interpolate(x, (hs, ws), mode="bilinear", align_corners=True)), (h, w))
            else:
                y = stage(x)
            outs.append(y)
        out = self.merge_layer(torch.cat(outs, 1))
        return self.br(out) if self.br is not None else out


class PWMerge(nn.Module):
    """Encoder-feature projection: grouped 3×3 CBR, re-weighted per channel by a global-pool 1×1 + sigmoid."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.wt_layer = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(cin, cout, 1, bias=False), nn.Sigmoid())
        self.expansion_layer = _CBR(cin, cout, 3, groups=math.gcd(cin, cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.expansion_layer(x) * self.wt_layer(x)


class ESPNetv2Net(nn.Module):
    """(N, 3, H, W) ImageNet-normalised RGB, H and W multiples of 16 → logits (N, 20, H, W)."""

    def __init__(self, classes: int = NUM_OUTPUTS) -> None:
        super().__init__()
        self.base_net = Encoder()
        dec = (64, 48, 32, classes)  # 'city': base 16 → 4·16, 3·16, 2·16, classes
        proj = min(classes // 2, 16)
        self.bu_dec_l1 = PyramidPool(CHANNELS[3], proj, dec[0])
        self.bu_dec_l2 = PyramidPool(dec[0], proj, dec[1])
        self.bu_dec_l3 = PyramidPool(dec[1], proj, dec[2])
        self.bu_dec_l4 = PyramidPool(dec[2], proj, dec[3], last_br=False)
        self.merge_enc_dec_l2 = PWMerge(CHANNELS[2], dec[0])
        self.merge_enc_dec_l3 = PWMerge(CHANNELS[1], dec[1])
        self.merge_enc_dec_l4 = PWMerge(CHANNELS[0], dec[2])
        self.bu_br_l2 = nn.Sequential(nn.BatchNorm2d(dec[0]), nn.PReLU(dec[0]))
        self.bu_br_l3 = nn.Sequential(nn.BatchNorm2d(dec[1]), nn.PReLU(dec[1]))
        self.bu_br_l4 = nn.Sequential(nn.BatchNorm2d(dec[2]), nn.PReLU(dec[2]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        l1, l2, l3, l4 = self.base_net(x)
        up = lambda t: F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=True)  # noqa: E731
        y = self.bu_dec_l2(self.bu_br_l2(self.merge_enc_dec_l2(l3) + up(self.bu_dec_l1(l4))))  # 1/8
        y = self.bu_dec_l3(self.bu_br_l3(self.merge_enc_dec_l3(l2) + up(y)))  # 1/4
        y = self.bu_dec_l4(self.bu_br_l4(self.merge_enc_dec_l4(l1) + up(y)))  # 1/2, classes
        return F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=True)


@SEGMENTERS.register("espnetv2")
class ESPNetv2Segmenter(Segmenter):
    """ESPNetv2 (s = 2.0) on Cityscapes, official weights and test pipeline: (3, H, W) → (H, W) train ids
    0..18, 255 where the network says background. `size` (w, h) is the network input (1024×512 officially)."""

    name = "espnetv2"

    def __init__(self, checkpoint: str | os.PathLike | None = None, size: tuple[int, int] = (1024, 512)) -> None:
        super().__init__(checkpoint=str(checkpoint) if checkpoint else None, size=list(size))
        path = checkpoint if checkpoint is not None else weights.weight_path("espnetv2-cityscapes")
        self.net = ESPNetv2Net()
        what = "segmenter 'espnetv2'"
        load_into(self.net, load_checkpoint(path, what, "gefu weights download espnetv2-cityscapes"), what, path)
        self.classes = CITYSCAPES_CLASSES

    def logits(self, image: torch.Tensor) -> torch.Tensor:
        """The network's 20 logits (20, h, w) at its input size (the `Segmenter.logits` contract)."""
        rgb = Image.fromarray(to_uint8_hwc(check_images(image, batched=False)))
        rgb = np.asarray(rgb.resize(tuple(self.options["size"]), Image.BILINEAR), dtype=np.float32) / 255
        x = torch.from_numpy(rgb.transpose(2, 0, 1).copy())[None]  # (1, 3, h, w)
        return self.net(normalize_imagenet(self._prepare(x)))[0]  # (20, h, w)

    def forward(self, image: torch.Tensor) -> np.ndarray:
        labels = self.logits(image).argmax(dim=0).cpu().numpy().astype(np.uint8)  # (h, w)
        h, w = image.shape[-2:]
        labels = np.asarray(Image.fromarray(labels).resize((w, h), Image.NEAREST)).astype(np.int64)
        labels[labels == BACKGROUND] = IGNORE
        return labels
