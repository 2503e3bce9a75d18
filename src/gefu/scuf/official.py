"""Import of the authors' released SCUF checkpoint (DESIGN §2.7a) into a `SCUFGenerator`.

The official format — a `torch.save`d dict: `rank_vae`, `vae_lora_target_modules`, `sd_vae_enc`/`sd_vae_dec`
(state dicts of wrappers holding both VAEs: `vae.<AutoencoderKL key>` = lighten, `vae_b2a.<key>` = darken; full
weights with peft names and `decoder.skip_conv_i`; enc and dec hold the same tensors), `sd_vae_ref` (`vae.`,
`vae_b2a.` again and `vae_ref.`: a whole VAE of which the official forward uses only `post_quant_conv` and
`decoder`), `image_proj` and `ca_adapter`. `import_official` accounts for every key and returns an `ImportReport`.
"""

from __future__ import annotations

import logging
import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .config import SCUFConfig
from .generator import SCUFGenerator
from .pretrained import BaseComponents
from .vae import SKIP_INIT

__all__ = ["import_official", "ImportReport", "load_official"]

log = logging.getLogger(__name__)

_OFFICIAL_REQUIRED = ("rank_vae", "vae_lora_target_modules", "sd_vae_enc", "image_proj", "ca_adapter")
_OFFICIAL_KNOWN = (*_OFFICIAL_REQUIRED, "sd_vae_dec", "sd_vae_ref")


@dataclass
class ImportReport:
    """What became of every key of an official checkpoint."""

    loaded: list[str] = field(default_factory=list)  # copied into the generator
    duplicates: list[str] = field(default_factory=list)  # repeated copies (enc/dec/ref dicts), checked equal
    ignored: dict[str, str] = field(default_factory=dict)  # key → why it is not needed
    unmatched: list[str] = field(default_factory=list)  # keys with no place in the generator
    missing: list[str] = field(default_factory=list)  # generator weights the checkpoint does not provide
    conflicts: list[str] = field(default_factory=list)  # duplicates whose tensors differ from the first copy
    differs_from_base: list[str] = field(default_factory=list)  # frozen base weights unlike the base model's

    @property
    def ok(self) -> bool:
        """Every key accounted for, nothing missing, no conflicting duplicates."""
        return not (self.unmatched or self.missing or self.conflicts)

    def summary(self) -> str:
        text = (
            f"{len(self.loaded)} tensors loaded, {len(self.duplicates)} duplicates checked, "
            f"{len(self.ignored)} ignored, {len(self.unmatched)} unmatched, {len(self.missing)} missing, "
            f"{len(self.conflicts)} conflicting"
        )
        if self.differs_from_base:
            text += f"; {len(self.differs_from_base)} frozen VAE tensors differ from the base model's"
        return text


def load_official(path: str | os.PathLike) -> dict[str, Any]:
    """Read the official .pkl safely (`torch.load(weights_only=True)`); clear errors for missing/unsafe files."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"{path}: refused to load: the file contains Python objects beyond tensors, numbers, strings and "
            f"containers, which torch.load(weights_only=True) does not execute ({err}). The official SCUF "
            "checkpoint holds only those types; if you trust this file, re-save its tensors with "
            "torch.save(...) from a trusted environment."
        ) from None
    except (RuntimeError, EOFError, OSError) as err:
        raise ValueError(f"{path}: not a readable torch checkpoint ({err})") from None
    if not isinstance(sd, dict):
        raise ValueError(f"{path}: expected the official SCUF checkpoint dict, got {type(sd).__name__}")
    absent = [k for k in _OFFICIAL_REQUIRED if k not in sd]
    if absent:
        raise ValueError(
            f"{path}: not an official SCUF checkpoint: missing {', '.join(absent)} "
            f"(found keys: {', '.join(map(str, sd))})"
        )
    return sd


def _skip_bases_trained(sd: dict[str, Any]) -> bool:
    """Whether the skip convs' base 1×1 weights moved from their constant init. The released training never moves
    them (peft freezes a LoRA target's base weight), so its checkpoints import with `train_skip_conv_base=False`;
    a checkpoint whose bases did train (e.g. exported from gefu's default training) keeps them trainable, so that
    `save_pretrained` keeps them too."""
    bases = [v for entry in ("sd_vae_enc", "sd_vae_dec", "sd_vae_ref") for k, v in sd.get(entry, {}).items()
             if ".skip_conv_" in k and k.endswith(("base_layer.weight", "skip_conv_1.weight", "skip_conv_2.weight",
                                                   "skip_conv_3.weight", "skip_conv_4.weight"))]
    return any(not torch.all(b == torch.tensor(SKIP_INIT, dtype=b.dtype)) for b in bases)


def _official_config(sd: dict[str, Any], base: str | None, clip: str | None) -> SCUFConfig:
    adapter_sd = sd["ca_adapter"]
    q = next((v for k, v in adapter_sd.items() if k.endswith("to_q_ca.weight")), None)
    if q is None:
        raise ValueError("the official checkpoint's ca_adapter holds no to_q_ca weights")
    has_ref = any(k.startswith("vae_ref.") for k in sd.get("sd_vae_ref", {}))
    kwargs: dict[str, Any] = dict(
        vae_lora_rank=int(sd["rank_vae"]),
        vae_lora_targets=[str(t) for t in sd["vae_lora_target_modules"]],
        adapter="ca",
        adapter_variant="official",
        train_skip_conv_base=_skip_bases_trained(sd),
        num_image_tokens=int(q.shape[1]),  # to_q_ca: Linear(num_tokens → hidden)
        prompt_encoder_mode="official",
        reflectance="decoder" if has_ref else "none",
    )
    if base is not None:
        kwargs["base"] = base
    if clip is not None:
        kwargs["clip"] = clip
    return SCUFConfig(**kwargs)


class _Router:
    """Routes the official checkpoint's tensors to the generator's modules, recording every key in a report."""

    def __init__(self, gen: SCUFGenerator, report: ImportReport) -> None:
        self.targets = {"vae_l": gen.vae_l, "vae_d": gen.vae_d, "projection": gen.projection, "adapter": gen.adapter}
        if gen.reflect is not None:
            self.targets["reflect"] = gen.reflect
        self.wanted = {name: m.state_dict() for name, m in self.targets.items() if m is not None}  # base tensors
        self.incoming: dict[str, dict[str, torch.Tensor]] = {name: {} for name in self.wanted}
        self.first_source: dict[tuple[str, str], str] = {}
        self.report = report

    def put(self, target: str, key: str, value: torch.Tensor, source: str) -> None:
        report = self.report
        if target not in self.wanted or key not in self.wanted[target]:
            report.unmatched.append(source)
            return
        slot = (target, key)
        if slot in self.first_source:  # a duplicate copy of a tensor already seen
            report.duplicates.append(source)
            if not torch.equal(self.incoming[target][key], value):
                report.conflicts.append(f"{source} (differs from {self.first_source[slot]})")
            return
        self.first_source[slot] = source
        self.incoming[target][key] = value
        report.loaded.append(source)

    def route_vaes(self, sd: dict[str, Any]) -> None:
        """`sd_vae_enc`/`sd_vae_dec`/`sd_vae_ref` → vae_l (`vae.`), vae_d (`vae_b2a.`), reflect (`vae_ref.`)."""
        prefixes = {"vae.": "vae_l", "vae_b2a.": "vae_d"}
        for entry in ("sd_vae_enc", "sd_vae_dec", "sd_vae_ref"):
            for key, value in sd.get(entry, {}).items():
                source = f"{entry}/{key}"
                prefix = next((p for p in prefixes if key.startswith(p)), None)
                if prefix is not None:
                    self.put(prefixes[prefix], key[len(prefix):], value, source)
                elif entry == "sd_vae_ref" and key.startswith("vae_ref."):
                    sub = key[len("vae_ref."):]
                    if sub.startswith(("encoder.", "quant_conv.")):
                        self.report.ignored[source] = "the official forward never runs the reflectance VAE's encoder"
                    else:
                        self.put("reflect", sub, value, source)
                else:
                    self.report.unmatched.append(source)

    def load(self, gen: SCUFGenerator, path: str | os.PathLike, base: str) -> None:
        """Copy the routed tensors in; record missing weights and frozen weights unlike the base model's."""
        trainable = set(gen.trainable_named_parameters())
        for target, wanted in self.wanted.items():
            incoming = self.incoming[target]
            self.report.missing += [f"{target}.{k}" for k in sorted(set(wanted) - set(incoming))]
            for key, value in incoming.items():
                if f"{target}.{key}" not in trainable and not torch.equal(value.to(wanted[key].dtype), wanted[key]):
                    self.report.differs_from_base.append(f"{target}.{key}")
            try:
                self.targets[target].load_state_dict(incoming, strict=False)
            except RuntimeError as err:  # shape mismatches: another base model or rank
                raise ValueError(f"{path}: the checkpoint does not fit base {base!r}: {err}") from None


def _check_report(report: ImportReport, path: str | os.PathLike, base: str) -> None:
    if not report.ok:
        def head(keys: list[str]) -> str:
            return ", ".join(keys[:8]) + (f" … ({len(keys)} in all)" if len(keys) > 8 else "")

        problems = [f"{what}: {head(keys)}" for what, keys in
                    (("unmatched", report.unmatched), ("missing", report.missing), ("conflicting", report.conflicts))
                    if keys]
        raise ValueError(f"{path}: the checkpoint does not fit (base {base!r}): " + "; ".join(problems))


def import_official(
    path: str | os.PathLike,
    *,
    base: str | None = None,
    clip: str | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    allow_download: bool = False,
    inference_only: bool = False,
    components: BaseComponents | None = None,
    strict: bool = True,
) -> tuple[SCUFGenerator, ImportReport]:
    """Build a generator (adapter "ca", variant "official") from the authors' released checkpoint.

    Every key is accounted for in the returned `ImportReport`. The VAE entries hold FULL weights; all of them
    are loaded (the frozen ones normally equal the base model's — those that differ are listed in
    `differs_from_base`). `vae_ref.encoder`/`vae_ref.quant_conv` are ignored: the official forward never runs
    the reflectance VAE's encoder. With `strict` (default) an unmatched key, a missing weight or conflicting
    duplicates raise ValueError.
    """
    sd = load_official(path)
    config = _official_config(sd, base, clip)
    gen = SCUFGenerator(config, components, allow_download=allow_download, inference_only=inference_only)
    report = ImportReport()
    router = _Router(gen, report)
    router.route_vaes(sd)
    if gen.projection is not None:
        for key, value in sd["image_proj"].items():
            router.put("projection", key, value, f"image_proj/{key}")
    for key, value in sd["ca_adapter"].items():
        router.put("adapter", key, value, f"ca_adapter/{key}")
    for key in ("rank_vae", "vae_lora_target_modules"):
        report.ignored[key] = "used to build the config"
    report.unmatched += [key for key in sd if key not in _OFFICIAL_KNOWN]
    router.load(gen, path, config.base)

    if report.differs_from_base:
        log.warning(
            "%d frozen VAE tensors of %s differ from the base model %r (loaded from the checkpoint; "
            "save_pretrained would not keep them)", len(report.differs_from_base), path, config.base,
        )
    log.info("imported official SCUF checkpoint %s: %s", path, report.summary())
    if strict:
        _check_report(report, path, config.base)
    if device is not None or dtype is not None:
        gen.to(device=device, dtype=dtype)
    return gen, report
