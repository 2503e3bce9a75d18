"""Cycle-attention / IP-Adapter processors and their installer, on the tiny SD-shaped UNet."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from diffusers.models.attention_processor import Attention, AttnProcessor2_0

from gefu.scuf.attention import (
    CycleAttnProcessor,
    DefaultAttnProcessor,
    IPAttnProcessor,
    install_image_adapter,
)
from gefu.scuf.prompt import ImageProjection
from gefu.scuf.tiny import TINY_CROSS_DIM, tiny_unet

D = TINY_CROSS_DIM  # 32
TEXT, TOKENS = 77, 4


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _inputs(batch=2, hw=64, channels=32, seed=0):
    g = _gen(seed)
    h = torch.randn(batch, hw, channels, generator=g)  # (B, HW, C) UNet tokens
    ehs = torch.randn(batch, TEXT + TOKENS, D, generator=g)  # cat(text, image)
    return h, ehs


@pytest.fixture(scope="module")
def unet():
    return tiny_unet(seed=0).requires_grad_(False)


@pytest.fixture
def attn2(unet) -> Attention:
    return unet.down_blocks[0].attentions[0].transformer_blocks[0].attn2  # hidden 32, cross 32


def _cycle(attn: Attention, variant: str, scale: float, seed: int = 0) -> CycleAttnProcessor:
    hidden = attn.to_q.out_features
    proc = CycleAttnProcessor(hidden, D, TOKENS, variant=variant, scale=scale)
    g = _gen(seed)
    with torch.no_grad():
        proc.to_q_ca.weight.copy_(torch.randn(hidden, TOKENS, generator=g))
        proc.to_k_ca.weight.copy_(torch.randn(hidden, D, generator=g) / math.sqrt(D))
        proc.to_v_ca.weight.copy_(torch.randn(hidden, D, generator=g) / math.sqrt(D))
    return proc


def _ref_attention(q, k, v, heads):
    """Plain softmax(QKᵀ/√d)V, head by head, on (B, L, C) tensors."""
    outs = []
    for qh, kh, vh in zip(q.chunk(heads, -1), k.chunk(heads, -1), v.chunk(heads, -1)):
        w = torch.softmax(qh @ kh.transpose(1, 2) / math.sqrt(qh.shape[-1]), dim=-1)
        outs.append(w @ vh)
    return torch.cat(outs, dim=-1)


def test_official_variant_matches_hand_written_reference(attn2):
    h, ehs = _inputs(hw=64)
    text, image = ehs[:, :TEXT], ehs[:, TEXT:]
    proc = _cycle(attn2, "official", scale=0.25)  # the official code ignores scale
    with torch.no_grad():
        out = proc(attn2, h, encoder_hidden_states=ehs)
        heads = attn2.heads
        z_t = _ref_attention(attn2.to_q(h), attn2.to_k(text), attn2.to_v(text), heads)
        q1 = image.transpose(1, 2) @ proc.to_q_ca.weight.T  # (B, D, hidden)
        # linspace(0, D-1, HW).long() with D=32, HW=64: floor(i·31/63), no value near a float32 rounding edge
        idx = np.floor(np.arange(64) * (D - 1) / 63).astype(np.int64)
        z_f = _ref_attention(q1[:, torch.from_numpy(idx)], h, h, heads)
        z_n = _ref_attention(attn2.to_q(z_f), image @ proc.to_k_ca.weight.T, image @ proc.to_v_ca.weight.T, heads)
        ref = attn2.to_out[0](z_t + z_n) + h  # the released code adds the block input once more
    assert out.shape == h.shape
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)


def test_paper_with_zero_scale_is_the_default_text_cross_attention(attn2):
    h, ehs = _inputs()
    with torch.no_grad():
        paper = _cycle(attn2, "paper", scale=0.0)(attn2, h, encoder_hidden_states=ehs)
        default = AttnProcessor2_0()(attn2, h, encoder_hidden_states=ehs[:, :TEXT])
    torch.testing.assert_close(paper, default)


def test_official_minus_paper_is_residual_plus_unscaled_image_term(attn2):
    # paper = to_out(Z_t + s·Z_n), official = to_out(Z_t + Z_n) + h, default = to_out(Z_t)
    # ⇒ official − paper − h = (1 − s)·W·Z_n and paper − default = s·W·Z_n
    s = 0.3
    h, ehs = _inputs(seed=1)
    with torch.no_grad():
        paper = _cycle(attn2, "paper", scale=s)(attn2, h, encoder_hidden_states=ehs)
        official = _cycle(attn2, "official", scale=s)(attn2, h, encoder_hidden_states=ehs)
        default = AttnProcessor2_0()(attn2, h, encoder_hidden_states=ehs[:, :TEXT])
    image_term = paper - default
    assert image_term.abs().max() > 1e-3  # the image branch does something
    torch.testing.assert_close(official - paper - h, (1 - s) / s * image_term, rtol=1e-3, atol=1e-5)
    with torch.no_grad():
        official_s1 = _cycle(attn2, "official", scale=1.0)(attn2, h, encoder_hidden_states=ehs)
    torch.testing.assert_close(official, official_s1)  # scale ignored


def test_paper_follows_diffusers_residual_rescale_group_norm_and_4d_input():
    attn = Attention(
        query_dim=32, cross_attention_dim=D, heads=2, dim_head=16, norm_num_groups=8,
        residual_connection=True, rescale_output_factor=2.0,
    ).eval()
    g = _gen(5)
    x = torch.randn(2, 32, 6, 5, generator=g)  # (B, C, H, W)
    ehs = torch.randn(2, TEXT + TOKENS, D, generator=g)
    with torch.no_grad():
        paper0 = _cycle(attn, "paper", scale=0.0)(attn, x, encoder_hidden_states=ehs)
        default = AttnProcessor2_0()(attn, x, encoder_hidden_states=ehs[:, :TEXT])
        paper1 = _cycle(attn, "paper", scale=1.0)(attn, x, encoder_hidden_states=ehs)
    assert paper0.shape == x.shape
    torch.testing.assert_close(paper0, default)
    assert (paper1 - default).abs().max() > 1e-4


def test_mask_applies_to_the_text_tokens(attn2):
    h, ehs = _inputs(seed=2)
    mask = torch.zeros(2, 1, TEXT + TOKENS)
    mask[:, :, 40:TEXT] = -1e4  # hide the text tail
    with torch.no_grad():
        paper0 = _cycle(attn2, "paper", scale=0.0)(attn2, h, encoder_hidden_states=ehs, attention_mask=mask)
        default = AttnProcessor2_0()(attn2, h, encoder_hidden_states=ehs[:, :TEXT], attention_mask=mask[..., :TEXT])
        unmasked = AttnProcessor2_0()(attn2, h, encoder_hidden_states=ehs[:, :TEXT])
    torch.testing.assert_close(paper0, default)
    assert (default - unmasked).abs().max() > 1e-3


def test_ip_processor_with_zero_values_is_the_default_and_linear_in_scale(attn2):
    h, ehs = _inputs(seed=3)
    hidden = attn2.to_q.out_features
    ip = IPAttnProcessor(hidden, D, TOKENS, scale=1.0)
    with torch.no_grad():
        ip.to_k_ip.weight.copy_(attn2.to_k.weight)
        ip.to_v_ip.weight.zero_()
        default = AttnProcessor2_0()(attn2, h, encoder_hidden_states=ehs[:, :TEXT])
        torch.testing.assert_close(ip(attn2, h, encoder_hidden_states=ehs), default)
        ip.to_v_ip.weight.copy_(attn2.to_v.weight)
        full = ip(attn2, h, encoder_hidden_states=ehs) - default
        ip.scale = 0.5
        half = ip(attn2, h, encoder_hidden_states=ehs) - default
    assert full.abs().max() > 1e-3
    torch.testing.assert_close(half, 0.5 * full, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("make", [lambda: CycleAttnProcessor(32, D, TOKENS), lambda: IPAttnProcessor(32, D, TOKENS)])
def test_text_only_call_is_refused(attn2, make):
    h, ehs = _inputs()
    proc = make()
    with pytest.raises(ValueError, match="77 text \\+ 4 image"):
        proc(attn2, h, encoder_hidden_states=ehs[:, :TEXT])
    with pytest.raises(ValueError, match="got None"):
        proc(attn2, h)
    relaxed = CycleAttnProcessor(32, D, TOKENS, text_tokens=None)
    assert relaxed(attn2, h, encoder_hidden_states=ehs[:, 10:]).shape == h.shape  # 67 text + 4 image


# ---------------------------------------------------------------- installer on the tiny UNet


def _fresh_unet():
    return tiny_unet(seed=0).requires_grad_(False)


def _latents_and_tokens(seed=0):
    g = _gen(seed)
    return torch.randn(1, 4, 16, 16, generator=g), torch.randn(1, TEXT + TOKENS, D, generator=g)


def test_installer_state_dict_layout_is_the_official_ca_adapter():
    unet = _fresh_unet()
    names = list(unet.attn_processors)
    before = {n: unet.get_submodule(n.removesuffix(".processor")) for n in names}
    adapter = install_image_adapter(unet, kind="ca", variant="official")
    assert len(adapter) == len(names) == 8
    cross = [i for i, n in enumerate(names) if n.endswith("attn2.processor")]
    assert cross == [1, 3, 5, 7]
    expected = {f"{i}.{p}.weight" for i in cross for p in ("to_q_ca", "to_k_ca", "to_v_ca")}
    assert set(adapter.state_dict()) == expected
    hidden = {"down_blocks.0": 32, "up_blocks.1": 32, "mid_block": 64}
    for i, name in enumerate(names):
        proc = adapter[i]
        assert proc is unet.attn_processors[name]
        if i not in cross:
            assert isinstance(proc, DefaultAttnProcessor) and isinstance(proc.processor, AttnProcessor2_0)
            continue
        layer = before[name]
        assert isinstance(proc, CycleAttnProcessor) and proc.variant == "official"
        size = next(v for k, v in hidden.items() if name.startswith(k))
        assert proc.to_q_ca.weight.shape == (size, TOKENS)
        assert torch.equal(proc.to_k_ca.weight, layer.to_k.weight)
        assert torch.equal(proc.to_v_ca.weight, layer.to_v.weight)
        assert proc.to_k_ca.weight.data_ptr() != layer.to_k.weight.data_ptr()  # a copy, trained separately


def test_adapter_state_dict_round_trip_reproduces_the_unet():
    src, dst = _fresh_unet(), _fresh_unet()
    adapter = install_image_adapter(src, kind="ca", variant="official")
    target = install_image_adapter(dst, kind="ca", variant="official")
    target.load_state_dict(adapter.state_dict(), strict=True)
    z, ehs = _latents_and_tokens()
    with torch.no_grad():
        torch.testing.assert_close(dst(z, 999, ehs).sample, src(z, 999, ehs).sample)


@pytest.mark.parametrize("kind", ["ca", "ip"])
def test_adapter_with_no_image_contribution_leaves_the_unet_unchanged(kind):
    # ca (paper) at scale 0, or ip with zero value weights, must reproduce the plain text-only UNet exactly;
    # this also checks that self-attention layers still run diffusers' default processor
    plain = _fresh_unet()
    unet = _fresh_unet()
    adapter = install_image_adapter(unet, kind=kind, variant="paper", scale=0.0 if kind == "ca" else 1.0)
    if kind == "ip":
        with torch.no_grad():
            for proc in adapter:
                if isinstance(proc, IPAttnProcessor):
                    proc.to_v_ip.weight.zero_()
    z, ehs = _latents_and_tokens(seed=1)
    with torch.no_grad():
        torch.testing.assert_close(unet(z, 999, ehs).sample, plain(z, 999, ehs[:, :TEXT]).sample)


def test_concat_and_none_leave_the_processors_alone():
    unet = _fresh_unet()
    before = {n: type(p) for n, p in unet.attn_processors.items()}
    for kind in ("concat", "none"):
        assert len(install_image_adapter(unet, kind=kind)) == 0
    assert {n: type(p) for n, p in unet.attn_processors.items()} == before
    z, ehs = _latents_and_tokens(seed=2)
    with torch.no_grad():
        with_image = unet(z, 999, ehs).sample  # image tokens go through the normal cross-attention
        text_only = unet(z, 999, ehs[:, :TEXT]).sample
    assert with_image.shape == z.shape
    assert (with_image - text_only).abs().max() > 1e-4


def test_unet_forward_without_image_tokens_raises():
    unet = _fresh_unet()
    install_image_adapter(unet, kind="ca")
    z, ehs = _latents_and_tokens()
    with pytest.raises(ValueError, match="image tokens"):
        unet(z, 999, ehs[:, :TEXT])


def test_installer_refuses_twice_and_bad_names():
    unet = _fresh_unet()
    install_image_adapter(unet, kind="ip")
    with pytest.raises(ValueError, match="already installed"):
        install_image_adapter(unet, kind="ca")
    with pytest.raises(ValueError, match="'ca', 'ip'"):
        install_image_adapter(_fresh_unet(), kind="cycle")
    with pytest.raises(ValueError, match="'paper' or 'official'"):
        install_image_adapter(_fresh_unet(), kind="ca", variant="released")


def test_new_parameters_follow_the_unet_dtype():
    unet = tiny_unet(seed=0).to(torch.bfloat16)
    adapter = install_image_adapter(unet, kind="ca")
    assert {p.dtype for p in adapter.parameters()} == {torch.bfloat16}


@pytest.mark.parametrize("variant", ["paper", "official"])
def test_gradients_reach_exactly_the_adapter_and_projection(variant):
    unet = _fresh_unet()
    adapter = install_image_adapter(unet, kind="ca", variant=variant)
    proj = ImageProjection(in_dim=16, num_tokens=TOKENS, cross_dim=D)
    g = _gen(4)
    z = torch.randn(1, 4, 16, 16, generator=g)
    text = torch.randn(1, TEXT, D, generator=g)
    tokens = proj(torch.randn(1, 16, generator=g))
    out = unet(z, 999, torch.cat([text, tokens], dim=1)).sample
    out.square().mean().backward()
    trainable = {id(p) for p in adapter.parameters()} | {id(p) for p in proj.parameters()}
    assert len(list(adapter.parameters())) == 12
    for p in list(adapter.parameters()) + list(proj.parameters()):
        assert p.grad is not None and p.grad.abs().sum() > 0
    for name, p in unet.named_parameters():
        if id(p) not in trainable:
            assert p.grad is None, name
