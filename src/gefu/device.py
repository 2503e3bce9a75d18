"""Where and in what precision to run: one parser for `--device`, one for `--dtype`, one precision warning.

    parse_device(None)        # cuda when a CUDA device is visible, else cpu
    parse_device("cuda:1")    # ValueError naming the problem and the fix when it does not exist
    parse_dtype("bf16")       # torch.bfloat16; None → torch.float32
    precision_warning(torch.device("cpu"), torch.float16)   # a sentence to show the user, or None
    available_memory()        # bytes a new allocation can take now (RAM, or the GPU's free memory)

The messages name the command-line flags (`--device`, `--dtype`) because the CLI shows them as they are; library
callers pass the same strings as keyword arguments.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from pathlib import Path

import torch

__all__ = [
    "DTYPES", "DTYPE_CHOICES", "available_memory", "dtype_name", "parse_device", "parse_dtype", "precision_warning",
    "release_free_memory",
]  # fmt: skip

#: Names accepted for each precision (lower case; a "torch." prefix is also accepted).
DTYPES: dict[str, torch.dtype] = {
    "fp32": torch.float32, "float32": torch.float32, "float": torch.float32,
    "fp16": torch.float16, "float16": torch.float16, "half": torch.float16,
    "bf16": torch.bfloat16, "bfloat16": torch.bfloat16,
}  # fmt: skip

#: The short names the command line offers (`--dtype {fp32,fp16,bf16}`).
DTYPE_CHOICES = ("fp32", "fp16", "bf16")

_DTYPE_NAMES = {torch.float32: "fp32", torch.float16: "fp16", torch.bfloat16: "bf16"}

# Measured when the issue was filed (BLIP-large captioning, one image, this project's 2-core CPU).
_FP16_CPU_SLOWDOWN = "about 90 s per image instead of 2.5 s in fp32, measured on a 2-core CPU"


def parse_dtype(dtype: torch.dtype | str | None) -> torch.dtype:
    """None → float32; "fp32"/"fp16"/"bf16" (or float32/float16/half/bfloat16, any case, or the torch dtype
    itself) → the torch dtype; anything else raises ValueError listing the choices."""
    if dtype is None:
        return torch.float32
    if isinstance(dtype, torch.dtype) and dtype in _DTYPE_NAMES:
        return dtype
    if isinstance(dtype, str):
        key = dtype.strip().lower().removeprefix("torch.")
        if key in DTYPES:
            return DTYPES[key]
    raise ValueError(f"unsupported dtype {dtype!r}; use fp32, fp16 or bf16")


def dtype_name(dtype: torch.dtype | str | None) -> str:
    """The short name ("fp32", "fp16", "bf16") of a dtype accepted by `parse_dtype`."""
    return _DTYPE_NAMES[parse_dtype(dtype)]


def _cuda_count() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def parse_device(device: torch.device | str | None) -> torch.device:
    """`--device` → torch.device, checked against this machine.

    None (or "auto") picks cuda when a CUDA device is visible, else cpu. Accepted: cpu, cuda, cuda:N, mps. An
    unknown name, CUDA on a machine without it, a CUDA index that does not exist, or MPS where there is none
    raise ValueError with one sentence naming the fix.
    """
    if device is None or (isinstance(device, str) and device.strip().lower() == "auto"):
        return torch.device("cuda" if _cuda_count() else "cpu")
    if isinstance(device, torch.device):
        dev = device
    else:
        text = str(device).strip().lower()
        try:
            dev = torch.device(text)
        except (RuntimeError, ValueError):
            raise ValueError(f"unknown device {device!r}; use cpu, cuda or cuda:N (e.g. --device cuda:0)") from None
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        count = _cuda_count()
        if count == 0:
            raise ValueError("CUDA is not available on this machine; use --device cpu")
        if dev.index is not None and dev.index >= count:
            have = ", ".join(f"cuda:{i}" for i in range(count))
            raise ValueError(f"device {dev} does not exist; this machine has {count} CUDA device(s): {have}")
        return dev
    if dev.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ValueError("MPS is not available on this machine; use --device cpu")
        return dev
    raise ValueError(f"device type {dev.type!r} is not supported; use cpu, cuda or cuda:N")


def precision_warning(device: torch.device | str, dtype: torch.dtype | str | None) -> str | None:
    """A one-sentence warning when the precision is a poor fit for the device, else None.

    fp16 on the CPU is emulated (far slower than fp32); bf16 on the CPU is only fast on CPUs with native
    bf16 support. When the machine has no CUDA device at all, the message says so: the half precision was
    most likely copied from a GPU command line.
    """
    dev = torch.device(device) if not isinstance(device, torch.device) else device
    dt = parse_dtype(dtype)
    if dev.type != "cpu" or dt == torch.float32:
        return None
    where = "this machine has no CUDA device, so it runs on the CPU" if not _cuda_count() else "it runs on the CPU"
    if dt == torch.float16:
        why = f"fp16 is emulated and very slow ({_FP16_CPU_SLOWDOWN})"
    else:
        why = "bf16 is slower than fp32 unless the CPU supports it natively"
    return f"--dtype {dtype_name(dt)}: {where}, where {why}; use --dtype fp32"


def _cgroup_free() -> int | None:
    """Bytes left under this process's cgroup memory limit (v2, then v1), None without a limit."""
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        try:
            limit = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit == "max" or int(limit) >= 1 << 60:
            return None
        return max(0, int(limit) - usage)
    return None


def available_memory(device: torch.device | str | None = None) -> int:
    """Bytes a new allocation can take now: the free memory of a CUDA device, or for the CPU the system's
    available memory (psutil; /proc/meminfo), capped by the cgroup limit of a container."""
    dev = torch.device("cpu") if device is None else torch.device(device)
    if dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        return int(free)
    try:
        import psutil

        free = int(psutil.virtual_memory().available)
    except ImportError:  # pragma: no cover - psutil comes with accelerate
        free = 1 << 62
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                free = int(line.split()[1]) * 1024
    cgroup = _cgroup_free()
    return free if cgroup is None else min(free, cgroup)


@functools.lru_cache(maxsize=1)
def _malloc_trim():
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    except OSError:  # pragma: no cover
        return None


def release_free_memory() -> None:
    """Hand memory that is free but still mapped back to the system (glibc `malloc_trim`; elsewhere nothing).

    glibc keeps freed memory in per-thread arenas; after a thread has decoded or encoded a huge image, up to a
    gigabyte can stay resident in its arena while another thread allocates the next big buffers. gefu calls
    this after reading or writing an image of more than 16 MP, so peak memory follows the work, not the
    history of the threads. It only returns free pages; nothing else changes.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
