"""gefu.pipeline and `gefu enhance`'s overlapped loop: same results and messages as the serial loop, in order,
bounded, and clean on errors and Ctrl-C (issue 12, item 2)."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from PIL import Image

from gefu.cli import main
from gefu.pipeline import StopRun, run_jobs


def _gefu_threads():
    return [t for t in threading.enumerate() if t.name.startswith(("gefu-load", "gefu-save", "gefu-compute"))]


def test_outcomes_in_job_order_whatever_finishes_first():
    rng = random.Random(0)
    delays = {i: rng.random() * 0.01 for i in range(20)}
    computed, saved, reported = [], [], []
    main_thread = threading.current_thread()

    def load(i):
        time.sleep(delays[i])
        return i * 10

    def compute(i, item):
        assert threading.current_thread() is main_thread  # models and progress bars stay on the caller's thread
        computed.append(i)
        return item + 1

    def save(i, value):
        time.sleep(delays[19 - i])
        saved.append((i, value))

    outcomes = run_jobs(list(range(20)), load, compute, save, on_outcome=lambda o: reported.append(o.index))
    assert computed == list(range(20)) and reported == list(range(20))
    assert [o.index for o in outcomes] == list(range(20)) and all(o.ok for o in outcomes)
    assert sorted(saved) == [(i, i * 10 + 1) for i in range(20)]
    assert not _gefu_threads()


def test_queues_are_bounded():
    lock = threading.Lock()
    state = {"loaded": 0, "computed": 0, "saving": 0, "max_ahead": 0, "max_saving": 0}

    def load(i):
        with lock:
            state["loaded"] += 1
            state["max_ahead"] = max(state["max_ahead"], state["loaded"] - state["computed"])
        return i

    def compute(i, item):
        time.sleep(0.002)
        with lock:
            state["computed"] += 1
        return item

    def save(i, value):
        with lock:
            state["saving"] += 1
            state["max_saving"] = max(state["max_saving"], state["saving"])
        time.sleep(0.01)  # slow disk: the writes pile up unless bounded
        with lock:
            state["saving"] -= 1

    run_jobs(list(range(30)), load, compute, save, prefetch=2, max_pending=2)
    assert state["max_ahead"] <= 3  # the one being computed + 2 decoded ahead
    assert state["max_saving"] <= 1  # one writer thread


def test_byte_budget_stops_loading_ahead_of_big_items():
    held, peak = [0], [0]
    lock = threading.Lock()

    def load(i):
        with lock:
            held[0] += 1
            peak[0] = max(peak[0], held[0])
        return i

    def compute(i, item):
        time.sleep(0.005)
        with lock:
            held[0] -= 1
        return item

    run_jobs(list(range(8)), load, compute, lambda i, v: None, nbytes=lambda i: 600, max_bytes=1000)
    assert peak[0] == 1  # a second 600-byte item never fits beside the first


def test_expected_errors_fail_one_job_and_the_others_go_on():
    def load(i):
        if i == 1:
            raise ValueError("bad file 1")
        return i

    def compute(i, item):
        if i == 2:
            raise MemoryError("too big 2")
        return item

    def save(i, value):
        if i == 3:
            raise OSError("cannot write 3")

    for overlap in (True, False):
        outcomes = run_jobs(list(range(5)), load, compute, save, overlap=overlap,
                            expected=(OSError, ValueError, MemoryError))
        assert [str(o.error) if o.error else None for o in outcomes] == [
            None, "bad file 1", "too big 2", "cannot write 3", None]


def test_stop_run_ends_the_run_and_bugs_propagate():
    computed = []

    def save(i, value):
        if i == 2:
            raise StopRun("disk full")

    with pytest.raises(StopRun, match="disk full"):
        run_jobs(list(range(50)), lambda i: i, lambda i, v: computed.append(i) or v, save, max_pending=0)
    assert max(computed) < 10  # not the whole list
    with pytest.raises(ZeroDivisionError):
        run_jobs(list(range(5)), lambda i: i, lambda i, v: 1 / (v - 3), lambda i, v: None)
    assert not _gefu_threads()


def test_keyboard_interrupt_cancels_the_rest_and_leaves_no_threads():
    saved = []

    def compute(i, item):
        if i == 4:
            raise KeyboardInterrupt
        return item

    with pytest.raises(KeyboardInterrupt):
        run_jobs(list(range(100)), lambda i: i, compute, lambda i, v: saved.append(i))
    assert saved == [0, 1, 2, 3]  # the ones computed before were written; nothing after
    assert not _gefu_threads()


# ------------------------------------------------------------------------------------------------------------
# Through `gefu enhance`
# ------------------------------------------------------------------------------------------------------------


@pytest.fixture()
def folder(tmp_path, dark_photo):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    base = (dark_photo[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    for i in range(6):
        img = Image.fromarray(np.roll(base, 11 * i, axis=0))
        img.save(src / ("sub" if i % 2 else ".") / f"p{i}.{'jpg' if i % 3 == 0 else 'png'}")
    (src / "broken.png").write_bytes(b"not a png")
    return src


def _files(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("extra", [["-m", "lime"], ["-m", "gamma", "--tile", "48"], ["-m", "he", "--ext", "webp"]])
def test_overlapped_outputs_and_messages_equal_the_serial_loop(folder, tmp_path, capsys, extra):
    runs = {}
    for mode in ("serial", "overlapped"):
        argv = ["enhance", str(folder), "-o", str(tmp_path / mode), *extra] + (["--serial"] if mode == "serial" else [])
        code = main(argv)
        captured = capsys.readouterr()
        runs[mode] = (code, captured.err, captured.out.split(" in ")[0], _files(tmp_path / mode))
    assert runs["serial"][0] == runs["overlapped"][0] == 1  # broken.png
    assert runs["serial"][1:] == runs["overlapped"][1:]  # same stderr lines, same summary, byte-identical files
    assert len(runs["serial"][3]) == 6


#: Runs `gefu` in a child process whose enhancer, once it has enhanced the image named argv[2], touches argv[1]
#: and holds that enhancement back until the child's SIGINT handler has run (Python's own handler, which raises
#: KeyboardInterrupt, after setting an event). The test sends SIGINT once the file exists: the signal then lands in
#: the middle of the folder however slow the machine, and the image held back can never be handed to the saver.
_GATED_GEFU = """
import signal, sys, threading
from pathlib import Path
from gefu.cli import enhance, main

marker, gate_name = Path(sys.argv[1]), sys.argv[2]
interrupted = threading.Event()

def on_sigint(signum, frame):
    interrupted.set()
    signal.default_int_handler(signum, frame)  # raises KeyboardInterrupt, as without this wrapper

signal.signal(signal.SIGINT, on_sigint)
compute = enhance._Worker.compute

def gated(self, job, raw):
    out = compute(self, job, raw)
    if job.src.name == gate_name:
        marker.touch()
        while not interrupted.wait(0.01):  # on the main thread (one worker) the signal interrupts this wait
            pass
    return out

enhance._Worker.compute = gated
sys.exit(main(sys.argv[3:]))
"""


def test_ctrl_c_is_clean(tmp_path, dark_photo):
    """SIGINT in the middle of a folder: exit 130, one line, no traceback, only complete files (the first images,
    in order, none past the one being enhanced), no temp files. Synchronised on the child's own progress (see
    _GATED_GEFU), not on sleeps, so a slow machine cannot make it pass or fail differently."""
    src, out, marker = tmp_path / "in", tmp_path / "out", tmp_path / "reached"
    src.mkdir()
    base = (dark_photo[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    for i in range(30):
        Image.fromarray(np.roll(base, 5 * i, axis=1)).save(src / f"{i:02d}.png")
    proc = subprocess.Popen(
        [sys.executable, "-c", _GATED_GEFU, str(marker), "05.png",
         "enhance", str(src), "-o", str(out), "-m", "lime", "--option", "solver=direct"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        give_up = time.monotonic() + 900  # only a hung child gets here, not a slow one
        while not marker.exists():
            assert proc.poll() is None and time.monotonic() < give_up, proc.communicate(timeout=60)[1]
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=900)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert err.splitlines() == ["gefu enhance: interrupted (files already written are complete)"]
    names = sorted(p.name for p in out.iterdir())
    # What was handed to the saver is written (05 never is); with N compute workers at least 00..(05 - N) were.
    assert 1 <= len(names) <= 5 and names == [f"{i:02d}.png" for i in range(len(names))], names
    for name in names:
        Image.open(out / name).load()  # complete


def test_several_workers_keep_job_order_and_results():
    rng = random.Random(1)
    delays = [rng.random() * 0.01 for _ in range(25)]
    active, peak = [0], [0]
    lock = threading.Lock()

    def compute(i, item):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(delays[i])
        with lock:
            active[0] -= 1
        if i == 7:
            raise ValueError("bad 7")
        return item * 2

    saved, reported = {}, []
    outcomes = run_jobs(list(range(25)), lambda i: i, compute, lambda i, v: saved.__setitem__(i, v), workers=3,
                        on_outcome=lambda o: reported.append(o.index))
    assert reported == list(range(25)) and [o.index for o in outcomes] == list(range(25))
    assert saved == {i: 2 * i for i in range(25) if i != 7} and str(outcomes[7].error) == "bad 7"
    assert 1 < peak[0] <= 3
    assert not _gefu_threads()


def test_cli_workers_give_the_serial_bytes(folder, tmp_path, capsys):
    for mode in (["--serial"], ["--workers", "3"]):
        main(["enhance", str(folder), "-o", str(tmp_path / mode[-1]), "-m", "lime", *mode])
    capsys.readouterr()
    assert _files(tmp_path / "--serial") == _files(tmp_path / "3") and len(_files(tmp_path / "3")) == 6
