"""Checkpoints: save_pretrained → from_pretrained round trip, the official .pkl layout (written here the
official way, independently of gefu's module names) imported with every key accounted for, and clear errors."""

from __future__ import annotations

import copy
import datetime
import json

import pytest
import torch
from peft import LoraConfig
from safetensors.torch import load_file
from torch import nn

from gefu.scuf.official import import_official
from gefu.scuf.config import VAE_LORA_TARGETS, SCUFConfig
from gefu.scuf.generator import SCUFGenerator
from gefu.scuf.pretrained import MissingWeightsError
from gefu.scuf.prompt import illumination_map
from gefu.scuf.tiny import tiny_unet, tiny_vae
from gefu.scuf.vae import skip_channel_pairs

pytestmark = pytest.mark.usefixtures("single_thread")


def _outputs(gen: SCUFGenerator, x: torch.Tensor) -> list[torch.Tensor]:
    """Lighten and darken images plus the reflectance of the darken pass."""
    with torch.no_grad():
        v = illumination_map(x, reverse=True)
        out = gen.step(x * 2 - 1, "darken", v)
        return [gen(x, "lighten"), out.image, gen.step_reflectance(out)]


# ------------------------------------------------------------------------------------------------------------
# our format
def test_save_then_load_gives_identical_outputs(gen_copy, perturb, make_batch, tmp_path):
    perturb(gen_copy)
    gen_copy.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]  # no temp files

    state = load_file(str(tmp_path / "model.safetensors"))
    assert set(state) == set(gen_copy.trainable_named_parameters())  # only the trained weights
    assert not any(k.startswith(("unet.", "prompt_encoder.", "text_encoder.")) for k in state)
    assert sum(t.numel() for t in state.values()) < 0.2 * sum(p.numel() for p in gen_copy.parameters())
    assert json.loads((tmp_path / "config.json").read_text())["base"] == "tiny-random"

    loaded = SCUFGenerator.from_pretrained(tmp_path, inference_only=True)
    x = make_batch(batch=2)
    for a, b in zip(_outputs(gen_copy, x), _outputs(loaded, x)):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert loaded.unet_init is None

    # a config that does not match the weights is refused with a clear message
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["vae_lora_rank"] = 8
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="does not fit this SCUF architecture"):
        SCUFGenerator.from_pretrained(tmp_path, inference_only=True)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        SCUFGenerator.from_pretrained(tmp_path)


# ------------------------------------------------------------------------------------------------------------
# the official format, written the way the official training script does it
class _Pair(nn.Module):  # official VAE_encode / VAE_decode: attributes `vae` (a2b) and `vae_b2a`
    def __init__(self, vae: nn.Module, vae_b2a: nn.Module) -> None:
        super().__init__()
        self.vae, self.vae_b2a = vae, vae_b2a


class _Ref(_Pair):  # official REF_vae: plus a whole third VAE `vae_ref`
    def __init__(self, vae: nn.Module, vae_b2a: nn.Module, vae_ref: nn.Module) -> None:
        super().__init__(vae, vae_b2a)
        self.vae_ref = vae_ref


class _Proj(nn.Module):  # official ProjModel: proj (Linear) + norm (LayerNorm)
    def __init__(self, in_dim: int, tokens: int, cross: int) -> None:
        super().__init__()
        self.proj, self.norm = nn.Linear(in_dim, tokens * cross), nn.LayerNorm(cross)


class _CA(nn.Module):  # official CAAttnProcessor weights
    def __init__(self, hidden: int, cross: int, tokens: int) -> None:
        super().__init__()
        self.to_q_ca = nn.Linear(tokens, hidden, bias=False)
        self.to_k_ca = nn.Linear(cross, hidden, bias=False)
        self.to_v_ca = nn.Linear(cross, hidden, bias=False)


def _official_vae() -> nn.Module:
    """AutoencoderKL + decoder.skip_conv_i attributes + diffusers add_adapter(..., "vae_skip")."""
    vae = tiny_vae(0)
    for i, (c_in, c_out) in enumerate(skip_channel_pairs(vae.config.block_out_channels), start=1):
        conv = nn.Conv2d(c_in, c_out, 1, bias=False)
        nn.init.constant_(conv.weight, 1e-5)
        setattr(vae.decoder, f"skip_conv_{i}", conv)
    vae.add_adapter(LoraConfig(r=4, init_lora_weights="gaussian", target_modules=list(VAE_LORA_TARGETS)),
                    adapter_name="vae_skip")
    return vae


def _official_adapter(tokens: int = 4) -> nn.ModuleList:
    """ModuleList over unet.attn_processors order: weights on attn2, empty modules on attn1."""
    unet = tiny_unet(0)
    channels = list(unet.config.block_out_channels)
    mods = []
    for name in unet.attn_processors:
        if name.endswith("attn1.processor"):
            mods.append(nn.Module())
            continue
        block = name.split(".")
        hidden = (channels[-1] if block[0] == "mid_block" else
                  channels[int(block[1])] if block[0] == "down_blocks" else channels[::-1][int(block[1])])
        mods.append(_CA(hidden, unet.config.cross_attention_dim, tokens))
    return nn.ModuleList(mods)


def _randomise(module: nn.Module, seed: int, only_lora: bool = False) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if not only_lora or "lora_" in name or "skip_conv" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)


def _save(sd: dict, path) -> str:
    torch.save(sd, path)
    return str(path)


def test_official_layout_imports_every_key(tmp_path):
    vae, vae_b2a, vae_ref = _official_vae(), _official_vae(), _official_vae()
    for i, m in enumerate((vae, vae_b2a, vae_ref)):
        _randomise(m, 10 + i, only_lora=True)
    proj, adapter = _Proj(16, 4, 32), _official_adapter()
    _randomise(proj, 20)
    _randomise(adapter, 21)
    pair = _Pair(vae, vae_b2a)
    sd = {
        "rank_vae": 4,
        "vae_lora_target_modules": list(VAE_LORA_TARGETS),
        "sd_vae_enc": pair.state_dict(),
        "sd_vae_dec": pair.state_dict(),
        "sd_vae_ref": _Ref(vae, vae_b2a, vae_ref).state_dict(),
        "image_proj": proj.state_dict(),
        "ca_adapter": adapter.state_dict(),
    }
    path = _save(sd, tmp_path / "model_1001.pkl")
    gen, report = import_official(path, base="tiny-random", inference_only=True)

    assert report.ok and not report.unmatched and not report.missing and not report.conflicts
    n_ref_enc = sum(k.startswith(("vae_ref.encoder.", "vae_ref.quant_conv.")) for k in sd["sd_vae_ref"])
    assert n_ref_enc > 0 and sum(k.startswith("sd_vae_ref/vae_ref.encoder.") for k in report.ignored) > 0
    n_keys = sum(len(sd[k]) for k in ("sd_vae_enc", "sd_vae_dec", "sd_vae_ref", "image_proj", "ca_adapter")) + 2
    assert len(report.loaded) + len(report.duplicates) + len(report.ignored) == n_keys  # every key accounted for
    assert report.differs_from_base == []  # frozen VAE weights are the tiny base's own

    cfg = gen.config
    assert (cfg.adapter, cfg.adapter_variant, cfg.vae_lora_rank, cfg.num_image_tokens) == ("ca", "official", 4, 4)
    vae_sd, b2a_sd, ref_sd = vae.state_dict(), vae_b2a.state_dict(), vae_ref.state_dict()
    torch.testing.assert_close(gen.vae_l.state_dict()["decoder.skip_conv_2.lora_B.vae_skip.weight"],
                               vae_sd["decoder.skip_conv_2.lora_B.vae_skip.weight"])
    torch.testing.assert_close(gen.vae_d.state_dict()["encoder.conv_in.lora_A.vae_skip.weight"],
                               b2a_sd["encoder.conv_in.lora_A.vae_skip.weight"])
    torch.testing.assert_close(gen.reflect.state_dict()["decoder.conv_out.lora_A.vae_skip.weight"],
                               ref_sd["decoder.conv_out.lora_A.vae_skip.weight"])
    torch.testing.assert_close(gen.projection.proj.weight, proj.proj.weight)
    i = next(i for i, m in enumerate(adapter) if isinstance(m, _CA))
    torch.testing.assert_close(gen.adapter[i].to_q_ca.weight, adapter[i].to_q_ca.weight)

    # a frozen weight unlike the base model's is loaded and reported; a stray key or conflicting copy is refused
    sd["sd_vae_enc"]["vae.encoder.conv_in.base_layer.bias"] = sd["sd_vae_enc"]["vae.encoder.conv_in.base_layer.bias"] + 1
    sd["sd_vae_dec"] = copy.deepcopy(sd["sd_vae_enc"])
    sd["sd_vae_ref"]["vae.encoder.conv_in.base_layer.bias"] = sd["sd_vae_enc"]["vae.encoder.conv_in.base_layer.bias"]
    _, report = import_official(_save(sd, tmp_path / "b.pkl"), base="tiny-random", inference_only=True)
    assert report.ok and report.differs_from_base == ["vae_l.encoder.conv_in.base_layer.bias"]
    sd["optimizer"] = {"lr": torch.tensor(1e-5)}
    with pytest.raises(ValueError, match="unmatched: optimizer"):
        import_official(_save(sd, tmp_path / "c.pkl"), base="tiny-random", inference_only=True)
    _, report = import_official(tmp_path / "c.pkl", base="tiny-random", inference_only=True, strict=False)
    assert report.unmatched == ["optimizer"]
    del sd["optimizer"]
    sd["sd_vae_dec"]["vae_b2a.decoder.conv_in.lora_B.vae_skip.weight"] += 1
    with pytest.raises(ValueError, match="conflicting"):
        import_official(_save(sd, tmp_path / "d.pkl"), base="tiny-random", inference_only=True)


def test_official_export_of_a_trained_model_reproduces_its_outputs(perturb, make_batch, tmp_path):
    a = SCUFGenerator(SCUFConfig(base="tiny-random", adapter_variant="official", seed=0), inference_only=True)
    perturb(a, seed=3)
    # the official wrappers around A's modules; vae_ref is a whole VAE whose decoder is A's reflectance decoder
    vae_ref = nn.Module()
    vae_ref.encoder = copy.deepcopy(a.vae_l.encoder)
    vae_ref.decoder, vae_ref.quant_conv, vae_ref.post_quant_conv = a.reflect.decoder, a.vae_l.quant_conv, a.reflect.post_quant_conv
    pair = _Pair(a.vae_l, a.vae_d)
    sd = {
        "rank_vae": 4, "vae_lora_target_modules": list(VAE_LORA_TARGETS),
        "sd_vae_enc": pair.state_dict(), "sd_vae_dec": pair.state_dict(),
        "sd_vae_ref": _Ref(a.vae_l, a.vae_d, vae_ref).state_dict(),
        "image_proj": a.projection.state_dict(), "ca_adapter": a.adapter.state_dict(),
    }
    path = _save(sd, tmp_path / "official.pkl")
    b, report = import_official(path, base="tiny-random", inference_only=True)  # seed 0 → B ≠ A before
    assert report.ok
    x = make_batch(batch=1, h=32, w=24)
    for ya, yb in zip(_outputs(a, x), _outputs(b, x)):
        torch.testing.assert_close(ya, yb, rtol=0, atol=0)


def test_official_loader_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        import_official(tmp_path / "none.pkl", base="tiny-random")
    evil = _save({"rank_vae": 4, "when": datetime.date(2025, 1, 1)}, tmp_path / "evil.pkl")
    with pytest.raises(ValueError, match="weights_only=True"):
        import_official(evil, base="tiny-random")
    partial = _save({"rank_vae": 4, "sd_vae_enc": {}}, tmp_path / "partial.pkl")
    with pytest.raises(ValueError, match="missing vae_lora_target_modules, image_proj, ca_adapter"):
        import_official(partial, base="tiny-random")
    (tmp_path / "text.pkl").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="not a readable torch checkpoint|refused"):
        import_official(tmp_path / "text.pkl", base="tiny-random")


# ------------------------------------------------------------------------------------------------------------
# missing base model
def test_missing_base_model_raises_one_clear_error(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(MissingWeightsError) as err:
        SCUFGenerator(SCUFConfig())  # stabilityai/sd-turbo + openai CLIP, nothing cached
    msg = str(err.value)
    assert isinstance(err.value, FileNotFoundError)
    assert "missing unet, vae, text_encoder, tokenizer, scheduler" in msg
    assert "hf download stabilityai/sd-turbo" in msg and "--base" in msg
    assert "hf download openai/clip-vit-base-patch32" in msg

    # a local folder with only some components: only the others are named
    folder = tmp_path / "sd-turbo"
    (folder / "unet").mkdir(parents=True)
    (folder / "unet" / "config.json").write_text("{}")
    with pytest.raises(MissingWeightsError, match=r"missing vae, text_encoder, tokenizer, scheduler \(looked in the folder"):
        SCUFGenerator(SCUFConfig(base=str(folder), adapter="none"))
    with pytest.raises(MissingWeightsError, match="which is not a folder"):
        SCUFGenerator(SCUFConfig(base=str(tmp_path / "nope"), adapter="none"))
