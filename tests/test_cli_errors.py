"""Every bad input and option of issue 11 through `gefu enhance`: exactly one line on stderr, no traceback, the
right exit code (2: usage error, refused before any image; 1: some files failed or were skipped, the others
done), and nothing written when the command line was refused."""

from __future__ import annotations

import errno
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from gefu.cli import main


@pytest.fixture()
def photos(tmp_path, dark_photo):
    src = tmp_path / "in"
    src.mkdir()
    arr = (dark_photo[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)[:48, :64]
    Image.fromarray(arr).save(src / "a.png")
    Image.fromarray(arr[::-1]).save(src / "b.jpg", quality=95)
    return src


@pytest.fixture()
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


def _run(capsys, argv, with_stdout=False):
    code = main(argv)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return (code, captured.err.splitlines(), captured.out) if with_stdout else (code, captured.err.splitlines())


USAGE_ERRORS = [
    # (extra arguments, the one line must contain)
    (["-m", "lime", "--option", "alhpa=0.2"], "unknown option 'alhpa' for enhancer 'lime' (did you mean 'alpha'?)"),
    (["-m", "lime", "--dtype", "fp16"], "--dtype does not apply to enhancer 'lime'; it takes alpha, gamma"),
    (["-m", "gamma", "--seed", "3"], "--seed does not apply to enhancer 'gamma'; it takes gamma"),
    (["-m", "none", "--option", "gamma=0.5"], "unknown option 'gamma' for enhancer 'none'; it takes no options"),
    (["-m", "gamma", "--option", "gamma=nan"], "--option 'gamma=nan': not a finite number"),
    (["-m", "gamma", "--option", "gamma=NaN"], "--option 'gamma=NaN': not a finite number"),
    (["-m", "gamma", "--option", "gamma=Infinity"], "--option 'gamma=Infinity': not a finite number"),
    (["-m", "lime", "--option", "alpha=nan"], "--option 'alpha=nan': not a finite number"),
    (["-m", "lime", "--option", "alpha=1e308"], "lime: alpha must be a finite number in [0, 1000], got 1e+308"),
    (["-m", "lime", "--option", "gamma=0"], "lime: gamma must be a finite number in (0, 10], got 0"),
    (["-m", "lime", "--option", "gamma=-0.5"], "lime: gamma must be a finite number in (0, 10], got -0.5"),
    (["-m", "msrcr", "--option", "sigmas=[]"], "msrcr: sigmas must be a non-empty list of numbers, each in (0, 10000]"),
    (["-m", "msrcr", "--option", "sigmas=0"], "msrcr: sigmas must be a non-empty list of numbers, each in (0, 10000]"),
    (["-m", "clahe", "--option", "tiles=0"], "clahe: tiles must be an integer in [1, 256], got 0"),
    (["-m", "clahe", "--option", "clip_limit=-1"], "clahe: clip_limit must be a finite number in [0, 1000], got -1"),
    (["-m", "lime", "--option", "solver=fast"], "lime: solver must be one of 'auto', 'direct', 'cg', 'multires'"),
    (["-m", "gamma", "--option", "gamma"], "--option expects KEY=VALUE (e.g. --option alpha=0.2), got 'gamma'"),
    (["-m", "gamma", "--option", "tile=64"], "give the tile size with --tile, not --option tile=..."),
    (["-m", "gamma", "--tile", "0"], "--tile must be at least 32 pixels, got 0"),
    (["-m", "gamma", "--tile", "64", "--overlap", "-10"], "--overlap must be >= 0 pixels, got -10"),
    (["-m", "gamma", "--overlap", "-10"], "--overlap must be >= 0 pixels, got -10"),
    (["-m", "gamma", "--tile", "64", "--overlap", "40"], "--overlap must be at most half of --tile (32), got 40"),
    (["-m", "gamma", "--ext", "exe"], "--ext exe is not an image format gefu writes; use one of bmp, jpeg, jpg, png"),
    (["-m", "gamma", "--device", "bogus"], "unknown device 'bogus'; use cpu, cuda or cuda:N"),
    (["-m", "gamma", "--device", "cuda"], "CUDA is not available on this machine; use --device cpu"),
    (["-m", "limee"], "unknown enhancer 'limee' (did you mean 'lime'"),
]


@pytest.mark.parametrize("extra, message", USAGE_ERRORS, ids=[" ".join(e) for e, _ in USAGE_ERRORS])
def test_usage_errors_are_one_line_and_exit_2(photos, tmp_path, capsys, no_cuda, extra, message):
    out = tmp_path / "out"
    code, lines = _run(capsys, ["enhance", str(photos), "-o", str(out), *extra])
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("gefu enhance: error: ") and message in lines[0], lines
    assert not out.exists()  # refused before anything was written


def test_output_naming_an_existing_file(photos, tmp_path, capsys):
    target = tmp_path / "result.png"
    target.write_bytes(b"precious")
    code, lines = _run(capsys, ["enhance", str(photos), "-o", str(target), "-m", "gamma"])
    assert code == 2 and len(lines) == 1
    assert f"--output {target} is an existing file; give a folder" in lines[0]
    assert target.read_bytes() == b"precious"


def test_missing_input_and_empty_folder(photos, tmp_path, capsys):
    code, lines = _run(capsys, ["enhance", str(tmp_path / "nope.png"), "-o", str(tmp_path / "o"), "-m", "gamma"])
    assert code == 2 and len(lines) == 1 and f"{tmp_path / 'nope.png'}: no such file or folder" in lines[0]
    (tmp_path / "empty").mkdir()
    code, lines = _run(capsys, ["enhance", str(tmp_path / "empty"), "-o", str(tmp_path / "o"), "-m", "gamma"])
    assert code == 2 and len(lines) == 1 and "no images found in" in lines[0]


def test_ext_is_case_insensitive(photos, tmp_path, capsys):
    """Decision: --ext names a format, so JPG, .jpg and jpg are the same; the file gets the lower-case suffix."""
    code, lines = _run(capsys, ["enhance", str(photos / "a.png"), "-o", str(tmp_path / "o"), "-m", "gamma",
                                "--ext", ".JPG"])
    assert code == 0 and lines == []
    assert [p.name for p in (tmp_path / "o").iterdir()] == ["a.jpg"]
    assert Image.open(tmp_path / "o" / "a.jpg").format == "JPEG"


# ------------------------------------------------------------------------------------------------------------
# Files that fail: one line naming the file, the others go on, exit 1
# ------------------------------------------------------------------------------------------------------------


def test_fifo_given_by_name_is_not_a_regular_file(photos, tmp_path, capsys):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    code, lines = _run(capsys, ["enhance", str(fifo), str(photos / "a.png"), "-o", str(tmp_path / "o"), "-m", "gamma"])
    assert code == 1
    assert lines == [f"gefu enhance: skipped {fifo}: not a regular file (a FIFO)"]
    assert (tmp_path / "o" / "a.png").is_file()


def test_fifo_and_heic_inside_a_folder_are_reported(photos, tmp_path, capsys):
    os.mkfifo(photos / "pipe.png")
    (photos / "phone.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")
    code, lines = _run(capsys, ["enhance", str(photos), "-o", str(tmp_path / "o"), "-m", "gamma"])
    assert code == 1
    assert lines == [f"gefu enhance: skipped {photos / 'phone.heic'}: .heic images cannot be read here; convert them "
                     "to PNG or JPEG", f"gefu enhance: skipped {photos / 'pipe.png'}: not a regular file (a FIFO)"]
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["a.png", "b.jpg"]


def test_symlink_loop_and_dangling_link_are_reported(photos, tmp_path, capsys):
    (photos / "loop").symlink_to(photos)  # a folder linking to itself
    (photos / "gone.png").symlink_to(tmp_path / "deleted.png")
    code, lines = _run(capsys, ["enhance", str(photos), "-o", str(tmp_path / "o"), "-m", "gamma"])
    assert code == 1
    assert lines == [
        f"gefu enhance: skipped {photos / 'gone.png'}: broken symbolic link (its target does not exist)",
        f"gefu enhance: skipped {photos / 'loop'}: symbolic link loop (links back to a folder being searched)",
    ]


def test_unreadable_subfolder_is_reported(photos, tmp_path, capsys, monkeypatch):
    (photos / "locked").mkdir()
    real = os.scandir

    def scandir(path):
        if str(path).endswith("locked"):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)  # (chmod 000 does not stop root, who runs some CI)
    code, lines = _run(capsys, ["enhance", str(photos), "-o", str(tmp_path / "o"), "-m", "gamma"])
    assert code == 1
    assert lines == [f"gefu enhance: skipped {photos / 'locked'}: cannot read this folder (permission denied); its "
                     "images were not searched"]


def test_directory_given_by_name_without_images_is_reported(photos, tmp_path, capsys):
    (tmp_path / "nothing").mkdir()
    code, lines = _run(capsys, ["enhance", str(photos), str(tmp_path / "nothing"), "-o", str(tmp_path / "o"),
                                "-m", "gamma"])
    assert code == 1 and lines == [f"gefu enhance: skipped {tmp_path / 'nothing'}: no images in this folder"]


def test_extra_frames_warn_once(photos, tmp_path, capsys):
    frames = [Image.new("RGB", (16, 12), (10 * i, 5, 5)) for i in range(3)]
    for name in ("anim1.gif", "anim2.gif"):
        frames[0].save(photos / name, save_all=True, append_images=frames[1:])
    code, lines = _run(capsys, ["enhance", str(photos), "-o", str(tmp_path / "o"), "-m", "gamma"])
    assert code == 0
    assert lines == [f"gefu enhance: note: only the first frame was enhanced of 2 multi-frame file(s): "
                     f"{photos / 'anim1.gif'}, {photos / 'anim2.gif'}"]


def test_250_byte_file_name_does_not_stop_the_run(tmp_path, capsys, dark_photo):
    src = tmp_path / "in"
    src.mkdir()
    arr = (dark_photo[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)[:32, :32]
    long_ok = "x" * 246 + ".png"  # 250 bytes: fits, though its old temporary name (264 bytes) did not
    long_bad = "y" * 251 + ".png"  # 255 bytes: fits as input, but not once written as .jpeg (256)
    for name in (long_ok, long_bad, "z.png"):
        Image.fromarray(arr).save(src / name)
    code, lines = _run(capsys, ["enhance", str(src), "-o", str(tmp_path / "o"), "-m", "gamma", "--ext", "jpeg"])
    assert code == 1
    assert len(lines) == 1 and "the output file name is too long for the file system (256 bytes" in lines[0]
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["x" * 246 + ".jpeg", "z.jpeg"]


def test_disk_full_stops_with_one_line(photos, tmp_path, capsys, monkeypatch):
    from gefu import imageio

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(imageio.Image.Image, "save", full)
    for mode in ("--serial", None):
        argv = ["enhance", str(photos), "-o", str(tmp_path / "o"), "-m", "gamma"] + ([mode] if mode else [])
        code, lines, out = _run(capsys, argv, with_stdout=True)
        assert code == 1
        assert lines == [f"gefu enhance: stopped: {tmp_path / 'o' / 'a.png'}: cannot write: no space left on the "
                         "device; free some space, then rerun with --skip-existing to continue"]
        assert "enhanced 0 of 2 images" in out and "2 not written" in out
        assert not any((tmp_path / "o").iterdir())  # no partial or temporary files


def test_sigfpe_option_in_a_real_process(photos, tmp_path):
    """clahe tiles=0 used to kill the process with SIGFPE (no message at all)."""
    proc = subprocess.run(
        [sys.executable, "-m", "gefu", "enhance", str(photos), "-o", str(tmp_path / "o"), "-m", "clahe",
         "--option", "tiles=0"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == ["gefu enhance: error: clahe: tiles must be an integer in [1, 256], got 0"]
