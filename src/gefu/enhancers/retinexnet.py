"""RetinexNet (Wei, Wang, Yang, Liu: "Deep Retinex Decomposition for Low-Light Enhancement", BMVC 2018) as the
`retinexnet` enhancer, with the weights of an UNOFFICIAL PyTorch port: github.com/aasharma90/RetinexNet_PyTorch,
`ckpts/Decom/9200.tar` and `ckpts/Relight/9200.tar` (no licence file, so the weights' terms are unstated). The
authors' own release is TensorFlow (weichen582/RetinexNet); this port re-trained both networks, so its outputs are
not the TensorFlow model's, and the paper's figures do not apply to it.

Test-time pipeline (the port's `predict.py`, i.e. `RetinexNet.forward(low, low)` and its `output_S`):

    R, I = Decom(x)                  reflectance (N, 3, H, W) and illumination (N, 1, H, W), both sigmoid
    I_δ = Relight(I, R)              adjusted illumination (N, 1, H, W): the raw conv output, no sigmoid
    S = R · I_δ                      the enhanced image (clipped to [0, 1] when saved)

- Decom: input cat(max over channels, R, G, B); a 9×9 conv to 64 channels (no activation), five 3×3 conv+ReLU, a
  3×3 conv to 4 channels; R = sigmoid of the first three, I = sigmoid of the fourth. It is SCUF's reflectance
  teacher architecture, so `gefu.scuf.retinex.DecomNet` is reused.
- Relight: input cat(R, I); a 3×3 conv, three stride-2 3×3 conv+ReLU downsamplings, three 3×3 conv+ReLU on the
  concatenation of the nearest-upsampled coarser level and the skip, a fusion of the three decoder levels
  (nearest-upsampled to full size) by a 1×1 conv that replicate-pads by 1 (the map grows by 2 pixels), then a
  valid 3×3 conv back to H×W.

Every conv pads by replication and upsampling is nearest (`F.interpolate`'s default), as in the port. Any size
runs as is (the official script runs the full image; no padding is added).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..scuf.retinex import DecomNet
from .base import ENHANCERS
from .cnn import CNNEnhancer, DtypeArg, load_strict, read_checkpoint
from .layers import BorderConv2d, conv_cat, fused, padded_conv2d


def _nearest(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour resize of x to like's (H, W) (legacy "nearest", F.interpolate's default)."""
    return F.interpolate(x, size=like.shape[-2:], mode="nearest")


class RelightNet(nn.Module):
    """RetinexNet's illumination adjustment: I (N, 1, H, W), R (N, 3, H, W) → I_δ (N, 1, H, W), unbounded."""

    def __init__(self, channels: int = 64) -> None:
        super().__init__()
        # BorderConv2d: nn.Conv2d with the same replicate padding, without a padded copy of each map
        rep: dict[str, Any] = {"padding": 1, "padding_mode": "replicate"}
        self.net2_conv0_1 = BorderConv2d(4, channels, 3, **rep)
        self.net2_conv1_1 = nn.Conv2d(channels, channels, 3, stride=2, **rep)
        self.net2_conv1_2 = nn.Conv2d(channels, channels, 3, stride=2, **rep)
        self.net2_conv1_3 = nn.Conv2d(channels, channels, 3, stride=2, **rep)
        self.net2_deconv1_1 = BorderConv2d(2 * channels, channels, 3, **rep)
        self.net2_deconv1_2 = BorderConv2d(2 * channels, channels, 3, **rep)
        self.net2_deconv1_3 = BorderConv2d(2 * channels, channels, 3, **rep)
        self.net2_fusion = nn.Conv2d(3 * channels, channels, 1, **rep)  # 1×1 conv on a replicate-padded map: +2 px
        self.net2_output = nn.Conv2d(channels, 1, 3)  # valid 3×3: back to H × W

    def forward(self, illumination: torch.Tensor, reflectance: torch.Tensor) -> torch.Tensor:
        out0 = self.net2_conv0_1(torch.cat([reflectance, illumination], 1))  # (N, 64, H, W), no activation
        out1 = self.net2_conv1_1(out0).relu_()  # (N, 64, ⌈H/2⌉, ⌈W/2⌉)
        out2 = self.net2_conv1_2(out1).relu_()  # 1/4
        out3 = self.net2_conv1_3(out2).relu_()  # 1/8
        # each decoder conv reads cat(upsampled coarser level, skip): conv_cat, without the (N, 128, ...) copy
        dec1 = conv_cat(self.net2_deconv1_1, (_nearest(out3, out2), out2)).relu_()  # 1/4
        dec2 = conv_cat(self.net2_deconv1_2, (_nearest(dec1, out1), out1)).relu_()  # 1/2
        dec3 = conv_cat(self.net2_deconv1_3, (_nearest(dec2, out0), out0)).relu_()  # (N, 64, H, W)
        if not fused():  # the port's composition, op for op (reference_ops)
            feats = torch.cat([_nearest(dec1, out0), _nearest(dec2, out0), dec3], 1)  # (N, 192, H, W)
            return self.net2_output(self.net2_fusion(feats))  # (N, 1, H + 2, W + 2) → (N, 1, H, W)
        return self._fuse_and_output(dec1, dec2, dec3)

    def _fuse_and_output(self, dec1: torch.Tensor, dec2: torch.Tensor, dec3: torch.Tensor) -> torch.Tensor:
        """net2_output(net2_fusion(cat(up(dec1), up(dec2), dec3))) without the (N, 192, H, W) concatenation: the
        1×1 fusion conv is linear and per pixel, so it commutes with nearest upsampling (each part is fused at its
        own size, then upsampled) and with replicate padding (the valid 3×3 output conv on the padded fused map
        is a replicate-padded 3×3 conv on the fused map). Same values within float rounding; the fusion conv does
        a third of its FLOPs."""
        w, c = self.net2_fusion.weight, dec3.shape[1]  # (64, 192, 1, 1)
        fused_map = F.conv2d(dec3, w[:, 2 * c :], self.net2_fusion.bias)  # (N, 64, H, W)
        fused_map += _nearest(F.conv2d(dec1, w[:, :c]), dec3)
        fused_map += _nearest(F.conv2d(dec2, w[:, c : 2 * c]), dec3)
        return padded_conv2d(fused_map, self.net2_output.weight, self.net2_output.bias, (1, 1), "replicate")


class RetinexNetModel(nn.Module):
    """Decomposition + relighting: x (N, 3, H, W) in [0, 1] → S = R · I_δ (N, 3, H, W), unbounded."""

    def __init__(self) -> None:
        super().__init__()
        self.decom = DecomNet()
        self.relight = RelightNet()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        reflectance, illumination = self.decom.decompose(x)  # (N, 3, H, W), (N, 1, H, W)
        return reflectance * self.relight(illumination, reflectance)


@ENHANCERS.register("retinexnet")
class RetinexNet(CNNEnhancer):
    """RetinexNet (BMVC 2018) with the weights of the unofficial PyTorch port aasharma90/RetinexNet_PyTorch (no
    licence file): S = R_low · I_δ, with the raw relight output as the port's `predict.py` computes it.

    Options: `weights` (None → the table's `retinexnet-decom-port` and `retinexnet-relight-port`; or a dict
    {name: path}), `allow_random`/`seed` (random weights for tests and demos)."""

    name = "retinexnet"
    weight_names = ("retinexnet-decom-port", "retinexnet-relight-port")

    def __init__(self, weights: Any = None, allow_random: bool = False, seed: int = 0, dtype: DtypeArg = None):
        super().__init__(weights, allow_random=allow_random, seed=seed, dtype=dtype)

    def build(self) -> nn.Module:
        return RetinexNetModel()

    def load(self, paths: dict[str, Path]) -> None:
        net: RetinexNetModel = self.net  # type: ignore[assignment]
        decom, relight = paths["retinexnet-decom-port"], paths["retinexnet-relight-port"]
        load_strict(net.decom, read_checkpoint(decom), f"{decom} (RetinexNet port, DecomNet)")
        load_strict(net.relight, read_checkpoint(relight), f"{relight} (RetinexNet port, RelightNet)")

    def run(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


__all__ = ["RelightNet", "RetinexNet", "RetinexNetModel"]
