"""Loading the frozen base components of SCUF: SD-Turbo (UNet, VAE, text encoder, tokenizer, scheduler) and
the CLIP ViT-B/32 image tower, from a local folder or the Hugging Face cache — never downloading unless the
caller passes `allow_download=True`.

When something is missing, ONE `MissingWeightsError` (a `FileNotFoundError`) names every missing component
and says how to get it. `base="tiny-random"` builds small seeded random components (`gefu.scuf.tiny`) instead,
with a byte-level stand-in tokenizer, so tests and CPU demos need no weights at all.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
from transformers import CLIPTextModel, CLIPVisionModelWithProjection

__all__ = [
    "TINY_RANDOM",
    "SD_COMPONENTS",
    "MissingWeightsError",
    "BaseComponents",
    "ByteTokenizer",
    "load_base",
    "load_clip_vision",
    "load_components",
    "hub_offline",
]

log = logging.getLogger(__name__)

TINY_RANDOM = "tiny-random"
#: sub-folders of a diffusers SD-Turbo repository and the file that proves each is there
SD_COMPONENTS: dict[str, str] = {
    "unet": "unet/config.json",
    "vae": "vae/config.json",
    "text_encoder": "text_encoder/config.json",
    "tokenizer": "tokenizer/tokenizer_config.json",
    "scheduler": "scheduler/scheduler_config.json",
}
_CLIP_FILE = "config.json"


class MissingWeightsError(FileNotFoundError):
    """Pretrained weights are not available locally; the message says what is missing and how to get it."""


@dataclass
class BaseComponents:
    """The frozen pretrained parts a SCUF generator is built from (fp32, CPU, eval mode)."""

    unet: UNet2DConditionModel
    vae: AutoencoderKL
    text_encoder: CLIPTextModel
    tokenizer: Any  # a transformers CLIP tokenizer, or ByteTokenizer for tiny-random
    scheduler: DDPMScheduler
    vision: CLIPVisionModelWithProjection | None = None  # CLIP image tower (None when no image prompt is used)


class ByteTokenizer:
    """Deterministic stand-in tokenizer for the tiny random text encoder (no vocabulary download).

    Maps each UTF-8 byte of the text to an id in [3, vocab_size), wraps it in bos (0) / eos (2) and pads with
    pad (1) to `model_max_length` — the ids the tiny CLIP text config declares. It only needs to be stable,
    not meaningful: the tiny text encoder is random anyway.
    """

    bos_token_id, pad_token_id, eos_token_id = 0, 1, 2

    def __init__(self, vocab_size: int = 1000, model_max_length: int = 77) -> None:
        self.vocab_size = vocab_size
        self.model_max_length = model_max_length

    def ids(self, text: str) -> list[int]:
        body = [3 + b % (self.vocab_size - 3) for b in text.encode("utf-8")][: self.model_max_length - 2]
        ids = [self.bos_token_id, *body, self.eos_token_id]
        return ids + [self.pad_token_id] * (self.model_max_length - len(ids))

    def __call__(self, texts: str | Sequence[str], **_: Any) -> "_Encoding":
        texts = [texts] if isinstance(texts, str) else list(texts)
        return _Encoding(torch.tensor([self.ids(t) for t in texts], dtype=torch.long))


@dataclass
class _Encoding:
    input_ids: torch.Tensor  # (B, model_max_length) int64


@contextlib.contextmanager
def hub_offline(active: bool = True) -> Iterator[None]:
    """Within the block, the Hugging Face hub client makes no network request at all (its offline mode, switched
    on in this process and restored afterwards). ``local_files_only=True`` alone still lets the client look the
    repository up on the network before reading its cache."""
    if not active:
        yield
        return
    from huggingface_hub import constants

    before_flag, before_env = constants.HF_HUB_OFFLINE, os.environ.get("HF_HUB_OFFLINE")
    constants.HF_HUB_OFFLINE = True
    os.environ["HF_HUB_OFFLINE"] = "1"
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = before_flag
        if before_env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = before_env


# ----------------------------------------------------------------------------------------------------------------
def _looks_like_path(name: str) -> bool:
    return Path(name).expanduser().is_dir() or name.startswith(("/", ".", "~")) or name.count("/") > 1


def _where(name: str) -> str:
    """Human-readable description of where `name` was looked for."""
    folder = Path(name).expanduser()
    if folder.is_dir():
        return f"the folder {folder}"
    if _looks_like_path(name):
        return f"{folder}, which is not a folder"
    from huggingface_hub import constants

    return f"the Hugging Face cache ({constants.HF_HUB_CACHE})"


def _present(name: str, filename: str) -> bool:
    """Whether `filename` of repo/folder `name` is available without any network access."""
    folder = Path(name).expanduser()
    if folder.is_dir():
        return (folder / filename).is_file()
    if _looks_like_path(name):
        return False
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(name, filename)
    except Exception:  # not a valid repo id
        return False
    return isinstance(found, str)


def _missing_message(base_missing: list[str], base: str, clip_missing: bool, clip: str) -> str:
    lines = []
    if base_missing:
        lines.append(
            f"SCUF base model {base!r}: missing {', '.join(base_missing)} (looked in {_where(base)})."
        )
    if clip_missing:
        lines.append(f"CLIP image encoder {clip!r}: missing (looked in {_where(clip)}).")
    how = []
    if base_missing:
        repo = "stabilityai/sd-turbo" if _looks_like_path(base) else base
        how.append(
            f"  hf download {repo}    (or pass --base /path/to/sd-turbo: a folder with "
            "unet/ vae/ text_encoder/ tokenizer/ scheduler/)"
        )
    if clip_missing:
        repo = "openai/clip-vit-base-patch32" if _looks_like_path(clip) else clip
        how.append(f"  hf download {repo}    (or pass a local CLIP ViT-B/32 folder)")
    return (
        "\n".join(lines)
        + "\nGet the weights with:\n"
        + "\n".join(how)
        + "\nor allow downloads (allow_download=True). Offline tests and demos can use base='tiny-random'."
    )


def check_available(base: str, clip: str | None) -> None:
    """Raise one MissingWeightsError naming every missing component (cheap: only config files are checked)."""
    base_missing = [] if base == TINY_RANDOM else [c for c, f in SD_COMPONENTS.items() if not _present(base, f)]
    clip_missing = clip is not None and base != TINY_RANDOM and not _present(clip, _CLIP_FILE)
    if base_missing or clip_missing:
        raise MissingWeightsError(_missing_message(base_missing, base, clip_missing, clip or ""))


# ----------------------------------------------------------------------------------------------------------------
def _tiny_components(seed: int, with_vision: bool) -> BaseComponents:
    from . import tiny

    text_encoder = tiny.tiny_text_encoder(seed)
    return BaseComponents(
        unet=tiny.tiny_unet(seed),
        vae=tiny.tiny_vae(seed),
        text_encoder=text_encoder,
        tokenizer=ByteTokenizer(text_encoder.config.vocab_size, text_encoder.config.max_position_embeddings),
        scheduler=tiny.tiny_scheduler(),
        vision=tiny.tiny_clip_vision(seed) if with_vision else None,
    )


def load_base(base: str, *, allow_download: bool = False, seed: int = 0) -> BaseComponents:
    """Load SD-Turbo's UNet, VAE, text encoder, tokenizer and scheduler (fp32, CPU, eval, frozen).

    base: an HF id (e.g. "stabilityai/sd-turbo", looked up in the HF cache), a local folder with the diffusers
    layout, or "tiny-random" (seeded with `seed`). Raises MissingWeightsError when a part is not available
    offline and `allow_download` is False.
    """
    if base == TINY_RANDOM:
        return _tiny_components(seed, with_vision=False)
    if not allow_download:
        check_available(base, None)
    kw = {"local_files_only": not allow_download}
    src = str(Path(base).expanduser()) if Path(base).expanduser().is_dir() else base
    with hub_offline(not allow_download):
        return _load_base_files(base, src, kw)


def _load_base_files(base: str, src: str, kw: dict[str, Any]) -> BaseComponents:
    from transformers import AutoTokenizer

    try:
        unet = UNet2DConditionModel.from_pretrained(src, subfolder="unet", **kw)
        vae = AutoencoderKL.from_pretrained(src, subfolder="vae", **kw)
        text_encoder = CLIPTextModel.from_pretrained(src, subfolder="text_encoder", **kw)
        tokenizer = AutoTokenizer.from_pretrained(src, subfolder="tokenizer", **kw)
        scheduler = DDPMScheduler.from_pretrained(src, subfolder="scheduler", **kw)
    except (OSError, ValueError) as err:  # config present but weights incomplete, or a broken download
        raise MissingWeightsError(
            f"could not load the SCUF base model {base!r}: {err}\n"
            + _missing_message(["(incomplete files)"], base, False, "")
        ) from None
    for m in (unet, vae, text_encoder):
        m.eval().requires_grad_(False)
    return BaseComponents(unet, vae, text_encoder, tokenizer, scheduler)


def load_clip_vision(clip: str, *, allow_download: bool = False) -> CLIPVisionModelWithProjection:
    """Load a CLIP image tower with its projection (ViT-B/32 for SCUF) from a folder or the HF cache."""
    if not allow_download:
        if not _present(clip, _CLIP_FILE):
            raise MissingWeightsError(_missing_message([], "", True, clip))
    src = str(Path(clip).expanduser()) if Path(clip).expanduser().is_dir() else clip
    try:
        with hub_offline(not allow_download):
            vision = CLIPVisionModelWithProjection.from_pretrained(src, local_files_only=not allow_download)
    except (OSError, ValueError) as err:
        raise MissingWeightsError(
            f"could not load the CLIP image encoder {clip!r}: {err}\n" + _missing_message([], "", True, clip)
        ) from None
    return vision.eval().requires_grad_(False)


def load_components(
    base: str,
    clip: str | None,
    *,
    allow_download: bool = False,
    seed: int = 0,
) -> BaseComponents:
    """Base model + (when `clip` is not None) the CLIP image tower; one error lists everything missing.

    With base="tiny-random" the CLIP tower is the tiny random one too (`clip` only says whether it is needed).
    """
    if base == TINY_RANDOM:
        return _tiny_components(seed, with_vision=clip is not None)
    if not allow_download:
        check_available(base, clip)
    comps = load_base(base, allow_download=allow_download, seed=seed)
    if clip is not None:
        comps.vision = load_clip_vision(clip, allow_download=allow_download)
    log.info("loaded SCUF base %s%s", base, f" and CLIP {clip}" if clip else "")
    return comps
