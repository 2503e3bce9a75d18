"""SCUF training, the public entry point: `train(config, output_dir)` and everything a caller needs.

The pieces live along their seams: `gefu.scuf.train_config` (the config and its sections, incl. the released code's
quirks), `gefu.scuf.presets` (paper, official, Table 5/6 ablations), `gefu.scuf.train_step` (the loss terms of a
step), `gefu.scuf.trainer` (the resumable loop) and `gefu.scuf.train_io` (run folder, checkpoints, logs).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from .presets import ABLATIONS, PRESETS, make_preset, preset_differences
from .train_config import OfficialQuirks, OptimConfig, TrainConfig, merge_resumed, set_by_path
from .train_io import DamagedCheckpoint, find_checkpoint
from .trainer import Trainer, TrainerParts, TrainingDiverged

__all__ = [
    "ABLATIONS",
    "PRESETS",
    "make_preset",
    "preset_differences",
    "OfficialQuirks",
    "OptimConfig",
    "TrainConfig",
    "merge_resumed",
    "set_by_path",
    "DamagedCheckpoint",
    "find_checkpoint",
    "Trainer",
    "TrainerParts",
    "TrainingDiverged",
    "train",
]


def train(
    config: TrainConfig | None,
    output_dir: str | os.PathLike,
    *,
    resume: str | os.PathLike | None = None,
    overwrite: bool = False,
    cpu: bool = False,
    progress: Callable[[int, int, dict[str, float]], None] | None = None,
    parts: TrainerParts | None = None,
) -> Path:
    """Build a ``Trainer`` and run it → folder of the final model (``create_enhancer("scuf", checkpoint=...)``)."""
    trainer = Trainer(config, output_dir, resume=resume, overwrite=overwrite, cpu=cpu, progress=progress, parts=parts)
    return trainer.run()
