"""Training presets: the paper, the released code (``official``), and the ablations of Tables 5 and 6.

``paper`` is also what a bare ``TrainConfig()`` gives (gefu's defaults); ``official`` changes exactly the fields
listed by ``preset_differences("official")``: its loss weights, its update order, seed 42, the released
processor and frozen skip-conv base weights (B1 of issue 10), the official caption rewrite, the DecomNet teacher
(never the classic fallback) and every ``OfficialQuirks`` switch. The ablation presets start from ``paper`` and
change only the component of their row.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any

from .losses import LOSS_PRESETS
from .train_config import OfficialQuirks, TrainConfig

__all__ = ["ABLATIONS", "PRESETS", "make_preset", "preset_differences"]

#: Table 5 of the paper: what each ablation row switches on (rows 1-8), and Table 6.
ABLATIONS: dict[str, tuple[str, dict[str, Any], dict[str, Any], bool]] = {
    # name: (description, model changes, loss changes, caption_in_prompt)
    "ablation-1": ("baseline CycleGAN-Turbo (no image prompt, no CC, no RC)",
                   {"adapter": "none", "reflectance": "none"}, {"caption": 0.0, "reflectance": 0.0}, False),
    "ablation-2": ("+ illumination image prompt (tokens concatenated)",
                   {"adapter": "concat", "reflectance": "none"}, {"caption": 0.0, "reflectance": 0.0}, False),
    "ablation-3": ("+ caption consistency", {"adapter": "concat", "reflectance": "none"}, {"reflectance": 0.0},
                   False),
    "ablation-4": ("+ reflectance consistency, decoder after the encoder",
                   {"adapter": "concat", "reflectance": "encoder"}, {}, False),
    "ablation-5": ("+ reflectance consistency, decoder after the UNet", {"adapter": "concat", "reflectance": "decoder"},
                   {}, False),
    "ablation-6": ("IP-Adapter instead of concatenation", {"adapter": "ip", "reflectance": "decoder"}, {}, False),
    "ablation-7": ("cycle-attention adapter = full SCUF", {"adapter": "ca", "reflectance": "decoder"}, {}, False),
    "ablation-8": ("full SCUF without caption consistency", {"adapter": "ca", "reflectance": "decoder"},
                   {"caption": 0.0}, False),
    "table6": ("captions appended to the text prompt instead of caption consistency",
               {"adapter": "ca", "reflectance": "decoder"}, {"caption": 0.0}, True),
}

PRESETS: dict[str, str] = {
    "paper": "paper Eq. 7-8 (λ_idt 0.5 on all identity terms, λ_GAN 1, L1 only), one joint update per step",
    "official": "the released training code, quirks included: λ_gan 0.5, λ_idt 1, cycle LPIPS-vgg 10, identity "
    "LPIPS 1, 1−SSIM on the reflectance, six sequential updates per step, seed 42",
    **{name: f"Table {'6' if name == 'table6' else '5 row ' + name[-1]}: {desc} (paper weights)"
       for name, (desc, *_rest) in ABLATIONS.items()},
}


def _official() -> TrainConfig:
    cfg = TrainConfig(loss=dataclasses.replace(LOSS_PRESETS["official"]), update="sequential", preset="official",
                      seed=42, reflectance_teacher="decomnet", quirks=OfficialQuirks.official())
    cfg.model = cfg.model.replace(adapter_variant="official", train_skip_conv_base=False)
    cfg.data = dataclasses.replace(cfg.data, seed=42, caption_rewrite="official")
    return cfg


def make_preset(name: str, **changes: Any) -> TrainConfig:
    """The ``TrainConfig`` of a preset (``PRESETS`` lists them), with optional top-level field changes.

    Ablation presets start from ``paper`` and change only the component of their row; ``ablation-1`` keeps the
    UNet frozen like the other rows (set ``model.unet_lora`` for CycleGAN-Turbo's own UNet LoRA).
    """
    if name not in PRESETS:
        close = difflib.get_close_matches(name, list(PRESETS), n=3)
        hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"unknown training preset {name!r}.{hint} Available: {', '.join(PRESETS)}.")
    if name == "official":
        cfg = _official()
    else:
        cfg = TrainConfig(loss=dataclasses.replace(LOSS_PRESETS["paper"]), update="joint", preset=name)
        if name in ABLATIONS:
            _, model_changes, loss_changes, in_prompt = ABLATIONS[name]
            cfg.model = cfg.model.replace(**model_changes)
            cfg.loss = dataclasses.replace(cfg.loss, **loss_changes)
            cfg.caption_in_prompt = in_prompt
    return cfg.replace(**changes) if changes else cfg


def preset_differences(name: str, against: str | None = None) -> dict[str, tuple[Any, Any]]:
    """Dotted field → (value in ``against``, value in ``name``) for every field where two presets differ.

    ``against=None`` compares with gefu's defaults (``TrainConfig()``). The ``preset`` label itself is skipped.
    """
    def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
        return out

    a = flat((TrainConfig() if against is None else make_preset(against)).to_dict())
    b = flat(make_preset(name).to_dict())
    return {k: (a[k], b[k]) for k in a if k != "preset" and a[k] != b[k]}
