"""What a training run shows of itself: PSNR/SSIM on paired validation images, sample grids, TensorBoard scalars.

`Monitor.validate(step, last_images)` runs on the main process only: it writes ``samples/step_XXXXXX.png`` (the
step's inputs beside their translations), ``val/step_XXXXXX.png`` (validation input, output, reference) and a
``metrics.csv`` row; `Monitor.scalars` logs to TensorBoard when it is installed.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..imageio import crop_to, pad_to_multiple, save_image
from .data import PairedValData
from .train_io import CSVLog

__all__ = ["Monitor"]

log = logging.getLogger(__name__)


class Monitor:
    """Validation, sample grids and TensorBoard of one run folder (see the module docstring)."""

    def __init__(self, output_dir: Path, val: PairedValData | None, accelerator: Any, images_in_grid: int = 4,
                 tensorboard: bool = True) -> None:
        self.output_dir = output_dir
        self.val = val
        self.accelerator = accelerator
        self.images_in_grid = images_in_grid
        self.metrics = CSVLog(output_dir / "metrics.csv", ["step", "psnr", "ssim", "images"])
        self._tb = _tensorboard(output_dir / "tensorboard") if tensorboard else None

    def scalars(self, prefix: str, values: dict[str, float], step: int) -> None:
        if self._tb is not None:
            for k, v in values.items():
                self._tb.add_scalar(f"{prefix}/{k}", v, step)

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()

    @torch.no_grad()
    def validate(self, generator: Any, step: int, last_images: dict[str, torch.Tensor]) -> dict[str, float]:
        """Sample grid of the step's images + PSNR/SSIM of the lighten pass on the validation pairs."""
        out: dict[str, float] = {}
        generator.eval()
        tag = f"step_{step:06d}.png"
        if last_images:
            im = {k: (v[0] + 1) / 2 for k, v in last_images.items()}
            rows = [_grid_row([im["low"], im["fake_normal"]], 128), _grid_row([im["normal"], im["fake_low"]], 128)]
            save_image(_stack_rows(rows), self.output_dir / "samples" / tag)
        if self.val is not None and len(self.val):
            out = self._pairs(generator, step, tag)
        generator.train()
        return out

    def _pairs(self, gen: Any, step: int, tag: str) -> dict[str, float]:
        from ..metrics import psnr, ssim

        psnrs, ssims, rows = [], [], []
        for i in range(len(self.val)):
            low, normal = self.val.load(i)
            x, size = pad_to_multiple(low.to(gen.device), gen.size_multiple)
            with self.accelerator.autocast():
                y = gen(x, "lighten")
            y = crop_to(y.float(), size).clamp(0, 1).cpu()
            psnrs.append(float(psnr(y, normal)[0]))
            ssims.append(float(ssim(y, normal)[0]) if min(size) >= 11 else float("nan"))
            if i < self.images_in_grid:
                rows.append(_grid_row([low[0], y[0], normal[0]], 160))
        out = {"psnr": float(np.mean(psnrs)), "ssim": float(np.nanmean(ssims)), "images": len(psnrs)}
        self.metrics.append({"step": step, **out})
        self.scalars("val", {"psnr": out["psnr"], "ssim": out["ssim"]}, step)
        if rows:
            save_image(_stack_rows(rows), self.output_dir / "val" / tag)
        log.info("step %d: validation PSNR %.2f dB, SSIM %.4f on %d images", step, out["psnr"], out["ssim"],
                 len(psnrs))
        return out


def _tensorboard(path: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is an optional extra
        return None
    return SummaryWriter(str(path))


def _grid_row(images: Sequence[torch.Tensor], height: int) -> torch.Tensor:
    """Images (3, H, W) in [0, 1] (same H, W) → one row (3, height, ·) side by side."""
    row = torch.cat([img.float().cpu().clamp(0, 1) for img in images], dim=-1)[None]
    width = max(1, round(row.shape[-1] * height / row.shape[-2]))
    return F.interpolate(row, size=(height, width), mode="bilinear", antialias=True, align_corners=False)[0]


def _stack_rows(rows: Sequence[torch.Tensor], pad: int = 2) -> torch.Tensor:
    width = max(r.shape[-1] for r in rows)
    padded = [F.pad(r, (0, width - r.shape[-1], 0, pad), value=1.0) for r in rows]
    return torch.cat(padded, dim=-2)
