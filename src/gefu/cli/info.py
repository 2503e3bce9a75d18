"""`gefu info`: versions, devices, enhancers and which optional weights are available."""

from __future__ import annotations

import argparse
import importlib.metadata as md
import platform

import torch

from .common import HelpFormatter

_PACKAGES = ("gefu", "torch", "torchvision", "diffusers", "transformers", "peft", "accelerate", "lpips", "numpy")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info",
        help="versions, devices, enhancers, available weights",
        description="Print versions, devices, registered enhancers and which optional weights are available.",
        epilog="example:\n  gefu info",
        formatter_class=HelpFormatter,
    )
    p.set_defaults(func=run)


def _version(name: str) -> str:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return "not installed"


def run(args: argparse.Namespace) -> int:
    from .. import list_enhancers

    print(f"python       {platform.python_version()} ({platform.machine()})")
    for name in _PACKAGES:
        print(f"{name:<12} {_version(name)}")
    if torch.cuda.is_available():
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        print(f"device       cuda ({names})")
    else:
        print(f"device       cpu ({torch.get_num_threads()} threads; no CUDA device)")
    print(f"enhancers    {', '.join(list_enhancers())}")
    try:
        from ..weights import weight_status
    except ImportError:
        return 0
    print("weights:")
    for w in weight_status():
        mark = "yes" if w.available else "no "
        print(f"  [{mark}] {w.name:<24} {w.location if w.available else w.how_to_get}")
    return 0
