"""The suites over real captures: LOL-v1 (paired; the published input figures on the real eval15 pairs) and the
no-reference suite for unpaired real photos."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from _shared import SHARED_DATA, needs_shared_data
from gefu import metrics
from gefu.bench.runner import run_suite
from gefu.bench.suites import create_suite
from gefu.imageio import load_image, save_image

LOL_EVAL15 = SHARED_DATA / "lol-v1" / "eval15"


def _skimage_scores(folder):
    """Input (low vs high) PSNR and SSIM per pair with scikit-image, independently of gefu.metrics."""
    psnrs, ssim_gauss, ssim_7x7 = [], [], []
    for low in sorted((folder / "low").iterdir()):
        a = load_image(low).permute(1, 2, 0).double().numpy()
        b = load_image(folder / "high" / low.name).permute(1, 2, 0).double().numpy()
        psnrs.append(peak_signal_noise_ratio(b, a, data_range=1.0))
        # MATLAB-style: Gaussian 11 (σ 1.5), population covariance, border cropped ('valid').
        ssim_gauss.append(structural_similarity(a, b, channel_axis=2, data_range=1.0, gaussian_weights=True,
                                                sigma=1.5, use_sample_covariance=False))
        ssim_7x7.append(structural_similarity(a, b, channel_axis=2, data_range=1.0))
    return float(np.mean(psnrs)), float(np.mean(ssim_gauss)), float(np.mean(ssim_7x7))


@needs_shared_data("lol-v1", "eval15", "low")
def test_lol_v1_eval15_input_scores_match_published_figures(tmp_path):
    """`gefu bench --suite lol-v1 --data .../eval15 --methods none`: PSNR 7.77 dB, SSIM 0.195 (MATLAB-style);
    scikit-image's default 7×7 uniform window gives the 0.191 some papers quote."""
    suite = create_suite("lol-v1", data=str(LOL_EVAL15), lpips=False)
    result = run_suite(suite, ["none"], tmp_path, device="cpu")
    got = result.records[0]["metrics"]
    assert result.records[0]["n_images"] == 15
    psnr_ref, ssim_ref, ssim_7x7 = _skimage_scores(LOL_EVAL15)
    assert got["psnr"] == pytest.approx(psnr_ref, abs=1e-6)
    assert got["ssim"] == pytest.approx(ssim_ref, abs=1e-5)
    assert round(got["psnr"], 2) == 7.77 and round(got["ssim"], 3) == 0.195
    assert round(ssim_7x7, 3) == 0.191
    # The LOL-v1 root works as well as its eval15 folder (split defaults to eval15).
    assert create_suite("lol-v1", data=str(LOL_EVAL15.parent), lpips=False).folder == LOL_EVAL15.resolve()


def _pairs(root, names, size=(24, 32)):
    for side in ("low", "high"):
        for i, n in enumerate(names):
            save_image(torch.full((3, *size), 0.1 + 0.05 * i if side == "low" else 0.6), root / side / n)


def test_lol_v1_layouts_and_pairing(tmp_path):
    _pairs(tmp_path / "LOL" / "our485", ["2.png", "5.png", "10.png"])
    _pairs(tmp_path / "LOL" / "eval15", ["1.png", "22.png"])
    suite = create_suite("lol-v1", data=str(tmp_path / "LOL"), split="our485", lpips=False)
    samples = suite.prepare(tmp_path / "cache")
    assert [s.id for s in samples] == ["low/10.png", "low/2.png", "low/5.png"]
    assert all(s.reference.name == s.input.name and s.reference.parent.name == "high" for s in samples)
    # Scores pair each output with ITS reference: output = reference gives PSNR at the cap / SSIM 1.
    rec = suite.score(samples[0], load_image(samples[0].reference))
    assert rec["ssim"] == pytest.approx(1.0)
    # eval15 by default; a plain folder with low/ and high/ works too.
    assert len(create_suite("lol-v1", data=str(tmp_path / "LOL"), lpips=False).prepare(tmp_path / "c")) == 2
    assert len(create_suite("lol-v1", data=str(tmp_path / "LOL" / "eval15"), lpips=False).prepare(tmp_path / "c")) == 2


def test_lol_v1_errors(tmp_path):
    _pairs(tmp_path / "d", ["1.png", "2.png"])
    (tmp_path / "d" / "high" / "2.png").unlink()
    with pytest.raises(ValueError, match="without a target"):
        create_suite("lol-v1", data=str(tmp_path / "d"), lpips=False).prepare(tmp_path / "cache")
    with pytest.raises(FileNotFoundError, match="eval15"):
        create_suite("lol-v1", data=str(tmp_path / "nothing"))
    with pytest.raises(ValueError, match="split"):
        create_suite("lol-v1", data=str(tmp_path / "d"), split="test")
    with pytest.raises(ValueError, match="--data"):
        create_suite("lol-v1")
    suite = create_suite("lol-v1", data=str(tmp_path / "d"), lpips=False)
    (tmp_path / "d" / "low" / "2.png").unlink()
    s = suite.prepare(tmp_path / "cache")[0]
    with pytest.raises(ValueError, match="without resizing"):
        suite.score(s, torch.zeros(3, 12, 16))  # no silent resize


def test_unpaired_suite_reports_the_available_no_reference_measures(tmp_path, monkeypatch):
    for i, v in enumerate((26 / 255, 77 / 255, 128 / 255)):
        save_image(torch.full((3, 16, 16), v), tmp_path / "photos" / ("sub" if i == 2 else "") / f"{i}.png")
    # A stand-in measure (mean brightness) where gefu.metrics has no NIQE yet; BRISQUE absent.
    monkeypatch.setattr(metrics, "niqe", lambda x: x.mean(dim=(1, 2, 3)), raising=False)
    monkeypatch.delattr(metrics, "brisque", raising=False)
    suite = create_suite("unpaired", data=str(tmp_path / "photos"))
    samples = suite.prepare(tmp_path / "cache")
    assert [s.id for s in samples] == ["0.png", "1.png", "sub/2.png"]
    records = {s.id: {"id": s.id, **suite.score(s, load_image(s.input))} for s in samples}
    agg = suite.aggregate(samples, records)
    assert agg.metrics == {"niqe": pytest.approx((26 + 77 + 128) / 3 / 255)}
    assert any("BRISQUE" in n for n in agg.notes)
    with pytest.raises(ValueError, match="unknown no-reference"):
        create_suite("unpaired", data=str(tmp_path / "photos"), metrics="niqe,psnr")
    with pytest.raises(ValueError, match="--data"):
        create_suite("unpaired")
    monkeypatch.delattr(metrics, "niqe")
    with pytest.raises(ValueError, match="provision"):
        create_suite("unpaired", data=str(tmp_path / "photos")).prepare(tmp_path / "cache")
