"""ZERO-IG: the test-time formula (ε, division by the illumination, which output), the shared enhancer blocks,
and the official outputs of the three checkpoints on LOL-v1."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from _lol import assert_matches_facts, official_fact_crop
from _shared import needs_shared_data, needs_weights
from gefu import create_enhancer
from gefu.enhancers.zero_ig import ZeroIGNet


def _handmade(tmp_path, s_bias, d2_bias, blocks_differ=False):
    """All weights zero except two biases: D₁ predicts no noise, E's features are 0 so it gives sigmoid(s_bias)
    everywhere, D₂ predicts d2_bias."""
    state = {k: torch.zeros_like(v) for k, v in ZeroIGNet().state_dict().items()}
    state["enhance.out_conv.0.bias"] = torch.tensor(s_bias)
    state["denoise_2.conv3.bias"] = torch.tensor(d2_bias)
    if blocks_differ:
        state["enhance.blocks.1.0.bias"] = state["enhance.blocks.1.0.bias"] + 0.5
    path = tmp_path / "zero-ig-handmade.pt"
    torch.save(state, path)
    return path


def test_output_is_the_denoised_enhancement_of_x_plus_eps_over_the_illumination(tmp_path):
    s_bias, d2_bias = [-0.5, 0.2, 1.0], [0.03, -0.02, 0.05, 0.0, 0.0, 0.0]
    path = _handmade(tmp_path, s_bias, d2_bias)
    x = torch.rand(2, 3, 5, 6, generator=torch.Generator().manual_seed(1)) * 0.4
    s = np.clip(1 / (1 + np.exp(-np.array(s_bias))), 1e-4, 1).reshape(1, 3, 1, 1)
    high = np.clip((x.numpy().astype(np.float64) + 1e-4) / s, 1e-4, 1)  # official: input + 1e-4, H = clamp(x / s)
    out = np.clip(high - np.array(d2_bias[:3]).reshape(1, 3, 1, 1), 1e-4, 1)
    np.testing.assert_allclose(create_enhancer("zero-ig-lol", weights=path)(x).numpy(), out, atol=2e-6)
    enhanced = create_enhancer("zero-ig-lol", weights=path, output="enhanced")(x)
    np.testing.assert_allclose(enhanced.numpy(), high, atol=2e-6)
    with pytest.raises(ValueError, match="denoised"):
        create_enhancer("zero-ig-lol", weights=path, output="denoise")


def test_the_three_enhancer_blocks_are_one_shared_module(tmp_path):
    net = ZeroIGNet()
    assert all(block is net.enhance.conv for block in net.enhance.blocks)
    assert sum(p.numel() for p in net.enhance.parameters()) == 1792 + 36928 + 128 + 1731  # in, one block, BN, out
    with pytest.raises(ValueError, match="enhance.blocks.1.0.bias differs from enhance.conv.0.bias"):
        create_enhancer("zero-ig-lol", weights=_handmade(tmp_path, [0.0] * 3, [0.0] * 6, blocks_differ=True))


FACTS = {  # recorded by running the official test.py pipeline (Doyle59217/ZeroIG @5af4b8a) on CPU: *_denoise
    "zero-ig-lol": ([0.59588, 0.544943, 0.518647],
                    [[0.510664, 0.460834, 0.4914], [0.708549, 0.690172, 0.685177], [0.458929, 0.430079, 0.446491]]),
    "zero-ig-lsrw-huawei": ([0.514341, 0.474219, 0.453359],
                            [[0.478549, 0.407278, 0.412667], [0.560304, 0.56876, 0.571706],
                             [0.36089, 0.378018, 0.398872]]),
    "zero-ig-lsrw-nikon": ([0.373306, 0.348627, 0.344939],
                           [[0.399279, 0.362701, 0.347713], [0.421081, 0.42463, 0.433627],
                            [0.313288, 0.327484, 0.373663]]),
}


@pytest.mark.parametrize("name", [pytest.param(n, marks=needs_weights(n)) for n in sorted(FACTS)])
@needs_shared_data("lol-v1", "eval15", "low", "22.png")
def test_matches_the_official_output_on_a_lol_crop(name):
    with torch.no_grad():
        y = create_enhancer(name)(official_fact_crop())
    assert_matches_facts(y, *FACTS[name])
