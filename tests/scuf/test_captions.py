"""BLIP captioning with a tiny random BLIP (no tokenizer, no download), the night→day rewrite, resumable files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from transformers import BlipConfig, BlipForConditionalGeneration

from gefu.cli import main as cli_main
from gefu.imageio import save_image
from gefu.samples import load_sample
from gefu.scuf.captions import (
    OFFICIAL_GENERATION,
    OFFICIAL_NIGHT_TO_DAY,
    BlipCaptioner,
    caption_folder,
    night_to_day,
    rewrite_caption,
)
from gefu.scuf.data import DataConfig, build_train_data, load_captions


@pytest.fixture(scope="module")
def tiny_blip() -> BlipForConditionalGeneration:
    cfg = BlipConfig(
        text_config=dict(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                         intermediate_size=37, max_position_embeddings=64, bos_token_id=30, sep_token_id=31,
                         pad_token_id=0, eos_token_id=31),
        vision_config=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                           image_size=32, patch_size=8),
        projection_dim=16,
    )
    torch.manual_seed(0)
    return BlipForConditionalGeneration(cfg).eval()


class CountingDecode:
    """Token ids → "w<id> w<id> …" (special ids dropped), counting how many images it decoded."""

    def __init__(self) -> None:
        self.images = 0

    def __call__(self, ids: torch.Tensor) -> list[str]:
        self.images += ids.shape[0]
        return [" ".join(f"w{int(i)}" for i in row if int(i) not in (0, 30, 31)) for row in ids]


def _folder(root: Path, names) -> Path:
    for name in names:
        img = F.interpolate(load_sample(name)[None], size=(40, 48), mode="area")[0].clamp(0, 1)
        save_image(img, root / f"{name}.png")
    return root


@pytest.mark.parametrize(
    "text, want",
    [
        ("a dark street at night", "a bright street at day"),
        ("Night view of a Dark alley, DIM lamps", "Day view of a Bright alley, CLEAR lamps"),
        ("a low light photo, low-light scene", "a normal light photo, normal-light scene"),
        ("darkness in a dimension of nightly knights", "darkness in a dimension of nightly knights"),
        ("a cat on a sofa", "a cat on a sofa"),
    ],
)
def test_night_to_day(text, want):
    assert night_to_day(text) == want


def test_tiny_blip_captions_are_batched_and_deterministic(tiny_blip):
    decode = CountingDecode()
    cap = BlipCaptioner(tiny_blip, decode=decode, max_new_tokens=5, num_beams=1)
    imgs = [torch.rand(3, 40, 56), torch.rand(3, 64, 48), torch.rand(3, 32, 32)]
    a, b = cap(imgs), cap(imgs)
    assert len(a) == 3 and a == b and decode.images == 6
    assert all(t.startswith("w") and 1 <= len(t.split()) <= 5 for t in a)
    # the same generation straight from the model on the same preprocessing
    ids = tiny_blip.generate(pixel_values=cap._pixels(imgs[:1]), max_new_tokens=5, num_beams=1)
    assert a[0] == CountingDecode()(ids)[0]
    with pytest.raises(ValueError, match="decode"):
        BlipCaptioner(tiny_blip)


def test_missing_model_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="hf download"):
        BlipCaptioner(name_or_path=str(tmp_path / "no-blip"))


def test_caption_folder_resumes_and_feeds_training_data(tiny_blip, tmp_path):
    folder = _folder(tmp_path / "trainA", ["coffee", "chelsea", "rocket"])
    out = folder / "captions.tsv"
    decode = CountingDecode()
    cap = BlipCaptioner(tiny_blip, decode=decode, max_new_tokens=4, num_beams=1)
    calls = []
    stats = caption_folder(folder, out, cap, batch_size=2, progress=lambda d, t: calls.append((d, t)))
    assert stats == {"images": 3, "skipped": 0, "captioned": 3} and calls == [(2, 3), (3, 3)]
    rows = load_captions(out)
    assert [p for p, _ in rows] == ["chelsea.png", "coffee.png", "rocket.png"]
    assert out.read_text().splitlines()[0] == "filepath\tcaption"

    # a new image, and a half-written last line from a killed run: only the new image is captioned
    _folder(folder, ["astronaut"])
    with open(out, "a", encoding="utf-8") as f:
        f.write("astro")
    stats = caption_folder(folder, out, cap, batch_size=2)
    assert stats == {"images": 4, "skipped": 3, "captioned": 1} and decode.images == 4
    assert sorted(p for p, _ in load_captions(out)) == ["astronaut.png", "chelsea.png", "coffee.png", "rocket.png"]
    # the training data reads it back (found automatically inside the folder)
    data = build_train_data(DataConfig(low=str(folder), normal=str(folder)), need_captions=True)
    assert all(c.startswith("w") for c in data.low_captions)


def test_caption_folder_jsonl_with_rewrite(tmp_path):
    folder = _folder(tmp_path / "imgs", ["coffee"])
    out = tmp_path / "caps.jsonl"
    caption_folder(folder, out, lambda imgs: ["a dark kitchen at night"] * len(imgs), rewrite="words")
    assert json.loads(out.read_text().strip()) == {"filepath": "coffee.png", "caption": "a bright kitchen at day"}
    with pytest.raises(ValueError, match=".tsv, .csv or .jsonl"):
        caption_folder(folder, tmp_path / "caps.txt", lambda imgs: [""] * len(imgs))


def test_cli_caption_reports_missing_model(tmp_path, capsys):
    folder = _folder(tmp_path / "imgs", ["coffee"])
    code = cli_main(["caption", str(folder), "-o", str(tmp_path / "c.tsv"), "--model", str(tmp_path / "none"),
                     "--device", "cpu"])
    assert code == 2 and "--allow-download" in capsys.readouterr().err


@pytest.mark.parametrize(
    "text, want",
    [
        # the released table, as plain substring replacements in its order (hand-applied)
        ("a dark street at night", "a bright street at day"),
        ("darkness in the evening, dimly lit", "brightness in the morning, clearly lit"),
        ("a moonlit harbour with long shadows", "a sunny harbour with long sunlight"),
        ("nighttime traffic in low-light and low light", "daytime traffic in normal-light and normal light"),
        ("Night view of a Dark alley", "Night view of a Dark alley"),  # case-sensitive: capitals stay
    ],
)
def test_official_rewrite_is_the_released_substring_table(text, want):
    assert rewrite_caption(text, "official") == want
    assert rewrite_caption(want, "official") == want  # idempotent: training may apply it to rewritten captions


def test_official_generation_settings():
    """B4 of issue 10: the released captions come from BLIP-large with 32 new tokens, greedy."""
    assert OFFICIAL_GENERATION == {"max_new_tokens": 32, "num_beams": 1}
    assert [night for night, _ in OFFICIAL_NIGHT_TO_DAY] == [
        "night", "evening", "dark", "dim", "moonlit", "shadows", "nighttime", "low-light", "low light"]


def test_training_applies_the_caption_rewrite_of_its_config(tmp_path):
    folder = _folder(tmp_path / "imgs", ["coffee"])
    (folder / "captions.tsv").write_text("filepath\tcaption\ncoffee.png\ta dark kitchen in the evening\n")
    read = {style: build_train_data(DataConfig(low=str(folder), normal=str(folder), caption_rewrite=style),
                                    need_captions=True).low_captions[0] for style in ("none", "words", "official")}
    assert read == {"none": "a dark kitchen in the evening", "words": "a bright kitchen in the evening",
                    "official": "a bright kitchen in the morning"}


def test_cli_caption_never_touches_the_network_without_allow_download(tmp_path, capsys, monkeypatch):
    """Issue 11 item 9: without --allow-download the hub client must not even look the model up."""
    import socket

    from huggingface_hub import constants

    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args[:1])
        raise OSError("network refused by the test")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    folder = _folder(tmp_path / "imgs", ["coffee"])
    code = cli_main(["caption", str(folder), "-o", str(tmp_path / "c.tsv"), "--model", "nobody/no-such-blip",
                     "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and "hf download nobody/no-such-blip" in err and len(err.strip().splitlines()) == 1
    assert attempts == []
    assert constants.HF_HUB_OFFLINE is False  # the offline switch is restored after the command


def test_cli_caption_device_and_precision_messages(tmp_path, capsys, monkeypatch):
    import torch as _torch

    monkeypatch.setattr(_torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(_torch.cuda, "device_count", lambda: 0)
    folder = _folder(tmp_path / "imgs", ["coffee"])
    args = ["caption", str(folder), "-o", str(tmp_path / "c.tsv"), "--model", str(tmp_path / "none")]
    assert cli_main([*args, "--device", "cuda"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "CUDA is not available" in err[0] and "--device cpu" in err[0]
    assert cli_main([*args, "--dtype", "fp16"]) == 2  # the model is missing, but the warning comes first
    err = capsys.readouterr().err
    assert "warning: --dtype fp16" in err and "CPU" in err


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("c.tsv", b"\xff\xfe\x00binary\x00", r"c\.tsv: not a UTF-8 text file"),
        ("c.csv", "filepath\tcaption\na.png\tx\n", r"separated by tabs: rename the file to c\.tsv"),
        ("c.tsv", "filepath\tcaption\na.png\n", r"c\.tsv:2: no caption after 'a\.png'"),
        ("c.tsv", "filepath\tcaption\na.png\tone\ttwo\n", r"c\.tsv:2: 3 fields but the header has 2"),
        ("c.jsonl", '["a.png", "x"]\n', r"c\.jsonl:1: expected an object"),
        ("c.jsonl", '{"filepath": "a.png", "caption": "x"\n', r"c\.jsonl:1: not valid JSON"),
    ],
)
def test_malformed_caption_files_name_the_file_and_the_fix(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ValueError, match=message):
        load_captions(path)
