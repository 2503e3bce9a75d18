"""RetinexNet (unofficial PyTorch port's weights): S = R · I_δ with the raw relight output, odd sizes, and the
port's own output on LOL-v1."""

from __future__ import annotations

import numpy as np
import torch

from _lol import assert_matches_facts, official_fact_crop
from _shared import needs_shared_data, needs_weights
from gefu import create_enhancer
from gefu.enhancers.retinexnet import RelightNet
from gefu.scuf.retinex import DecomNet


def _handmade(tmp_path, recon_bias, relight_bias):
    """Zero convs: Decom gives R = sigmoid(recon_bias[:3]), I = sigmoid(recon_bias[3]) everywhere; Relight gives
    its output bias everywhere."""
    decom = {k: torch.zeros_like(v) for k, v in DecomNet().state_dict().items()}
    decom["net1_recon.bias"] = torch.tensor(recon_bias)
    relight = {k: torch.zeros_like(v) for k, v in RelightNet().state_dict().items()}
    relight["net2_output.bias"] = torch.tensor([relight_bias])
    paths = {"retinexnet-decom-port": tmp_path / "decom.tar", "retinexnet-relight-port": tmp_path / "relight.tar"}
    torch.save(decom, paths["retinexnet-decom-port"])
    torch.save(relight, paths["retinexnet-relight-port"])
    return paths


def test_output_is_reflectance_times_the_raw_relit_illumination(tmp_path):
    paths = _handmade(tmp_path, [-1.0, -0.5, -2.0, 0.3], 1.7)
    x = torch.rand(1, 3, 11, 17)
    y = create_enhancer("retinexnet", weights=paths)(x)
    reflectance = 1 / (1 + np.exp(-np.array([-1.0, -0.5, -2.0])))
    expected = reflectance * 1.7  # I_δ = 1.7 as is: a sigmoid would give 0.85
    assert y.shape == x.shape
    np.testing.assert_allclose(y[0].numpy(), np.broadcast_to(expected.reshape(3, 1, 1), (3, 11, 17)), atol=1e-6)


def test_relight_keeps_odd_sizes():
    net = RelightNet(channels=8)
    for h, w in ((1, 1), (7, 13), (37, 61)):
        assert net(torch.rand(1, 1, h, w), torch.rand(1, 3, h, w)).shape == (1, 1, h, w)


@needs_weights("retinexnet-decom-port", "retinexnet-relight-port")
@needs_shared_data("lol-v1", "eval15", "low", "22.png")
def test_matches_the_port_output_on_a_lol_crop():
    """Facts recorded by running the port's predict() pipeline (aasharma90/RetinexNet_PyTorch @2267510) on CPU."""
    with torch.no_grad():
        y = create_enhancer("retinexnet")(official_fact_crop())
    assert_matches_facts(
        y,
        means=[0.576152, 0.516314, 0.478759],
        pixels=[[0.579884, 0.522274, 0.425744], [0.60781, 0.579117, 0.57409], [0.554276, 0.513141, 0.527258]],
    )
