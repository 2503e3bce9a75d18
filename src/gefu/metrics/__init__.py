"""Benchmark metrics as pure functions (torchmetrics style); the table columns (name, direction, format) are
`gefu.bench.suites.Metric`.

Conventions follow the GEFU benchmark (DESIGN §3):

- images are RGB float tensors (N, 3, H, W) in [0, 1]; per-image values come back as a tensor (N,) and the
  caller averages (PSNR/SSIM/LPIPS are "per image, then mean");
- PSNR = 10·log10(1 / MSE) over all pixels and channels of one image;
- SSIM is the MATLAB reference (Wang et al. `ssim_index.m`): 11×11 Gaussian window, σ = 1.5, 'valid' filtering
  (no padding: the map is (H-10)×(W-10)), C1 = 0.01², C2 = 0.03², population (not sample) statistics, computed
  per channel and averaged over channels. No automatic downsampling (that is a later `ssim.m` addition);
- LPIPS is the official `lpips` package (v0.1 linear heads) with inputs mapped to [-1, 1];
- detection AP is VOC all-point ("area") AP at IoU 0.5, IoU without the legacy +1, greedy matching by score;
- mIoU comes from one confusion matrix accumulated over the whole set.

Detection AP, mIoU and top-1 are fractions in [0, 1]; reports multiply by 100.

Layout: `fullref` (PSNR, SSIM, LPIPS, `match_size`), `tasks` (AP, mIoU, top-1).
"""

from __future__ import annotations

from .fullref import lpips, match_size, psnr, ssim
from .tasks import box_iou, confusion_matrix, iou_from_confusion, mean_iou, top1, voc_ap

__all__ = [
    "psnr",
    "ssim",
    "lpips",
    "match_size",
    "box_iou",
    "voc_ap",
    "confusion_matrix",
    "iou_from_confusion",
    "mean_iou",
    "top1",
]
