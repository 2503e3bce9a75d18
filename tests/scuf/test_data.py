"""Unpaired training data: folders, captions, checks before training, seeded sampling, preparation, validation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from gefu.bench.degrade import darken
from gefu.imageio import ImageReadError, load_image, save_image
from gefu.samples import load_sample
from gefu.scuf.data import (
    DataConfig,
    UnpairedData,
    build_train_data,
    build_val_data,
    find_val_pairs,
    load_captions,
    resolve_domain_dirs,
)

NAMES = ("coffee", "chelsea", "astronaut", "rocket")


def _small(name: str, size=(48, 64)) -> torch.Tensor:
    return F.interpolate(load_sample(name)[None], size=size, mode="area")[0].clamp(0, 1)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    for i, name in enumerate(NAMES):
        img = _small(name)
        save_image(darken(img, exposure=0.1, seed=i), root / "trainA" / f"{name}.png")
        if i < 3:
            save_image(img, root / "trainB" / f"day_{name}.jpg")
    return root


def _write_tsv(path: Path, rows, header=("filepath", "caption")) -> Path:
    path.write_text("\t".join(header) + "\n" + "".join(f"{a}\t{b}\n" for a, b in rows), encoding="utf-8")
    return path


def test_resolve_folders(dataset, tmp_path):
    low, normal = resolve_domain_dirs(DataConfig(root=str(dataset)))
    assert (low.name, normal.name) == ("trainA", "trainB")
    (tmp_path / "train_A").mkdir()
    (tmp_path / "train_B").mkdir()
    low, normal = resolve_domain_dirs(DataConfig(root=str(tmp_path)))
    assert (low.name, normal.name) == ("train_A", "train_B")
    low, normal = resolve_domain_dirs(DataConfig(low=str(dataset / "trainB"), normal=str(dataset / "trainA")))
    assert (low.name, normal.name) == ("trainB", "trainA")
    with pytest.raises(FileNotFoundError, match="trainA"):
        resolve_domain_dirs(DataConfig(root=str(dataset / "trainA")))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_domain_dirs(DataConfig(root=str(tmp_path / "nope")))


def test_empty_folder_and_unreadable_image_fail_before_training(dataset, tmp_path):
    (tmp_path / "trainA").mkdir()
    (tmp_path / "trainB").mkdir()
    with pytest.raises(ValueError, match="contains no images"):
        build_train_data(DataConfig(root=str(tmp_path)), need_captions=False)
    save_image(_small("coffee"), tmp_path / "trainA" / "ok.png")
    save_image(_small("coffee"), tmp_path / "trainB" / "ok.png")
    (tmp_path / "trainB" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (tmp_path / "trainA" / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageReadError) as err:
        build_train_data(DataConfig(root=str(tmp_path)), need_captions=False)
    assert "broken.png" in str(err.value) and "empty.jpg" in str(err.value) and "2 image(s)" in str(err.value)


def test_caption_files_all_formats(tmp_path):
    rows = [("a.png", "a dark street"), ("sub/b.png", "a cat, at night")]
    tsv = _write_tsv(tmp_path / "c.tsv", rows)
    csv_path = tmp_path / "c.csv"
    csv_path.write_text('filepath,title\na.png,a dark street\nsub/b.png,"a cat, at night"\n', encoding="utf-8")
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text("".join(json.dumps({"filepath": a, "caption": b}) + "\n" for a, b in rows), encoding="utf-8")
    for path in (tsv, csv_path, jsonl):
        assert load_captions(path) == rows
    bad = _write_tsv(tmp_path / "bad.tsv", rows, header=("name", "words"))
    with pytest.raises(ValueError, match="filepath"):
        load_captions(bad)


def test_captions_matched_by_path_or_name(dataset, tmp_path):
    low = dataset / "trainA"
    cap_low = _write_tsv(
        tmp_path / "low.tsv",
        [(str((low / "coffee.png").resolve()), "cup"), ("chelsea.png", "cat"),
         ("elsewhere/astronaut.png", "astronaut"), ("rocket.png", "rocket")],
    )
    cap_normal = _write_tsv(dataset / "trainB" / "captions.tsv",
                            [(f"day_{n}.jpg", f"day {n}") for n in NAMES[:3]])  # found automatically
    data = build_train_data(DataConfig(root=str(dataset), captions_low=str(cap_low)), need_captions=True)
    got = dict(zip([p.name for p in data.low], data.low_captions))
    assert got == {"astronaut.png": "astronaut", "chelsea.png": "cat", "coffee.png": "cup", "rocket.png": "rocket"}
    assert data.normal_captions == ["day astronaut", "day chelsea", "day coffee"]
    batch = data.batch(0, batch_size=2)
    for path, cap in zip(batch.low_paths, batch.low_captions):
        assert got[Path(path).name] == cap
    cap_normal.unlink()


def test_missing_captions_fail_before_training(dataset, tmp_path):
    with pytest.raises(FileNotFoundError, match="gefu caption"):
        build_train_data(DataConfig(root=str(dataset)), need_captions=True)
    partial = _write_tsv(tmp_path / "p.tsv", [("coffee.png", "cup")])
    with pytest.raises(ValueError, match="3 of 4 low-light images have no caption"):
        build_train_data(DataConfig(root=str(dataset), captions_low=str(partial)), need_captions=True)
    # without caption consistency no captions are needed
    assert build_train_data(DataConfig(root=str(dataset)), need_captions=False).low_captions is None


def test_sampling_is_a_pure_function_of_seed_and_index(dataset):
    cfg = DataConfig(root=str(dataset), resize=40, crop=32, seed=7)
    a = build_train_data(cfg, need_captions=False)
    b = build_train_data(cfg, need_captions=False)
    for index in (0, 5, 3, 11):  # any order: no hidden state
        x, y = a.batch(index, 2), b.batch(index, 2)
        assert torch.equal(x.low, y.low) and torch.equal(x.normal, y.normal)
        assert x.low_paths == y.low_paths and x.normal_paths == y.normal_paths
    assert a.batch(0, 1).low.shape == (1, 3, 32, 32)
    other = build_train_data(DataConfig(root=str(dataset), resize=40, crop=32, seed=8), need_captions=False)
    assert [other.indices(i) for i in range(8)] != [a.indices(i) for i in range(8)]


def test_every_low_image_once_per_epoch_and_random_pairing(dataset):
    data = build_train_data(DataConfig(root=str(dataset), seed=1), need_captions=False)
    n = len(data.low)
    orders = [[data.indices(e * n + i)[0] for i in range(n)] for e in range(3)]
    assert all(sorted(o) == list(range(n)) for o in orders)
    assert len({tuple(o) for o in orders}) > 1  # reshuffled between epochs
    partners = {data.indices(i)[1] for i in range(60)}
    assert partners == set(range(len(data.normal)))


def test_official_preparation_is_lanczos_resize_crop_flip(tmp_path):
    img = _small("chelsea", size=(40, 56))
    save_image(img, tmp_path / "a.png")
    path = tmp_path / "a.png"
    pil = Image.open(path).convert("RGB").resize((32, 32), Image.LANCZOS)  # independent reference
    ref = torch.from_numpy(np.asarray(pil, dtype=np.float32) / 255.0).permute(2, 0, 1)
    data = UnpairedData([path], [path], DataConfig(resize=32, crop=32, hflip=True, seed=0))
    flips = set()
    for i in range(12):
        out = data.item(i)[0]
        if torch.allclose(out, ref, atol=1 / 255):
            flips.add(False)
        elif torch.allclose(out, ref.flip(-1), atol=1 / 255):
            flips.add(True)
        else:
            pytest.fail("output is neither the resized image nor its mirror")
    assert flips == {False, True}


def test_crop_preparation_takes_a_window_of_the_original(tmp_path):
    img = _small("rocket", size=(40, 56))
    save_image(img, tmp_path / "a.png")
    orig = load_image(tmp_path / "a.png")
    data = UnpairedData([tmp_path / "a.png"], [tmp_path / "a.png"],
                        DataConfig(preparation="crop", crop=24, hflip=False, seed=3))
    offsets = set()
    for i in range(6):
        out = data.item(i)[0]
        hits = [(y, x) for y in range(17) for x in range(33) if torch.equal(orig[:, y:y + 24, x:x + 24], out)]
        assert hits, "the crop is not a window of the original"
        offsets.add(hits[0])
    assert len(offsets) > 1
    # smaller than the crop: upscaled first, still a full crop
    tiny = UnpairedData([tmp_path / "a.png"], [tmp_path / "a.png"], DataConfig(preparation="crop", crop=64))
    assert tiny.item(0)[0].shape == (3, 64, 64)


def test_validation_pairs_by_name(tmp_path):
    val = tmp_path / "val"
    for i, name in enumerate(("coffee", "chelsea")):
        img = _small(name)
        save_image(darken(img, exposure=0.1, seed=i), val / "low" / f"low{i:05d}.png")  # LOL-v2 naming
        save_image(img, val / "high" / f"normal{i:05d}.png")
    pairs = find_val_pairs(val / "low", val / "high")
    assert [(a.name, b.name) for a, b in pairs] == [("low00000.png", "normal00000.png"),
                                                    ("low00001.png", "normal00001.png")]
    data = build_val_data(DataConfig(val=str(val), val_size=24))
    low, normal = data.load(1)
    assert low.shape == normal.shape == (1, 3, 24, 32)
    save_image(_small("rocket"), val / "low" / "extra.png")
    with pytest.raises(ValueError, match="extra.png"):
        find_val_pairs(val / "low", val / "high")
    with pytest.raises(FileNotFoundError, match="low-light folder"):
        build_val_data(DataConfig(val=str(val / "low")))
    assert build_val_data(DataConfig()) is None


def test_config_validation():
    with pytest.raises(ValueError, match="preparation"):
        DataConfig(preparation="resize")
    with pytest.raises(ValueError, match="crop"):
        DataConfig(resize=64, crop=128)
