"""Suites: GEFU-mini's inputs (deterministic, ordered darkness), its model-agreement scores, the paper's suites."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio

from _shared import needs_weights
from gefu.bench.camera import capture, oracle
from gefu.bench.degrade import darken
from gefu.bench.suites import Sample, create_suite, downscale, level_seed, list_suites
from gefu.bench.suites.mini import LEVELS
from gefu.imageio import load_image, save_image
from gefu.samples import load_sample, sample_photos


def _photos(*names):
    found = sample_photos()
    return {n: found[n] for n in names}


def test_suite_names():
    assert {"mini", "lol", "lsrw", "codan", "darkface", "bdd-night"} <= set(list_suites())


def test_mini_inputs_are_deterministic_and_cached(tmp_path):
    kw = dict(max_side=80, photos="coffee,chelsea", classifier=None, detector=None, lpips=False)
    a = create_suite("mini", **kw).prepare(tmp_path / "a")
    b = create_suite("mini", **kw).prepare(tmp_path / "b")
    assert [s.id for s in a] == [s.id for s in b] == [f"{p}-{lv}" for p in ("coffee", "chelsea") for lv in LEVELS]
    for x, y in zip(a, b):
        assert torch.equal(load_image(x.input), load_image(y.input))
    # The cached capture is exactly camera.capture of the clean image with the per-(image, level) seed.
    clean = load_image(a[1].reference)
    assert torch.equal(clean, downscale(load_sample("coffee"), 80))
    want = capture(clean, LEVELS["dark"], seed=level_seed("coffee", "dark", 0))
    assert torch.equal(load_image(a[1].input), want.image)
    assert torch.equal(load_image(tmp_path / "a" / a[1].input.parent.name / "oracle" / f"{a[1].id}.png"),
                       oracle(want.image, want.gain))
    # another seed, other noise
    c = create_suite("mini", seed=1, **kw).prepare(tmp_path / "c")
    assert not torch.equal(load_image(c[1].input), load_image(a[1].input))
    # darker levels are darker
    means = [float(load_image(s.input).mean()) for s in a[:3]]
    assert float(clean.mean()) > means[0] > means[1] > means[2] > 0
    assert level_seed("coffee", "dark", 1) != level_seed("coffee", "dark", 0) != level_seed("coffee", "dim", 0)


def test_mini_limit_and_bad_options(tmp_path):
    suite = create_suite("mini", max_side=64, classifier=None, detector=None, lpips=False, mosaics=0)
    samples = suite.prepare(tmp_path, limit=4)
    assert len(samples) == 4
    assert len(list(tmp_path.rglob("*-dim.png"))) == 2 * 3  # capture, oracle, clean copy of the 2 photos used
    with pytest.raises(ValueError, match="level"):
        create_suite("mini", levels="dim,pitch-black")
    with pytest.raises(ValueError, match="no --data"):
        create_suite("mini", data="somewhere")
    with pytest.raises(ValueError, match="not found"):
        create_suite("mini", photos="coffee,mona_lisa", lpips=False).prepare(tmp_path)


def test_mini_scores_hand_worked():
    """Top-1 over labelled images only, face AP over every face-scored image (false faces on photos without
    faces count), IQA over photos and mosaics, intervals around every value."""
    suite = create_suite("mini", lpips=False, levels="dim", n_resamples=500)
    img = Path("unused.png")
    box = [10.0, 10.0, 50.0, 60.0]
    samples = [
        Sample("a-dim", img, "dim", target={"kind": "photo", "label": 3, "faces": [box]}),
        Sample("b-dim", img, "dim", target={"kind": "photo", "label": None, "faces": []}),
        Sample("c.g2-00-dim", img, "dim", target={"kind": "crop", "label": 7, "faces": None}),
    ]
    records = {
        "a-dim": {"psnr": 20.0, "ssim": 0.5, "pred": 3, "correct": True, "dets": [box + [0.7]]},
        # a false face on a photo without faces, ranked above the true one: FP, TP → AP = 0.5
        "b-dim": {"psnr": 30.0, "ssim": 0.9, "dets": [[200, 200, 240, 250, 0.8]]},
        "c.g2-00-dim": {"pred": 1, "correct": False},
    }
    agg = suite.aggregate(samples, records)
    assert agg.metrics["psnr"] == pytest.approx(25.0) and agg.metrics["ssim"] == pytest.approx(0.7)
    assert agg.metrics["top1"] == pytest.approx(50.0)
    assert agg.metrics["face_ap"] == pytest.approx(50.0)
    assert agg.breakdown["dim"] == agg.metrics
    for key, value in agg.metrics.items():
        lo, hi = agg.intervals[""][key]
        assert lo <= value <= hi
    assert agg.intervals[""]["top1"] == (0.0, 100.0)  # 2 labelled images, one right: anything can come out
    assert "reference rows" in suite.note()


@needs_weights("retinaface-mnet025")
def test_mini_with_real_frozen_models(tmp_path):
    """MobileNetV2 + RetinaFace: labels only for confident, stable crops; the clean row is the ceiling, and the
    darkest level breaks the frozen models."""
    from gefu.weights import mobilenet_v2_path

    if not mobilenet_v2_path().is_file():
        pytest.skip("MobileNetV2 weights not provisioned (run `gefu weights provision`)")
    suite = create_suite("mini", max_side=256, photos="astronaut,coffee", lpips=False, levels="night", mosaics=1,
                         n_resamples=200)
    samples = suite.prepare(tmp_path)
    assert suite.class_error is None and suite.det_error is None
    kinds = {s.meta["image"]: s.target["kind"] for s in samples}
    assert kinds["astronaut"] == "photo" and kinds["faces0"] == "mosaic"
    # the astronaut photo is MobileNetV2's unsure "bobsled" (p 0.19): no label; crops of coffee are sure espressos
    by = {s.meta["image"]: s for s in samples}
    assert by["astronaut"].target["label"] is None
    labels = {suite.classifier.classes[s.target["label"]] for s in samples if s.target["label"] is not None}
    assert labels == {"espresso"}
    assert all(c["p"] >= 0.6 for c in suite.crops)
    assert len(by["faces0"].target["faces"]) >= 5
    clean = {s.id: suite.score(s, load_image(tmp_path / by[s.meta["image"]].input.parent.name / "clean"
                                             / f"{s.id}.png")) for s in samples}
    dark = {s.id: suite.score(s, load_image(s.input)) for s in samples}
    top_clean = suite.aggregate(samples, clean).metrics
    top_dark = suite.aggregate(samples, dark).metrics
    assert top_clean["top1"] == 100.0  # labels are the model's own answers on the clean images
    assert top_clean["face_ap"] >= 60.0
    assert top_dark["face_ap"] < top_clean["face_ap"]


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


def test_mini_gallery_outcome_names_classes_and_keeps_confident_boxes():
    suite = create_suite("mini", lpips=False)

    class _Clf:
        classes = ("cat", "espresso", "moped")

    suite.classifier = _Clf()
    s = Sample("coffee.g2-01-night", Path("x.png"), "night",
               target={"kind": "crop", "label": 1, "faces": [[0.0, 0.0, 10.0, 10.0]]})
    rec = {"pred": 2, "correct": False, "psnr": 12.345,
           "dets": [[0, 0, 10, 10, 0.9], [20, 20, 30, 30, 0.3], [40, 40, 50, 50, 0.5]]}
    got = suite.outcome(s, rec)
    assert "✗ moped (clean: espresso)" in got["caption"] and "PSNR 12.35" in got["caption"]
    assert got["boxes"] == [[0, 0, 10, 10], [40, 40, 50, 50]]  # detections ≥ 0.5 are drawn
    assert got["gt_boxes"] == [[0.0, 0.0, 10.0, 10.0]]
    assert "✓ espresso" in suite.outcome(s, {**rec, "pred": 1, "correct": True})["caption"]


def test_mini_detector_auto_falls_back_to_yunet_without_retinaface_weights(tmp_path, monkeypatch):
    """A fresh offline install has no RetinaFace file: GEFU-mini still scores faces (YuNet ships in a package)
    and its report says which detector and why; with the file, RetinaFace (the issue's choice) is used."""
    monkeypatch.setenv("GEFU_WEIGHTS", str(tmp_path / "empty-store"))
    fresh = create_suite("mini", lpips=False)
    assert fresh.options["detector"] == "yunet"
    assert "retinaface-mnet025" in fresh.det_note and "gefu weights download" in fresh.det_note
    named = create_suite("mini", detector="retinaface", lpips=False)  # asked for by name: no silent swap
    assert named.options["detector"] == "retinaface" and named.det_note is None


@needs_weights("retinaface-mnet025")
def test_mini_detector_auto_is_retinaface_when_its_weights_are_present():
    suite = create_suite("mini", lpips=False)
    assert suite.options["detector"] == "retinaface" and suite.det_note is None
