"""CycleGAN-Turbo's UNet LoRA (an option of SCUF: the official SCUF code trains none, DESIGN §2.1).

Rank-128 LoRA (alpha = rank, gaussian init) on every conv, attention projection, proj_in/out and feed-forward of
the UNet, split into three peft adapters — "encoder" (down blocks + conv_in), "decoder" (up blocks) and "others"
(mid block, conv_out) — as CycleGAN-Turbo's `initialize_unet` does (its rule, reimplemented).
"""

from __future__ import annotations

import warnings

import torch.nn as nn
from peft import LoraConfig

__all__ = ["unet_lora_groups", "add_unet_lora"]

# CycleGAN-Turbo's UNet LoRA targets: every conv, the attention projections, proj_in/out and the feed-forward.
_UNET_LORA_LEAVES = {"to_k", "to_q", "to_v", "proj_in", "proj_out"}
_UNET_LORA_SUFFIXES = ("to_out.0", "ff.net.2", "ff.net.0.proj")


def unet_lora_groups(unet: nn.Module) -> dict[str, list[str]]:
    """CycleGAN-Turbo's UNet LoRA target modules split into "encoder" (down blocks + conv_in), "decoder" (up
    blocks) and "others" (mid block, conv_out): every Linear/Conv2d whose name contains "conv" or ends with an
    attention / feed-forward projection name, norms excluded (their rule, reimplemented)."""
    groups: dict[str, list[str]] = {"encoder": [], "decoder": [], "others": []}
    for name, module in unet.named_modules():
        if not isinstance(module, (nn.Linear, nn.Conv2d)) or "norm" in name or ".processor" in name:
            continue
        leaf = name.rsplit(".", 1)[-1]
        if not ("conv" in leaf or leaf in _UNET_LORA_LEAVES or name.endswith(_UNET_LORA_SUFFIXES)):
            continue
        if name.startswith("down_blocks") or name == "conv_in":
            groups["encoder"].append(name)
        elif name.startswith("up_blocks"):
            groups["decoder"].append(name)
        else:
            groups["others"].append(name)
    return groups


def add_unet_lora(unet: nn.Module, rank: int) -> None:
    """Add the three LoRA adapters (``default_encoder``, ``default_decoder``, ``default_others``) and enable them."""
    groups = unet_lora_groups(unet)
    for group, targets in groups.items():
        lora = LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian", target_modules=targets)
        with warnings.catch_warnings():  # three adapters on disjoint modules are intended
            warnings.filterwarnings("ignore", message="Already found a `peft_config`")
            unet.add_adapter(lora, adapter_name=f"default_{group}")
    unet.set_adapters([f"default_{g}" for g in groups])
