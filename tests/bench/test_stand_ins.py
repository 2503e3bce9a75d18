"""The paper suites' default frozen models when the paper's checkpoints are absent: RetinaFace for DARK FACE,
ESPNetv2 for BDD100k-night, each named in the report as a stand-in that is not the paper's model; the paper's
model, when given, takes precedence."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from _shared import needs_weights

from gefu.bench.runner import run_suite
from gefu.bench.suites import create_suite
from gefu.imageio import load_image, save_image
from gefu.samples import load_sample

FIXTURES = str(Path(__file__).with_name("official_fixtures.py"))
_spec = importlib.util.spec_from_file_location("official_fixtures", FIXTURES)
fx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fx)


@needs_weights("retinaface-mnet025")
def test_darkface_is_scored_by_retinaface_and_the_report_says_it_is_not_yolov3(tmp_path):
    # The challenge layout (image/*.png + label/*.txt) with the astronaut photo and a box drawn by hand around
    # her face (scikit-image's 512×512 astronaut: the face spans about x 176–272, y 50–180).
    save_image(load_sample("astronaut"), tmp_path / "data" / "image" / "astronaut.png")
    (tmp_path / "data" / "label").mkdir()
    (tmp_path / "data" / "label" / "astronaut.txt").write_text("1\n176 50 272 180\n")
    suite = create_suite("darkface", data=str(tmp_path / "data"))
    assert suite.options["model"] == "retinaface"
    record = run_suite(suite, ["none"], tmp_path / "out").records[0]
    assert record["metrics"]["map"] == pytest.approx(100.0)  # the one face is the highest-scored detection
    note = " ".join(record["notes"])
    assert "Detector used: RetinaFace MobileNet-0.25" in note and "a stand-in" in note
    assert "NOT the paper's YOLOv3" in note and "not comparable with the paper's" in note
    assert "stand-in" in record["conventions"]["model"]


def test_the_papers_model_takes_precedence_and_is_not_called_a_stand_in(tmp_path):
    suite = create_suite("darkface", data=str(tmp_path), model="module", target=f"{FIXTURES}:tiny_face_detector")
    assert "tiny_face_detector" in suite.note() and "stand-in" not in suite.note()
    codan = create_suite("codan", data=str(tmp_path))  # the paper's own classifier architecture: no stand-in
    assert not codan.uses_stand_in
    seg = create_suite("bdd-night", data=str(tmp_path), model="espnet")  # another stand-in, named as such
    assert "ESPNet p=2 q=8" in seg.note() and "NOT the paper's RefineNet" in seg.note()


@needs_weights("espnetv2-cityscapes")
@pytest.mark.parametrize("protocol", ["standard", "official"])
def test_bdd_night_is_scored_by_espnetv2_under_both_protocols(tmp_path, protocol):
    fx.write_bdd_fixture(tmp_path / "bdd")
    suite = create_suite("bdd-night", data=str(tmp_path / "bdd"), protocol=protocol, size=[256, 128])
    assert suite.options["model"] == "espnetv2"
    samples = suite.prepare(tmp_path / "cache", limit=1)
    records = {s.id: suite.score(s, load_image(s.input)) for s in samples}
    # every labelled pixel is counted once: 48×80 at full resolution, or the label resized to 640×360 (official)
    for s in samples:
        label = Image.open(s.target)
        label = np.asarray(label.resize((640, 360), Image.NEAREST) if protocol == "official" else label)
        assert np.asarray(records[s.id]["cm"]).sum() == int((label != 255).sum())
    miou = suite.aggregate(samples, records).metrics["miou"]
    assert 0.0 <= miou <= 100.0
    assert "Segmenter used: ESPNetv2 s=2.0" in suite.note() and "NOT the paper's RefineNet" in suite.note()


def test_weights_for_a_stand_in_that_do_not_fit_point_to_the_papers_model(tmp_path):
    fx.write_bdd_fixture(tmp_path / "bdd")
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "refinenet.pth")  # not an ESPNetv2 checkpoint
    suite = create_suite("bdd-night", data=str(tmp_path / "bdd"), weights=str(tmp_path / "refinenet.pth"))
    with pytest.raises(ValueError, match="does not load into the segmenter 'espnetv2'.*--task-model module"):
        suite.prepare(tmp_path / "cache")


def test_missing_stand_in_weights_say_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("GEFU_WEIGHTS", str(tmp_path / "empty-store"))
    fx.write_darkface_release(tmp_path / "data")
    suite = create_suite("darkface", data=str(tmp_path / "data"))
    with pytest.raises(FileNotFoundError, match="retinaface-mnet025.*gefu weights download.*--task-model module"):
        suite.prepare(tmp_path / "cache")
