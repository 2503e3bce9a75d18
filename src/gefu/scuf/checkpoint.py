"""SCUF's own checkpoint format: a folder written by `SCUFGenerator.save_pretrained`.

- `config.json`: the `SCUFConfig` (base model, ranks, target modules, adapter, prompts, ...);
- `model.safetensors`: ONLY the trained weights (`SCUFGenerator.trainable_state_dict()`: VAE LoRA and skip convs
  of both directions, reflectance-decoder LoRA, image projection, adapter, UNet LoRA if any). The frozen SD-Turbo
  and CLIP weights come from the base model at load time.

Both files are written atomically (temporary file in the same folder, then `os.replace`). This module only reads
and writes the files; `SCUFGenerator.from_pretrained` builds the model (and `gefu.scuf.official` imports the
authors' released checkpoint).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..fileio import atomic_path
from .config import SCUFConfig

__all__ = ["WEIGHTS_NAME", "write_pretrained", "read_pretrained"]

log = logging.getLogger(__name__)

WEIGHTS_NAME = "model.safetensors"
_FORMAT = {"format": "gefu-scuf", "format_version": "1"}


def write_pretrained(directory: str | os.PathLike, config: SCUFConfig, state: dict[str, torch.Tensor]) -> Path:
    """Write `<directory>/config.json` and `<directory>/model.safetensors` (the given tensors), atomically."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    with atomic_path(directory / WEIGHTS_NAME) as tmp:
        save_file(state, tmp, metadata=_FORMAT)
    config.save(directory)
    log.info("saved SCUF checkpoint (%d tensors) to %s", len(state), directory)
    return directory


def read_pretrained(directory: str | os.PathLike) -> tuple[SCUFConfig, dict[str, torch.Tensor]]:
    """(config, trained weights) of a `save_pretrained` folder; FileNotFoundError / ValueError naming the file."""
    directory = Path(directory)
    weights = directory / WEIGHTS_NAME
    if not weights.is_file():
        raise FileNotFoundError(f"{directory}: no {WEIGHTS_NAME} here (expected a folder written by save_pretrained)")
    config = SCUFConfig.load(directory)
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError) as err:
        raise ValueError(f"{weights}: not a readable safetensors file ({err}); save the model again") from None
    return config, state
