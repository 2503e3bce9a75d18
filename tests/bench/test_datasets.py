"""Dataset loaders on small fixture folders built with each real layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gefu.bench.datasets import (
    CODAN_CLASSES,
    bdd_night,
    codan,
    darkface,
    labelled,
    list_datasets,
    load_boxes,
    load_dataset,
    load_label,
    lol_v2_real,
    lsrw,
    paired,
)


def _img(path: Path, value: int, size: tuple[int, int] = (6, 4)) -> Path:
    """A tiny RGB image whose pixels all equal `value`, so a test can tell which file a sample points to."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8)).save(path)
    return path


def _value(path: Path) -> int:
    return int(np.asarray(Image.open(path))[0, 0, 0])


# ------------------------------------------------------------------------------------------------ LOL-v2-real


@pytest.fixture
def lol_root(tmp_path: Path) -> Path:
    base = tmp_path / "LOL-v2" / "Real_captured" / "Test"
    # Zero-padding differs between sides (normal0010 vs low00010), so sorted listings would not line up.
    for i in (9, 10, 690):
        _img(base / "Low" / f"low{i:05d}.png", i % 256)
    for name, i in (("normal00009.png", 9), ("normal0010.png", 10), ("normal00690.png", 690)):
        _img(base / "Normal" / name, i % 256)
    (base / "Train" / "Low").mkdir(parents=True)  # unrelated folder, ignored
    return tmp_path / "LOL-v2"


def test_lol_pairs_by_number_from_any_root_level(lol_root):
    for root in (lol_root, lol_root / "Real_captured", lol_root / "Real_captured" / "Test"):
        ds = lol_v2_real(root)
        assert ds.task == "iqa" and len(ds) == 3
        assert [s.id for s in ds] == ["Low/low00009.png", "Low/low00010.png", "Low/low00690.png"]
        for s in ds:
            assert s.image.parent.name == "Low" and s.target.parent.name == "Normal"
            assert _value(s.image) == _value(s.target)
    assert load_dataset("lol", lol_root)[2].target.name == "normal00690.png"


def test_lol_unpaired_and_wrong_layout_errors(lol_root, tmp_path):
    base = lol_root / "Real_captured" / "Test"
    _img(base / "Low" / "low00777.png", 7)
    with pytest.raises(ValueError, match="low00777.png"):
        lol_v2_real(lol_root)
    assert len(lol_v2_real(lol_root, strict=False)) == 3
    _img(base / "Normal" / "normal777.png", 7)  # same number, different padding: pairs
    assert len(lol_v2_real(lol_root)) == 4
    _img(base / "Normal" / "normal0777.png", 7)  # two normals claim id 777
    with pytest.raises(ValueError, match="same key"):
        lol_v2_real(lol_root)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"Real_captured/Test/\{Low,Normal\}"):
        lol_v2_real(tmp_path / "empty")


# ------------------------------------------------------------------------------------------------ LSRW


def test_lsrw_two_subsets_pair_by_name(tmp_path):
    ev = tmp_path / "LSRW" / "Eval"
    for cam, names in (("Huawei", ["2.jpg", "10.jpg"]), ("Nikon", ["3000.jpg"])):
        for k, n in enumerate(names):
            _img(ev / cam / "low" / n, 10 * k + len(cam))
            _img(ev / cam / "high" / n, 10 * k + len(cam))
    ds = lsrw(tmp_path / "LSRW")
    assert sorted(s.id for s in ds) == ["Huawei/low/10.jpg", "Huawei/low/2.jpg", "Nikon/low/3000.jpg"]
    for s in ds:
        assert s.target == ev / s.id.replace("/low/", "/high/")
    assert len(lsrw(ev, subsets=["Nikon"])) == 1
    assert len(lsrw(ev, subsets="Nikon")) == 1
    (ev / "Nikon" / "high" / "3000.jpg").unlink()
    with pytest.raises(ValueError, match="without a target"):
        lsrw(ev)
    with pytest.raises(FileNotFoundError, match="Eval"):
        lsrw(tmp_path, subsets=["Sony"])


# ------------------------------------------------------------------------------------------------ CODaN


def test_codan_classes_in_design_order(tmp_path):
    split = tmp_path / "CODaN" / "data" / "test_night"
    for i, name in enumerate(CODAN_CLASSES):
        folder = name.lower() if name == "Cup" else name  # folder names matched case-insensitively
        _img(split / folder / f"night_{i:04d}.jpg", i)
    ds = codan(tmp_path / "CODaN")
    assert ds.task == "classification" and ds.classes == CODAN_CLASSES and ds.num_classes == 10
    assert CODAN_CLASSES == ("Bicycle", "Car", "Motorbike", "Bus", "Boat", "Cat", "Dog", "Bottle", "Cup", "Chair")
    by_id = {s.id: s.target for s in ds}
    assert by_id["Cat/night_0005.jpg"] == 5 and by_id["Chair/night_0009.jpg"] == 9 and by_id["cup/night_0008.jpg"] == 8
    assert load_dataset("codan", split).root == split
    import shutil

    shutil.rmtree(split / "Boat")
    with pytest.raises(FileNotFoundError, match="Boat"):
        codan(split)


# ------------------------------------------------------------------------------------------------ DARK FACE


@pytest.fixture
def darkface_root(tmp_path: Path) -> Path:
    root = tmp_path / "DarkFace"
    for i in (1, 2, 10):
        _img(root / "image" / f"{i}.png", i)
    (root / "label").mkdir()
    (root / "label" / "1.txt").write_text("2\n10 20 30 45\n50 60 58 70\n")
    (root / "label" / "2.txt").write_text("0\n")
    (root / "label" / "10.txt").write_text("1\n1 2 3 4\n")
    return root


def test_darkface_boxes_and_test_list(darkface_root, tmp_path):
    ds = darkface(darkface_root)
    assert ds.task == "detection" and [s.id for s in ds] == ["image/1.png", "image/10.png", "image/2.png"]
    boxes = {s.id: s.target.boxes for s in ds}
    np.testing.assert_array_equal(boxes["image/1.png"], [[10, 20, 30, 45], [50, 60, 58, 70]])
    assert boxes["image/2.png"].shape == (0, 4) and boxes["image/1.png"].dtype == np.float32
    assert all(s.target.ignore.shape == (0, 4) for s in ds)  # txt labels have no difficult faces
    lst = tmp_path / "test_list.txt"
    lst.write_text("10.png\n# a comment\n\n1\n")
    ds = darkface(darkface_root, test_list=lst)
    assert [s.id for s in ds] == ["image/10.png", "image/1.png"]
    lst.write_text("1.png\n99.png\n")
    with pytest.raises(FileNotFoundError, match="99"):
        darkface(darkface_root, test_list=lst)


def test_darkface_label_errors(darkface_root):
    bad = darkface_root / "label" / "bad.txt"
    bad.write_text("3\n1 2 3 4\n")
    with pytest.raises(ValueError, match="header says 3 boxes but 1"):
        load_boxes(bad)
    bad.write_text("1\n10 10 5 5\n")
    with pytest.raises(ValueError, match="x2 < x1"):
        load_boxes(bad)
    (darkface_root / "label" / "10.txt").unlink()
    with pytest.raises(FileNotFoundError, match="10.txt"):
        darkface(darkface_root)
    with pytest.raises(FileNotFoundError, match="image"):
        darkface(darkface_root / "label")


def write_voc(path: Path, faces: list[tuple[float, float, float, float, int]], size=(64, 48)) -> None:
    """A VOC XML annotation as the DARK FACE release has it: one <object> Face per box, with <difficult>."""
    objs = "".join(
        f"<object><name>Face</name><difficult>{d}</difficult><bndbox><xmin>{a}</xmin><ymin>{b}</ymin>"
        f"<xmax>{c}</xmax><ymax>{e}</ymax></bndbox></object>" for a, b, c, e, d in faces
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<annotation><size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>"
                    f"{objs}</annotation>")


@pytest.mark.parametrize("layout", ["DARK_FACE/images", "UG2/imgs", "DARK_FACE/image"])
def test_darkface_release_layouts_read_xml_and_val_list(tmp_path, layout):
    # The authors' release: DARK_FACE/{images, label, xml, main/val.txt}; MAET's: UG2/{imgs, xml, label, main}.
    base = tmp_path / layout.split("/")[0]
    for i in (1, 2, 3):
        _img(base / layout.split("/")[1] / f"{i}.png", i)
        (base / "label").mkdir(exist_ok=True)
        (base / "label" / f"{i}.txt").write_text("1\n10.7 20.2 30.9 40.5\n")
        write_voc(base / "xml" / f"{i}.xml", [(10.7, 20.2, 30.9, 40.5, 0), (40.0, 5.0, 44.0, 9.0, 1)])
    (base / "main").mkdir()
    (base / "main" / "val.txt").write_text("3\n1\n")
    for root in (tmp_path, base):  # the folder holding DARK_FACE/ or UG2/, or that folder itself
        ds = darkface(root)
        assert [s.id for s in ds] == [f"{layout.split('/')[1]}/3.png", f"{layout.split('/')[1]}/1.png"]
        assert ds.info["test_list"].endswith("main/val.txt")
    # Default: the txt labels, as written.
    np.testing.assert_allclose(darkface(base)[0].target.boxes, [[10.7, 20.2, 30.9, 40.5]], rtol=1e-6)
    # XML: the difficult face is ignored, not a ground truth; coordinates as written.
    t = darkface(base, annotations="xml")[0].target
    np.testing.assert_allclose(t.boxes, [[10.7, 20.2, 30.9, 40.5]], rtol=1e-6)
    np.testing.assert_array_equal(t.ignore, [[40, 5, 44, 9]])
    # The official reading (MAET's UG2FaceDataset): int() of each coordinate, then − 1 — ignored boxes too.
    t = darkface(base, annotations="xml", official_boxes=True)[0].target
    np.testing.assert_array_equal(t.boxes, [[9, 19, 29, 39]])
    np.testing.assert_array_equal(t.ignore, [[39, 4, 43, 8]])
    with pytest.raises(ValueError, match="XML"):
        darkface(base, annotations="txt", official_boxes=True)


def test_darkface_folder_options_reach_the_loader(tmp_path):
    for i in (1, 2):
        _img(tmp_path / "dark" / f"{i}.png", i)
        (tmp_path / "boxes").mkdir(exist_ok=True)
        (tmp_path / "boxes" / f"{i}.txt").write_text("1\n1 2 3 4\n")
    with pytest.raises(FileNotFoundError, match="image"):
        darkface(tmp_path)
    ds = darkface(tmp_path, image_dir="dark", label_dir="boxes")
    assert [s.id for s in ds] == ["dark/1.png", "dark/2.png"]


# ------------------------------------------------------------------------------------------------ BDD100k-night


def test_bdd_night_pairs_images_with_trainid_labels(tmp_path):
    root = tmp_path / "bdd_night"
    (root / "labels").mkdir(parents=True)
    for i, stem in enumerate(["b1c81faa-3df17267", "b1d0a191-03dcecc2"]):
        _img(root / "images" / f"{stem}.jpg", i)
        lab = np.full((4, 6), 255, np.uint8)
        lab[0, :3] = i  # class id i
        lab[1, :] = 18
        Image.fromarray(lab, mode="L").save(root / "labels" / f"{stem}_train_id.png")
    ds = bdd_night(root)
    assert ds.task == "segmentation" and ds.num_classes == 19 and ds.ignore_index == 255
    assert [s.id for s in ds] == ["images/b1c81faa-3df17267.jpg", "images/b1d0a191-03dcecc2.jpg"]
    label = load_label(ds[1].target)
    assert label.dtype == np.int64 and label.shape == (4, 6)
    assert label[0, 0] == 1 and label[1, 5] == 18 and label[3, 3] == 255
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(root / "rgb.png")
    with pytest.raises(ValueError, match="class ids"):
        load_label(root / "rgb.png")
    with pytest.raises(FileNotFoundError, match="labels"):
        bdd_night(root / "images")


def test_bdd_night_official_layout_and_label_values(tmp_path):
    # The authors' release: images/test/*.jpg (dark inputs) + labels/test/*.png; other image folders beside.
    root = tmp_path / "bdd100k-night"
    _img(root / "images" / "test" / "a.jpg", 1)
    _img(root / "images" / "gefu_seg" / "a.png", 2)  # enhanced outputs of the official scripts: not inputs
    lab = np.full((4, 6), 255, np.uint8)
    lab[0] = 18
    (root / "labels" / "test").mkdir(parents=True)
    Image.fromarray(lab, mode="L").save(root / "labels" / "test" / "a.png")
    ds = bdd_night(root)
    assert [s.id for s in ds] == ["images/test/a.jpg"] and ds[0].target == root / "labels" / "test" / "a.png"
    assert load_label(ds[0].target, num_classes=19).max() == 255
    # A Cityscapes labelIds PNG (ids up to 33) given as trainIds: an error naming the file, not pixels dropped.
    lab[1] = 26  # labelId of "car"
    Image.fromarray(lab, mode="L").save(root / "labels" / "test" / "a.png")
    with pytest.raises(ValueError, match=r"a\.png: label values \[26\]"):
        load_label(ds[0].target, num_classes=19)
    assert load_label(ds[0].target).max() == 255  # without num_classes: read as is


# ------------------------------------------------------------------------------------------------ generic folders


def test_paired_folders_by_stem_and_by_number(tmp_path):
    _img(tmp_path / "low" / "a.png", 1)
    _img(tmp_path / "low" / "sub" / "b.jpg", 2)
    _img(tmp_path / "high" / "a.jpg", 1)  # extension may differ
    _img(tmp_path / "high" / "sub" / "b.png", 2)
    ds = paired(tmp_path, recursive=True)
    assert [s.id for s in ds] == ["low/a.png", "low/sub/b.jpg"]
    assert all(_value(s.image) == _value(s.target) for s in ds)
    _img(tmp_path / "dark" / "img_3.png", 3)
    _img(tmp_path / "bright" / "gt003.png", 3)
    (s,) = load_dataset("paired", tmp_path, low="dark", high="bright", key="number")
    assert s.target.name == "gt003.png"
    with pytest.raises(FileNotFoundError, match="nope"):
        paired(tmp_path, low="nope")


def test_labelled_folders(tmp_path):
    _img(tmp_path / "dog" / "1.png", 1)
    _img(tmp_path / "cat" / "2.png", 2)
    _img(tmp_path / "cat" / ".hidden.png", 2)
    ds = labelled(tmp_path)
    assert ds.classes == ("cat", "dog") and {s.id: s.target for s in ds} == {"cat/2.png": 0, "dog/1.png": 1}
    ds = labelled(tmp_path, classes=["dog", "cat"])
    assert {s.id: s.target for s in ds} == {"cat/2.png": 1, "dog/1.png": 0}
    with pytest.raises(FileNotFoundError, match="bird"):
        labelled(tmp_path, classes=["bird"])


def test_registry_names_and_hint():
    assert {"lol-v2-real", "lsrw", "codan", "darkface", "bdd-night", "paired", "labelled"} <= set(list_datasets())
    with pytest.raises(ValueError, match="did you mean"):
        load_dataset("lsrv", ".")
