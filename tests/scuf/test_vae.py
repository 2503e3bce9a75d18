"""The skip-connection VAE: channel pairing, weight equivalence with diffusers' AutoencoderKL, the skip path
against a hand-written reference, and the official key layout with LoRA."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from peft import LoraConfig

from gefu.scuf.config import VAE_LORA_TARGETS
from gefu.scuf.tiny import tiny_vae
from gefu.scuf.vae import SKIP_INIT, ReflectanceDecoder, SkipVAE, add_vae_lora, skip_channel_pairs

pytestmark = pytest.mark.usefixtures("single_thread")


def test_skip_channel_pairs_sd_and_tiny():
    # SD VAE (DESIGN §2.1, CycleGAN-Turbo): 512→512, 256→512, 128→512, 128→256
    assert skip_channel_pairs((128, 256, 512, 512)) == [(512, 512), (256, 512), (128, 512), (128, 256)]
    # tiny 2-block VAE: encoder down-block inputs [32, 32]; decoder up-block inputs [64, 64]
    assert skip_channel_pairs((32, 64)) == [(32, 64), (32, 64)]


def test_skip_vae_keeps_autoencoder_weights_and_keys():
    vae = tiny_vae(0)
    skip = SkipVAE.from_autoencoder(vae)
    extra = set(skip.state_dict()) - set(vae.state_dict())
    assert extra == {"decoder.skip_conv_1.weight", "decoder.skip_conv_2.weight"}
    assert set(vae.state_dict()) <= set(skip.state_dict())
    for i, (c_in, c_out) in enumerate(skip_channel_pairs((32, 64)), start=1):
        conv = getattr(skip.decoder, f"skip_conv_{i}")
        assert conv.bias is None and conv.kernel_size == (1, 1)
        assert conv.weight.shape == (c_out, c_in, 1, 1)
        assert torch.all(conv.weight == SKIP_INIT)

    x = torch.rand(2, 3, 24, 40) * 2 - 1
    with torch.no_grad():
        post, skips = skip.encode(x)
        ref_post = vae.encode(x).latent_dist
        torch.testing.assert_close(post.mean, ref_post.mean, rtol=0, atol=0)
        torch.testing.assert_close(post.logvar, ref_post.logvar, rtol=0, atol=0)
        assert [tuple(s.shape) for s in skips] == [(2, 32, 24, 40), (2, 32, 12, 20)]
        # no skips → exactly the plain VAE decoder; with the 1e-5 skips → almost the plain decoder
        plain = vae.decode(post.mean).sample
        torch.testing.assert_close(skip.decode(post.mean, None), plain, rtol=0, atol=1e-5)
        assert (skip.decode(post.mean, skips) - plain).abs().max() < 1e-2


def _reference_skip_decode(vae, z, skips, weights, gamma):
    """DESIGN §2.1 written out on the plain diffusers modules: before up block i add conv1x1(skips[::-1][i]·γ)."""
    d = vae.decoder
    h = d.mid_block(d.conv_in(vae.post_quant_conv(z)))
    for i, up in enumerate(d.up_blocks):
        h = h + F.conv2d(skips[::-1][i] * gamma, weights[i])
        h = up(h)
    return d.conv_out(d.conv_act(d.conv_norm_out(h)))


def _reference_skips(vae, x):
    e = vae.encoder
    h, acts = e.conv_in(x), []
    for block in e.down_blocks:
        acts.append(h)
        h = block(h)
    return acts


def test_skip_path_matches_hand_written_reference():
    vae = tiny_vae(0)
    skip = SkipVAE.from_autoencoder(vae)
    g = torch.Generator().manual_seed(3)
    weights = []
    with torch.no_grad():
        for conv in skip.decoder.skip_convs():
            conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * 0.1)
            weights.append(conv.weight.clone())
    x = torch.rand(1, 3, 16, 24, generator=g) * 2 - 1
    with torch.no_grad():
        post, skips = skip.encode(x)
        for ours, ref in zip(skips, _reference_skips(vae, x)):
            torch.testing.assert_close(ours, ref)
        out = skip.decode(post.mean, skips, gamma=0.7)
        ref = _reference_skip_decode(vae, post.mean, skips, weights, 0.7)
        torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
        assert (out - skip.decode(post.mean, skips, gamma=0.0)).abs().max() > 1e-3  # the skips matter
        # skips of an image of another size are refused, not broadcast
        _, other = skip.encode(torch.zeros(1, 3, 8, 8))
        with pytest.raises(ValueError, match="same image"):
            skip.decode(post.mean, other)


def test_lora_key_layout_matches_the_official_construction():
    """Official: AutoencoderKL + decoder.skip_conv_i attributes + diffusers add_adapter(..., "vae_skip")."""
    official = tiny_vae(0)
    for i, (c_in, c_out) in enumerate(skip_channel_pairs((32, 64)), start=1):
        setattr(official.decoder, f"skip_conv_{i}", torch.nn.Conv2d(c_in, c_out, 1, bias=False))
    official.add_adapter(
        LoraConfig(r=4, init_lora_weights="gaussian", target_modules=list(VAE_LORA_TARGETS)), adapter_name="vae_skip"
    )
    ours = add_vae_lora(SkipVAE.from_autoencoder(tiny_vae(0)), rank=4, alpha=8, targets=VAE_LORA_TARGETS)
    assert set(ours.state_dict()) == set(official.state_dict())
    assert "decoder.skip_conv_2.lora_A.vae_skip.weight" in ours.state_dict()
    assert "encoder.down_blocks.0.downsamplers.0.conv.base_layer.weight" in ours.state_dict()
    # peft's default alpha 8 with rank 4, as the official LoraConfig: scaling 2
    assert ours.decoder.conv_in.scaling["vae_skip"] == pytest.approx(2.0)
    # gaussian init: B = 0, so the LoRA model decodes exactly like before
    plain = SkipVAE.from_autoencoder(tiny_vae(0))
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        (p1, s1), (p2, s2) = plain.encode(x), ours.encode(x)
        torch.testing.assert_close(p1.mean, p2.mean)
        torch.testing.assert_close(plain.decode(p1.mean, s1), ours.decode(p2.mean, s2))


def test_reflectance_decoder_is_a_sigmoid_decoder_copy():
    skip = SkipVAE.from_autoencoder(tiny_vae(0))
    ref = ReflectanceDecoder(skip)
    assert set(ref.state_dict()) == {k for k in skip.state_dict() if k.startswith(("decoder.", "post_quant_conv."))}
    assert ref.decoder is not skip.decoder
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        post, skips = skip.encode(x)
        r = ref(post.mean, skips)
        torch.testing.assert_close(r, torch.sigmoid(skip.decode(post.mean, skips)))
    assert r.min() >= 0 and r.max() <= 1
