"""The runner: enhanced images cached per (enhancer config, image) and reused, resume after a crash, timing."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import pytest
import torch

from gefu.bench.runner import enhance_samples, read_partial, run_suite, timing_summary
from gefu.bench.suites import Sample, create_suite
from gefu.enhancers.base import Enhancer
from gefu.imageio import load_image


class CountingGain(Enhancer):
    """Multiplies by `gain`; counts its calls in a class attribute and can be told to fail after n calls."""

    name = "test-counting-gain"
    calls = 0
    fail_after: int | None = None

    def __init__(self, gain: float = 3.0) -> None:
        super().__init__(gain=gain)

    def enhance(self, x: torch.Tensor) -> torch.Tensor:
        if CountingGain.fail_after is not None and CountingGain.calls >= CountingGain.fail_after:
            raise RuntimeError("simulated crash")
        CountingGain.calls += 1
        return x * self.options["gain"]


class Sleeper(Enhancer):
    """Sleeps the next duration of `durations` (seconds) per call: a known timing distribution."""

    name = "test-sleeper"
    durations: list[float] = []

    def enhance(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(Sleeper.durations.pop(0))
        return x


@pytest.fixture(scope="module", autouse=True)
def _registered_test_enhancers(register_enhancers):
    register_enhancers(CountingGain, Sleeper)


@pytest.fixture(autouse=True)
def _reset_counter():
    CountingGain.calls, CountingGain.fail_after = 0, None
    yield
    CountingGain.calls, CountingGain.fail_after = 0, None


def tiny_mini(**kw):
    """GEFU-mini on two real photos at 64 px, IQA only (no weights needed): 6 samples."""
    opts = dict(max_side=64, photos=["coffee", "chelsea"], classifier=None, detector=None, lpips=False,
                references=False, n_resamples=100)
    opts.update(kw)
    return create_suite("mini", **opts)


def test_second_run_calls_the_enhancer_zero_times(tmp_path):
    first = run_suite(tiny_mini(), ["test-counting-gain"], tmp_path, warmup=1)
    assert CountingGain.calls == 6 + 1  # six images + one warm-up call
    cache = first.runs["test-counting-gain"].cache_dir
    # <out>/cache/<method>-<hash of config>/<suite>-<input key>/<id>.png
    assert cache.parent.name.startswith("test-counting-gain-") and cache.parent.parent == tmp_path / "cache"
    assert cache.name.startswith("mini-")
    assert sorted(p.name for p in cache.glob("*.png")) == sorted(f"{s.id}.png" for s in first.samples)

    CountingGain.calls = 0
    second = run_suite(tiny_mini(), ["test-counting-gain"], tmp_path, warmup=1)
    assert CountingGain.calls == 0
    r1, r2 = first.records[0], second.records[0]
    assert r1["metrics"] == r2["metrics"]
    assert r2["time"]["computed_this_run"] == 0
    assert r2["time"]["median_s"] == r1["time"]["median_s"]  # kept from the run that computed them
    assert "cached" in r2["time"]["source"] and "measured in this run" == r1["time"]["source"]


def test_cached_output_is_what_the_enhancer_returned(tmp_path):
    res = run_suite(tiny_mini(), ["test-counting-gain"], tmp_path, warmup=0)
    s = res.samples[0]
    expected = (load_image(s.input) * 3.0).clamp(0, 1)
    got = load_image(res.runs["test-counting-gain"].cache_dir / f"{s.id}.png")
    assert torch.allclose(got, expected, atol=0.5 / 255 + 1e-6)  # 8-bit PNG rounding only


def test_changed_option_gets_a_fresh_cache(tmp_path):
    a = run_suite(tiny_mini(), ["test-counting-gain"], tmp_path, warmup=0)
    CountingGain.calls = 0
    b = run_suite(tiny_mini(), ["test-counting-gain"], tmp_path, warmup=0,
                  method_options={"test-counting-gain": {"gain": 2.0}})
    assert CountingGain.calls == 6
    assert a.runs["test-counting-gain"].cache_dir != b.runs["test-counting-gain"].cache_dir
    assert a.records[0]["metrics"]["psnr"] != b.records[0]["metrics"]["psnr"]


def test_changed_suite_inputs_get_a_fresh_cache(tmp_path):
    run_suite(tiny_mini(), ["test-counting-gain"], tmp_path, warmup=0)
    CountingGain.calls = 0
    run_suite(tiny_mini(seed=1), ["test-counting-gain"], tmp_path, warmup=0)
    assert CountingGain.calls == 6  # other darkened inputs: nothing reused


def test_interrupted_run_resumes_and_computes_only_the_rest(tmp_path):
    CountingGain.fail_after = 4
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_suite(tiny_mini(), ["test-counting-gain"], tmp_path, warmup=0)
    cache = next((tmp_path / "cache").glob("test-counting-gain-*/mini-*"))
    assert len(list(cache.glob("*.png"))) == 4
    assert len(json.loads((cache / "timings.json").read_text())["times"]) == 4
    assert not list(cache.glob(".*.tmp"))  # atomic writes leave no temporary files behind

    CountingGain.calls, CountingGain.fail_after = 0, None
    res = run_suite(tiny_mini(), ["test-counting-gain"], tmp_path, warmup=0)
    assert CountingGain.calls == 2
    assert res.records[0]["time"]["computed_this_run"] == 2
    assert res.records[0]["time"]["n_timed"] == 6
    # Same numbers as an uninterrupted run in a fresh folder.
    CountingGain.calls = 0
    clean = run_suite(tiny_mini(), ["test-counting-gain"], tmp_path / "clean", warmup=0)
    assert clean.records[0]["metrics"]["psnr"] == pytest.approx(res.records[0]["metrics"]["psnr"], abs=1e-12)


def test_scoring_resumes_from_partial_results(tmp_path, monkeypatch):
    suite = tiny_mini()
    first = run_suite(suite, ["test-counting-gain"], tmp_path, warmup=0)
    partial = next((tmp_path / "partial").glob("mini-*/test-counting-gain-*.jsonl"))
    lines = partial.read_text().splitlines()
    assert len(lines) == 6
    partial.write_text("\n".join(lines[:3]) + "\n" + lines[3][:10])  # a killed run: 3 lines + a torn one
    assert len(read_partial(partial)) == 3

    suite2 = tiny_mini()
    scored = []
    original = type(suite2).score
    monkeypatch.setattr(type(suite2), "score", lambda self, s, y: scored.append(s.id) or original(self, s, y))
    second = run_suite(suite2, ["test-counting-gain"], tmp_path, warmup=0)
    assert sorted(scored) == sorted(s.id for s in first.samples[3:])
    assert second.records[0]["metrics"]["psnr"] == pytest.approx(first.records[0]["metrics"]["psnr"], abs=1e-12)


def test_timing_is_the_median_of_the_enhancement_calls(tmp_path):
    samples = tiny_mini().prepare(tmp_path / "cache", limit=3)
    Sleeper.durations = [0.02, 0.03, 0.30]  # mean 0.117 s, median 0.03 s
    enhance_samples(Sleeper(), samples, tmp_path / "out", torch.device("cpu"), warmup=0)
    summary = timing_summary(tmp_path / "out", samples, computed_now=3, warmup=0)
    assert summary["n_timed"] == 3
    assert 0.03 <= summary["median_s"] < 0.1
    times = [t["s"] for t in json.loads((tmp_path / "out" / "timings.json").read_text())["times"].values()]
    assert summary["median_s"] == statistics.median(times)


def test_warmup_calls_are_not_timed(tmp_path):
    samples = tiny_mini().prepare(tmp_path / "cache", limit=2)
    Sleeper.durations = [0.4, 0.01, 0.01]  # a slow first (warm-up) call must not show in the timings
    enhance_samples(Sleeper(), samples, tmp_path / "out", torch.device("cpu"), warmup=1)
    assert Sleeper.durations == []
    summary = timing_summary(tmp_path / "out", samples, computed_now=2, warmup=1)
    assert summary["median_s"] < 0.2


def test_user_errors(tmp_path):
    with pytest.raises(ValueError, match="not among the methods"):
        run_suite(tiny_mini(), ["test-counting-gain"], tmp_path, method_options={"lime": {"alpha": 1}})
    with pytest.raises(ValueError, match="twice"):
        run_suite(tiny_mini(), ["test-counting-gain", "test-counting-gain"], tmp_path)
    with pytest.raises(ValueError, match="unknown enhancer"):
        run_suite(tiny_mini(), ["test-countng-gain"], tmp_path)


def test_unsafe_sample_ids_are_refused(tmp_path):
    suite = tiny_mini()
    real_prepare = suite.prepare

    def prepare(*a, **k):
        out = real_prepare(*a, **k)
        return [Sample(id="../escape", input=out[0].input, reference=out[0].reference, target={})]

    suite.prepare = prepare
    with pytest.raises(ValueError, match="safe"):
        run_suite(suite, ["test-counting-gain"], tmp_path)
    assert not (Path(tmp_path) / "escape.png").exists()
