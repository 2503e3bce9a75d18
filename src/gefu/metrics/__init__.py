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
- mIoU comes from one confusion matrix accumulated over the whole set;
- NIQE is the authors' MATLAB release (rgb2gray luminance, 96×96 blocks, MATLAB imresize, the release's
  pristine model); BRISQUE is OpenCV contrib's `QualityBRISQUE` with its LIVE model. Both are no-reference,
  per image, lower is better, computed on the 8-bit image.

Detection AP, mIoU and top-1 are fractions in [0, 1]; reports multiply by 100.

`HIGHER_IS_BETTER` gives each metric's direction.

Layout: `fullref` (PSNR, SSIM, LPIPS, `match_size`), `noref` (NIQE, BRISQUE), `matlab` (the
MATLAB image functions NIQE needs: rgb2gray, imresize), `convert` (8-bit views), `tasks` (AP, mIoU, top-1).
"""

from __future__ import annotations

from .fullref import lpips, match_size, psnr, ssim
from .noref import brisque, niqe
from .tasks import box_iou, confusion_matrix, iou_from_confusion, mean_iou, top1, voc_ap

__all__ = [
    "psnr",
    "ssim",
    "lpips",
    "niqe",
    "brisque",
    "match_size",
    "box_iou",
    "voc_ap",
    "confusion_matrix",
    "iou_from_confusion",
    "mean_iou",
    "top1",
    "HIGHER_IS_BETTER",
]

# Direction of every per-image / per-set score above (tables mark the best with it).
HIGHER_IS_BETTER: dict[str, bool] = {
    "psnr": True,
    "ssim": True,
    "lpips": False,
    "niqe": False,
    "brisque": False,
    "voc_ap": True,
    "mean_iou": True,
    "top1": True,
}
