"""Suites: GEFU-mini's inputs (deterministic, ordered darkness), its model-agreement scores, the paper's suites."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio

from gefu.bench.degrade import LEVELS, darken
from gefu.bench.suites import Sample, create_suite, downscale, level_seed, list_suites, make_mini_images
from gefu.imageio import load_image, save_image
from gefu.samples import load_sample, sample_photos


def _photos(*names):
    found = sample_photos()
    return {n: found[n] for n in names}


def test_suite_names():
    assert {"mini", "lol", "lsrw", "codan", "darkface", "bdd-night"} <= set(list_suites())


def test_mini_images_are_deterministic():
    a = make_mini_images(_photos("coffee", "astronaut"), LEVELS, seed=0, max_side=96)
    b = make_mini_images(_photos("coffee", "astronaut"), LEVELS, seed=0, max_side=96)
    c = make_mini_images(_photos("coffee"), LEVELS, seed=1, max_side=96)
    for name in a:
        assert torch.equal(a[name][0], b[name][0])
        for lv in LEVELS:
            assert torch.equal(a[name][1][lv], b[name][1][lv])
    assert not torch.equal(a["coffee"][1]["dark"], c["coffee"][1]["dark"])  # another seed, other noise
    # It is darken() with the per-(photo, level) seed, on the downscaled original.
    ref = downscale(load_sample("coffee"), 96)
    assert torch.equal(a["coffee"][1]["night"], darken(ref, LEVELS["night"], seed=level_seed("coffee", "night", 0)))


def test_prepared_inputs_are_identical_across_cache_folders(tmp_path):
    s1 = create_suite("mini", max_side=80, photos="coffee,chelsea", classifier=None, detector=None, lpips=False)
    s2 = create_suite("mini", max_side=80, photos="coffee,chelsea", classifier=None, detector=None, lpips=False)
    a = s1.prepare(tmp_path / "a")
    b = s2.prepare(tmp_path / "b")
    assert [s.id for s in a] == [s.id for s in b] == [
        f"{p}-{lv}" for p in ("coffee", "chelsea") for lv in LEVELS
    ]
    for x, y in zip(a, b):
        assert torch.equal(load_image(x.input), load_image(y.input))
        assert torch.equal(load_image(x.reference), load_image(y.reference))
    # Cached PNGs are bit-identical to freshly made images (both are 8-bit).
    fresh = make_mini_images(_photos("coffee"), LEVELS, seed=0, max_side=80)["coffee"]
    assert torch.equal(load_image(a[1].input), fresh[1]["dark"])
    assert torch.equal(load_image(a[0].reference), fresh[0])
    # A second prepare reuses the cache (files untouched).
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "a").rglob("*.png")}
    s1.prepare(tmp_path / "a")
    assert mtimes == {p: p.stat().st_mtime_ns for p in (tmp_path / "a").rglob("*.png")}


def test_darkening_levels_are_ordered():
    exposures = list(LEVELS.values())
    assert exposures == sorted(exposures, reverse=True) and len(exposures) == 3
    made = make_mini_images(_photos("coffee", "astronaut", "chelsea"), LEVELS, seed=0, max_side=128)
    for name, (ref, dark) in made.items():
        means = [float(dark[lv].mean()) for lv in LEVELS]
        assert float(ref.mean()) > means[0] > means[1] > means[2] > 0, (name, means)


def test_level_seeds_are_stable_and_distinct():
    seeds = {(p, lv): level_seed(p, lv) for p in ("coffee", "astronaut") for lv in LEVELS}
    assert len(set(seeds.values())) == len(seeds)
    assert seeds == {(p, lv): level_seed(p, lv, 0) for p, lv in seeds}
    assert level_seed("coffee", "dark", 1) != level_seed("coffee", "dark", 0)


def test_downscale_keeps_aspect_and_limit():
    img = torch.rand(3, 300, 451)
    out = downscale(img, 128)
    assert out.shape == (3, 85, 128)
    assert torch.equal(out, (out * 255).round() / 255)  # 8-bit levels
    assert downscale(img[:, :100, :120], 128).shape == (3, 100, 120)  # never upscaled


def test_mini_limit_and_bad_options(tmp_path):
    suite = create_suite("mini", max_side=64, classifier=None, detector=None, lpips=False)
    samples = suite.prepare(tmp_path, limit=4)
    assert len(samples) == 4
    assert len(list(tmp_path.rglob("*-dim.png"))) == 2  # only the photos the limit needs were darkened
    with pytest.raises(ValueError, match="level"):
        create_suite("mini", levels="dim,pitch-black")
    with pytest.raises(ValueError, match="no --data"):
        create_suite("mini", data="somewhere")
    with pytest.raises(ValueError, match="not found"):
        create_suite("mini", photos="coffee,mona_lisa", lpips=False).prepare(tmp_path)


def test_mini_agreement_scores_hand_worked():
    """Top-1 agreement and face AP from records, against hand-computed values."""
    suite = create_suite("mini", lpips=False)
    img = Path("unused.png")
    box = [10.0, 10.0, 50.0, 60.0]
    samples = [
        Sample("a-dim", img, "dim", target={"class": 3, "faces": [box]}),
        Sample("a-dark", img, "dark", target={"class": 3, "faces": [box]}),
        Sample("b-dim", img, "dim", target={"class": 7, "faces": []}),
        Sample("b-dark", img, "dark", target={"class": 7, "faces": []}),
    ]
    records = {
        "a-dim": {"psnr": 20.0, "ssim": 0.5, "pred": 3, "dets": [box + [0.9]]},
        # a wrong box ranked above the right one: TP, FP, TP → AP = 0.5·1 + 0.5·(2/3)
        "a-dark": {"psnr": 10.0, "ssim": 0.3, "pred": 1, "dets": [[200, 200, 240, 250, 0.8], box + [0.7]]},
        "b-dim": {"psnr": 30.0, "ssim": 0.9, "pred": 7},
        "b-dark": {"psnr": 12.0, "ssim": 0.4, "pred": 7},
    }
    agg = suite.aggregate(samples, records)
    assert agg.metrics["psnr"] == pytest.approx(18.0)
    assert agg.metrics["ssim"] == pytest.approx(0.525)
    assert agg.metrics["top1_agreement"] == pytest.approx(75.0)
    assert agg.metrics["face_ap"] == pytest.approx(100 * (0.5 + 0.5 * 2 / 3))
    assert agg.breakdown["dim"]["top1_agreement"] == pytest.approx(100.0)
    assert agg.breakdown["dark"]["top1_agreement"] == pytest.approx(50.0)
    assert agg.breakdown["dim"]["face_ap"] == pytest.approx(100.0)
    assert agg.breakdown["dark"]["psnr"] == pytest.approx(11.0)
    assert "model agreement" in suite.note().lower() and "not human labels" in suite.note()


def test_mini_with_real_frozen_models(tmp_path):
    """MobileNetV2 + YuNet on the astronaut photo: the original scores full agreement with itself."""
    from gefu.weights import mobilenet_v2_path

    if not mobilenet_v2_path().is_file():
        pytest.skip("MobileNetV2 weights not provisioned (run `gefu weights provision`)")
    suite = create_suite("mini", max_side=256, photos="astronaut", lpips=False)
    samples = suite.prepare(tmp_path)
    assert suite.class_error is None and suite.det_error is None
    label = samples[0].target
    assert isinstance(label["class"], int) and len(label["faces"]) == 1  # one face on the astronaut photo
    x1, y1, x2, y2 = label["faces"][0]
    assert 0 <= x1 < x2 <= 256 and 0 <= y1 < y2 <= 256
    original = load_image(samples[0].reference)
    records = {s.id: suite.score(s, original) for s in samples}
    agg = suite.aggregate(samples, records)
    assert agg.metrics["top1_agreement"] == 100.0
    assert agg.metrics["face_ap"] == 100.0
    # The original against itself: PSNR is capped at 100 dB (not +inf, which would make any mean infinite).
    assert records[samples[0].id]["psnr"] == 100.0 and records[samples[0].id]["psnr_capped"]
    assert "astronaut" in suite.conventions()["face_ap"]

    # A rerun with the labels cached loads no model until it has something to score, then the same ones.
    again = create_suite("mini", max_side=256, photos="astronaut", lpips=False)
    samples2 = again.prepare(tmp_path)
    assert again.classifier is None and again.detector is None
    assert again.class_error is None and again.score_key() == suite.score_key()
    assert [s.target for s in samples2] == [s.target for s in samples]
    assert again.score(samples2[0], original)["pred"] == label["class"]


@pytest.mark.parametrize("name", ["lol", "lsrw", "codan", "darkface", "bdd-night"])
def test_paper_suites_need_data(name):
    with pytest.raises(ValueError, match="--data"):
        create_suite(name)


def test_published_numbers_are_the_papers():
    assert create_suite("lol", data=".").published == {"scuf": {"psnr": 21.32, "ssim": 0.8073, "lpips": 0.1928}}
    assert create_suite("lsrw", data=".").published == {"scuf": {"psnr": 18.41, "ssim": 0.5341, "lpips": 0.2974}}
    assert create_suite("codan", data=".").published == {"scuf": {"top1": 60.92}, "none": {"top1": 53.24}}
    assert create_suite("darkface", data=".").published == {"scuf": {"map": 16.9}}
    assert create_suite("bdd-night", data=".").published == {"scuf": {"miou": 20.1}}


def _lol_fixture(root: Path, photo: torch.Tensor) -> None:
    base = root / "Real_captured" / "Test"
    for i, num in enumerate((7, 12)):  # listing order ≠ pairing: pairs are matched by number
        ref = photo[:, i * 8: i * 8 + 64, :96]
        save_image(ref, base / "Normal" / f"normal{num:05d}.png")
        save_image(darken(ref, 0.1, seed=i), base / "Low" / f"low{num:05d}.png")


def test_lol_suite_scores_against_the_paired_reference(tmp_path, photo):
    _lol_fixture(tmp_path / "LOL", photo[0])
    suite = create_suite("lol", data=str(tmp_path / "LOL"), lpips=False)
    samples = suite.prepare(tmp_path / "cache")
    assert [s.id for s in samples] == ["Low/low00007.png", "Low/low00012.png"]
    assert [s.reference.name for s in samples] == ["normal00007.png", "normal00012.png"]
    enhanced = {s.id: (load_image(s.input) * 4).clamp(0, 1) for s in samples}
    records = {s.id: suite.score(s, enhanced[s.id]) for s in samples}
    expected = np.mean([
        peak_signal_noise_ratio(load_image(s.reference).numpy(), enhanced[s.id].numpy(), data_range=1.0)
        for s in samples
    ])
    assert suite.aggregate(samples, records).metrics["psnr"] == pytest.approx(expected, abs=1e-4)


def test_codan_suite_needs_the_checkpoint_and_uses_it(tmp_path, photo):
    from torchvision.models import resnet18

    from gefu.bench.datasets import CODAN_CLASSES

    for i, cls in enumerate(CODAN_CLASSES[:10]):
        save_image(photo[0, :, :64, i * 4: i * 4 + 64], tmp_path / "test_night" / cls / f"{i}.jpg")
    with pytest.raises(FileNotFoundError, match="--task-weights"):
        create_suite("codan", data=str(tmp_path)).prepare(tmp_path / "cache")

    torch.manual_seed(0)
    net = resnet18(num_classes=10).eval()
    torch.save(net.state_dict(), tmp_path / "codan.pt")
    suite = create_suite("codan", data=str(tmp_path), weights=str(tmp_path / "codan.pt"))
    samples = suite.prepare(tmp_path / "cache")
    assert len(samples) == 10 and sorted(s.target for s in samples) == list(range(10))
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    records, hits = {}, 0
    for s in samples:
        img = load_image(s.input)
        records[s.id] = suite.score(s, img)
        with torch.no_grad():
            ref_pred = int(net(((img - mean) / std)[None]).argmax())
        assert records[s.id]["pred"] == ref_pred
        hits += ref_pred == s.target
    assert suite.aggregate(samples, records).metrics["top1"] == pytest.approx(100 * hits / 10)


def test_darkface_map_hand_worked(tmp_path):
    from gefu.bench.datasets import FaceBoxes

    suite = create_suite("darkface", data=str(tmp_path))
    gt = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], dtype=np.float32)
    none = np.zeros((0, 4), np.float32)
    samples = [Sample("image/1.png", Path("x"), target=FaceBoxes(gt, none)),
               Sample("image/2.png", Path("y"), target=FaceBoxes(gt[:0], none))]
    records = {
        "image/1.png": {"dets": [[0, 0, 10, 10, 0.9], [20, 20, 30, 30, 0.5]]},
        "image/2.png": {"dets": [[5, 5, 9, 9, 0.7]]},  # a false positive between the two hits
    }
    # ranked: TP (p 1, r .5), FP, TP (p 2/3, r 1) → AP = .5·1 + .5·2/3
    assert suite.aggregate(samples, records).metrics["map"] == pytest.approx(100 * (0.5 + 0.5 * 2 / 3))
    assert "Detector used: RetinaFace MobileNet-0.25" in suite.note() and "NOT the paper's YOLOv3" in suite.note()


def test_bdd_night_miou_under_both_protocols(tmp_path):
    def cm(entries):
        m = np.zeros((19, 20), dtype=np.int64)
        for (t, p), n in entries.items():
            m[t, p] = n
        return m.tolist()

    samples = [Sample("images/a.jpg", Path("a")), Sample("images/b.jpg", Path("b"))]
    records = {"images/a.jpg": {"cm": cm({(0, 0): 3, (0, 1): 1})}, "images/b.jpg": {"cm": cm({(1, 1): 2})}}
    iou0, iou1 = 3 / (4 + 3 - 3), 2 / (2 + 3 - 2)
    std = create_suite("bdd-night", data=str(tmp_path)).aggregate(samples, records)
    assert std.metrics["miou"] == pytest.approx(100 * (iou0 + iou1) / 2)
    assert std.metrics["iou_road"] == pytest.approx(100 * iou0)
    off = create_suite("bdd-night", data=str(tmp_path), protocol="official").aggregate(samples, records)
    assert off.metrics["miou"] == pytest.approx(100 * (iou0 + iou1) / 19)
    with pytest.raises(ValueError, match="protocol"):
        create_suite("bdd-night", data=str(tmp_path), protocol="fast")
    with pytest.raises(ValueError, match="suite.arch"):
        create_suite("bdd-night", data=str(tmp_path), model="torchvision")._load_model()
