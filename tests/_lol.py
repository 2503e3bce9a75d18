"""LOL-v1 eval15 images for tests that compare with facts recorded from the official implementations.

Images are read with PIL and scaled by 1/255 in numpy (independently of gefu's own loader), as the official test
scripts' `ToTensor` does.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from _shared import SHARED_DATA

LOL_EVAL15 = SHARED_DATA / "lol-v1" / "eval15"


def lol_image(name: str, split: str = "low") -> torch.Tensor:
    """`lol-v1/eval15/<split>/<name>` as (1, 3, H, W) float32 in [0, 1]."""
    arr = np.asarray(Image.open(LOL_EVAL15 / split / name).convert("RGB"), dtype=np.float32) / np.float32(255)
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).contiguous()


def official_fact_crop() -> torch.Tensor:
    """The crop on which the official outputs were recorded: low/22.png, rows 100:148, columns 200:296."""
    return lol_image("22.png")[..., 100:148, 200:296]


#: pixels (row, column) of the fact crop whose official output values the tests record
FACT_PIXELS = ((0, 0), (24, 48), (47, 95))


def assert_matches_facts(y: torch.Tensor, means: list[float], pixels: list[list[float]], atol: float = 2e-5) -> None:
    """y (1, 3, 48, 96): its channel means and FACT_PIXELS values equal the official ones (6 decimals)."""
    got_means = y[0].double().mean((1, 2)).numpy()
    np.testing.assert_allclose(got_means, means, atol=atol, rtol=0)
    for (i, j), ref in zip(FACT_PIXELS, pixels):
        np.testing.assert_allclose(y[0, :, i, j].double().numpy(), ref, atol=atol, rtol=0)
