"""Shared plumbing for learned enhancers that load official checkpoints (Zero-DCE, SCI, RUAS, IAT, ...).

A method family lives in its own module (`zero_dce.py`, `sci.py`, ...) with its network(s) and one `CNNEnhancer`
subclass per registered name. The subclass says which weight-table entries it needs, which multiple its input
sides must be, and how the official test script turns an image into the enhanced image (`run`); this base does the
rest the same way for every method:

- weights: `weights=None` → the table entries (`gefu.weights.weight_path`: verified sha256, one clear line when
  missing); `weights=PATH` (or a dict of PATHs for multi-file methods) → the user's files; `allow_random=True` →
  seeded random weights for tests and demos, never silently;
- checkpoints are read with `torch.load(weights_only=True)` (an allowlist of extra classes only where a checkpoint
  pickles one, e.g. URetinex-Net's `argparse.Namespace`), `module.` prefixes stripped, and loaded strictly: a file
  that does not fit names its missing, unexpected and mis-shaped keys;
- any input size: reflect-padded up to the network's multiple (replicate where the image is too small to reflect)
  and cropped back — the official scripts resize or crop instead; each module docstring says so;
- convolutions run channels_last (oneDNN on CPU, cuDNN on GPU run 3×3 convs several times faster that way),
  and the networks avoid full-size copies between their convs (`layers.py`); a class whose convs are all
  3–6 channels wide (SCI, RUAS) sets `channels_last = False`, which measured faster there;
- precision: fp32 on the CPU, always. On a GPU the convs may run under autocast: the `dtype` option ("fp16",
  "bf16", "fp32") chooses, and None takes the class's `autocast_dtype` (fp32 until measured with
  `benchmarks/gpu_check.py`: a class enables it only where its outputs stay within 35 dB PSNR of fp32);
- `config()` carries the sha256 of every weight file, so the benchmark cache notices new weights.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, ClassVar, Iterable, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..device import dtype_name, parse_dtype
from ..weights import sha256, weight_path
from .base import Enhancer

log = logging.getLogger(__name__)

WeightsArg = str | os.PathLike | Mapping[str, str | os.PathLike] | None
DtypeArg = str | torch.dtype | None

_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "params", "net")


# ----------------------------------------------------------------------------------------------------------------
# Checkpoints
# ----------------------------------------------------------------------------------------------------------------


def read_checkpoint(path: str | os.PathLike, allow: Iterable[type] = (), unwrap: bool = True) -> Any:
    """`torch.load(path, weights_only=True)` on the CPU, with `allow` added to the unpickler's allowlist for this
    call only. `unwrap`: return the state dict found directly or under a usual wrapper key, with `module.` prefixes
    stripped; otherwise return the loaded object as is. Unreadable files raise ValueError naming the file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj: Any = load_file(str(path))
        else:
            with torch.serialization.safe_globals(list(allow)):
                obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # corrupt file, or a pickle that wants classes outside the allowlist
        raise ValueError(f"could not read {path} as a PyTorch checkpoint: {err}") from err
    return state_dict_of(obj, path) if unwrap else obj


def state_dict_of(obj: Any, path: str | os.PathLike = "checkpoint") -> dict[str, torch.Tensor]:
    """The tensor dict in a loaded checkpoint (bare, or under 'state_dict'/'model'/...), `module.` stripped."""
    for key in _WRAPPER_KEYS:
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path} does not hold a state dict (a dict of tensors); top level: {type(obj).__name__}")
    return {(k[len("module."):] if k.startswith("module.") else k): v for k, v in obj.items()}


def _short(keys: list[str]) -> str:
    return (", ".join(keys[:8]) + (f", ... ({len(keys)} in all)" if len(keys) > 8 else "")) or "none"


def load_strict(net: nn.Module, state: Mapping[str, torch.Tensor], what: str, hint: str = "") -> nn.Module:
    """`net.load_state_dict(state, strict=True)`, with a one-paragraph ValueError naming the missing, unexpected
    and mis-shaped keys when `state` does not fit (`what` names the file and the architecture)."""
    expected = net.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [f"{k}: file {tuple(state[k].shape)} vs model {tuple(v.shape)}"
              for k, v in expected.items() if k in state and state[k].shape != v.shape]
    if missing or unexpected or shapes:
        raise ValueError(f"{what} does not fit. Missing keys: {_short(missing)}. Unexpected keys: "
                         f"{_short(unexpected)}. Shape mismatches: {_short(shapes)}.{' ' + hint if hint else ''}")
    net.load_state_dict(dict(state), strict=True)
    return net


def init_random(net: nn.Module, seed: int = 0, std: float = 0.02) -> nn.Module:
    """Seeded random weights (conv/linear ~ N(0, std), biases 0; norm layers keep their defaults)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * std)
                if m.bias is not None:
                    m.bias.zero_()
    return net


# ----------------------------------------------------------------------------------------------------------------
# Padding
# ----------------------------------------------------------------------------------------------------------------


def pad_to_multiple(x: torch.Tensor, multiple: int, min_side: int = 1) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad (N, C, H, W) at the bottom and right up to multiples of `multiple`, and to at least `min_side` (for
    networks whose own padding needs a few pixels, e.g. reflect-padded convs need 2): reflect where the image is
    large enough, replicate otherwise (reflect needs pad < side). Returns the padded tensor and the original
    (H, W)."""
    h, w = x.shape[-2:]
    ph, pw = (-max(h, min_side)) % multiple, (-max(w, min_side)) % multiple
    ph, pw = ph + max(0, min_side - h), pw + max(0, min_side - w)
    if ph == 0 and pw == 0:
        return x, (h, w)
    mode = "reflect" if ph < h and pw < w else "replicate"
    return F.pad(x, (0, pw, 0, ph), mode=mode), (h, w)


# ----------------------------------------------------------------------------------------------------------------
# The base enhancer
# ----------------------------------------------------------------------------------------------------------------


class CNNEnhancer(Enhancer):
    """Base for official-checkpoint enhancers. Subclasses set `name`, `weight_names` (table entries, in the order
    `load` expects them), optionally `multiple`, and implement `build()`, `load(paths)` and `run(x)`.

    `run(x)` gets (N, 3, H', W') float in [0, 1] with H', W' multiples of `multiple` (and ≥ `min_side`), already
    in the network's dtype, device and memory format, and returns the enhanced image as the official test script
    saves it, before the final clamp (the base clamps to [0, 1] and crops). On a GPU it runs under autocast when
    `autocast(device)` says so.

    Every subclass also takes `dtype` (None, "fp32", "fp16", "bf16"): the GPU compute precision (module
    docstring); it is recorded in `config()` only when given.
    """

    weight_names: ClassVar[tuple[str, ...]] = ()
    #: input sides are padded up to multiples of this (an instance may set its own, e.g. from an option).
    multiple: int = 1
    #: and to at least this many pixels (reflect-padded convs need 2).
    min_side: ClassVar[int] = 1
    #: run convolutions channels_last (same values within float rounding; several times faster on CPU and GPU).
    channels_last: bool = True
    #: GPU autocast precision when the `dtype` option is left unset: None keeps fp32. Set per class from
    #: `benchmarks/gpu_check.py` (only where outputs stay within 35 dB PSNR of fp32). Never used on the CPU.
    autocast_dtype: ClassVar[torch.dtype | None] = None

    net: nn.Module

    def __init__(self, weights: WeightsArg = None, allow_random: bool = False, seed: int = 0,
                 dtype: DtypeArg = None, **options: Any):
        paths = self._resolve(weights, allow_random)
        opts: dict[str, Any] = dict(options)
        if weights is not None:
            opts["weights"] = {k: str(v) for k, v in weights.items()} if isinstance(weights, Mapping) else str(weights)
        if paths is None:  # random weights: the seed determines the output
            opts.update(allow_random=True, seed=seed)
        #: GPU compute precision chosen by the caller (None: the class's `autocast_dtype`)
        self.gpu_dtype = None if dtype is None else parse_dtype(dtype)
        if self.gpu_dtype is not None:
            opts["dtype"] = dtype_name(self.gpu_dtype)
        super().__init__(**opts)
        self.net = self.build()
        if paths is None:
            log.warning("%s: random weights (allow_random=True, seed=%d): not a real enhancer", self.name, seed)
            init_random(self.net, seed)
            self._digests: dict[str, str] = {}
        else:
            self.load(paths)
            self._digests = {k: sha256(p) for k, p in paths.items()}
        self.net.eval().requires_grad_(False)
        if self.channels_last:
            self.net.to(memory_format=torch.channels_last)

    # -- subclass hooks -----------------------------------------------------------------------------------------

    def build(self) -> nn.Module:  # pragma: no cover - abstract
        raise NotImplementedError

    def load(self, paths: dict[str, Path]) -> None:  # pragma: no cover - abstract
        """Load the files (`paths[name]` for every name in `weight_names`) into `self.net`."""
        raise NotImplementedError

    def run(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- shared behaviour ---------------------------------------------------------------------------------------

    def _resolve(self, weights: WeightsArg, allow_random: bool) -> dict[str, Path] | None:
        """{table name: file} from the table, the user's path(s), or None for random weights."""
        names = self.weight_names
        if weights is None:
            if allow_random and not all(_present(n) for n in names):
                return None
            return {n: weight_path(n) for n in names}  # MissingWeightsError names the file and how to get it
        if isinstance(weights, Mapping):
            unknown = sorted(set(weights) - set(names))
            if unknown:
                raise ValueError(f"{self.name}: weights for {unknown} given; this method takes {list(names)}")
            return {n: (Path(weights[n]).expanduser() if n in weights else weight_path(n)) for n in names}
        if len(names) != 1:
            raise ValueError(f"{self.name} needs {len(names)} weight files ({', '.join(names)}): pass a dict "
                             "{name: path}, or leave weights unset to use the weight store")
        path = Path(weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{self.name}: weights file not found: {path}")
        return {names[0]: path}

    def config(self) -> dict[str, Any]:
        """Name, options and the sha256 of every weight file (so a cache notices new weights)."""
        return {**super().config(), "weights_sha256": dict(self._digests)}

    def use_channels_last(self, flag: bool = True) -> "CNNEnhancer":
        """Run (False: stop running) the network channels_last, inputs and weights alike; returns self. The
        outputs agree within float rounding (the benchmark and the tests compare the two)."""
        self.channels_last = bool(flag)
        self.net.to(memory_format=torch.channels_last if flag else torch.contiguous_format)
        return self

    def autocast(self, device: torch.device) -> torch.dtype | None:
        """The autocast precision of a call on `device`: None (plain fp32, or the net's own dtype) on the CPU and
        wherever the chosen precision is fp32; else fp16 or bf16."""
        dtype = self.gpu_dtype if self.gpu_dtype is not None else self.autocast_dtype
        return dtype if device.type == "cuda" and dtype in (torch.float16, torch.bfloat16) else None

    def enhance(self, x: torch.Tensor) -> torch.Tensor:
        p = next(self.net.parameters(), None)
        if p is not None:  # the net's dtype and device are the caller's choice (`.to(...)`)
            x = x.to(device=p.device, dtype=p.dtype)
        x, (h, w) = pad_to_multiple(x, self.multiple, self.min_side)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        dtype = self.autocast(x.device)
        with torch.autocast(x.device.type, dtype=dtype, enabled=dtype is not None):
            y = self.run(x)
        return y[..., :h, :w].contiguous()


def _present(name: str) -> bool:
    from ..weights import find_weight

    return find_weight(name) is not None
