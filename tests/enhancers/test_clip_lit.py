"""CLIP-LIT (ICCV 2023): the light-map quotient, reflect padding, the checkpoint, the official output."""

from __future__ import annotations

import torch
from _shared import SHARED_DATA, needs_shared_data, needs_weights

from gefu import create_enhancer
from gefu.enhancers.clip_lit import LightMapNet, PyramidPooling, conv3x3, divide_by_light
from gefu.imageio import load_image
from gefu.weights import weight_path

LOL_CROP = ("lol-v1", "eval15", "low", "1.png")


def test_quotient_broadcasts_one_light_map_and_keeps_0_over_0_finite() -> None:
    x = torch.tensor([0.0, 0.3, 0.3, 0.5]).view(1, 1, 2, 2).expand(1, 3, 2, 2)
    light = torch.tensor([0.0, 0.0, 0.6, 0.25]).view(1, 1, 2, 2)
    expected = torch.tensor([0.0, 1.0, 0.5, 1.0]).view(1, 1, 2, 2).expand(1, 3, 2, 2)  # 0/0→0, x/0→1, 2→1
    torch.testing.assert_close(divide_by_light(x, light), expected)


def test_convs_pad_by_reflection_except_the_pyramid_fuse() -> None:
    conv = conv3x3(1, 1, bias=False)
    with torch.no_grad():
        conv.weight.fill_(1.0)
    flat = torch.full((1, 1, 4, 5), 0.5)
    torch.testing.assert_close(conv(flat), torch.full((1, 1, 4, 5), 4.5))  # zero padding: 2.0 in the corners
    ppm = PyramidPooling(2, 1, (1,))
    with torch.no_grad():
        for p in ppm.parameters():
            p.fill_(1.0)  # PReLU slope 1: identity
    out = ppm(torch.ones(1, 2, 4, 4))  # fuse input: 2 channels of ones + the pooled branch 2 (= 1 + 1)
    assert out[0, 0, 0, 0] == 4 * 4 and out[0, 0, 1, 1] == 4 * 9  # corner: 4 of 9 taps inside (zero padding)


@needs_weights("clip-lit")
def test_official_file_loads_strictly_after_stripping_module() -> None:
    raw = torch.load(weight_path("clip-lit"), map_location="cpu", weights_only=True)
    assert all(k.startswith("module.") for k in raw)  # saved from DataParallel
    assert {k[len("module."):] for k in raw} == set(LightMapNet().state_dict())
    assert LightMapNet().cond_add1.out_channels == 1  # a 1-channel light map
    create_enhancer("clip-lit")  # strict load


@needs_shared_data(*LOL_CROP)
@needs_weights("clip-lit")
def test_reproduces_the_official_output_on_lol() -> None:
    x = load_image(SHARED_DATA.joinpath(*LOL_CROP))[None, :, 96:192, 144:288]
    with torch.no_grad():
        y = create_enhancer("clip-lit")(x)
    # channel means of the official test.py output (official code, CPU fp32) on this crop
    torch.testing.assert_close(y.mean((0, 2, 3)), torch.tensor([0.22358, 0.214517, 0.165508]), atol=2e-5, rtol=0)
    assert y.mean() > 3 * x.mean()
