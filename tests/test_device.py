"""gefu.device: one --device parser, one --dtype parser, one precision warning (hand-checked cases)."""

from __future__ import annotations

import pytest
import torch

from gefu import device as dev
from gefu.device import dtype_name, parse_device, parse_dtype, precision_warning


@pytest.fixture()
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


@pytest.fixture()
def two_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)


@pytest.mark.parametrize(
    "text, expected",
    [("fp32", torch.float32), ("FP16", torch.float16), ("bf16", torch.bfloat16), ("torch.float16", torch.float16),
     ("half", torch.float16), (" bfloat16 ", torch.bfloat16), (None, torch.float32), (torch.bfloat16, torch.bfloat16)],
)
def test_parse_dtype_names(text, expected):
    assert parse_dtype(text) is expected


@pytest.mark.parametrize("bad", ["fp8", "int8", "", torch.int64, 16])
def test_parse_dtype_refuses_with_the_choices(bad):
    with pytest.raises(ValueError, match="use fp32, fp16 or bf16"):
        parse_dtype(bad)


def test_dtype_name_round_trips():
    assert [dtype_name(n) for n in ("float32", "half", torch.bfloat16)] == ["fp32", "fp16", "bf16"]


def test_scuf_keeps_a_compatible_parse_dtype_import():
    from gefu.enhancers.scuf import parse_dtype as old

    assert old is parse_dtype


def test_parse_device_default_follows_cuda(no_cuda):
    assert parse_device(None) == torch.device("cpu") and parse_device("auto") == torch.device("cpu")


def test_parse_device_default_with_gpu(two_gpus):
    assert parse_device(None) == torch.device("cuda")
    assert parse_device("cuda:1") == torch.device("cuda", 1)


def test_cuda_without_gpu_names_the_fix(no_cuda):
    for text in ("cuda", "cuda:0", "CUDA"):
        with pytest.raises(ValueError, match=r"^CUDA is not available on this machine; use --device cpu$"):
            parse_device(text)


def test_cuda_index_out_of_range(two_gpus):
    with pytest.raises(ValueError, match=r"cuda:2 does not exist; this machine has 2 CUDA device\(s\): cuda:0, cuda:1"):
        parse_device("cuda:2")


@pytest.mark.parametrize("bad", ["bogus", "gpu", "cuda:x", "cpu:zero", ""])
def test_unknown_devices(bad, no_cuda):
    with pytest.raises(ValueError, match="unknown device .*use cpu, cuda or cuda:N"):
        parse_device(bad)


def test_unsupported_device_type(no_cuda):
    with pytest.raises(ValueError, match="device type 'meta' is not supported"):
        parse_device("meta")


def test_cpu_is_always_fine(no_cuda):
    assert parse_device("cpu") == torch.device("cpu") and parse_device(" CPU ") == torch.device("cpu")


def test_precision_warnings(no_cuda):
    cpu = torch.device("cpu")
    assert precision_warning(cpu, None) is None and precision_warning(cpu, "fp32") is None
    fp16 = precision_warning(cpu, "fp16")
    assert "no CUDA device" in fp16 and "90 s" in fp16 and "use --dtype fp32" in fp16
    bf16 = precision_warning(cpu, torch.bfloat16)
    assert "no CUDA device" in bf16 and "use --dtype fp32" in bf16


def test_precision_warning_on_a_gpu_machine(two_gpus):
    assert precision_warning("cuda", "fp16") is None and precision_warning("cuda:1", "bf16") is None
    msg = precision_warning("cpu", "fp16")
    assert "no CUDA" not in msg and "runs on the CPU" in msg


def test_module_has_no_cuda_calls_on_import():
    assert not hasattr(dev, "DEVICE")  # nothing is decided at import time


def test_release_free_memory_is_harmless():
    from gefu.device import release_free_memory

    big = bytearray(64 << 20)
    del big
    release_free_memory()  # glibc: malloc_trim(0); elsewhere nothing — never raises
    release_free_memory()
