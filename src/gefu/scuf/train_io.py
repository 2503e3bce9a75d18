"""The files of a training run: its folder, its step checkpoints, its CSV logs and the RNG states.

A run folder holds ``config.json``, ``losses.csv``, ``metrics.csv``, ``samples/``, ``val/``, ``tensorboard/``,
``checkpoints/step_XXXXXX/`` (+ ``checkpoints/latest``) and, at the end, ``model/``. A checkpoint is written into
a hidden temporary folder and renamed into place; its ``state.json`` is written last and lists the size and
SHA-256 of every other file, so ``find_checkpoint`` can tell a complete checkpoint from a damaged one (a
truncated file, a disk that filled up) and falls back to the previous good one with a warning.

Everything is read with ``torch.load(weights_only=True)`` / safetensors: a file holding other Python objects is
refused with a message naming it, never executed.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import pickle
import random
import shutil
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn

from ..fileio import write_atomic

__all__ = [
    "RUN_FILES",
    "CHECKPOINT_FORMAT",
    "CSVLog",
    "DamagedCheckpoint",
    "TrainingState",
    "save_checkpoint",
    "load_checkpoint",
    "find_checkpoint",
    "checkpoint_candidates",
    "verify_checkpoint",
    "write_manifest",
    "run_files",
    "check_run_folder",
    "clear_run_folder",
    "save_torch",
    "load_torch",
    "rng_state",
    "set_rng_state",
]

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "gefu-scuf-train/2"
#: what a training run writes into its folder (what --overwrite removes)
RUN_FILES = ("config.json", "losses.csv", "metrics.csv", "samples", "val", "tensorboard", "checkpoints", "model")


class DamagedCheckpoint(ValueError):
    """A checkpoint folder whose files do not match its manifest (truncated, missing or changed)."""


# ----------------------------------------------------------------------------------------------------------------
# the run folder
def run_files(output_dir: Path) -> list[str]:
    """The names of ``RUN_FILES`` present in ``output_dir``."""
    return [name for name in RUN_FILES if (output_dir / name).exists()]


def check_run_folder(output_dir: Path) -> None:
    """Refuse to start a new run in a folder that already holds one (ValueError saying what to do instead)."""
    present = run_files(output_dir)
    if present:
        raise ValueError(
            f"{output_dir} already holds a training run ({', '.join(present)}); continue it with --resume latest, "
            "or pass --overwrite to delete its files and start over, or choose another --output folder"
        )


def clear_run_folder(output_dir: Path) -> None:
    """Delete the previous run's files (only ``RUN_FILES``; anything else in the folder stays)."""
    present = run_files(output_dir)
    for name in present:
        path = output_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    if present:
        log.warning("--overwrite: removed the previous run's %s from %s", ", ".join(present), output_dir)


# ----------------------------------------------------------------------------------------------------------------
# checkpoints
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest(folder: Path, state: dict[str, Any]) -> None:
    """Write ``state.json`` (last: it marks the checkpoint complete) with the size and hash of every other file."""
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "state.json"):
        files[path.relative_to(folder).as_posix()] = {"bytes": path.stat().st_size, "sha256": _sha256(path)}
    write_atomic(folder / "state.json", json.dumps({**state, "files": files}, indent=2) + "\n")


def verify_checkpoint(folder: Path) -> dict[str, Any]:
    """The checkpoint's state (step, …) after checking every file against the manifest; DamagedCheckpoint if not."""
    try:
        state = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DamagedCheckpoint(f"{folder / 'state.json'}: unreadable ({err})") from None
    if not isinstance(state, dict) or not isinstance(state.get("step"), int):
        raise DamagedCheckpoint(f"{folder / 'state.json'}: no step recorded")
    for rel, meta in (state.get("files") or {}).items():  # format 1 checkpoints carry no manifest
        path = folder / rel
        if not path.is_file():
            raise DamagedCheckpoint(f"{path}: missing")
        if path.stat().st_size != meta["bytes"]:
            raise DamagedCheckpoint(f"{path}: {path.stat().st_size} bytes, {meta['bytes']} were written")
        if _sha256(path) != meta["sha256"]:
            raise DamagedCheckpoint(f"{path}: contents changed since it was written")
    return state


def checkpoint_candidates(ckpt_root: Path) -> list[Path]:
    """Complete-looking checkpoints (with a state.json), newest first; the one ``latest`` names comes first."""
    steps = sorted((p for p in ckpt_root.glob("step_*") if (p / "state.json").is_file()), reverse=True)
    pointer = ckpt_root / "latest"
    if pointer.is_file():
        named = ckpt_root / pointer.read_text(encoding="utf-8").strip()
        if named in steps:
            steps.remove(named)
            steps.insert(0, named)
    return steps


def find_checkpoint(output_dir: str | os.PathLike, resume: str | os.PathLike) -> Path | None:
    """The checkpoint folder for ``resume`` ("latest", an output folder, or a ``step_*`` folder).

    "latest" (or an output folder) gives the newest checkpoint that passes ``verify_checkpoint``; damaged newer
    ones are skipped with a warning naming them. None when there is no checkpoint at all. A ``step_*`` folder given
    explicitly must be intact (DamagedCheckpoint otherwise).
    """
    path = Path(resume)
    if str(resume) == "latest" or (path / "checkpoints").is_dir():
        root = Path(output_dir if str(resume) == "latest" else path) / "checkpoints"
        damaged = []
        for candidate in checkpoint_candidates(root):
            try:
                verify_checkpoint(candidate)
            except DamagedCheckpoint as err:
                damaged.append(str(err))
                continue
            if damaged:
                log.warning("skipping damaged checkpoint(s): %s; resuming from %s instead", "; ".join(damaged),
                            candidate.name)
            return candidate
        if damaged:
            raise DamagedCheckpoint("no intact checkpoint to resume from: " + "; ".join(damaged)
                                    + ". Start a new run (--overwrite) or restore the files.")
        return None
    if not (path / "state.json").is_file():
        raise FileNotFoundError(f"{path}: not a training checkpoint (no state.json); pass a checkpoints/step_* "
                                "folder, the output folder, or 'latest'")
    verify_checkpoint(path)
    return path


# ----------------------------------------------------------------------------------------------------------------
# saving and restoring a run
class TrainingState:
    """Everything a checkpoint holds besides the RNG states.

    ``generator``: its trained weights go to ``model/`` (a ``save_pretrained`` folder); ``heads``: name →
    module whose state (discriminator heads with their spectral-norm vectors) goes to
    ``discriminators.safetensors`` as ``<name>.<key>``; ``stateful``: name → object with ``state_dict`` /
    ``load_state_dict`` (optimisers, schedulers, the gradient scaler; None entries are skipped) → ``<name>.pt``.
    """

    def __init__(self, generator: Any, heads: dict[str, nn.Module], stateful: dict[str, Any], config: Any) -> None:
        self.generator, self.heads, self.stateful, self.config = generator, heads, stateful, config

    def write(self, folder: Path) -> None:
        from safetensors.torch import save_file

        self.generator.save_pretrained(folder / "model")
        heads = {f"{name}.{k}": v.detach().cpu().contiguous().clone()
                 for name, module in self.heads.items() for k, v in module.state_dict().items()}
        save_file(heads, str(folder / "discriminators.safetensors"))
        for name, obj in self.stateful.items():
            if obj is not None:
                save_torch(obj.state_dict(), folder / f"{name}.pt")
        self.config.save(folder / "config.json")

    def read(self, folder: Path) -> None:
        from safetensors.torch import load_file

        self.generator.load_trainable_state_dict(load_file(str(folder / "model" / "model.safetensors")))
        heads = load_file(str(folder / "discriminators.safetensors"))
        for name, module in self.heads.items():
            prefix = f"{name}."
            module.load_state_dict({k[len(prefix):]: v for k, v in heads.items() if k.startswith(prefix)}, strict=True)
        for name, obj in self.stateful.items():
            if obj is not None and (folder / f"{name}.pt").is_file():
                obj.load_state_dict(load_torch(folder / f"{name}.pt"))


def save_checkpoint(state: TrainingState, ckpt_dir: Path, step: int, accelerator: Any, keep: int = 0) -> Path:
    """Write ``ckpt_dir/step_XXXXXX/`` atomically (every process its RNG state, the main process the rest, into a
    hidden temporary folder renamed into place), point ``latest`` at it and keep the newest ``keep`` (0: all)."""
    name = f"step_{step:06d}"
    final, tmp = ckpt_dir / name, ckpt_dir / f".{name}.tmp"
    main = accelerator.is_main_process
    if main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    save_torch(rng_state(), tmp / f"rng_state_{accelerator.process_index}.pt")
    accelerator.wait_for_everyone()
    if main:
        state.write(tmp)
        write_manifest(tmp, {"step": step, "world_size": accelerator.num_processes, "time": time.time(),
                             "format": CHECKPOINT_FORMAT})  # last: marks it complete
        if final.exists():  # a re-run of the same step after resuming from an earlier checkpoint
            trash = ckpt_dir / f".{name}.old"
            shutil.rmtree(trash, ignore_errors=True)
            os.replace(final, trash)
            shutil.rmtree(trash, ignore_errors=True)
        os.replace(tmp, final)
        write_atomic(ckpt_dir / "latest", name + "\n")
        if keep:
            done = sorted(p for p in ckpt_dir.glob("step_*") if (p / "state.json").is_file())
            for old in done[:-keep]:
                shutil.rmtree(old, ignore_errors=True)
        log.info("saved checkpoint %s", final)
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(state: TrainingState, folder: Path, rank: int, world: int) -> int:
    """Restore ``state`` and this process's RNG states from a checkpoint folder (checked first) → its step."""
    meta = verify_checkpoint(folder)
    state.read(folder)
    rng = folder / f"rng_state_{rank}.pt"
    if rng.is_file():
        set_rng_state(load_torch(rng))
    if meta.get("world_size", 1) != world:
        log.warning("resuming a %d-process run on %d processes: the data order from here on differs",
                    meta.get("world_size", 1), world)
    log.info("resumed from %s at step %d", folder, meta["step"])
    return int(meta["step"])


# ----------------------------------------------------------------------------------------------------------------
# torch files
def save_torch(obj: Any, path: Path) -> None:
    """torch.save, flushed to disk before returning."""
    with open(path, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())


def load_torch(path: Path) -> Any:
    """torch.load(weights_only=True) on the CPU; ValueError naming the file when it is refused or unreadable."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ValueError(
            f"{path}: refused to load: it holds Python objects other than tensors, numbers and containers "
            "(gefu train never writes such files; it was replaced or edited). Delete this checkpoint folder to "
            "resume from the previous one"
        ) from None
    except (RuntimeError, EOFError, OSError) as err:
        raise DamagedCheckpoint(f"{path}: unreadable ({err})") from None


# ----------------------------------------------------------------------------------------------------------------
# CSV logs
class CSVLog:
    """Append-only CSV with a fixed header; ``truncate(step)`` drops rows past a step (used on resume)."""

    def __init__(self, path: Path, columns: Sequence[str]) -> None:
        self.path = path
        self.columns = list(columns)

    def truncate(self, step: int) -> None:
        """Keep only the complete rows with ``step`` ≤ the given step (rewritten atomically)."""
        if not self.path.is_file():
            return
        with open(self.path, encoding="utf-8", newline="") as f:
            lines = f.read().splitlines()
        keep = lines[:1]
        for line in lines[1:]:
            cells = line.split(",")
            if len(cells) == len(lines[0].split(",")) and cells[0].isdigit() and int(cells[0]) <= step:
                keep.append(line)
        write_atomic(self.path, "".join(line + "\n" for line in keep))

    def append(self, row: dict[str, Any]) -> None:
        new = not self.path.is_file()
        with open(self.path, "a", encoding="utf-8", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(self.columns)
            writer.writerow([_fmt(row.get(c, "")) for c in self.columns])


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.8g}"
    return str(value)


# ----------------------------------------------------------------------------------------------------------------
# RNG states
def rng_state() -> dict[str, Any]:
    """The torch (CPU and CUDA), numpy and python global RNG states, in a weights_only-loadable form."""
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
