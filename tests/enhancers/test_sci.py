"""SCI (CVPR 2022): the test-time formula, the checkpoint layout, BatchNorm in eval mode, the official outputs."""

from __future__ import annotations

import pytest
import torch
from _shared import SHARED_DATA, needs_shared_data, needs_weights

from gefu import create_enhancer
from gefu.enhancers.cnn import read_checkpoint
from gefu.enhancers.sci import EnhanceNetwork, sci_enhance
from gefu.imageio import load_image
from gefu.weights import weight_path

NAMES = ("sci-easy", "sci-medium", "sci-difficult")
LOL_CROP = ("lol-v1", "eval15", "low", "1.png")
# Channel means of the official `test.py` output (official code, CPU fp32, clamped as saved) on LOL-v1 eval15
# low/1.png rows 96:192, columns 144:288 (whose own means are 0.053634, 0.050239, 0.038740).
OFFICIAL_MEANS = {
    "sci-easy": (0.109369, 0.107613, 0.086344),
    "sci-medium": (0.247335, 0.242021, 0.198853),
    "sci-difficult": (0.238196, 0.223789, 0.185812),
}


def test_output_is_the_clamped_quotient_by_the_illumination() -> None:
    x = torch.tensor([0.2, 0.5, 0.0, 0.3]).view(1, 1, 2, 2).expand(1, 3, 2, 2)
    i = torch.tensor([0.4, 0.25, 1e-4, 1.0]).view(1, 1, 2, 2).expand(1, 3, 2, 2)
    expected = torch.tensor([0.5, 1.0, 0.0, 0.3]).view(1, 1, 2, 2).expand(1, 3, 2, 2)  # 0.5/0.25 = 2 → 1
    torch.testing.assert_close(sci_enhance(x, i), expected)


def test_illumination_is_sigmoid_plus_input_clamped() -> None:
    net = EnhanceNetwork().eval()
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()  # out_conv then outputs sigmoid(0) = 0.5 everywhere
    x = torch.tensor([0.0, 0.2, 0.6, 0.9]).view(1, 1, 2, 2).expand(1, 3, 2, 2).contiguous()
    with torch.no_grad():
        i = net(x)
    # i = clamp(0.5 + x, 1e-4, 1): 0.5, 0.7, 1 (1.1 clamped), 1 (1.4 clamped)
    torch.testing.assert_close(i, torch.tensor([0.5, 0.7, 1.0, 1.0]).view(1, 1, 2, 2).expand(1, 3, 2, 2))
    y = sci_enhance(x, i)
    torch.testing.assert_close(y[0, 0].flatten(), torch.tensor([0.0, 0.2 / 0.7, 0.6, 0.9]))


def test_block_is_shared_as_in_the_official_network() -> None:
    net = EnhanceNetwork()
    assert net.blocks[0] is net.conv  # one module listed twice: its weights appear under both names
    keys = set(net.state_dict())
    assert {"conv.0.weight", "blocks.0.0.weight", "conv.1.running_var", "blocks.0.1.running_var"} <= keys
    assert sum(p.numel() for p in net.parameters()) == 3 * (3 * 3 * 9 + 3) + 6  # three 3→3 convs + one BN


@needs_weights(*NAMES)
@pytest.mark.parametrize("name", NAMES)
def test_official_files_load_strictly_from_their_enhance_weights(name: str) -> None:
    state = read_checkpoint(weight_path(name))
    enhance = {k[len("enhance."):] for k in state if k.startswith("enhance.")}
    assert enhance == set(EnhanceNetwork().state_dict())
    assert any(k.startswith("calibrate.") for k in state)  # present in the file, unused at test time
    enh = create_enhancer(name)
    assert not enh.net.training and not enh.net.conv[1].training  # BatchNorm uses its running statistics
    for key, value in enh.net.state_dict().items():
        assert torch.equal(value, state[f"enhance.{key}"])


def test_rejects_a_checkpoint_of_another_method(tmp_path) -> None:
    torch.save({"e_conv1.weight": torch.zeros(32, 3, 3, 3)}, tmp_path / "zero_dce.pth")
    with pytest.raises(ValueError, match="not an SCI checkpoint"):
        create_enhancer("sci-medium", weights=tmp_path / "zero_dce.pth")


@needs_shared_data(*LOL_CROP)
@needs_weights(*NAMES)
@pytest.mark.parametrize("name", NAMES)
def test_reproduces_the_official_outputs_on_lol(name: str) -> None:
    x = load_image(SHARED_DATA.joinpath(*LOL_CROP))[None, :, 96:192, 144:288]
    with torch.no_grad():
        y = create_enhancer(name)(x)
    torch.testing.assert_close(y.mean((0, 2, 3)), torch.tensor(OFFICIAL_MEANS[name]), atol=2e-5, rtol=0)
    assert y.mean() > 2 * x.mean()  # brightens; y ≥ x everywhere since the illumination is at most 1
    assert (y >= x - 1e-6).all()
