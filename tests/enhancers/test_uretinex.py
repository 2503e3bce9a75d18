"""URetinex-Net: the unfolding updates and their schedule, the options read from the checkpoint (a pickled
argparse.Namespace, loaded with weights_only), and the official outputs (test.py and evaluate.py) on LOL-v1."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from _lol import assert_matches_facts, lol_image, official_fact_crop
from _shared import needs_shared_data, needs_weights
from gefu import create_enhancer
from gefu.enhancers.uretinex import URetinexNet

URETINEX = ("uretinex-init-low", "uretinex-unfolding", "uretinex-l-adjust")


class _HalfDecom(nn.Module):
    def forward(self, x):
        return 0.5 * x, x.mean(1, keepdim=True) + 0.1


class _Passthrough(nn.Module):
    def forward(self, *args):
        return args[0]


def test_unfolding_alternates_the_closed_form_updates_with_growing_weights():
    """With 𝓡 and 𝓛 replaced by identities, unfold(x) must be the official P/Q iteration, computed here in
    numpy: P = (x·Q + γ_t R)/(Q² + γ_t), Q = (Σ x·P + λ_t L)/(Σ P² + λ_t), γ_t = 0.1 + 0.05 t, λ_t = 0.5 + 0.05 t."""
    net = URetinexNet()
    net.decom, net.model_R, net.model_L = _HalfDecom(), _Passthrough(), _Passthrough()
    x = torch.rand(2, 3, 4, 5, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    r, l = net.double().unfold(x)
    xn = x.numpy()
    rn, ln = 0.5 * xn, xn.mean(1, keepdims=True) + 0.1
    for t in (1, 2):
        g, lam = 0.1 + 0.05 * t, 0.5 + 0.05 * t
        p = (xn * ln + g * rn) / (ln * ln + g)
        q = ((xn * p).sum(1, keepdims=True) + lam * ln) / ((p * p).sum(1, keepdims=True) + lam)
        rn, ln = p, q
    np.testing.assert_allclose(r.numpy(), rn, rtol=1e-12)
    np.testing.assert_allclose(l.numpy(), ln, rtol=1e-12)


@needs_weights(*URETINEX)
def test_unfolding_options_come_from_the_checkpoint():
    """unfolding.pth pickles argparse.Namespace(round=3, gamma=0.1, lamda=0.5, Roffset=0.05, Loffset=0.05, ...)."""
    net = create_enhancer("uretinex").net
    assert (net.rounds, net.gamma, net.lamda, net.gamma_step, net.lamda_step) == (3, 0.1, 0.5, 0.05, 0.05)


@needs_weights(*URETINEX)
@needs_shared_data("lol-v1", "eval15", "low", "22.png")
def test_matches_the_official_test_script_on_a_lol_crop():
    """Facts recorded by running the official test.py pipeline (ratio 5; AndersonYong/URetinex-Net @7ee2196)."""
    with torch.no_grad():
        y = create_enhancer("uretinex")(official_fact_crop())
    assert_matches_facts(
        y,
        means=[0.535631, 0.511144, 0.509889],
        pixels=[[0.559322, 0.500776, 0.490028], [0.617885, 0.608613, 0.624391], [0.481662, 0.45613, 0.524345]],
    )


@needs_weights(*URETINEX, "uretinex-init-high")
@needs_shared_data("lol-v1", "eval15", "high", "22.png")
def test_reference_ratio_matches_the_official_evaluation_script():
    """Facts recorded from the official evaluate.py (ratio from the normal-light reference, decomposed by
    init_high.pth): the pipeline behind the paper's LOL figures."""
    ref = lol_image("22.png", "high")[..., 100:148, 200:296]
    with torch.no_grad():
        y = create_enhancer("uretinex").enhance_with_reference(official_fact_crop(), ref)
    assert_matches_facts(
        y,
        means=[0.555595, 0.530301, 0.529134],
        pixels=[[0.579877, 0.51918, 0.508037], [0.643123, 0.633473, 0.649895], [0.504384, 0.477648, 0.549081]],
    )
