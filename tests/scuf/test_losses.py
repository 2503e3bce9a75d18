"""Each SCUF loss term on hand-built inputs with known answers."""

from __future__ import annotations

import math
import warnings

import lpips
import pytest
import torch
from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

from gefu.scuf.discriminator import CLIPFeatureExtractor, VisionAidedDiscriminator, gan_loss
from gefu.scuf.losses import (
    LOSS_PRESETS,
    LossWeights,
    caption_consistency_loss,
    cycle_loss,
    discriminator_loss,
    generator_gan_loss,
    identity_loss,
    reconstruction_loss,
    reflectance_loss,
    ssim_loss,
)


def _latent(vec, h=3, w=5):
    return torch.tensor(vec, dtype=torch.float32).view(1, -1, 1, 1).expand(2, -1, h, w).clone()


def test_caption_consistency_known_values():
    a = _latent([1.0, 0.0, 0.0, 0.0])
    assert caption_consistency_loss(a, a).abs().item() < 1e-6
    assert caption_consistency_loss(a, 3.5 * a).abs().item() < 1e-6  # scale invariant
    assert math.isclose(caption_consistency_loss(a, _latent([0.0, 1.0, 0.0, 0.0])).item(), 1.0, abs_tol=1e-6)
    assert math.isclose(caption_consistency_loss(a, -a).item(), 2.0, abs_tol=1e-6)
    # 45°: 1 − cos(π/4)
    b = _latent([1.0, 1.0, 0.0, 0.0])
    assert math.isclose(caption_consistency_loss(a, b).item(), 1 - math.sqrt(0.5), abs_tol=1e-6)
    # cosine over channels per pixel, then the mean: half the pixels identical, half orthogonal → 0.5
    a4 = _latent([1.0, 0.0, 0.0, 0.0], h=4)
    c = a4.clone()
    c[..., :2, :] = _latent([0.0, 0.0, 1.0, 0.0], h=4)[..., :2, :]
    half = caption_consistency_loss(a4, c)
    assert math.isclose(half.item(), 0.5, abs_tol=1e-6)
    with pytest.raises(ValueError):
        caption_consistency_loss(a, a[:, :3])


def test_caption_consistency_gradient_flows_to_both():
    a = torch.randn(1, 4, 2, 2, requires_grad=True)
    b = torch.randn(1, 4, 2, 2, requires_grad=True)
    caption_consistency_loss(a, b).backward()
    assert a.grad.abs().sum() > 0 and b.grad.abs().sum() > 0


def test_reconstruction_l1_of_constant_shift():
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    w = LossWeights(cycle=2.0, idt=0.5)
    assert math.isclose(cycle_loss(x + 0.25, x, w).item(), 0.5, rel_tol=1e-5)
    assert math.isclose(identity_loss(x - 0.25, x, w).item(), 0.125, rel_tol=1e-5)
    assert reconstruction_loss(x, x).item() == 0.0


def test_reconstruction_with_lpips_module():
    with warnings.catch_warnings():  # lpips passes torchvision the deprecated `pretrained=`
        warnings.simplefilter("ignore", UserWarning)
        net = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False).eval()  # random trunk, packaged heads
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    y = (x + 0.3).clamp(-1, 1)
    w = LossWeights(cycle=1.0, cycle_lpips=10.0)
    with torch.no_grad():
        lp = net(y, x).mean().item()
        l1 = (y - x).abs().mean().item()
        got = cycle_loss(y, x, w, lpips_net=net).item()
        assert cycle_loss(x, x, w, lpips_net=net).abs().item() < 1e-6  # LPIPS(x, x) = 0
    assert lp > 0 and math.isclose(got, l1 + 10.0 * lp, rel_tol=1e-5)
    with pytest.raises(ValueError, match="LPIPS"):
        cycle_loss(y, x, w, lpips_net=None)


def test_ssim_loss_of_constant_images():
    a, b = torch.full((1, 3, 16, 16), 0.5), torch.full((1, 3, 16, 16), 0.6)
    c1 = 0.01**2
    want = 1 - (2 * 0.5 * 0.6 + c1) / (0.5**2 + 0.6**2 + c1)  # contrast/structure terms are 1
    assert math.isclose(ssim_loss(a, b).item(), want, rel_tol=1e-5)
    assert abs(ssim_loss(a, a).item()) < 1e-7


def test_reflectance_loss_known_values():
    t = torch.rand(1, 3, 16, 16) * 0.5 + 0.2
    assert reflectance_loss(t, t).item() == 0.0
    assert math.isclose(reflectance_loss(t + 0.1, t).item(), 0.1, rel_tol=1e-4)  # L1 only (identity)
    # cycle: + MSE(R_forward, R_back) = 0.2² = 0.04
    assert math.isclose(reflectance_loss(t + 0.1, t, r_forward=t + 0.3).item(), 0.14, rel_tol=1e-4)
    with_ssim = reflectance_loss(t, t, r_forward=t, use_ssim=True)
    assert abs(with_ssim.item()) < 1e-6
    shifted = reflectance_loss(t + 0.1, t, use_ssim=True).item()
    assert shifted > 0.1  # 1 − SSIM > 0 for a luminance shift


def test_reflectance_teacher_gets_no_gradient():
    t = torch.rand(1, 3, 16, 16, requires_grad=True)
    r = torch.rand(1, 3, 16, 16, requires_grad=True)
    reflectance_loss(r, t, use_ssim=True).backward()
    assert t.grad is None and r.grad.abs().sum() > 0


def _disc():
    torch.manual_seed(0)
    cfg = CLIPVisionConfig(hidden_size=16, intermediate_size=20, projection_dim=8, num_hidden_layers=3,
                           num_attention_heads=2, image_size=16, patch_size=8)
    return VisionAidedDiscriminator(CLIPFeatureExtractor(CLIPVisionModelWithProjection(cfg).eval()), head_channels=4)


def test_gan_terms_wire_the_discriminator():
    disc = _disc().eval()  # eval: spectral-norm power iteration frozen, so repeated calls agree
    fake = (torch.rand(1, 3, 16, 16) * 2 - 1).requires_grad_(True)
    real = torch.rand(1, 3, 16, 16) * 2 - 1
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    want = gan_loss(disc(fake, generator=g()), "generator")
    assert torch.allclose(generator_gan_loss(disc, fake, generator=g()), want)
    d = discriminator_loss(disc, real=real, fake=fake, generator=torch.Generator().manual_seed(0))
    gg = torch.Generator().manual_seed(0)
    want_d = gan_loss(disc(fake, generator=gg), "fake") + gan_loss(disc(real, generator=gg), "real")
    assert torch.allclose(d, want_d)
    d.backward()
    assert fake.grad is None  # the generated images are detached on the discriminator side
    assert all(p.grad is not None for p in disc.trainable_parameters() if p.requires_grad)


def test_loss_presets_and_validation():
    paper, official = LOSS_PRESETS["paper"], LOSS_PRESETS["official"]
    assert (paper.idt, paper.gan, paper.cycle_lpips, paper.idt_lpips) == (0.5, 1.0, 0.0, 0.0)
    assert (official.idt, official.gan, official.cycle_lpips, official.idt_lpips) == (1.0, 0.5, 10.0, 1.0)
    assert official.reflectance_ssim and not paper.reflectance_ssim
    assert official.needs_lpips and not paper.needs_lpips
    with pytest.raises(ValueError, match="idt"):
        LossWeights(idt=-1)
    with pytest.raises(ValueError, match="gan_loss"):
        LossWeights(gan_loss="wgan")
