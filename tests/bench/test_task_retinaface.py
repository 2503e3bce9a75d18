"""RetinaFace MobileNet-0.25: priors, decoding and NMS against hand-worked values; the official weights load
strictly and reproduce the official test script's detections (recorded as facts)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _shared import needs_weights

from gefu import weights
from gefu.bench.tasks import DETECTORS, create_detector
from gefu.bench.tasks.retinaface import RetinaFaceNet, decode, nms_plus_one, prior_boxes
from gefu.samples import load_sample

REAL = needs_weights("retinaface-mnet025")


def test_priors_match_the_official_layout():
    p = prior_boxes(480, 640)
    assert p.shape == ((60 * 80 + 30 * 40 + 15 * 20) * 2, 4)
    # first cell of stride 8: centre (4, 4) px, sizes 10 then 20 px, relative to (W, H) = (640, 480)
    np.testing.assert_allclose(p[0].numpy(), [4 / 640, 4 / 480, 10 / 640, 10 / 480], rtol=1e-6)
    np.testing.assert_allclose(p[1].numpy(), [4 / 640, 4 / 480, 20 / 640, 20 / 480], rtol=1e-6)
    np.testing.assert_allclose(p[2].numpy(), [12 / 640, 4 / 480, 10 / 640, 10 / 480], rtol=1e-6)  # next column
    # last prior: stride 32, bottom-right cell (row 14, col 19), size 256
    np.testing.assert_allclose(p[-1].numpy(), [624 / 640, 464 / 480, 256 / 640, 256 / 480], rtol=1e-6)
    assert prior_boxes(481, 641).shape[0] == (61 * 81 + 31 * 41 + 16 * 21) * 2  # ceil per level


def test_decode_with_variances():
    priors = torch.tensor([[0.5, 0.5, 0.2, 0.4]])
    np.testing.assert_allclose(decode(torch.zeros(1, 4), priors).numpy(), [[0.4, 0.3, 0.6, 0.7]], rtol=1e-6)
    # dx = 1 moves the centre by 0.1·w; dw = 1 scales the width by exp(0.2)
    box = decode(torch.tensor([[1.0, 0.0, 1.0, 0.0]]), priors)[0].numpy()
    w = 0.2 * np.exp(0.2)
    np.testing.assert_allclose(box, [0.52 - w / 2, 0.3, 0.52 + w / 2, 0.7], rtol=1e-6)


def test_nms_uses_plus_one_areas():
    # [0,0,9,9] vs [4,0,13,9]: with +1 areas IoU = 60/140 = 0.43 > 0.4 (suppressed); without, 45/117 = 0.38
    dets = np.array([[0, 0, 9, 9, 0.9], [4, 0, 13, 9, 0.8], [30, 30, 40, 40, 0.7]], dtype=np.float32)
    assert nms_plus_one(dets, 0.4) == [0, 2]
    assert nms_plus_one(dets, 0.45) == [0, 1, 2]


def test_network_shapes():
    net = RetinaFaceNet().eval()
    with torch.no_grad():
        loc, score, landm = net(torch.randn(1, 3, 64, 96))
    p = prior_boxes(64, 96).shape[0]
    assert loc.shape == (1, p, 4) and score.shape == (1, p) and landm.shape == (1, p, 10)
    assert torch.all((score >= 0) & (score <= 1))


@REAL
def test_official_weights_load_strictly_and_a_wrong_checkpoint_is_refused(tmp_path):
    path = weights.weight_path("retinaface-mnet025")
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert len(state) == len(RetinaFaceNet().state_dict()) == 300
    del state[next(k for k in state if "ClassHead" in k)]
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(ValueError, match="ClassHead"):
        create_detector("retinaface", checkpoint=tmp_path / "broken.pth")


# The official test pipeline (biubug6/Face-Detector-1MB-with-landmark @2b07565: models/retinaface.py,
# PriorBox, decode, py_cpu_nms; BGR − (104, 117, 123); score ≥ 0.05, NMS 0.4), run outside the project on
# scikit-image's astronaut: original size, and the test_widerface.py resize rule with long side 320.
OFFICIAL_ASTRONAUT = {
    None: [[179.41547, 54.528339, 270.47778, 177.74225, 0.9996531],
           [362.49976, 222.60675, 422.54837, 292.06146, 0.051332925]],
    320: [[178.60286, 56.953835, 272.81888, 175.62231, 0.9995339]],
}


@REAL
@pytest.mark.parametrize("long_side", [None, 320])
def test_finds_the_astronauts_face_like_the_official_code(long_side):
    det = create_detector("retinaface", long_side=long_side)
    assert "retinaface" in DETECTORS.names()
    got = det(load_sample("astronaut"))
    want = np.array(OFFICIAL_ASTRONAUT[long_side], dtype=np.float32)
    assert got.shape == want.shape and got.dtype == np.float32
    np.testing.assert_allclose(got[:, :4], want[:, :4], atol=1e-2)
    np.testing.assert_allclose(got[:, 4], want[:, 4], atol=1e-4)


@REAL
def test_detection_limits():
    img = load_sample("coffee")  # a cup and its reflections give several low-score candidates
    dets = create_detector("retinaface")(img)
    assert len(dets) >= 2 and np.all(dets[:, 4] >= 0.05) and np.all(np.diff(dets[:, 4]) <= 0)
    assert len(create_detector("retinaface", max_detections=1)(img)) == 1
    assert np.all(create_detector("retinaface", threshold=0.5)(img)[:, 4] >= 0.5)
