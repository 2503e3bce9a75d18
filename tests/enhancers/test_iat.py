"""IAT: the local/global composition (colour matrix, gamma, input range), the official outputs on LOL-v1, and the
paper's LOL-v1 figure (23.38 dB) from the official checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from _lol import LOL_EVAL15, assert_matches_facts, lol_image, official_fact_crop
from _shared import needs_shared_data, needs_weights
from gefu import create_enhancer
from gefu.enhancers.iat import IATNet


def _handmade_checkpoint(tmp_path, mul, add, color, gamma):
    """Every weight zero except the ends: then mul = relu(mul), add = tanh(add) everywhere, C = color, γ = gamma."""
    net = IATNet()
    state = {k: torch.zeros_like(v) for k, v in net.state_dict().items()}
    for k in state:
        if k.endswith("running_var"):
            state[k] = torch.ones_like(state[k])
    state["local_net.mul_end.0.bias"] = torch.tensor(mul)
    state["local_net.add_end.0.bias"] = torch.tensor(add)
    state["global_net.color_base"] = torch.tensor(color)
    state["global_net.gamma_base"] = torch.tensor([gamma])
    path = tmp_path / "iat-handmade.pth"
    torch.save(state, path)
    return path


def test_pixels_go_through_mul_add_colour_matrix_and_gamma(tmp_path):
    mul, add = [1.5, 0.8, 1.2], [0.1, -0.05, 0.2]
    color = [[0.9, 0.2, 0.0], [0.1, 0.7, 0.3], [0.0, 0.25, 1.1]]  # not symmetric: catches C versus Cᵀ
    gamma = 0.8
    path = _handmade_checkpoint(tmp_path, mul, add, color, gamma)
    x = torch.rand(2, 3, 6, 9, generator=torch.Generator().manual_seed(0)) * 0.5

    def expected(inp: np.ndarray) -> np.ndarray:  # (N, 3, H, W) → the IAT formula, in numpy
        y = inp * np.maximum(mul, 0).reshape(1, 3, 1, 1) + np.tanh(add).reshape(1, 3, 1, 1)
        y = np.einsum("ij,njhw->nihw", np.array(color), y)  # each pixel's RGB vector times C
        return np.clip(y, 1e-8, 1.0) ** gamma

    xn = x.numpy().astype(np.float64)
    v1 = create_enhancer("iat-lol-v1", weights=path)(x)
    np.testing.assert_allclose(v1.numpy(), expected(xn), atol=2e-6)
    v2 = create_enhancer("iat-lol-v2", weights=path)(x)  # the LOL-v2 model takes (x − 0.5) / 0.5
    np.testing.assert_allclose(v2.numpy(), expected((xn - 0.5) / 0.5), atol=2e-6)


@needs_weights("iat-lol-v1", "iat-lol-v2")
@needs_shared_data("lol-v1", "eval15", "low", "22.png")
@pytest.mark.parametrize(
    "name, means, pixels",
    [
        ("iat-lol-v1", [0.489202, 0.467616, 0.450209],
         [[0.397469, 0.434514, 0.320298], [0.58847, 0.581767, 0.576715], [0.327787, 0.342142, 0.375038]]),
        ("iat-lol-v2", [0.379791, 0.364417, 0.35257],
         [[0.442945, 0.383543, 0.290258], [0.458074, 0.463122, 0.462627], [0.324982, 0.212444, 0.146537]]),
    ],
)
def test_matches_the_official_output_on_a_lol_crop(name, means, pixels):
    """Facts recorded by running the official evaluation_lol_v1.py / evaluation_lol_v2.py pipelines
    (cuiziteng/Illumination-Adaptive-Transformer @c764722) on CPU."""
    with torch.no_grad():
        y = create_enhancer(name)(official_fact_crop())
    assert_matches_facts(y, means, pixels)


@needs_weights("iat-lol-v1")
@needs_shared_data("lol-v1", "eval15", "high", "780.png")
def test_lol_v1_eval15_mean_psnr_is_the_papers_23_38():
    """The IAT paper's LOL-v1 figure: RGB PSNR on [0, 1], full 600×400 images, mean over the 15 eval pairs."""
    enh = create_enhancer("iat-lol-v1")
    names = sorted(p.name for p in (LOL_EVAL15 / "low").glob("*.png"))
    assert len(names) == 15
    psnrs = []
    for name in names:
        with torch.no_grad():
            y = enh(lol_image(name))[0].permute(1, 2, 0).double().numpy()  # (400, 600, 3)
        ref = lol_image(name, "high")[0].permute(1, 2, 0).double().numpy()
        psnrs.append(10 * np.log10(1.0 / np.mean((y - ref) ** 2)))
    assert np.mean(psnrs) == pytest.approx(23.38, abs=0.005)
