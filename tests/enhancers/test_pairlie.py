"""PairLIE: official checkpoint layout, the test-time formula L ** 0.2 · R, and the official output on LOL-v1."""

from __future__ import annotations

import numpy as np
import torch

from _lol import assert_matches_facts, official_fact_crop
from _shared import needs_shared_data, needs_weights
from gefu import create_enhancer
from gefu.enhancers.pairlie import PairLIENet, official_state
from gefu.enhancers.cnn import load_strict, read_checkpoint
from gefu.weights import weight_path


def _sigmoid(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-v))


def _constant_nets(tmp_path, b_n, b_l, b_r):
    """A checkpoint in the official layout whose convs are all zero: every net outputs sigmoid(last bias)."""
    state = {}
    for part, bias in (("N_net", b_n), ("L_net", b_l), ("R_net", b_r)):
        for i, c_out in zip((1, 4, 7, 10, 13), (64, 64, 64, 64, len(bias))):
            c_in = 3 if i == 1 else 64
            state[f"{part}.{part}.{i}.weight"] = torch.zeros(c_out, c_in, 3, 3)
            state[f"{part}.{part}.{i}.bias"] = torch.tensor(bias) if i == 13 else torch.zeros(c_out)
    path = tmp_path / "pairlie-const.pth"
    torch.save(state, path)
    return path


def test_enhanced_image_is_illumination_to_the_0_2_times_reflectance(tmp_path):
    b_l, b_r = [-1.5], [0.3, -0.2, 1.1]
    path = _constant_nets(tmp_path, [2.0, -2.0, 0.0], b_l, b_r)
    x = torch.rand(2, 3, 5, 7)
    expected = _sigmoid(np.array(b_l)) ** 0.2 * _sigmoid(np.array(b_r))  # (3,): the official eval.py's formula
    y = create_enhancer("pairlie", weights=path)(x)
    np.testing.assert_allclose(y.numpy(), np.broadcast_to(expected.reshape(1, 3, 1, 1), y.shape), atol=1e-6)
    y14 = create_enhancer("pairlie", weights=path, exponent=0.14)(x)  # the exponent its comment mentions for LOL
    np.testing.assert_allclose(y14[0, :, 0, 0].numpy(), _sigmoid(np.array(b_l)) ** 0.14 * _sigmoid(np.array(b_r)),
                               atol=1e-6)


@needs_weights("pairlie")
def test_official_checkpoint_loads_strictly_into_the_three_nets():
    raw = read_checkpoint(weight_path("pairlie"))
    assert "L_net.L_net.13.weight" in raw and raw["L_net.L_net.13.weight"].shape == (1, 64, 3, 3)
    net = load_strict(PairLIENet(), official_state(raw), "PairLIE.pth")
    assert sum(p.numel() for p in net.parameters()) == sum(v.numel() for v in raw.values())


@needs_weights("pairlie")
@needs_shared_data("lol-v1", "eval15", "low", "22.png")
def test_matches_the_official_output_on_a_lol_crop():
    """Facts recorded by running the official eval.py pipeline (zhenqifu/PairLIE @3fd5c15) on CPU."""
    with torch.no_grad():
        y = create_enhancer("pairlie")(official_fact_crop())
    assert_matches_facts(
        y,
        means=[0.511738, 0.461566, 0.435039],
        pixels=[[0.508819, 0.452073, 0.408363], [0.592145, 0.565326, 0.549962], [0.441708, 0.448566, 0.457005]],
    )
