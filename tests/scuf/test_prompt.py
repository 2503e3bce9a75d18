"""Illumination map, CLIP image-prompt encoder (official and standard modes) and the token projection."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from gefu.scuf.prompt import ImageProjection, ImagePromptEncoder, illumination_map
from gefu.scuf.tiny import TINY_PROJECTION_DIM, tiny_clip_vision

CLIP_MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
CLIP_STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)


@pytest.fixture(scope="module")
def clip():
    return tiny_clip_vision(seed=0)


def test_illumination_map_hand_worked():
    # pixel (0,0): RGB (0.1, 0.7, 0.3) → V 0.7; (0,1): (0.9, 0.2, 0.2) → 0.9; (1,0): (0, 0, 0) → 0;
    # (1,1): (0.25, 0.5, 0.75) → 0.75
    x = torch.tensor(
        [[[0.1, 0.9], [0.0, 0.25]], [[0.7, 0.2], [0.0, 0.5]], [[0.3, 0.2], [0.0, 0.75]]]
    ).unsqueeze(0)  # (1, 3, 2, 2)
    v = illumination_map(x, reverse=False)
    assert v.shape == (1, 1, 2, 2)
    torch.testing.assert_close(v, torch.tensor([[[[0.7, 0.9], [0.0, 0.75]]]]))
    torch.testing.assert_close(illumination_map(x, reverse=True), torch.tensor([[[[0.3, 0.1], [1.0, 0.25]]]]))


def test_illumination_map_matches_hsv_value_of_a_real_photo(photo):
    from skimage.color import rgb2hsv

    hsv_v = rgb2hsv(photo[0].permute(1, 2, 0).numpy())[..., 2]
    torch.testing.assert_close(illumination_map(photo, reverse=False)[0, 0], torch.from_numpy(hsv_v).float())


def test_illumination_map_rejects_grey_input():
    with pytest.raises(ValueError, match="B, 3, H, W"):
        illumination_map(torch.rand(1, 1, 8, 8), reverse=False)


def _no_position_copy(clip):
    """Reference model: the same tower with its position embedding zeroed (= dropped)."""
    ref = copy.deepcopy(clip)
    with torch.no_grad():
        ref.vision_model.embeddings.position_embedding.weight.zero_()
    return ref


@pytest.mark.parametrize("size", [(40, 72), (38, 27), (32, 32)])
def test_official_mode_any_size_equals_clip_without_position_embedding(clip, size):
    assert clip.vision_model.embeddings.position_embedding.weight.abs().sum() > 0  # dropping it matters
    enc = ImagePromptEncoder(clip, mode="official")
    v = torch.rand(2, 1, *size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = enc(v)
        # independent reference: transformers' own forward, raw [0, 1] input (no mean/std), zero positions
        ref = _no_position_copy(clip)(pixel_values=v.repeat(1, 3, 1, 1), interpolate_pos_encoding=True)
    ref = F.normalize(ref.image_embeds, dim=-1)
    assert out.shape == (2, TINY_PROJECTION_DIM)
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(2))
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def test_official_mode_ignores_position_embedding(clip):
    v = torch.rand(1, 1, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        a = ImagePromptEncoder(clip, mode="official")(v)
        b = ImagePromptEncoder(_no_position_copy(clip), mode="official")(v)
        standard = ImagePromptEncoder(clip, mode="standard")(v)
    torch.testing.assert_close(a, b)
    assert (a - standard).abs().max() > 1e-3


def test_standard_mode_equals_transformers_forward_on_clip_normalised_input(clip):
    enc = ImagePromptEncoder(clip, mode="standard")
    size = clip.config.image_size
    v = torch.rand(3, 1, size, size, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        out = enc(v)
        ref = clip(pixel_values=(v.repeat(1, 3, 1, 1) - CLIP_MEAN) / CLIP_STD).image_embeds
    torch.testing.assert_close(out, ref / ref.norm(dim=-1, keepdim=True), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(3))


def test_standard_mode_resizes_to_the_model_size(clip):
    # a constant map stays the same constant when resized: 64×48 and 32×32 inputs must agree
    enc = ImagePromptEncoder(clip, mode="standard")
    with torch.no_grad():
        big = enc(torch.full((1, 1, 64, 48), 0.3))
        native = enc(torch.full((1, 1, 32, 32), 0.3))
    torch.testing.assert_close(big, native, rtol=1e-4, atol=1e-5)


def test_encoder_is_frozen_and_differentiable_in_its_input(clip):
    enc = ImagePromptEncoder(clip, mode="official").train()
    assert not enc.clip.training
    assert not any(p.requires_grad for p in enc.parameters())
    v = torch.rand(1, 1, 32, 48, requires_grad=True)
    enc(v).sum().backward()
    assert v.grad is not None and v.grad.abs().sum() > 0


def test_encoder_rejects_bad_input(clip):
    enc = ImagePromptEncoder(clip)
    with pytest.raises(ValueError, match="B, 1, H, W"):
        enc(torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError, match="smaller than one CLIP patch"):
        enc(torch.rand(1, 1, 2, 32))
    with pytest.raises(ValueError, match="official"):
        ImagePromptEncoder(clip, mode="fancy")


def test_projection_official_key_layout_and_shapes():
    proj = ImageProjection()  # defaults: 512 → 4 tokens × 1024
    shapes = {k: tuple(v.shape) for k, v in proj.state_dict().items()}
    assert shapes == {
        "proj.weight": (4096, 512),
        "proj.bias": (4096,),
        "norm.weight": (1024,),
        "norm.bias": (1024,),
    }


def test_projection_tokens_are_layer_normalised():
    proj = ImageProjection(in_dim=16, num_tokens=4, cross_dim=32)
    e = torch.randn(3, 16)
    tokens = proj(e)
    assert tokens.shape == (3, 4, 32)
    # token t is the LayerNorm of proj(e)[t*32:(t+1)*32]
    raw = (e @ proj.proj.weight.T + proj.proj.bias).view(3, 4, 32)
    ref = (raw - raw.mean(-1, keepdim=True)) / torch.sqrt(raw.var(-1, unbiased=False, keepdim=True) + 1e-5)
    torch.testing.assert_close(tokens, ref, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="16"):
        proj(torch.randn(3, 8))
