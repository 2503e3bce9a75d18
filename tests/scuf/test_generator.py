"""The one-step generator on tiny random components: shapes, ranges, the x0 step against the closed form,
directions, caption UNet, the exact trainable set, seeds, adapters and config."""

from __future__ import annotations

import math

import pytest
import torch

from gefu.scuf.attention import CycleAttnProcessor, IPAttnProcessor
from gefu.scuf.config import DARKEN_PROMPT, LIGHTEN_PROMPT, SCUFConfig
from gefu.scuf.generator import SCUFGenerator, unet_lora_groups
from gefu.scuf.pretrained import ByteTokenizer
from gefu.scuf.prompt import illumination_map
from gefu.scuf.tiny import tiny_text_encoder, tiny_unet

pytestmark = pytest.mark.usefixtures("single_thread")


def _alpha_bar_999() -> float:
    """ᾱ_999 of SD's scaled-linear schedule, from its definition: β = linspace(√0.00085, √0.012, 1000)²."""
    betas = [(math.sqrt(0.00085) + (math.sqrt(0.012) - math.sqrt(0.00085)) * i / 999) ** 2 for i in range(1000)]
    return math.prod(1 - b for b in betas)


def test_forward_shape_range_and_size_check(tiny_gen, make_batch):
    x = make_batch(batch=2, h=24, w=40)
    with torch.no_grad():
        y = tiny_gen(x)
    assert y.shape == x.shape and y.dtype == torch.float32
    assert y.min() >= 0 and y.max() <= 1
    assert (y - x).abs().mean() > 1e-3  # it is not the identity
    with pytest.raises(ValueError, match="multiples of 2"):
        tiny_gen(torch.rand(1, 3, 25, 40))
    with pytest.raises(ValueError, match="direction"):
        tiny_gen(x, direction="sideways")


def test_step_z0_is_the_closed_form_x0_prediction(tiny_gen, make_batch):
    x = make_batch(batch=1) * 2 - 1
    v = illumination_map((x + 1) / 2, reverse=True)
    with torch.no_grad():
        out = tiny_gen.step(x, "lighten", v)
        cond = tiny_gen.condition("lighten", 1, v)
        eps = tiny_gen.unet(out.z_enc, torch.tensor([999]), encoder_hidden_states=cond).sample
    a = _alpha_bar_999()
    x0 = (out.z_enc - math.sqrt(1 - a) * eps) / math.sqrt(a)
    torch.testing.assert_close(out.z0, x0, rtol=1e-4, atol=1e-5)
    # the image is the lighten decoder of z0 / sf with this image's skips, clamped
    with torch.no_grad():
        y = tiny_gen.vae_l.decode(out.z0 / 0.18215, out.skips).clamp(-1, 1)
    torch.testing.assert_close(out.image, y)
    assert out.z_enc.shape == (1, 4, 12, 20) and out.direction == "lighten"
    # z_enc is the posterior mode × scaling factor at inference
    with torch.no_grad():
        post, _ = tiny_gen.vae_l.encode(x)
    torch.testing.assert_close(out.z_enc, post.mode() * 0.18215)


def test_text_condition_override(tiny_gen, make_batch):
    x = make_batch(batch=2) * 2 - 1
    v = illumination_map((x + 1) / 2, reverse=True)
    with torch.no_grad():
        default = tiny_gen.step(x, "lighten", v).image
        same = tiny_gen.step(x, "lighten", v, text_embeds=tiny_gen.lighten_embeds).image  # (1, 77, D) broadcast
        other = tiny_gen.step(x, "lighten", v, text_embeds=tiny_gen.encode_prompt(["night", "day"])).image
    torch.testing.assert_close(same, default, rtol=0, atol=0)
    assert (other - default).abs().max() > 1e-4
    with pytest.raises(ValueError, match="text_embeds batch"):
        tiny_gen.step(x, "lighten", v, text_embeds=tiny_gen.encode_prompt(["a", "b", "c"]))


def test_directions_use_their_own_vae(gen_copy, make_batch):
    x = make_batch(batch=1)
    with torch.no_grad():
        before_l, before_d = gen_copy(x, "lighten"), gen_copy(x, "darken")
        for p in gen_copy.vae_d.parameters():  # change only the darken VAE
            p.mul_(1.01)
        after_l, after_d = gen_copy(x, "lighten"), gen_copy(x, "b2a")
    torch.testing.assert_close(after_l, before_l, rtol=0, atol=0)
    assert (after_d - before_d).abs().max() > 1e-4
    assert gen_copy.vae("a2b") is gen_copy.vae_l and gen_copy.vae("darken") is gen_copy.vae_d


def test_fixed_prompts_are_cached_text_encodings(tiny_gen):
    enc = tiny_text_encoder(0)  # an independent copy of the same tiny text encoder
    tok = ByteTokenizer()
    with torch.no_grad():
        lighten = enc(tok([LIGHTEN_PROMPT]).input_ids)[0]
        darken = enc(tok([DARKEN_PROMPT]).input_ids)[0]
    torch.testing.assert_close(tiny_gen.lighten_embeds, lighten)
    torch.testing.assert_close(tiny_gen.darken_embeds, darken)
    assert "lighten_embeds" not in tiny_gen.state_dict()  # derived from frozen weights: not checkpointed
    torch.testing.assert_close(tiny_gen.encode_prompt(["a photo"]), tiny_gen.encode_prompt_ids(tok(["a photo"]).input_ids))


def test_caption_x0_runs_the_pre_adapter_unet_with_text_only(tiny_gen, make_batch):
    x = make_batch(batch=1) * 2 - 1
    caption = tiny_gen.encode_prompt(["a cat on a sofa"])
    with torch.no_grad():
        out = tiny_gen.step(x, "lighten", illumination_map((x + 1) / 2, reverse=True))
        z0 = tiny_gen.caption_x0(out.z_enc, caption)
        eps = tiny_unet(0)(out.z_enc, torch.tensor([999]), encoder_hidden_states=caption).sample  # fresh, no adapter
    a = _alpha_bar_999()
    torch.testing.assert_close(z0, (out.z_enc - math.sqrt(1 - a) * eps) / math.sqrt(a), rtol=1e-4, atol=1e-5)
    assert not any(p.requires_grad for p in tiny_gen.unet_init.parameters())
    assert not any(isinstance(m, CycleAttnProcessor) for m in tiny_gen.unet_init.modules())


def test_gradients_reach_exactly_the_trainable_parameters(gen_copy, make_batch, perturb):
    gen = gen_copy
    perturb(gen)  # non-zero LoRA B so every factor gets a non-zero gradient
    gen.train()
    x = make_batch(batch=1) * 2 - 1
    v = illumination_map((x + 1) / 2, reverse=True)
    loss = 0
    for direction in ("lighten", "darken"):
        out = gen.step(x, direction, v, sample=True, generator=torch.Generator().manual_seed(0))
        loss = loss + out.image.mean() + gen.step_reflectance(out).mean() + out.z0.mean()
    loss.backward()

    trainable = gen.trainable_named_parameters()
    by_id = {id(p): n for n, p in trainable.items()}
    with_grad = {id(p) for p in gen.parameters() if p.grad is not None}
    requires = {id(p) for p in gen.parameters() if p.requires_grad}
    assert with_grad == set(by_id) == requires
    assert all(trainable[n].grad.abs().sum() > 0 for n in trainable), [n for n in trainable if not trainable[n].grad.any()]

    names = set(trainable)
    # what must be there: LoRA of all three decoders/both VAEs, skip convs of both directions, projection, adapter
    assert {"projection.proj.weight", "projection.norm.bias"} <= names
    assert {n for n in names if n.startswith("adapter.")} == {
        f"adapter.{i}.{w}.weight" for i, p in enumerate(gen.adapter) if isinstance(p, CycleAttnProcessor)
        for w in ("to_q_ca", "to_k_ca", "to_v_ca")
    }
    for vae in ("vae_l", "vae_d"):
        assert f"{vae}.decoder.skip_conv_1.base_layer.weight" in names
        assert f"{vae}.encoder.conv_in.lora_A.vae_skip.weight" in names
    assert "reflect.decoder.conv_out.lora_B.vae_skip.weight" in names
    assert "reflect.decoder.skip_conv_1.base_layer.weight" in names
    # what must not: any base weight other than the skip convs, the UNet, CLIP, text encoder
    assert not any(n.startswith(("unet.", "unet_init.", "prompt_encoder.", "text_encoder.")) for n in names)
    assert all("lora_" in n or ".skip_conv_" in n or n.startswith(("projection.", "adapter.")) for n in names)


def test_skip_conv_base_switch_and_unet_lora(make_batch):
    cfg = SCUFConfig(base="tiny-random", unet_lora=True, unet_lora_rank=4, train_skip_conv_base=False,
                     reflectance="encoder")
    gen = SCUFGenerator(cfg)
    names = set(gen.trainable_named_parameters())
    assert not any("base_layer" in n for n in names)
    groups = unet_lora_groups(tiny_unet(0))
    assert "conv_in" in groups["encoder"] and "conv_out" in groups["others"]
    assert any(n.startswith("up_blocks") for n in groups["decoder"])
    assert all(n.startswith("mid_block") or n in ("conv_in", "conv_out") for n in groups["others"])
    unet_lora = {n for n in names if n.startswith("unet.")}
    for group in ("encoder", "decoder", "others"):
        assert any(f"default_{group}" in n for n in unet_lora)
    assert all("lora_" in n for n in unet_lora)

    x = make_batch(batch=1) * 2 - 1
    out = gen.step(x, "darken", illumination_map((x + 1) / 2, reverse=False))
    out_l = gen.step(x, "lighten", illumination_map((x + 1) / 2, reverse=True))
    (out.image.mean() + gen.step_reflectance(out).mean() + out_l.image.mean()).backward()
    assert {id(p) for p in gen.parameters() if p.grad is not None} == {id(p) for p in gen.trainable_parameters()}
    # "encoder" placement decodes the encoder latent
    with torch.no_grad():
        torch.testing.assert_close(gen.step_reflectance(out), gen.reflectance(out.z_enc, out.skips))


def test_same_seed_same_model_and_output(tiny_gen, make_batch):
    x = make_batch(batch=1)
    again = SCUFGenerator(SCUFConfig(base="tiny-random", seed=0), inference_only=True)
    other = SCUFGenerator(SCUFConfig(base="tiny-random", seed=1), inference_only=True)
    assert again.unet_init is None and again.text_encoder is None
    with torch.no_grad():
        y0, y1, y2 = tiny_gen(x), again(x), other(x)
    torch.testing.assert_close(y1, y0, rtol=0, atol=0)
    assert (y2 - y0).abs().max() > 1e-3
    # latent sampling is reproducible with a seeded generator, and differs from the mode
    with torch.no_grad():
        s1 = again(x, sample=True, generator=torch.Generator().manual_seed(5))
        s2 = again(x, sample=True, generator=torch.Generator().manual_seed(5))
        s3 = again(x, sample=True, generator=torch.Generator().manual_seed(6))
    torch.testing.assert_close(s1, s2, rtol=0, atol=0)
    assert (s1 - s3).abs().max() > 0 and (s1 - y1).abs().max() > 0


@pytest.mark.parametrize("adapter", ["ip", "concat", "none"])
def test_other_adapters_run(adapter, make_batch):
    gen = SCUFGenerator(SCUFConfig(base="tiny-random", adapter=adapter, reflectance="none"), inference_only=True)
    x = make_batch(batch=2)
    with torch.no_grad():
        y = gen(x)
        cond = gen.condition("lighten", 2, illumination_map(x, reverse=True))
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
    names = set(gen.trainable_named_parameters())
    assert gen.reflect is None and not any(n.startswith("reflect.") for n in names)
    if adapter == "none":  # plain CycleGAN-Turbo: text only, no CLIP, no projection
        assert cond.shape[1] == 77 and gen.prompt_encoder is None and not any(n.startswith("projection") for n in names)
    else:
        assert cond.shape[1] == 77 + 4 and "projection.proj.weight" in names
    adapter_names = {n for n in names if n.startswith("adapter.")}
    if adapter == "ip":
        assert adapter_names and all(n.endswith(("to_k_ip.weight", "to_v_ip.weight")) for n in adapter_names)
        assert any(isinstance(m, IPAttnProcessor) for m in gen.unet.modules())
    else:
        assert not adapter_names


def test_official_variant_reaches_the_processors(make_batch):
    gen = SCUFGenerator(SCUFConfig(base="tiny-random", adapter_variant="official", adapter_scale=0.5),
                        inference_only=True)
    procs = [m for m in gen.unet.modules() if isinstance(m, CycleAttnProcessor)]
    assert procs and all(p.variant == "official" and p.num_tokens == 4 for p in procs)


def test_config_validation_and_json_round_trip(tmp_path):
    cfg = SCUFConfig(base="tiny-random", adapter="ip", vae_lora_rank=8)
    assert SCUFConfig.from_json(cfg.to_json()) == cfg
    cfg.save(tmp_path)
    assert SCUFConfig.load(tmp_path) == cfg
    assert not [p for p in tmp_path.iterdir() if p.name != "config.json"]  # no temp file left
    assert cfg.lighten_prompt.startswith("natural light, bright lighting") and cfg.adapter_variant == "paper"
    for bad, match in [
        (dict(adapter="cross"), "adapter must be one of"),
        (dict(adapter_variant="authors"), "adapter_variant"),
        (dict(reflectance="middle"), "reflectance"),
        (dict(prompt_encoder_mode="raw"), "prompt_encoder_mode"),
        (dict(vae_lora_rank=0), "vae_lora_rank"),
        (dict(skip_gamma=float("nan")), "skip_gamma"),
        (dict(vae_lora_targets=[]), "vae_lora_targets"),
        (dict(base=""), "base"),
    ]:
        with pytest.raises(ValueError, match=match):
            SCUFConfig(**bad)
    with pytest.raises(ValueError, match="unknown config field .model.adaptor.. Did you mean model.adapter"):
        SCUFConfig.from_json('{"adaptor": "ca"}')
    with pytest.raises(FileNotFoundError, match="config.json"):
        SCUFConfig.load(tmp_path / "nowhere")
