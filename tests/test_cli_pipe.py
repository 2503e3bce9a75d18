"""Any gefu command piped into a reader that stops early (`gefu weights status | head`) exits quietly."""

from __future__ import annotations

import os
import subprocess
import sys


def test_a_closed_pipe_ends_the_command_quietly(tmp_path):
    env = dict(os.environ, GEFU_WEIGHTS=str(tmp_path / "store"), PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, "-m", "gefu", "weights", "status"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    proc.stdout.close()  # the reader is gone before gefu writes its first line (like `| head -0`)
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141  # SIGPIPE's status, as other tools report it
    assert err == ""  # no traceback, no "Exception ignored", no error line


def test_output_read_to_the_end_is_unchanged(tmp_path):
    env = dict(os.environ, GEFU_WEIGHTS=str(tmp_path / "store"), PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([sys.executable, "-m", "gefu", "weights", "status"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0 and "zero-dce" in proc.stdout and proc.stderr == ""
