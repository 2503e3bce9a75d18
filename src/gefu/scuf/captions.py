"""BLIP captions for SCUF's caption consistency (paper Sec. 3.2, DESIGN §2.4).

Each training image gets one caption, computed once and stored in a captions file (TSV/CSV/JSONL with
``filepath`` and ``caption``) that ``gefu.scuf.data`` matches back to the images. ``caption_folder`` is
resumable: images already in the output file are skipped, and every batch is appended (and fsynced) as soon as
it is captioned, so an interrupted run loses at most the batch in flight.

The model is ``transformers``' ``BlipForConditionalGeneration`` with its ``BlipProcessor`` (default
``Salesforce/blip-image-captioning-large``), loaded from a local folder or the Hugging Face cache; it is never
downloaded unless the caller allows it. A model and a decode function can also be passed in directly (tests use a
tiny random BLIP and decode token ids without any tokenizer).

Captions of dark images can be rewritten night → day (``gefu.scuf.rewrite``): gefu's whole-word rewrite, or the
released code's substring table (``rewrite="official"``, with ``OFFICIAL_GENERATION``: 32 tokens, greedy).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from transformers.utils.constants import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

from ..fileio import write_atomic
from ..imageio import find_images, load_image
from .caption_files import load_captions
from .pretrained import hub_offline
from .rewrite import CAPTION_REWRITES, NIGHT_TO_DAY, OFFICIAL_NIGHT_TO_DAY, night_to_day, rewrite_caption

__all__ = [
    "DEFAULT_BLIP",
    "NIGHT_TO_DAY",
    "OFFICIAL_NIGHT_TO_DAY",
    "OFFICIAL_GENERATION",
    "CAPTION_REWRITES",
    "night_to_day",
    "rewrite_caption",
    "BlipCaptioner",
    "caption_folder",
]

log = logging.getLogger(__name__)

DEFAULT_BLIP = "Salesforce/blip-image-captioning-large"

#: generation settings of the released code (clip-interrogator's BLIP-large caption: 32 new tokens, greedy);
#: gefu's defaults are BLIP's usual 30 tokens with 3 beams
OFFICIAL_GENERATION = {"max_new_tokens": 32, "num_beams": 1}


class BlipCaptioner:
    """Batched BLIP captioning: ``captioner(images) -> list[str]`` for images (3, H, W) in [0, 1].

    Args:
        model: a loaded ``BlipForConditionalGeneration``; None loads ``name_or_path``.
        processor: its ``BlipProcessor`` (image preprocessing and token decoding); None loads it with the model,
            or, when a model is given, preprocessing is done here (resize to the model's image size, CLIP
            mean/std) and ``decode`` turns token ids into text.
        decode: ``(ids (B, L) LongTensor) -> list[str]``, replacing ``processor.batch_decode``.
        name_or_path: HF id or local folder of the BLIP model.
        local_files_only: never download (default); a missing model raises FileNotFoundError saying how to
            get it.
        device, dtype: where and in what precision to run (default CPU, float32).
        max_new_tokens, num_beams: generation settings (BLIP's usual 30 tokens; 3 beams).
        prompt: optional text prefix for conditional captioning (e.g. "a photography of"); it is stripped
            from the output.
    """

    def __init__(
        self,
        model: torch.nn.Module | None = None,
        processor=None,
        *,
        decode: Callable[[torch.Tensor], list[str]] | None = None,
        name_or_path: str | os.PathLike = DEFAULT_BLIP,
        local_files_only: bool = True,
        device: str | torch.device = "cpu",
        dtype: torch.dtype | None = None,
        max_new_tokens: int = 30,
        num_beams: int = 3,
        prompt: str | None = None,
    ) -> None:
        if model is None:
            model, processor = self._load(str(name_or_path), local_files_only)
        if processor is None and decode is None:
            raise ValueError("give a BlipProcessor or a decode function to turn token ids into text")
        if prompt and processor is None:
            raise ValueError("a text prompt needs a BlipProcessor (to tokenise it)")
        self.model = model.eval().requires_grad_(False).to(device=device, dtype=dtype)
        self.processor = processor
        self._decode = decode
        self.device = torch.device(device)
        self.dtype = dtype or next(model.parameters()).dtype
        self.max_new_tokens = max_new_tokens
        self.num_beams = num_beams
        self.prompt = prompt

    @staticmethod
    def _load(name: str, local_files_only: bool):
        from transformers import BlipForConditionalGeneration, BlipProcessor

        src = str(Path(name).expanduser()) if Path(name).expanduser().is_dir() else name
        try:
            with hub_offline(local_files_only):
                processor = BlipProcessor.from_pretrained(src, local_files_only=local_files_only)
                model = BlipForConditionalGeneration.from_pretrained(src, local_files_only=local_files_only)
        except (OSError, ValueError) as err:
            how = (f"Download it once with `hf download {name}`, pass a local folder with --model, or add "
                   "--allow-download.")
            raise FileNotFoundError(f"BLIP captioning model {name!r} is not available locally ({err.__class__.__name__}). "
                                    + how) from None
        return model, processor

    def _pixels(self, images: Sequence[torch.Tensor]) -> torch.Tensor:
        if self.processor is not None:
            from ..imageio import tensor_to_pil

            pils = [tensor_to_pil(img) for img in images]
            return self.processor(images=pils, return_tensors="pt").pixel_values
        size = int(self.model.config.vision_config.image_size)
        batch = torch.stack([
            F.interpolate(img[None].float(), size=(size, size), mode="bicubic", antialias=True,
                          align_corners=False)[0].clamp(0, 1)
            for img in images
        ])  # (B, 3, S, S)
        mean = torch.tensor(OPENAI_CLIP_MEAN).view(1, 3, 1, 1)  # BLIP normalises like CLIP
        std = torch.tensor(OPENAI_CLIP_STD).view(1, 3, 1, 1)
        return (batch - mean) / std

    @torch.no_grad()
    def __call__(self, images: Sequence[torch.Tensor]) -> list[str]:
        """Captions of images (3, H, W) float in [0, 1] (any sizes)."""
        if not images:
            return []
        pixels = self._pixels(images).to(self.device, self.dtype)
        kwargs = {}
        if self.prompt:
            ids = self.processor(text=[self.prompt] * len(images), return_tensors="pt").input_ids
            kwargs["input_ids"] = ids.to(self.device)
        out = self.model.generate(pixel_values=pixels, max_new_tokens=self.max_new_tokens,
                                  num_beams=self.num_beams, **kwargs)
        texts = self._decode(out) if self._decode is not None else self.processor.batch_decode(
            out, skip_special_tokens=True)
        cleaned = []
        for text in texts:
            text = " ".join(str(text).split())  # one line, single spaces
            if self.prompt and text.lower().startswith(self.prompt.lower()):
                text = text[len(self.prompt):].strip()
            cleaned.append(text)
        return cleaned


# ----------------------------------------------------------------------------------------------------------------
# Captioning a folder into a file, resumably
# ----------------------------------------------------------------------------------------------------------------


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in (".tsv", ".csv", ".jsonl"):
        raise ValueError(f"{path}: the captions file must end in .tsv, .csv or .jsonl")
    return suffix[1:]


def _rows_text(rows: Sequence[tuple[str, str]], fmt: str, header: bool) -> str:
    if fmt == "jsonl":
        return "".join(json.dumps({"filepath": p, "caption": c}, ensure_ascii=False) + "\n" for p, c in rows)
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter="\t" if fmt == "tsv" else ",", lineterminator="\n")
    if header:
        writer.writerow(["filepath", "caption"])
    writer.writerows(rows)
    return buf.getvalue()


def _repair_tail(path: Path) -> None:
    """Drop a partly written last line (left by a run killed mid-write)."""
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        with open(path, "r+b") as f:
            f.truncate(cut)
        log.warning("%s: removed an incomplete last line", path)


def _append(path: Path, text: str) -> None:
    with open(path, "a", encoding="utf-8", newline="") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def caption_folder(
    folder: str | os.PathLike,
    output: str | os.PathLike,
    captioner: Callable[[Sequence[torch.Tensor]], list[str]],
    *,
    batch_size: int = 8,
    rewrite: str = "none",
    progress: Callable[[int, int], None] | None = None,
) -> dict[str, int]:
    """Caption every image under ``folder`` into ``output`` (``filepath`` = path relative to ``folder``).

    Images already listed in ``output`` are skipped (resume); each batch is appended as it is done.
    ``rewrite`` ("none", "words" or "official", see ``gefu.scuf.rewrite``) is applied before writing. ``progress(done, total)`` is called after each batch.
    Returns {"images": found, "skipped": already captioned, "captioned": new}.
    """
    folder, output = Path(folder), Path(output)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    if rewrite not in CAPTION_REWRITES:
        raise ValueError(f"rewrite must be one of {', '.join(CAPTION_REWRITES)}; got {rewrite!r}")
    fmt = _format(output)
    images = find_images([folder])
    if not images:
        raise ValueError(f"{folder} contains no images to caption")
    done: set[str] = set()
    if output.is_file() and output.stat().st_size > 0:
        _repair_tail(output)
        done = {Path(p).as_posix() for p, _ in load_captions(output)}
    else:
        write_atomic(output, _rows_text([], fmt, header=True))
    todo = [(p, rel) for p, rel in images if rel.as_posix() not in done]
    total = len(todo)
    for start in range(0, total, batch_size):
        chunk = todo[start:start + batch_size]
        texts = captioner([load_image(p) for p, _ in chunk])
        if len(texts) != len(chunk):
            raise RuntimeError(f"the captioner returned {len(texts)} captions for {len(chunk)} images")
        texts = [rewrite_caption(t, rewrite) for t in texts]
        _append(output, _rows_text([(rel.as_posix(), t) for (_, rel), t in zip(chunk, texts)], fmt, header=False))
        if progress is not None:
            progress(min(start + batch_size, total), total)
    log.info("captioned %d images into %s (%d already there)", total, output, len(images) - total)
    return {"images": len(images), "skipped": len(images) - total, "captioned": total}
