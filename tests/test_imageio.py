"""gefu.imageio: every Pillow mode loads to one convention; padding, saving and tiling round-trip."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from gefu import imageio
from gefu.imageio import ImageReadError, crop_to, load_image, pad_to_multiple, save_image, tile_apply


@pytest.fixture()
def rgb_array() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(13, 7, 3), dtype=np.uint8)


def _check(x: torch.Tensor, h: int, w: int) -> None:
    assert x.dtype == torch.float32 and x.shape == (3, h, w)
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0


def test_rgb_png_roundtrip_is_exact(tmp_path, rgb_array):
    Image.fromarray(rgb_array).save(tmp_path / "a.png")
    x = load_image(tmp_path / "a.png")
    _check(x, 13, 7)
    np.testing.assert_array_equal((x.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8), rgb_array)
    save_image(x, tmp_path / "b.png")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "b.png")), rgb_array)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "L", "P", "CMYK", "1"])
def test_modes_match_pillow_conversion(tmp_path, rgb_array, mode):
    img = Image.fromarray(rgb_array).convert(mode)
    suffix = ".tif" if mode == "CMYK" else ".png"
    img.save(tmp_path / f"a{suffix}")
    x = load_image(tmp_path / f"a{suffix}")
    _check(x, 13, 7)
    expected = np.asarray(Image.open(tmp_path / f"a{suffix}").convert("RGB"), dtype=np.float32) / 255
    np.testing.assert_allclose(x.permute(1, 2, 0).numpy(), expected, atol=1e-6)


def test_grey_is_repeated_to_three_equal_channels(tmp_path, rgb_array):
    Image.fromarray(rgb_array[:, :, 0]).save(tmp_path / "g.png")
    x = load_image(tmp_path / "g.png")
    assert torch.equal(x[0], x[1]) and torch.equal(x[1], x[2])
    np.testing.assert_allclose(x[0].numpy(), rgb_array[:, :, 0] / 255, atol=1e-6)


def test_16bit_keeps_full_precision(tmp_path):
    arr = np.array([[0, 1000, 65535], [30000, 40000, 12345]], dtype=np.uint16)
    Image.fromarray(arr).save(tmp_path / "d.png")  # opens as mode I or I;16
    x = load_image(tmp_path / "d.png")
    _check(x, 2, 3)
    np.testing.assert_allclose(x[1].numpy(), arr / 65535.0, atol=1e-6)
    img16 = Image.fromarray(arr).convert("I;16")
    assert img16.mode == "I;16"
    np.testing.assert_allclose(imageio.pil_to_tensor(img16)[0].numpy(), arr / 65535.0, atol=1e-6)


def test_exif_rotation_is_applied(tmp_path):
    arr = np.zeros((10, 20, 3), dtype=np.uint8)
    arr[:, :10] = 255  # left half white
    img = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
    img.save(tmp_path / "r.jpg", exif=exif, quality=100)
    x = load_image(tmp_path / "r.jpg")
    assert x.shape == (3, 20, 10)  # displayed upright: portrait
    assert x[:, :10].mean() > 0.9 and x[:, 10:].mean() < 0.1  # the white half is now on top


@pytest.mark.parametrize(
    "content, reason",
    [(b"", "empty"), (b"this is not an image", "not an image"), (None, "cannot decode")],
)
def test_bad_files_raise_clear_errors_naming_the_file(tmp_path, rgb_array, content, reason):
    path = tmp_path / "bad.png"
    if content is None:  # a truncated PNG
        buf = io.BytesIO()
        Image.fromarray(rgb_array).save(buf, format="PNG")
        content = buf.getvalue()[:60]
    path.write_bytes(content)
    with pytest.raises(ImageReadError, match=reason) as err:
        load_image(path)
    assert str(path) in str(err.value)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        load_image(tmp_path / "nope.png")


def test_decompression_bombs_are_refused_with_one_limit_quoted_right(tmp_path, monkeypatch):
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "big.png")
    for limit in (1000, 3000, 4095):  # above 2 × limit Pillow would raise, between limit and 2 × it only warns
        monkeypatch.setattr(imageio, "MAX_PIXELS", limit)
        with pytest.raises(ImageReadError) as err:
            load_image(tmp_path / "big.png")
        assert str(err.value) == (f"{tmp_path / 'big.png'}: refused: 64×64 = 4,096 pixels, more than the limit of "
                                  f"{limit:,} pixels; downscale it first")
    monkeypatch.setattr(imageio, "MAX_PIXELS", 4096)  # exactly at the limit: read
    assert load_image(tmp_path / "big.png").shape == (3, 64, 64)


def test_default_limit_is_quoted_with_its_side(tmp_path, monkeypatch):
    """The pixel cap is 16384²; a 16000² image (the issue's) is under it, and the message quotes the same cap."""
    assert imageio.MAX_PIXELS == 16384 * 16384 and 16000 * 16000 < imageio.MAX_PIXELS
    assert Image.MAX_IMAGE_PIXELS is None or Image.MAX_IMAGE_PIXELS >= imageio.MAX_PIXELS  # Pillow lets 16000² in
    assert imageio._limit_text() == "268,435,456 pixels (16384×16384)"


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path, rgb_array):
    x = torch.rand(3, 5, 6)
    save_image(x, tmp_path / "sub" / "o.jpg")
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["o.jpg"]
    with pytest.raises(ValueError, match="unknown image format"):
        save_image(x, tmp_path / "o.xyz")
    assert not list(tmp_path.glob(".o.xyz*"))


@pytest.mark.parametrize("h, w, k", [(13, 7, 8), (16, 16, 8), (1, 1, 8), (37, 61, 16)])
def test_pad_matches_numpy_reflect_and_crops_back(h, w, k):
    x = torch.rand(2, 3, h, w)
    padded, size = pad_to_multiple(x, k)
    assert padded.shape[-2] % k == 0 and padded.shape[-1] % k == 0 and size == (h, w)
    ph, pw = padded.shape[-2] - h, padded.shape[-1] - w
    np_mode = "reflect" if ph < h and pw < w else "edge"
    ref = np.pad(x.numpy(), ((0, 0), (0, 0), (0, ph), (0, pw)), mode=np_mode)
    np.testing.assert_allclose(padded.numpy(), ref)
    assert torch.equal(crop_to(padded, size), x)


def test_find_images_recurses_and_mirrors(tmp_path, rgb_array):
    (tmp_path / "a" / "b").mkdir(parents=True)
    for rel in ["a/x.png", "a/b/y.jpg", "a/notes.txt", "a/.hidden.png"]:
        (tmp_path / rel).write_bytes(b"x")
    found = imageio.find_images([tmp_path / "a"])
    assert [str(rel) for _, rel in found] == ["b/y.jpg", "x.png"]
    with pytest.raises(FileNotFoundError):
        imageio.find_images([tmp_path / "missing"])


def test_tiling_pointwise_fn_is_exact():
    x = torch.rand(2, 3, 70, 90)
    y = tile_apply(lambda t: t**2 + 0.1, x, tile=32, overlap=8)
    torch.testing.assert_close(y, x**2 + 0.1)


def test_tiling_local_fn_has_no_seams():
    """A 3×3 blur is local: tiles with overlap ≥ its reach blend to the untiled result away from image borders."""
    x = torch.rand(1, 3, 64, 80)
    k = torch.full((3, 1, 3, 3), 1 / 9)

    def blur(t):
        return F.conv2d(F.pad(t, (1, 1, 1, 1), mode="replicate"), k, groups=3)

    y = tile_apply(blur, x, tile=32, overlap=16)
    ref = blur(x)
    # Tile borders differ only where a tile edge (replicate-padded) has non-zero blending weight.
    err = (y - ref).abs()
    assert err.max() < 0.05 and err.mean() < 1e-3


def test_tiling_bounds_the_size_seen_by_fn():
    seen = []

    def fn(t):
        seen.append(tuple(t.shape[-2:]))
        return t

    tile_apply(fn, torch.rand(1, 3, 100, 130), tile=40, overlap=8)
    assert max(h for h, _ in seen) <= 40 and max(w for _, w in seen) <= 40 and len(seen) > 4


# ------------------------------------------------------------------------------------------------------------
# Mode "I" is scaled by its bit depth, not by its values; no process-wide state changed per call (item 14)
# ------------------------------------------------------------------------------------------------------------


def test_dark_16bit_image_is_not_brightened(tmp_path):
    """A dark 16-bit image (all values ≤ 255 of 65535) used to be divided by 255 when opened as mode "I": 257×
    too bright. Its PGM (opens as mode "I") and PNG (opens as "I;16") must both read as value / 65535."""
    arr = np.array([[0, 100, 255], [30, 200, 17]], dtype=np.uint16)
    with open(tmp_path / "dark.pgm", "wb") as f:  # binary PGM, maxval 65535, big-endian samples
        f.write(b"P5 3 2 65535\n" + arr.astype(">u2").tobytes())
    Image.fromarray(arr).save(tmp_path / "dark.png")
    assert Image.open(tmp_path / "dark.pgm").mode == "I"
    for name in ("dark.pgm", "dark.png"):
        x = load_image(tmp_path / name)
        np.testing.assert_allclose(x[0].numpy(), arr / 65535.0, rtol=1e-6, err_msg=name)


def test_pgm_with_12bit_maxval_is_scaled_by_its_maxval(tmp_path):
    with open(tmp_path / "m.pgm", "wb") as f:  # maxval 4095: 4095 is white, 100 is 100/4095
        f.write(b"P5 2 1 4095\n" + np.array([100, 4095], ">u2").tobytes())
    x = load_image(tmp_path / "m.pgm")
    np.testing.assert_allclose(x[0, 0].numpy(), [100 / 4095, 1.0], atol=2e-5)


def test_32bit_tiff_uses_its_declared_depth(tmp_path):
    arr = np.array([[0, 2**30, 2**31 - 1]], dtype=np.int32)
    Image.fromarray(arr, mode="I").save(tmp_path / "i32.tif")
    x = load_image(tmp_path / "i32.tif")
    np.testing.assert_allclose(x[0, 0].numpy(), [0.0, 0.5, 1.0], atol=1e-6)
    small = np.array([[0, 255, 65535]], dtype=np.int32)  # small values in a 32-bit file stay small
    Image.fromarray(small, mode="I").save(tmp_path / "s32.tif")
    assert float(load_image(tmp_path / "s32.tif").max()) < 1e-4


def test_loading_changes_no_process_wide_state(tmp_path, monkeypatch):
    """Pillow's pixel limit and the warnings filters are process-wide (and not thread-safe): loading must not
    touch them, not even for the duration of a call (the old code set both around every open)."""
    import warnings

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    before = (Image.MAX_IMAGE_PIXELS, list(warnings.filters))
    seen = []
    real_open = Image.open

    def spy(*args, **kwargs):
        seen.append((Image.MAX_IMAGE_PIXELS, list(warnings.filters)))
        return real_open(*args, **kwargs)

    monkeypatch.setattr(Image, "open", spy)
    load_image(tmp_path / "a.png")
    monkeypatch.setattr(imageio, "MAX_PIXELS", 10)
    with pytest.raises(ImageReadError):
        load_image(tmp_path / "a.png")
    assert seen and all(s == before for s in seen)
    assert (Image.MAX_IMAGE_PIXELS, list(warnings.filters)) == before


def test_raw_image_regions_match_the_whole(tmp_path, rgb_array):
    Image.fromarray(rgb_array).save(tmp_path / "a.png")
    raw = imageio.read_image(tmp_path / "a.png")
    assert raw.array.dtype == np.uint8 and raw.array.shape == (13, 7, 3)  # 3 bytes per pixel until converted
    whole = raw.tensor()
    assert torch.equal(raw.tensor(2, 9, 1, 5), whole[:, 2:9, 1:5])
    assert torch.equal(whole, load_image(tmp_path / "a.png"))


def test_fifo_is_not_a_regular_file(tmp_path):
    import os

    os.mkfifo(tmp_path / "p.png")
    with pytest.raises(ImageReadError, match=r"p.png: not a regular file \(a FIFO\)"):
        load_image(tmp_path / "p.png")  # (the old code said "no such file")
    with pytest.raises(ImageReadError, match="is a folder"):
        load_image(tmp_path)


def test_multi_frame_files_report_their_frames(tmp_path):
    frames = [Image.new("RGB", (4, 3), (50 * i, 0, 0)) for i in range(3)]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    raw = imageio.read_image(tmp_path / "a.gif")
    assert raw.frames == 3 and raw.tensor()[0].max() == 0  # the first frame (red 0)


def test_scan_reports_what_it_passes_over(tmp_path):
    import os

    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    for rel in ["a.png", "sub/b.jpg", "notes.txt", ".hidden.png", "c.HEIC"]:
        (root / rel).write_bytes(b"x")
    (root / "sub" / "up").symlink_to(root)  # loop
    (root / "broken.png").symlink_to(tmp_path / "missing.png")
    (root / "link.png").symlink_to(root / "a.png")  # a link to a file is taken
    os.mkfifo(root / "fifo.jpg")
    scan = imageio.scan_images([root])
    assert [str(rel) for _, rel in scan.found] == ["a.png", "link.png", "sub/b.jpg"]
    assert [(s.path.name, s.reason.split(" (")[0].split(";")[0]) for s in scan.skipped] == [
        ("broken.png", "broken symbolic link"), ("c.HEIC", ".heic images cannot be read here"),
        ("fifo.jpg", "not a regular file"), ("up", "symbolic link loop"),
    ]


@pytest.mark.parametrize("mode", ["RGB", "L", "I;16", "RGBA", "P"])
def test_big_images_convert_strip_by_strip_to_the_same_pixels(tmp_path, monkeypatch, mode):
    rng = np.random.default_rng(1)
    arr = rng.integers(0, 256, size=(37, 23, 3), dtype=np.uint8)
    img = Image.fromarray(arr).convert(mode if mode != "I;16" else "L")
    if mode == "I;16":
        img = Image.fromarray(rng.integers(0, 65536, size=(37, 23), dtype=np.uint16))
    img.save(tmp_path / "a.png")
    whole = load_image(tmp_path / "a.png")
    monkeypatch.setattr(imageio, "_STRIP_PIXELS", 50)  # strips of one row
    assert torch.equal(load_image(tmp_path / "a.png"), whole)
