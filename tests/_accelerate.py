"""Two CPU processes under `accelerate launch`, with every file publication logged: the shared harness of the
scale-out tests (tests/test_distributed.py for `gefu enhance`, tests/bench/test_distributed_bench.py for `gefu
bench`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# Logs every rename onto a final file (how gefu.fileio publishes an output) with the writing process's pid.
_SITECUSTOMIZE = """
import os
_log = os.environ.get("GEFU_TEST_WRITE_LOG")
if _log:
    _replace = os.replace
    def replace(src, dst, *args, **kwargs):
        result = _replace(src, dst, *args, **kwargs)
        with open(_log, "a") as f:
            f.write(f"{os.getpid()}\\t{os.fspath(dst)}\\n")
        return result
    os.replace = replace
"""

# Picks a free port (the test process itself may not open sockets), then hands over to accelerate's launcher.
_LAUNCH = """
import socket, sys
from accelerate.commands.accelerate_cli import main
with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
sys.argv = ["accelerate", "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
            "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port)] + sys.argv[1:]
main()
"""


def run_gefu_in_two_processes(tmp_path: Path, gefu_args: list[str]) -> tuple[subprocess.CompletedProcess,
                                                                              list[tuple[str, Path]]]:
    """`accelerate launch --multi_gpu --num_processes 2 -m gefu ARGS` with CUDA hidden (two CPU processes, gloo)
    → (the finished process, [(pid, final path)] of every file published by a rename). Skips the test when
    accelerate's launcher is not installed next to this python."""
    if shutil.which("accelerate", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("accelerate's launcher is not installed next to this python")
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(_SITECUSTOMIZE)
    log = tmp_path / "writes.log"
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", GEFU_TEST_WRITE_LOG=str(log), OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(tmp_path / "site"), *sys.path]))
    proc = subprocess.run([sys.executable, "-c", _LAUNCH, "-m", "gefu", *gefu_args],
                          env=env, capture_output=True, text=True, timeout=600)
    writes = [line.split("\t") for line in log.read_text().splitlines()] if log.exists() else []
    return proc, [(pid, Path(dst)) for pid, dst in writes]
