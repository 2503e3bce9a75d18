"""The `scuf` enhancer on tiny random components: any size, batches, seeds, tiling, checkpoints, dtypes, errors;
and (marked slow) the real SD-Turbo + CLIP when they are in the Hugging Face cache."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import gefu
from gefu.enhancers.scuf import SCUFEnhancer, parse_dtype
from gefu.imageio import pad_to_multiple
from gefu.scuf.pretrained import MissingWeightsError, SD_COMPONENTS, _present

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def enhancer() -> SCUFEnhancer:
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return gefu.create_enhancer("scuf", base="tiny-random", seed=0)
    finally:
        torch.set_num_threads(n)


def test_registered_and_config(enhancer):
    assert "scuf" in gefu.list_enhancers()
    assert enhancer.config() == {
        "name": "scuf", "checkpoint": None, "base": "tiny-random", "dtype": "fp32", "tile": None, "overlap": 64,
        "seed": 0, "sample": False,
    }
    assert enhancer.generator.unet_init is None and enhancer.generator.text_encoder is None  # inference only


def test_any_size_and_batches(enhancer, make_batch):
    x = make_batch(batch=2, h=37, w=53)  # odd sizes: padded to 40×56 inside, cropped back
    y = enhancer(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    assert y.min() >= 0 and y.max() <= 1
    # each image of the batch is enhanced as if alone
    torch.testing.assert_close(enhancer(x[1:]), y[1:], rtol=1e-4, atol=1e-4)
    # half precision input comes back as half precision
    assert enhancer(x.half()).dtype == torch.float16
    # reflect padding cropped away: the generator on the padded image, prompted with 1 − V of the unpadded image
    padded, _ = pad_to_multiple(x, 8)
    gen = enhancer.generator
    with torch.no_grad():
        direct = gen(padded, image_embeds=gen.encode_image_prompt(1 - x.amax(1, keepdim=True)))[..., :37, :53]
    torch.testing.assert_close(y, direct, rtol=1e-4, atol=1e-4)


def test_same_seed_same_output(enhancer, make_batch):
    x = make_batch(batch=1, h=30, w=30)
    again = gefu.create_enhancer("scuf", base="tiny-random", seed=0)
    other = gefu.create_enhancer("scuf", base="tiny-random", seed=1)
    y0, y1, y2 = enhancer(x), again(x), other(x)
    torch.testing.assert_close(y1, y0, rtol=0, atol=0)
    assert (y2 - y0).abs().max() > 1e-3
    sampled = gefu.create_enhancer("scuf", base="tiny-random", seed=0, sample=True)
    s1, s2 = sampled(x), sampled(x)
    torch.testing.assert_close(s1, s2, rtol=0, atol=0)  # the sampling RNG is re-seeded per call
    assert (s1 - y0).abs().max() > 0


def test_tiled_close_to_untiled(enhancer, dark_photo):
    x = dark_photo  # a real darkened photo (1, 3, 96, 128)
    untiled = enhancer(x)
    tiled = gefu.create_enhancer("scuf", base="tiny-random", seed=0, tile=64, overlap=32)(x)
    assert tiled.shape == untiled.shape
    diff = (tiled - untiled).abs()
    # GroupNorm statistics and global attention see a tile instead of the image, so tiles cannot be exact; the
    # difference must still be small next to what the model changes.
    assert diff.mean() < 0.06 and diff.mean() < 0.15 * (untiled - x).abs().mean()
    psnr = 10 * torch.log10(1 / F.mse_loss(tiled, untiled))
    assert psnr > 22


def test_checkpoints_and_dtypes(gen_copy, perturb, make_batch, tmp_path):
    perturb(gen_copy)
    gen_copy.save_pretrained(tmp_path / "ckpt")
    x = make_batch(batch=1, h=16, w=24)
    from_dir = gefu.create_enhancer("scuf", checkpoint=tmp_path / "ckpt")
    with torch.no_grad():
        expected = gen_copy(x)
    torch.testing.assert_close(from_dir(x), expected, rtol=1e-5, atol=1e-5)

    # the official .pkl layout goes through import_official
    sd_pair = {f"vae.{k}": v for k, v in gen_copy.vae_l.state_dict().items()}
    sd_pair |= {f"vae_b2a.{k}": v for k, v in gen_copy.vae_d.state_dict().items()}
    torch.save({
        "rank_vae": 4, "vae_lora_target_modules": gen_copy.config.vae_lora_targets, "sd_vae_enc": sd_pair,
        "sd_vae_dec": sd_pair, "sd_vae_ref": sd_pair | {f"vae_ref.{k}": v for k, v in gen_copy.reflect.state_dict().items()},
        "image_proj": gen_copy.projection.state_dict(), "ca_adapter": gen_copy.adapter.state_dict(),
    }, tmp_path / "official.pkl")
    official = gefu.create_enhancer("scuf", checkpoint=str(tmp_path / "official.pkl"), base="tiny-random")
    assert official.generator.config.adapter_variant == "official"
    assert official(x).shape == x.shape

    bf16 = gefu.create_enhancer("scuf", checkpoint=tmp_path / "ckpt", dtype="bf16")
    assert bf16.generator.dtype == torch.bfloat16 and bf16.config()["dtype"] == "bf16"
    y16 = bf16(x)
    assert y16.dtype == torch.float32 and (y16 - expected).abs().mean() < 0.05

    with pytest.raises(FileNotFoundError, match="not found"):
        gefu.create_enhancer("scuf", checkpoint=tmp_path / "missing")


def test_wraps_a_built_generator(enhancer, tiny_gen, make_batch):
    wrapped = SCUFEnhancer(generator=tiny_gen)  # e.g. a model in training, evaluated through the interface
    assert wrapped.generator is tiny_gen and wrapped.config()["base"] == "tiny-random"
    x = make_batch(batch=1, h=21, w=30)
    # same seed → same weights (the wrapped generator keeps PyTorch's NCHW layout, the built one runs channels_last:
    # equal within float rounding)
    assert not wrapped.channels_last and enhancer.channels_last
    torch.testing.assert_close(wrapped(x), enhancer(x), rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="not both"):
        SCUFEnhancer(generator=tiny_gen, base="tiny-random")


def test_option_errors():
    with pytest.raises(ValueError, match="dtype"):
        parse_dtype("fp8")
    assert parse_dtype(None) is torch.float32 and parse_dtype("FP16") is torch.float16
    with pytest.raises(ValueError, match="tile"):
        gefu.create_enhancer("scuf", base="tiny-random", tile=7)
    with pytest.raises(MissingWeightsError, match="hf download"):
        gefu.create_enhancer("scuf", base="/nonexistent/sd-turbo")


def _real_weights_present() -> bool:
    return all(_present("stabilityai/sd-turbo", f) for f in SD_COMPONENTS.values()) and _present(
        "openai/clip-vit-base-patch32", "config.json"
    )


@pytest.mark.slow
@pytest.mark.skipif(not _real_weights_present(),
                    reason="stabilityai/sd-turbo and openai/clip-vit-base-patch32 are not in the Hugging Face cache")
def test_real_sd_turbo_runs(dark_photo):
    enh = gefu.create_enhancer("scuf")  # untrained adapter: checks loading and shapes, not quality
    gen = enh.generator
    assert gen.unet.config.cross_attention_dim == 1024 and gen.scaling_factor == pytest.approx(0.18215)
    assert gen.projection.proj.weight.shape == (4 * 1024, 512)
    y = enh(dark_photo[..., :64, :72])
    assert y.shape == (1, 3, 64, 72) and torch.isfinite(y).all()


def test_channels_last_matches_the_nchw_path(make_batch):
    """Issue 12 item 4: the channels_last path (default) gives the former NCHW path's output within 1e-4, whole
    images and tiles, and really runs its convolutions channels_last."""
    x = make_batch(seed=3, batch=2, h=40, w=56)
    old = SCUFEnhancer(base="tiny-random", channels_last=False)
    new = SCUFEnhancer(base="tiny-random")
    conv = new.generator.vae_d.decoder.up_blocks[0].resnets[0].conv1.base_layer.weight
    assert conv.is_contiguous(memory_format=torch.channels_last)
    assert old.generator.vae_d.decoder.up_blocks[0].resnets[0].conv1.base_layer.weight.is_contiguous()
    torch.testing.assert_close(new(x), old(x), rtol=0, atol=1e-4)
    tiled_old = SCUFEnhancer(base="tiny-random", channels_last=False, tile=32, overlap=8)
    tiled_new = SCUFEnhancer(base="tiny-random", tile=32, overlap=8)
    torch.testing.assert_close(tiled_new(x), tiled_old(x), rtol=0, atol=1e-4)


def test_merged_lora_matches_and_refuses_to_be_saved(make_batch, tmp_path, perturb):
    """merge_lora (the enhancer's default) folds trained LoRA into the base weights: same output within 1e-4 as
    running the LoRA apart; the merged generator can no longer be saved (its weights would be wrong)."""
    import copy

    from gefu.scuf.config import SCUFConfig
    from gefu.scuf.generator import SCUFGenerator

    gen = SCUFGenerator(SCUFConfig(base="tiny-random", seed=0), inference_only=True)
    perturb(gen, seed=4, std=0.05)  # LoRA B is zero at init: give the LoRA something to add
    merged = copy.deepcopy(gen)
    merged.merge_lora()
    x = make_batch(seed=5, batch=1, h=32, w=48)
    with torch.no_grad():
        torch.testing.assert_close(merged(x), gen(x), rtol=0, atol=1e-4)
        assert (merged(x) - SCUFGenerator(SCUFConfig(base="tiny-random", seed=0), inference_only=True)(x)).abs().max() > 1e-3
    with pytest.raises(RuntimeError, match="merged for inference"):
        merged.save_pretrained(tmp_path / "m")
    with pytest.raises(RuntimeError, match="inference_only"):
        SCUFGenerator(SCUFConfig(base="tiny-random", seed=0)).merge_lora()
    enh = SCUFEnhancer(generator=gen)  # a wrapped generator is never merged
    assert not enh.generator.lora_merged
