"""No stale benchmark number: cache keys follow content, corrupt or edited cache entries are not trusted, and one
output folder serves one run at a time (issue 11, item 1)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gefu.bench.cache import BenchBusyError, bench_lock
from gefu.bench.runner import run_suite
from gefu.bench.suites import create_suite
from gefu.enhancers.base import Enhancer
from gefu.imageio import load_image


class FileGain(Enhancer):
    """Multiplies by the gain written in the file `weights` (like a checkpoint: the config names the path only)
    and adds `offset`, an option it leaves out of `config()` (like SCUF's `clip`)."""

    name = "test-file-gain"
    calls = 0

    def __init__(self, weights: str = "", offset: float = 0.0) -> None:
        super().__init__(weights=str(weights))
        self.gain = json.loads(Path(weights).read_text())["gain"]
        self.offset = offset

    def enhance(self, x: torch.Tensor) -> torch.Tensor:
        FileGain.calls += 1
        return x * self.gain + self.offset


class Gain(Enhancer):
    name = "test-gain2"
    calls = 0

    def enhance(self, x: torch.Tensor) -> torch.Tensor:
        Gain.calls += 1
        return x * 2


@pytest.fixture(scope="module", autouse=True)
def _registered(register_enhancers):
    register_enhancers(FileGain, Gain)


@pytest.fixture(autouse=True)
def _reset():
    FileGain.calls = Gain.calls = 0


def tiny_mini():
    return create_suite("mini", max_side=48, photos=["coffee"], levels="dark", classifier=None, detector=None,
                        lpips=False, references=False)


def test_checkpoint_replaced_in_place_is_recomputed(tmp_path):
    ckpt = tmp_path / "gain.json"
    ckpt.write_text(json.dumps({"gain": 2.0}))
    opts = {"test-file-gain": {"weights": str(ckpt)}}
    a = run_suite(tiny_mini(), ["test-file-gain"], tmp_path / "out", warmup=0, method_options=opts)
    ckpt.write_text(json.dumps({"gain": 3.0}))  # same path, new weights
    FileGain.calls = 0
    b = run_suite(tiny_mini(), ["test-file-gain"], tmp_path / "out", warmup=0, method_options=opts)
    assert FileGain.calls == 1  # recomputed, not "all outputs cached"
    assert b.records[0]["metrics"]["psnr"] != a.records[0]["metrics"]["psnr"]


def test_an_option_the_config_leaves_out_still_keys_the_cache(tmp_path):
    ckpt = tmp_path / "gain.json"
    ckpt.write_text(json.dumps({"gain": 2.0}))
    a = run_suite(tiny_mini(), ["test-file-gain"], tmp_path / "out", warmup=0,
                  method_options={"test-file-gain": {"weights": str(ckpt), "offset": 0.0}})
    FileGain.calls = 0
    b = run_suite(tiny_mini(), ["test-file-gain"], tmp_path / "out", warmup=0,
                  method_options={"test-file-gain": {"weights": str(ckpt), "offset": 0.1}})
    assert FileGain.calls == 1 and b.records[0]["metrics"]["psnr"] != a.records[0]["metrics"]["psnr"]


def test_scuf_checkpoint_replaced_in_place_is_recomputed(tmp_path):
    """The real case: a SCUF save_pretrained folder overwritten by a later training run under the same path."""
    from gefu.scuf.config import SCUFConfig
    from gefu.scuf.generator import SCUFGenerator

    torch.set_num_threads(1)
    gen = SCUFGenerator(SCUFConfig(base="tiny-random", seed=0), inference_only=True)
    gen.save_pretrained(tmp_path / "ckpt")
    suite = create_suite("mini", max_side=32, photos=["coffee"], levels="dark", classifier=None, detector=None,
                         lpips=False, references=False)
    opts = {"scuf": {"checkpoint": str(tmp_path / "ckpt")}}
    a = run_suite(suite, ["scuf"], tmp_path / "out", warmup=0, method_options=opts)
    with torch.no_grad():
        for p in gen.trainable_parameters():
            p.add_(0.05)
    gen.save_pretrained(tmp_path / "ckpt")  # same folder, other weights
    b = run_suite(suite, ["scuf"], tmp_path / "out", warmup=0, method_options=opts)
    assert b.records[0]["time"]["computed_this_run"] == 1
    assert b.runs["scuf"].cache_dir != a.runs["scuf"].cache_dir
    assert b.records[0]["metrics"]["psnr"] != a.records[0]["metrics"]["psnr"]


def _lol(root: Path, photo: torch.Tensor, value: float = 0.1) -> None:
    base = root / "Real_captured" / "Test"
    for i in (1, 2):
        ref = (photo[0, :, :40, i * 10: i * 10 + 40].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        (base / "Normal").mkdir(parents=True, exist_ok=True)
        (base / "Low").mkdir(parents=True, exist_ok=True)
        Image.fromarray(ref).save(base / "Normal" / f"normal{i:05d}.png")
        Image.fromarray((ref * value).astype(np.uint8)).save(base / "Low" / f"low{i:05d}.png")


def test_dataset_images_replaced_in_place_are_recomputed_and_rescored(tmp_path, photo):
    _lol(tmp_path / "LOL", photo, 0.1)
    suite = lambda: create_suite("lol", data=str(tmp_path / "LOL"), lpips=False)  # noqa: E731
    a = run_suite(suite(), ["test-gain2"], tmp_path / "out", warmup=0)
    assert Gain.calls == 2
    _lol(tmp_path / "LOL", photo, 0.3)  # the same files, brighter inputs
    b = run_suite(suite(), ["test-gain2"], tmp_path / "out", warmup=0)
    assert Gain.calls == 4 and b.records[0]["metrics"]["psnr"] != a.records[0]["metrics"]["psnr"]
    # A reference replaced in place: outputs are still valid, their scores are not.
    ref = tmp_path / "LOL" / "Real_captured" / "Test" / "Normal" / "normal00001.png"
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(ref)
    c = run_suite(suite(), ["test-gain2"], tmp_path / "out", warmup=0)
    assert Gain.calls == 4 and c.records[0]["metrics"]["psnr"] != b.records[0]["metrics"]["psnr"]


def test_corrupt_cached_image_is_recomputed(tmp_path):
    a = run_suite(tiny_mini(), ["test-gain2"], tmp_path, warmup=0)
    png = next(a.runs["test-gain2"].cache_dir.glob("*.png"))
    png.write_bytes(png.read_bytes()[:40])  # truncated
    Gain.calls = 0
    b = run_suite(tiny_mini(), ["test-gain2"], tmp_path, warmup=0)  # no traceback
    assert Gain.calls == 1
    assert b.records[0]["metrics"]["psnr"] == pytest.approx(a.records[0]["metrics"]["psnr"], abs=1e-9)
    # A valid image put in its place by hand is not trusted either.
    Image.fromarray(np.zeros((36, 48, 3), np.uint8)).save(png)
    Gain.calls = 0
    c = run_suite(tiny_mini(), ["test-gain2"], tmp_path, warmup=0)
    assert Gain.calls == 1 and c.records[0]["metrics"]["psnr"] == pytest.approx(a.records[0]["metrics"]["psnr"])
    assert torch.equal(load_image(png), load_image(png))  # readable again


def test_edited_score_records_are_not_trusted(tmp_path, caplog):
    a = run_suite(tiny_mini(), ["test-gain2"], tmp_path, warmup=0)
    true_psnr = a.records[0]["metrics"]["psnr"]
    partial = next((tmp_path / "partial").rglob("*.jsonl"))
    rec = json.loads(partial.read_text().splitlines()[0])
    forged = {**rec, "psnr": 99.0}
    partial.write_text(partial.read_text() + json.dumps(forged) + "\n")  # a line appended by hand
    b = run_suite(tiny_mini(), ["test-gain2"], tmp_path, warmup=0)
    assert b.records[0]["metrics"]["psnr"] == pytest.approx(true_psnr, abs=1e-9)
    assert "failed their checksum" in caplog.text
    # The same for a value edited inside an existing line.
    partial.write_text(partial.read_text().replace(f'"psnr":{rec["psnr"]}', '"psnr":99.0'))
    c = run_suite(tiny_mini(), ["test-gain2"], tmp_path, warmup=0)
    assert c.records[0]["metrics"]["psnr"] == pytest.approx(true_psnr, abs=1e-9)


def test_a_second_run_on_the_same_folder_is_refused(tmp_path, capsys):
    from gefu.cli import main

    held, release = threading.Event(), threading.Event()

    def first_run():
        with bench_lock(tmp_path / "out"):
            held.set()
            release.wait(30)

    t = threading.Thread(target=first_run)
    t.start()
    try:
        assert held.wait(30)
        with pytest.raises(BenchBusyError, match="in use by another gefu bench run"):
            run_suite(tiny_mini(), ["test-gain2"], tmp_path / "out", warmup=0)
        code = main(["bench", "--suite", "mini", "--methods", "none", "-o", str(tmp_path / "out"), "--quiet",
                     "--option", "suite.photos=coffee", "--option", "suite.max_side=48"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 1 and len(err) == 1 and "in use by another gefu bench run" in err[0]
        assert not (tmp_path / "out" / "results.json").exists()
    finally:
        release.set()
        t.join()
    # Once the first run is done, the folder is free again; nested locks of one run are free.
    with bench_lock(tmp_path / "out"), bench_lock(tmp_path / "out"):
        pass
