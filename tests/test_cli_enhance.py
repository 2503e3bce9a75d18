"""`gefu enhance` end to end: mirrored outputs, per-file errors, untouched inputs, exit codes."""

from __future__ import annotations

import hashlib
import io
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
