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
from gefu.scuf.captions import BlipCaptioner, caption_folder, night_to_day
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
    with pytest.raises(FileNotFoundError, match="huggingface-cli download"):
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
