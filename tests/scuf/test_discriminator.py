"""Vision-Aided discriminator on a tiny random CLIP tower: shapes, frozen backbone, DiffAugment, loss values."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import CLIPVisionConfig, CLIPVisionModel, CLIPVisionModelWithProjection

from gefu.scuf.discriminator import (
    CLIP_MEAN,
    CLIPFeatureExtractor,
    VisionAidedDiscriminator,
    default_levels,
    diff_augment,
    gan_loss,
    hinge_loss,
    multilevel_sigmoid_loss,
)


def _tiny_clip(layers: int = 3, projection: bool = True):
    torch.manual_seed(0)
    cfg = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=37,
        projection_dim=16,
        num_hidden_layers=layers,
        num_attention_heads=4,
        image_size=32,
        patch_size=8,
        hidden_act="quick_gelu",
    )
    return (CLIPVisionModelWithProjection if projection else CLIPVisionModel)(cfg).eval()


def test_default_levels_match_vision_aided_for_vit_b():
    assert default_levels(12) == (4, 8)
    assert default_levels(3) == (1, 2)
    assert default_levels(2) == (1, 1)


@pytest.mark.parametrize("projection", [True, False])
def test_feature_shapes(projection):
    ext = CLIPFeatureExtractor(_tiny_clip(projection=projection))
    feats = ext(torch.rand(2, 3, 48, 40) * 2 - 1)  # any input size: resized to 32
    assert [tuple(f.shape) for f in feats] == [(2, 32, 4, 4), (2, 32, 4, 4), (2, 16 if projection else 32)]


def test_clip_normalisation_and_levels():
    """An image equal to the CLIP mean normalises to exactly zero pixel values."""
    clip = _tiny_clip()
    ext = CLIPFeatureExtractor(clip)
    mean_img = (torch.tensor(CLIP_MEAN).view(1, 3, 1, 1) * 2 - 1).expand(1, 3, 64, 64)
    feats = ext(mean_img)
    ref = clip(pixel_values=torch.zeros(1, 3, 32, 32), output_hidden_states=True)
    tokens_lv2 = ref.hidden_states[2][:, 1:, :].transpose(1, 2).reshape(1, 32, 4, 4)
    assert torch.allclose(feats[1], tokens_lv2, atol=1e-5)
    assert torch.allclose(feats[2], ref.image_embeds, atol=1e-5)


def test_only_heads_are_trainable_and_gradients_reach_images():
    ext = CLIPFeatureExtractor(_tiny_clip())
    disc = VisionAidedDiscriminator(ext, head_channels=8)
    trainable = {n for n, p in disc.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("heads.") for n in trainable)
    assert {id(p) for p in disc.trainable_parameters()} == {id(p) for p in disc.heads.parameters()}
    disc.train()
    assert not ext.clip.training  # the tower stays in eval mode

    img = (torch.rand(1, 3, 32, 32) * 2 - 1).requires_grad_(True)
    logits = disc(img, generator=torch.Generator().manual_seed(0))
    assert [tuple(lg.shape) for lg in logits] == [(1, 2, 2), (1, 2, 2), (1, 1)]
    disc.loss(img, "generator", generator=torch.Generator().manual_seed(0)).backward()
    assert img.grad is not None and img.grad.abs().sum() > 0
    assert all(p.grad is None for p in ext.clip.parameters())
    assert all(p.grad is not None for p in disc.heads.parameters() if p.requires_grad)


def test_heads_are_spectrally_normalised():
    disc = VisionAidedDiscriminator(CLIPFeatureExtractor(_tiny_clip()), head_channels=8)
    disc.train()
    feats = [torch.randn(1, 32, 4, 4), torch.randn(1, 32, 4, 4), torch.randn(1, 16)]
    for _ in range(30):  # power iterations converge while training
        disc.heads(feats)
    w = disc.heads.cls[0].weight  # the normalised weight
    assert abs(torch.linalg.matrix_norm(w, ord=2).item() - 1.0) < 1e-3


def test_diff_augment_keeps_shape_and_is_seeded():
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    a = diff_augment(x, generator=torch.Generator().manual_seed(1))
    b = diff_augment(x, generator=torch.Generator().manual_seed(1))
    c = diff_augment(x, generator=torch.Generator().manual_seed(2))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(ValueError, match="policy"):
        diff_augment(x, "colour")


def test_diff_augment_parts():
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(4, 3, 32, 32)
    x[:, :, 16, 16] = 1.0
    moved = diff_augment(x, "translation", generator=g)  # shifts ≤ 4 px: the dot stays inside, moves
    assert torch.equal(moved.sum(dim=(1, 2, 3)), torch.full((4,), 3.0))
    ones = torch.ones(8, 3, 32, 32)
    cut = diff_augment(ones, "cutout", generator=g)
    zero_frac = (cut == 0).float().mean(dim=(1, 2, 3))
    assert (zero_frac > 0).all() and (zero_frac <= 0.25 + 1e-6).all()
    # colour: each image gets one affine map (brightness/saturation/contrast): a constant grey stays constant
    grey = torch.full((2, 3, 8, 8), 0.2)
    col = diff_augment(grey, "color", generator=g)
    assert torch.allclose(col, col[:, :1, :1, :1].expand_as(col))


def test_multilevel_sigmoid_hand_worked():
    zeros = [torch.zeros(2, 3, 3), torch.zeros(2, 3, 3), torch.zeros(2, 1)]
    for target in ("real", "fake", "generator"):
        assert math.isclose(multilevel_sigmoid_loss(zeros, target).item(), 3 * math.log(2), rel_tol=1e-6)
    one = [torch.tensor([[2.0]])]
    assert math.isclose(multilevel_sigmoid_loss(one, "real").item(), math.log1p(math.exp(-2)), rel_tol=1e-6)
    assert math.isclose(multilevel_sigmoid_loss(one, "fake").item(), math.log1p(math.exp(2)), rel_tol=1e-6)
    # per-level mean, then sum over levels, then mean over the batch
    lv = [torch.tensor([[0.0, 2.0]]), torch.tensor([[-1.0]])]
    want = (math.log(2) + math.log1p(math.exp(-2))) / 2 + math.log1p(math.exp(1))
    assert math.isclose(multilevel_sigmoid_loss(lv, "generator").item(), want, rel_tol=1e-6)


def test_hinge_hand_worked():
    lv = [torch.tensor([[0.5, -2.0]]), torch.tensor([[3.0]])]
    assert math.isclose(hinge_loss(lv, "real").item(), (0.5 + 3.0) / 2 + 0.0)
    assert math.isclose(hinge_loss(lv, "fake").item(), (1.5 + 0.0) / 2 + 4.0)
    assert math.isclose(hinge_loss(lv, "generator").item(), 0.75 - 3.0)
    with pytest.raises(ValueError):
        gan_loss(lv, "real", "wgan")
