"""SGZ: Semantic-Guided Zero-Shot Learning for Low-Light Image/Video Enhancement (Zheng, Gupta; WACV 2022).

At test time SGZ is a Zero-DCE++ network: the same depthwise-separable DCE-Net (official `enhance_net_nopool`
with `conv_type="dsc"`, parameter names `e_conv{1..7}.{depth_conv,point_conv}`), one 3-channel curve map reused
for 8 steps of x + r·(x² − x), the map estimated at 1/12 size (`scale_factor = 12` in the official `test.py`,
bilinear down without antialiasing, `UpsamplingBilinear2d` up). What differs is training — a semantic loss from
an unsupervised segmentation network added to Zero-DCE++'s zero-reference losses — and so the weights. The
segmentation network is not needed at inference. The network and pipeline are `zero_dce.DCENetPP`.

Weights: the official `weight/Epoch99.pth` of github.com/ShenZheng2000/Semantic-Guided-Low-Light-Image-Enhancement
(MIT licence). Deviation, as for `zero-dce++`: the official script crops inputs top-left to multiples of 12;
gefu reflect-pads to the next multiple and crops the result back (identical on multiples of 12).
"""

from __future__ import annotations

from .base import ENHANCERS, PublishedFigure
from .zero_dce import ZeroDCEPP


@ENHANCERS.register("sgz")
class SGZ(ZeroDCEPP):
    """SGZ (WACV 2022): Zero-DCE++'s network and test pipeline with SGZ's official weights (MIT).

    Options: `weights` (None → the official `Epoch99.pth`, or a path), `scale_factor` (12, the official test
    script's), `iterations` (8), `allow_random`, `seed`. Deviation: pads to multiples of `scale_factor` where the
    official script crops.
    """

    name = "sgz"
    weight_names = ("sgz",)
    published_lol_v1: PublishedFigure | None = None  # no LOL-v1 figure found in the paper


__all__ = ["SGZ"]
