"""The runner on gefu.pipeline: the next image is decoded while the current one is computed, outputs are written
behind on another thread, files and records come out in sample order, timing covers the enhancement call only,
and Ctrl-C leaves only complete files that a rerun trusts."""

from __future__ import annotations

import json
import threading
import time

import pytest
import torch

from gefu.bench import runner
from gefu.bench.runner import enhance_samples, run_suite, timing_summary
from gefu.bench.suites import create_suite
from gefu.enhancers.base import Enhancer
from gefu.imageio import load_image


class Probe(Enhancer):
    """Identity that, while computing image i, waits (up to 5 s) for the load of image i + 1 to have finished:
    only an overlapped runner lets that happen. Records whether it did, and on which thread it ran."""

    name = "test-probe"
    loaded: dict[str, threading.Event] = {}
    order: list[str] = []
    overlapped: list[bool] = []
    threads: set[str] = set()
    interrupt_at: int | None = None

    def enhance(self, x: torch.Tensor) -> torch.Tensor:
        Probe.threads.add(threading.current_thread().name)
        i = len(Probe.overlapped)
        if Probe.interrupt_at is not None and i == Probe.interrupt_at:
            raise KeyboardInterrupt
        if i + 1 < len(Probe.order):
            Probe.overlapped.append(Probe.loaded[Probe.order[i + 1]].wait(timeout=5.0))
        else:
            Probe.overlapped.append(True)
        return x


@pytest.fixture(scope="module", autouse=True)
def _registered(register_enhancers):
    register_enhancers(Probe)


@pytest.fixture
def samples(tmp_path):
    suite = create_suite("mini", max_side=64, photos=["coffee", "chelsea"], classifier=None, detector=None,
                         lpips=False)
    return suite.prepare(tmp_path / "inputs")


@pytest.fixture
def probe(samples, monkeypatch):
    """Watch the runner's image decoding and encoding: which thread, and when each input finished loading."""
    Probe.loaded = {str(s.input): threading.Event() for s in samples}
    Probe.order = [str(s.input) for s in samples]
    Probe.overlapped, Probe.threads, Probe.interrupt_at = [], set(), None
    io_threads = {"load": set(), "save": set()}

    def load(path):
        io_threads["load"].add(threading.current_thread().name)
        img = load_image(path)
        if str(path) in Probe.loaded:
            Probe.loaded[str(path)].set()
        return img

    def save(img, path):
        io_threads["save"].add(threading.current_thread().name)
        time.sleep(0.02 * (hash(path.name) % 3))  # uneven write times must not reorder anything
        return real_save(img, path)

    real_save = runner.save_image
    monkeypatch.setattr(runner, "load_image", load)
    monkeypatch.setattr(runner, "save_image", save)
    return io_threads


def test_next_image_is_decoded_while_the_current_one_is_computed(tmp_path, samples, probe):
    assert enhance_samples(Probe(), samples, tmp_path / "c", torch.device("cpu"), warmup=0) == len(samples)
    assert all(Probe.overlapped)  # a serial loop would time out waiting for image i + 1 while computing image i
    main = threading.current_thread().name
    assert Probe.threads == {main}  # the model runs where the caller is
    assert probe["load"] and main not in probe["load"]  # decoding and encoding on background threads
    assert probe["save"] and main not in probe["save"]


def test_files_and_records_in_sample_order_and_equal_to_the_serial_loop(tmp_path, samples, probe):
    enhance_samples(Probe(), samples, tmp_path / "a", torch.device("cpu"), warmup=0)
    Probe.overlapped = []
    for ev in Probe.loaded.values():
        ev.set()  # the serial loop loads in line: let the probe through
    enhance_samples(Probe(), samples, tmp_path / "b", torch.device("cpu"), warmup=0, overlap=False)
    lines = {d: (tmp_path / d / "manifest.jsonl").read_text().splitlines() for d in "ab"}
    assert [json.loads(line)["id"] for line in lines["a"]] == [s.id for s in samples]
    assert lines["a"] == lines["b"]  # same digests, same order
    for s in samples:
        assert (tmp_path / "a" / f"{s.id}.png").read_bytes() == (tmp_path / "b" / f"{s.id}.png").read_bytes()


class SlowIOFastCompute(Enhancer):
    name = "test-fast"

    def enhance(self, x: torch.Tensor) -> torch.Tensor:
        return x


def test_timing_measures_the_enhancement_call_only(tmp_path, samples, monkeypatch):
    real_load, real_save = runner.load_image, runner.save_image
    monkeypatch.setattr(runner, "load_image", lambda p: time.sleep(0.2) or real_load(p))
    monkeypatch.setattr(runner, "save_image", lambda img, p: time.sleep(0.2) or real_save(img, p))
    enhance_samples(SlowIOFastCompute(), samples[:3], tmp_path / "c", torch.device("cpu"), warmup=0)
    summary = timing_summary(tmp_path / "c", samples[:3], computed_now=3, warmup=0)
    assert summary["n_timed"] == 3 and summary["median_s"] < 0.1  # 0.2 s of decoding or encoding is not in it


def test_ctrl_c_leaves_complete_files_and_a_rerun_computes_only_the_rest(tmp_path, samples, probe):
    for ev in Probe.loaded.values():
        ev.set()
    Probe.interrupt_at = 3
    suite = create_suite("mini", max_side=64, photos=["coffee", "chelsea"], classifier=None, detector=None,
                         lpips=False)
    with pytest.raises(KeyboardInterrupt):
        run_suite(suite, ["test-probe"], tmp_path / "out", warmup=0)
    cache = next((tmp_path / "out" / "cache").glob("test-probe-*/mini-*"))
    written = sorted(p.name for p in cache.glob("*.png"))
    assert len(written) == 3 and not list(cache.glob(".*.tmp"))  # the three computed images, each complete
    assert len((cache / "manifest.jsonl").read_text().splitlines()) == 3

    Probe.interrupt_at, Probe.overlapped = None, []
    res = run_suite(suite, ["test-probe"], tmp_path / "out", warmup=0)
    record = next(r for r in res.records if r["method"] == "test-probe")
    assert record["time"]["computed_this_run"] == len(samples) - 3
