"""RUAS (CVPR 2021): the unrolled illumination stages, the searched cells, the checkpoints, which output each
checkpoint's official test script saves."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _shared import SHARED_DATA, needs_shared_data, needs_weights

from gefu import create_enhancer
from gefu.enhancers.cnn import read_checkpoint
from gefu.enhancers.ruas import RUASNet, max2x2
from gefu.imageio import load_image
from gefu.weights import weight_path

NAMES = ("ruas-upe", "ruas-lol", "ruas-dark")
LOL_CROP = ("lol-v1", "eval15", "low", "1.png")
# Channel means of the official outputs (official code, CPU fp32, clamped as saved) on LOL-v1 eval15 low/1.png
# rows 96:192, columns 144:288: what `test.py` saves for each checkpoint (u_list[-1] for lol, u_list[-2] for upe
# and dark), and the other output of lol and upe.
OFFICIAL_MEANS = {
    ("ruas-lol", True): (0.36862, 0.306267, 0.226631),  # after the denoising module: the saved output
    ("ruas-lol", False): (0.330176, 0.301683, 0.2403),
    ("ruas-upe", False): (0.164812, 0.13576, 0.113444),  # before denoising: the saved output
    ("ruas-upe", True): (0.198538, 0.130993, 0.092604),
    ("ruas-dark", False): (0.366121, 0.344625, 0.268281),
}


def test_max2x2_takes_the_window_to_the_right_and_below_with_zeros_outside() -> None:
    x = torch.tensor([[1.0, 5.0, 2.0], [3.0, 0.0, 4.0]]).view(1, 1, 2, 3)
    expected = torch.tensor([[5.0, 5.0, 4.0], [3.0, 4.0, 4.0]]).view(1, 1, 2, 3)
    torch.testing.assert_close(max2x2(x), expected)


def _identity_cells(net: RUASNet) -> None:
    """Every IEM cell returns its input (c5 picks the skip branch d1 = leaky(t̂) channel by channel)."""
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        for iem in net.enhance_net.iems:
            for c in range(3):
                iem.cell.c5.weight[c, c] = 1.0  # c5 input = cat(d1, d2, d3, r4): channels 0..2 are d1


def test_unrolled_stages_follow_the_retinex_updates() -> None:
    net = RUASNet(denoise=False).eval()
    _identity_cells(net)
    y = torch.tensor([[0.1, 0.3], [0.2, 0.05]]).view(1, 1, 2, 2).expand(1, 3, 2, 2).contiguous()
    with torch.no_grad():
        out = net(y)

    # numpy reference of the three stages with cell(t̂) = t̂ (t̂ ≥ 0 here, so the leaky ReLU is the identity)
    def mx(a: np.ndarray) -> np.ndarray:
        p = np.pad(a, ((0, 1), (0, 1)))
        return np.maximum(np.maximum(p[:-1, :-1], p[1:, :-1]), np.maximum(p[:-1, 1:], p[1:, 1:]))

    yy = y[0, 0].numpy().astype(np.float64)
    u = np.ones_like(yy)
    for k in range(3):
        t_hat = mx(yy) if k == 0 else mx(u) - 0.5 * (u - yy)
        assert (t_hat >= 0).all()
        t = np.clip(1 / (1 + np.exp(-t_hat)), 0.001, 1)
        u = np.clip(yy / t, 0, 1)
    np.testing.assert_allclose(out[0, 0].numpy(), u, rtol=1e-6, atol=1e-7)


def test_denoising_subtracts_the_predicted_noise_unclamped() -> None:
    net = RUASNet(denoise=True).eval()
    _identity_cells(net)
    with torch.no_grad():
        net.denoise_net.activate[0].bias.fill_(-0.25)  # the NRM then predicts n = −0.25 everywhere
    off = RUASNet(denoise=False).eval()
    off.load_state_dict(net.state_dict())
    y = torch.rand(1, 3, 5, 7) * 0.4
    with torch.no_grad():
        torch.testing.assert_close(net(y), off(y) + 0.25)  # u − n, may exceed 1 before the enhancer's clamp


@needs_weights(*NAMES)
@pytest.mark.parametrize("name", NAMES)
def test_each_checkpoint_holds_exactly_the_network_with_its_own_denoiser(name: str) -> None:
    state = read_checkpoint(weight_path(name))
    assert set(state) == set(RUASNet(denoise=True).state_dict())
    assert len(state) == 76 and sum(k.startswith("denoise_net.") for k in state) == 40
    create_enhancer(name)  # strict load
    lol, upe = read_checkpoint(weight_path("ruas-lol")), read_checkpoint(weight_path("ruas-upe"))
    assert not torch.equal(lol["denoise_net.stem.weight"], upe["denoise_net.stem.weight"])


def test_official_output_choice_per_checkpoint() -> None:
    assert create_enhancer("ruas-lol", allow_random=True).config()["denoise"] is True
    assert create_enhancer("ruas-upe", allow_random=True).config()["denoise"] is False
    assert create_enhancer("ruas-dark", allow_random=True).config()["denoise"] is False
    assert create_enhancer("ruas-lol", denoise=False, allow_random=True).config()["denoise"] is False


@needs_shared_data(*LOL_CROP)
@needs_weights(*NAMES)
@pytest.mark.parametrize(("name", "denoise"), sorted(OFFICIAL_MEANS))
def test_reproduces_the_official_outputs_on_lol(name: str, denoise: bool) -> None:
    x = load_image(SHARED_DATA.joinpath(*LOL_CROP))[None, :, 96:192, 144:288]
    default = create_enhancer(name).config()["denoise"]
    enh = create_enhancer(name) if denoise == default else create_enhancer(name, denoise=denoise)
    with torch.no_grad():
        y = enh(x)
    torch.testing.assert_close(y.mean((0, 2, 3)), torch.tensor(OFFICIAL_MEANS[name, denoise]), atol=2e-5, rtol=0)
    assert y.mean() > 2 * x.mean()
