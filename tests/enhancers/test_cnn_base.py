"""The shared plumbing of official-checkpoint enhancers: padding, checkpoint reading, strict loading, weights."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch
import torch.nn as nn

from gefu.enhancers.cnn import CNNEnhancer, load_strict, pad_to_multiple, read_checkpoint
from gefu.weights import MissingWeightsError


def test_pad_to_multiple_reflects_like_numpy_and_replicates_tiny_images():
    x = torch.arange(2 * 5 * 7, dtype=torch.float32).view(1, 2, 5, 7)
    y, size = pad_to_multiple(x, 4)
    assert size == (5, 7) and y.shape == (1, 2, 8, 8)
    ref = np.pad(x.numpy(), ((0, 0), (0, 0), (0, 3), (0, 1)), mode="reflect")  # numpy's reflect = torch's
    np.testing.assert_array_equal(y.numpy(), ref)
    tiny, size = pad_to_multiple(torch.ones(1, 3, 1, 2), 8)  # reflect impossible: pad ≥ side
    assert size == (1, 2) and tiny.shape == (1, 3, 8, 8) and torch.all(tiny == 1)
    same, _ = pad_to_multiple(x, 1)
    assert same is x
    # min_side: at least 2 pixels (reflect-padded convs), then the multiple
    y, size = pad_to_multiple(torch.ones(1, 3, 1, 5), 1, min_side=2)
    assert size == (1, 5) and y.shape == (1, 3, 2, 5)
    y, _ = pad_to_multiple(torch.ones(1, 3, 1, 5), 4, min_side=2)
    assert y.shape == (1, 3, 4, 8)
    y, _ = pad_to_multiple(x, 1, min_side=2)
    assert y is x


def test_read_checkpoint_keeps_weights_only_with_an_explicit_allowlist(tmp_path):
    path = tmp_path / "ckpt.pth"
    torch.save({"opts": argparse.Namespace(a=1), "model": {"module.w": torch.ones(2)}}, path)
    with pytest.raises(ValueError, match="could not read"):  # Namespace is not allowed by default
        read_checkpoint(path)
    state = read_checkpoint(path, allow=[argparse.Namespace])
    assert list(state) == ["w"]  # unwrapped from 'model', 'module.' stripped
    raw = read_checkpoint(path, allow=[argparse.Namespace], unwrap=False)
    assert raw["opts"].a == 1

    class Evil:
        def __reduce__(self):
            return (print, ("ran",))

    import pickle

    (tmp_path / "evil.pth").write_bytes(pickle.dumps({"x": Evil()}))
    with pytest.raises(ValueError, match="could not read"):
        read_checkpoint(tmp_path / "evil.pth", allow=[argparse.Namespace])


def test_load_strict_names_every_kind_of_mismatch():
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Conv2d(4, 2, 1))
    good = {k: torch.zeros_like(v) for k, v in net.state_dict().items()}
    load_strict(net, good, "x.pth")
    assert torch.all(net[0].weight == 0)
    bad = dict(good)
    del bad["1.bias"]
    bad["2.weight"] = torch.zeros(1)
    bad["0.weight"] = torch.zeros(4, 3, 5, 5)
    with pytest.raises(ValueError) as err:
        load_strict(net, bad, "x.pth (SCI)", hint="Is it SCI?")
    msg = str(err.value)
    assert "Missing keys: 1.bias" in msg and "Unexpected keys: 2.weight" in msg and "0.weight: file (4, 3, 5, 5)" in msg
    assert msg.endswith("Is it SCI?")


class _Doubler(CNNEnhancer):
    """A one-conv test enhancer on the table entry 'sci-easy' (only its name is borrowed)."""

    name = "test-doubler"
    weight_names = ("sci-easy",)
    multiple = 4

    def build(self) -> nn.Module:
        return nn.Conv2d(3, 3, 3, padding=1, bias=False)

    def load(self, paths):
        load_strict(self.net, read_checkpoint(paths["sci-easy"]), str(paths["sci-easy"]))

    def run(self, x):
        assert x.shape[-1] % 4 == 0 and x.shape[-2] % 4 == 0
        assert x.is_contiguous(memory_format=torch.channels_last)
        return self.net(x)


def test_base_resolves_user_weights_pads_crops_and_keys_on_content(tmp_path, monkeypatch):
    monkeypatch.setenv("GEFU_WEIGHTS", str(tmp_path / "empty-store"))
    with pytest.raises(MissingWeightsError, match="gefu weights download sci-easy"):
        _Doubler()
    w = torch.zeros(3, 3, 3, 3)
    for c in range(3):
        w[c, c, 1, 1] = 2.0  # a centred 2× identity
    path = tmp_path / "doubler.pth"
    torch.save({"weight": w}, path)
    enh = _Doubler(weights=path)
    x = torch.rand(2, 3, 9, 10) * 0.4
    torch.testing.assert_close(enh(x), 2 * x)  # padded to 12×12 inside, cropped back
    assert enh.config()["weights_sha256"]["sci-easy"] == __import__("hashlib").sha256(path.read_bytes()).hexdigest()
    w[0, 0, 1, 1] = 3.0
    torch.save({"weight": w}, path)
    assert _Doubler(weights=path).config() != enh.config()  # new bytes, new cache key
    rnd = _Doubler(allow_random=True, seed=3)
    assert rnd.config()["seed"] == 3 and rnd.config()["weights_sha256"] == {}
    with pytest.raises(ValueError, match="takes \\['sci-easy'\\]"):
        _Doubler(weights={"other": path})
