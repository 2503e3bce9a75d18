"""Sharding work over the processes of an `accelerate launch` (or `torchrun`) run; one process when not launched so.

    shard = current_shard()                  # one process: index 0 of 1, no accelerate import
    mine = shard.split(jobs)                 # every N-th job, starting at this process's index
    shard.wait()                             # barrier (no-op with one process)
    everything = shard.gather(my_summary)    # a list with every process's object, on every process
    shard.close()                            # end the process group (a process that exits without it may abort)

The processes themselves are started by accelerate (`accelerate launch --multi_gpu --num_processes N -m gefu ...`,
multi-node with `--num_machines/--machine_rank/--main_process_ip`) or torchrun; gefu only reads the state they
set up through accelerate's `PartialState`. Without a visible CUDA device the state is built with `cpu=True`
(gloo), so `CUDA_VISIBLE_DEVICES= accelerate launch --multi_gpu --num_processes 2 ...` runs two CPU processes —
with accelerate 1.15, `accelerate launch --cpu --num_processes 2` starts a single process (several CPU processes
need MPI there).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Sequence, TypeVar

import torch

T = TypeVar("T")

__all__ = ["Shard", "current_shard", "launched_distributed"]


def launched_distributed() -> bool:
    """Whether this process is one of several started by a distributed launcher (WORLD_SIZE > 1)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


@dataclass
class Shard:
    """This process's place in the run: `index` of `count` processes; `state` is accelerate's PartialState (None
    for a single process)."""

    index: int = 0
    count: int = 1
    state: Any = None

    @property
    def is_main(self) -> bool:
        return self.index == 0

    @property
    def device(self) -> torch.device | None:
        """The device accelerate assigned to this process (None for a single process)."""
        return None if self.state is None else self.state.device

    def split(self, items: Sequence[T]) -> list[T]:
        """This process's items: every `count`-th one from `index` on (each item goes to exactly one process, and
        the counts differ by at most one)."""
        return list(items[self.index :: self.count])

    def wait(self) -> None:
        """Barrier: return once every process got here."""
        if self.state is not None:
            self.state.wait_for_everyone()

    def gather(self, obj: T) -> list[T]:
        """Every process's `obj`, in process order (on every process)."""
        if self.state is None:
            return [obj]
        from accelerate.utils import gather_object

        return list(gather_object([obj]))

    def close(self) -> None:
        """Leave the process group (every process, at the end of its work). Safe to call twice."""
        if self.state is not None:
            self.state.wait_for_everyone()
            self.state.destroy_process_group()
            self.state = None


def current_shard(cpu: bool | None = None) -> Shard:
    """The shard of this process. `cpu`: build the distributed state for CPU processes (gloo); default: when no
    CUDA device is visible."""
    if not launched_distributed():
        return Shard()
    from accelerate import PartialState

    if cpu is None:
        cpu = not torch.cuda.is_available()
    state = PartialState(cpu=cpu)
    return Shard(state.process_index, state.num_processes, state)
