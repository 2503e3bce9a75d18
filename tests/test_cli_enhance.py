"""`gefu enhance` end to end: mirrored outputs, per-file errors, untouched inputs, exit codes."""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from gefu.cli import main
from gefu.imageio import load_image


def _digest(folder):
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture()
def messy_folder(tmp_path, dark_photo):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    arr = (dark_photo[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    Image.fromarray(arr).save(src / "good.png")
    Image.fromarray(arr).save(src / "sub" / "good2.jpg", quality=95)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG")
    (src / "sub" / "really_a_jpeg.png").write_bytes(buf.getvalue())  # mislabelled but readable
    (src / "empty.png").write_bytes(b"")
    (src / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    (src / "text_named.png").write_text("hello")
    (src / "notes.txt").write_text("ignored: not an image extension")
    return src


def test_enhance_folder_with_bad_files(messy_folder, tmp_path, capsys):
    before = _digest(messy_folder)
    out = tmp_path / "out"
    code = main(["enhance", str(messy_folder), "-o", str(out), "--method", "gamma"])
    captured = capsys.readouterr()
    assert code == 1
    assert _digest(messy_folder) == before  # inputs byte-identical
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == ["good.png", "sub/good2.jpg", "sub/really_a_jpeg.png"]
    lines = captured.err.splitlines()
    assert len(lines) == 3  # one line per failed file, each naming it
    for bad, line in zip(["corrupt.jpg", "empty.png", "text_named.png"], lines):
        assert line.startswith(f"gefu enhance: {messy_folder / bad}: ")
    assert "enhanced 3 of 6" in captured.out and "3 failed" in captured.out
    assert "Traceback" not in captured.err
    x, y = load_image(messy_folder / "good.png"), load_image(out / "good.png")
    assert y.shape == x.shape and y.mean() > x.mean()


def test_enhance_refuses_to_overwrite_inputs(messy_folder, capsys):
    assert main(["enhance", str(messy_folder / "good.png"), "-o", str(messy_folder), "-m", "gamma"]) == 2
    assert "would overwrite input" in capsys.readouterr().err
    assert main(["enhance", str(messy_folder), "-o", str(messy_folder / "sub"), "-m", "gamma"]) == 2
    assert "inside input folder" in capsys.readouterr().err


def test_enhance_tiles_and_ext(messy_folder, tmp_path):
    out = tmp_path / "tiled"
    code = main(["enhance", str(messy_folder / "good.png"), "-o", str(out), "-m", "gamma", "--tile", "48", "--ext", "jpg"])
    assert code == 0 and (out / "good.jpg").is_file()


def test_user_errors_have_no_traceback(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "gefu", "enhance", str(tmp_path), "-o", str(tmp_path / "o"), "--method", "lime"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "no images found" in proc.stderr and "Traceback" not in proc.stderr
    (tmp_path / "a.png").write_bytes(b"x")
    proc = subprocess.run(
        [sys.executable, "-m", "gefu", "enhance", str(tmp_path / "a.png"), "-o", str(tmp_path / "o"), "-m", "limee"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "did you mean 'lime'" in proc.stderr and "Traceback" not in proc.stderr


def test_help_shows_an_example(capsys):
    with pytest.raises(SystemExit):
        main(["enhance", "--help"])
    assert "gefu enhance night.jpg -o out/ --method lime" in capsys.readouterr().out


def test_self_tiling_enhancers_get_the_tile_size(messy_folder, tmp_path, register_enhancers):
    """An enhancer that accepts `tile` (SCUF) tiles itself; the CLI must not wrap it in generic tiles too."""
    from gefu.enhancers.base import Enhancer

    seen = {}

    class SelfTiling(Enhancer):
        name = "test-self-tiling"

        def __init__(self, tile=None, overlap=0):
            super().__init__(tile=tile, overlap=overlap)
            seen["options"] = dict(self.options)

        def enhance(self, x):
            seen.setdefault("shapes", []).append(tuple(x.shape[-2:]))
            return x

    register_enhancers(SelfTiling)
    code = main(["enhance", str(messy_folder / "good.png"), "-o", str(tmp_path / "o"), "-m", SelfTiling.name,
                 "--tile", "48", "--overlap", "8"])
    assert code == 0
    assert seen["options"] == {"tile": 48, "overlap": 8}
    assert seen["shapes"] == [(96, 128)]  # the whole image reached the enhancer once


# ------------------------------------------------------------------------------------------------------------
# Nothing a user owns is overwritten; a killed run resumes (issue 11, item 2)
# ------------------------------------------------------------------------------------------------------------


def test_existing_output_is_refused_unless_overwrite(messy_folder, capsys):
    """The issue's example: `gefu enhance photos/a.png -o photos --ext jpg` used to destroy photos/a.jpg."""
    photos = messy_folder
    precious = photos / "good.jpg"
    precious.write_bytes(b"someone's photo")
    code = main(["enhance", str(photos / "good.png"), "-o", str(photos), "--ext", "jpg", "-m", "gamma"])
    err = capsys.readouterr().err
    assert code == 2 and precious.read_bytes() == b"someone's photo"
    assert err.splitlines() == [f"gefu enhance: error: {precious} already exists; pass --overwrite to replace, or "
                                "--skip-existing to keep them and enhance the rest"]
    assert main(["enhance", str(photos / "good.png"), "-o", str(photos), "--ext", "jpg", "-m", "gamma",
                 "--overwrite"]) == 0
    assert load_image(precious).shape == (3, 96, 128)


def test_overwrite_and_skip_existing_exclude_each_other(messy_folder, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["enhance", str(messy_folder), "-o", str(tmp_path / "o"), "--overwrite", "--skip-existing"])
    assert exit_.value.code == 2 and "not allowed with argument" in capsys.readouterr().err


def _many_photos(folder, dark_photo, n):
    folder.mkdir()
    base = (dark_photo[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    for i in range(n):
        Image.fromarray(np.roll(base, 7 * i, axis=1)).save(folder / f"{i:02d}.png")


def test_killed_run_resumes_with_skip_existing(tmp_path, dark_photo):
    import os
    import signal
    import socket
    import time
    import zlib

    src, out, ref = tmp_path / "in", tmp_path / "out", tmp_path / "ref"
    _many_photos(src, dark_photo, 24)
    cmd = [sys.executable, "-m", "gefu", "enhance", str(src), "-m", "lime", "--option", "solver=direct"]
    proc = subprocess.Popen(cmd + ["-o", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(out.glob("*.png")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    written = sorted(out.glob("*.png"))
    assert 0 < len(written) < 24, "the run should have been killed part-way"
    # what a kill in the middle of a write leaves: a hidden temporary file of the dead process
    host = f"{zlib.crc32(socket.gethostname().encode()):08x}"
    stale = out / f".23.png.{host}-{proc.pid}.k1l2e3d4.gefu-tmp"
    stale.write_bytes(b"half a png")
    for p in written:
        assert load_image(p).shape == (3, 96, 128)  # every file that exists is complete

    assert subprocess.run(cmd + ["-o", str(out)], capture_output=True).returncode == 2  # refused: outputs exist
    done = subprocess.run(cmd + ["-o", str(out), "--skip-existing"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert f"{len(written)} already there (--skip-existing)" in done.stdout
    assert re.search(r"removed [12] temporary file\(s\) left by an interrupted run", done.stderr)  # + the kill's own?
    assert not stale.exists() and not [p for p in os.listdir(out) if p.startswith(".")]
    assert subprocess.run(cmd + ["-o", str(ref)], capture_output=True).returncode == 0
    assert [h for _, h in sorted(_digest(out).items())] == [h for _, h in sorted(_digest(ref).items())]


def test_outputs_are_fsynced_before_the_rename(messy_folder, tmp_path, monkeypatch):
    import os

    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def replace(a, b):
        events.append(("replace", str(a)))
        return real_replace(a, b)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    assert main(["enhance", str(messy_folder / "good.png"), "-o", str(tmp_path / "o"), "-m", "gamma"]) == 0
    renamed = [e for e in events if e[0] == "replace"]
    assert len(renamed) == 1
    tmp = renamed[0][1]
    assert events.index(("fsync", tmp)) < events.index(("replace", tmp))


# ------------------------------------------------------------------------------------------------------------
# Memory (issue 11, item 4)
# ------------------------------------------------------------------------------------------------------------

# VmHWM, not ru_maxrss: after fork + exec, ru_maxrss still counts the (large) pytest parent.
_PEAK = """
import re, sys
from gefu.cli import main
code = main(sys.argv[1:])
status = open("/proc/self/status").read()
print(int(re.search(r"VmHWM:\\s+(\\d+) kB", status).group(1)) * 1024, code)
"""


def _peak_rss(argv):
    proc = subprocess.run([sys.executable, "-c", _PEAK, *argv], capture_output=True, text=True, timeout=600)
    peak, code = proc.stdout.split()[-2:]
    assert code == "0", proc.stderr
    return int(peak)


def test_tiled_memory_follows_the_tile_not_the_image(tmp_path):
    """A 2400×2400 image: untiled, gamma holds float copies of the whole image (~70 MB each); with --tile 256 the
    image stays uint8 (17 MB) and only tiles and one band are float. Before the fix, --tile saved nothing."""
    yy, xx = np.mgrid[0:2400, 0:2400]
    arr = np.stack([(xx % 251), (yy % 241), ((xx + yy) % 239)], axis=2).astype(np.uint8) // 4
    Image.fromarray(arr).save(tmp_path / "big.png", compress_level=1)
    base = [str(tmp_path / "big.png"), "-m", "gamma", "--serial"]
    whole = _peak_rss(["enhance", *base, "-o", str(tmp_path / "whole")])
    tiled = _peak_rss(["enhance", *base, "-o", str(tmp_path / "tiled"), "--tile", "256"])
    assert whole - tiled > 100 * 2**20, (whole / 2**20, tiled / 2**20)
    # gamma is pointwise: tiling changes nothing
    assert Image.open(tmp_path / "tiled" / "big.png").tobytes() == Image.open(tmp_path / "whole" / "big.png").tobytes()


def test_untiled_method_that_would_not_fit_is_tiled_automatically(messy_folder, tmp_path, monkeypatch, capsys):
    from gefu.cli import enhance as cli_enhance

    # half the available memory holds one 256² LIME tile (with several --workers, each gets its share)
    monkeypatch.setattr(cli_enhance, "available_memory", lambda device=None: 2 * 256 * 256 * 350 + 1)
    src = tmp_path / "wide.png"
    Image.fromarray(np.tile(np.asarray(Image.open(messy_folder / "good.png")), (3, 3, 1))).save(src)  # 288×384
    assert main(["enhance", str(src), "-o", str(tmp_path / "auto"), "-m", "lime", "--workers", "1"]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert lines == [f"gefu enhance: note: {src}: 384×288 would need about 0.0 GiB untiled (~350 B/pixel) and "
                     "0.0 GiB are available: enhanced in 256×256 tiles (choose the size with --tile)"]
    assert main(["enhance", str(src), "-o", str(tmp_path / "manual"), "-m", "lime", "--tile", "256"]) == 0
    assert (tmp_path / "auto" / "wide.png").read_bytes() == (tmp_path / "manual" / "wide.png").read_bytes()

    monkeypatch.setattr(cli_enhance, "available_memory", lambda device=None: 10 * 2**20)
    assert main(["enhance", str(src), "-o", str(tmp_path / "none"), "-m", "lime", "--option", "solver=direct",
                 "--workers", "1"]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"gefu enhance: {src}: 384×288 needs about 0.1 GiB untiled "
                                                   "(~1300 B/pixel), 0.0 GiB are available")


def test_fp16_on_the_cpu_warns_once(messy_folder, tmp_path, register_enhancers, capsys, monkeypatch):
    import torch

    from gefu.enhancers.base import Enhancer

    class WithDtype(Enhancer):
        name = "test-with-dtype"

        def __init__(self, dtype=None):
            super().__init__(dtype=str(dtype))

        def enhance(self, x):
            return x

    register_enhancers(WithDtype)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    code = main(["enhance", str(messy_folder / "good.png"), "-o", str(tmp_path / "o"), "-m", WithDtype.name,
                 "--dtype", "fp16"])
    lines = capsys.readouterr().err.splitlines()
    assert code == 0 and len(lines) == 1
    assert lines[0].startswith("gefu enhance: warning: --dtype fp16: this machine has no CUDA device")
    assert "use --dtype fp32" in lines[0]
