"""ESPNet (Cityscapes): strict loading of the official checkpoint, shapes, and the official test script's
output on a real street photo (recorded as facts)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _shared import SHARED_DATA, needs_shared_data, needs_weights

from gefu import weights
from gefu.bench.tasks import SEGMENTERS, create_segmenter
from gefu.bench.tasks.espnet import ESPNetNet, preprocess, with_bn_counters

REAL = needs_weights("espnet-cityscapes")
STREET = needs_shared_data("lime", "10.bmp")  # a real night street: flats on top, road and paving below


def _lime10() -> torch.Tensor:
    import imageio.v3 as iio

    return torch.from_numpy(iio.imread(SHARED_DATA / "lime" / "10.bmp")[..., :3]).permute(2, 0, 1).float() / 255


def test_network_shapes():
    net = ESPNetNet().eval()
    with torch.no_grad():
        out = net(torch.randn(1, 3, 64, 96))
    assert out.shape == (1, 20, 64, 96)


def test_preprocess_is_the_official_one():
    img = torch.zeros(3, 4, 6)
    img[2] = 1.0  # pure blue → BGR (255, 0, 0)
    x = preprocess(img, (6, 4))
    assert x.shape == (1, 3, 4, 6)
    # ((255 − 72.39) / 45.32) / 255 for B; (0 − 82.91) / 46.15 / 255 for G
    assert x[0, 0, 0, 0].item() == pytest.approx((255 - 72.3923111) / 45.3192215 / 255, rel=1e-5)
    assert x[0, 1, 0, 0].item() == pytest.approx(-82.90893555 / 46.15289307 / 255, rel=1e-5)


@REAL
def test_official_weights_load_strictly(tmp_path):
    state = torch.load(weights.weight_path("espnet-cityscapes"), map_location="cpu", weights_only=True)
    net = ESPNetNet()
    filled = with_bn_counters(net, state)
    assert set(filled) == set(net.state_dict())  # only BN counters were missing (PyTorch < 0.4 checkpoint)
    assert len(filled) - len(state) == sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    del state["classifier.weight"]
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(ValueError, match="classifier.weight"):
        create_segmenter("espnet", checkpoint=tmp_path / "broken.pth")


# sacmehta/ESPNet @afe71c3 test/Model.py ESPNet(20, p=2, q=8) with test/VisualizeResults.py's preprocessing,
# run outside the project on LIME 10.bmp: argmax counts per output class at 1024×512, and the 20 logits at
# two pixels (row, col). (Our logits matched the official ones exactly on this image and on the two Cityscapes
# frankfurt images the repository ships.)
OFFICIAL_COUNTS = [92449, 54, 372044, 0, 761, 0, 0, 0, 23056, 0, 0, 126, 0, 2650, 0, 0, 4, 0, 11, 33133]
OFFICIAL_LOGITS = {
    (400, 512): [2.7349, 2.6034, 5.0484, -0.6848, -2.2482, -0.1443, -2.5979, -0.1225, -2.5194, -3.7783, -0.3936,
                 1.3913, -1.2802, 1.7509, 0.4775, -2.9481, -0.2188, -0.9175, -1.246, 3.9829],
    (50, 700): [-4.8938, -1.1829, 9.548, 0.1294, -0.0889, 1.6249, 0.4843, 0.6208, 0.7383, -5.2599, -0.8717, 1.718,
                -1.0746, -0.6831, -0.3232, -2.141, 0.2958, -1.517, -1.7894, 3.2923],
}


@REAL
@STREET
def test_matches_the_official_test_script():
    seg = create_segmenter("espnet")
    with torch.no_grad():
        logits = seg.logits(_lime10())  # (20, 512, 1024): the Segmenter.logits contract, (C, h, w)
    assert logits.shape == (20, 512, 1024)
    for (r, c), want in OFFICIAL_LOGITS.items():
        np.testing.assert_allclose(logits[:, r, c].numpy(), want, atol=2e-3)
    counts = np.bincount(logits.argmax(0).numpy().ravel(), minlength=20)
    np.testing.assert_allclose(counts, OFFICIAL_COUNTS, atol=60)


@REAL
@STREET
def test_labels_a_street_plausibly():
    assert "espnet" in SEGMENTERS.names()
    img = _lime10()
    labels = create_segmenter("espnet")(img)
    assert labels.shape == img.shape[-2:] and labels.dtype == np.int64
    assert set(np.unique(labels)) <= set(range(19)) | {255}
    h = labels.shape[0]
    top, bottom = labels[: h // 4], labels[3 * h // 4 :]
    assert (top == 2).mean() > 0.5  # building (blocks of flats fill the top)
    assert (bottom == 0).mean() > 0.4  # road


# ---- ESPNetv2 ---------------------------------------------------------------------------------------------------

REAL_V2 = needs_weights("espnetv2-cityscapes")

# sacmehta/EdgeNets @2b232d3 model/segmentation/espnetv2.py ESPNetv2Segmentation(s=2.0, classes=20, 'city') with
# test_segmentation.py's preprocessing (PIL bilinear to 1024×512, to_tensor, ImageNet mean/std), run outside the
# project on LIME 10.bmp: argmax counts and the logits at two pixels. (Logits matched exactly here and on the
# two Cityscapes images that sacmehta/ESPNet ships.)
OFFICIAL_V2_COUNTS = [154379, 3567, 267690, 0, 0, 1211, 0, 228, 36367, 411, 6, 3029, 0, 980, 46317, 3245, 6433, 425,
                      0, 0]
OFFICIAL_V2_LOGITS = {
    (400, 512): [5.5316, -1.7985, -1.6089, -0.2394, -0.0077, -4.3103, -2.7643, 1.5693, -0.2291, -1.5686, 0.3096,
                 3.3418, 0.436, 2.4125, 1.1722, 3.2391, -0.7876, -1.2218, -3.0649, -0.1486],
    (50, 700): [-3.2203, -2.7318, 10.6339, -1.2767, -1.2244, -0.9777, 1.9544, 1.4798, 4.6006, -2.8679, -0.4624,
                2.4294, 1.3894, -0.8461, 0.7933, -2.4609, -1.1571, -0.8958, -3.2673, -2.3151],
}


def test_espnetv2_shapes():
    from gefu.bench.tasks.espnetv2 import ESPNetv2Net

    net = ESPNetv2Net().eval()
    with torch.no_grad():
        assert net(torch.randn(1, 3, 64, 128)).shape == (1, 20, 64, 128)


@REAL_V2
def test_espnetv2_weights_load_strictly(tmp_path):
    state = torch.load(weights.weight_path("espnetv2-cityscapes"), map_location="cpu", weights_only=True)
    state["base_net.level5_0.act.weight"] = torch.zeros(1)  # the ImageNet head the segmenter drops
    torch.save(state, tmp_path / "extra.pth")
    with pytest.raises(ValueError, match="level5_0"):
        create_segmenter("espnetv2", checkpoint=tmp_path / "extra.pth")


@REAL_V2
@STREET
def test_espnetv2_matches_the_official_test_script():
    seg = create_segmenter("espnetv2")
    with torch.no_grad():
        logits = seg.logits(_lime10())  # (20, 512, 1024)
    for (r, c), want in OFFICIAL_V2_LOGITS.items():
        np.testing.assert_allclose(logits[:, r, c].numpy(), want, atol=2e-3)
    counts = np.bincount(logits.argmax(0).numpy().ravel(), minlength=20)
    np.testing.assert_allclose(counts, OFFICIAL_V2_COUNTS, atol=60)
    labels = seg(_lime10())
    h = labels.shape[0]
    assert labels.shape == (789, 1039) and (labels[: h // 4] == 2).mean() > 0.5  # building on top
    assert (labels[3 * h // 4 :] == 0).mean() > 0.4  # road below
