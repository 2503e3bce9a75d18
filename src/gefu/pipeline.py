"""Run load → compute → save over a list of jobs, with loading ahead and saving behind on background threads.

    outcomes = run_jobs(jobs, load, compute, save, on_outcome=report)

`compute` runs on the calling thread, one job after another in job order (a model, a progress bar and Ctrl-C
stay where they are; `workers` > 1 computes several jobs at once for thread-safe CPU methods); `load` (decode the next images) runs on one background thread ahead of it and `save`
(encode and write the previous outputs) on another behind it. Decoding and encoding release the GIL (Pillow,
zlib, libjpeg), so they overlap with the computation. Everything is bounded: at most `prefetch` loaded items wait
(and, with `nbytes`, at most `max_bytes` of them, but always at least one), at most `max_pending` outputs wait
to be written. Outcomes are reported in job order whatever finishes first, so messages and results are the same
as those of the serial loop (`overlap=False`), which runs load, compute and save inline.

Errors: an exception of one of the `expected` types raised by `load`, `compute` or `save` marks that job as failed
and the run goes on; `StopRun` (e.g. disk full) ends the run after the writes already started; anything else
(a bug, KeyboardInterrupt) cancels the loads that have not started, lets the outputs already computed be written
(saves are atomic: a file is complete or absent) and propagates.
"""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Generic, Sequence, TypeVar

J = TypeVar("J")

__all__ = ["Outcome", "StopRun", "run_jobs"]


class StopRun(Exception):
    """Raised by `load`/`compute`/`save` to end the whole run (the message says why); later jobs are not run."""


@dataclass
class Outcome(Generic[J]):
    """What became of one job: `error` is None when it was saved."""

    index: int
    job: J
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class _Budget:
    """Bytes of loaded items waiting or being computed. An acquire waits while it would exceed the limit, unless
    nothing is held (so one item always goes through, however large)."""

    def __init__(self, limit: float) -> None:
        self.limit, self.held, self.cancelled = limit, 0, False
        self.cond = threading.Condition()

    def acquire(self, n: int) -> None:
        with self.cond:
            self.cond.wait_for(lambda: self.cancelled or self.held == 0 or self.held + n <= self.limit)
            if self.cancelled:
                raise _Cancelled
            self.held += n

    def release(self, n: int) -> None:
        with self.cond:
            self.held -= n
            self.cond.notify_all()

    def cancel(self) -> None:
        with self.cond:
            self.cancelled = True
            self.cond.notify_all()


class _Cancelled(Exception):
    pass


def _serial(
    jobs: Sequence[J], load, compute, save, expected, on_outcome
) -> list[Outcome[J]]:
    outcomes: list[Outcome[J]] = []
    for i, job in enumerate(jobs):
        outcome = Outcome(i, job)
        try:
            save(job, compute(job, load(job)))
        except StopRun:
            raise
        except expected as err:
            outcome.error = err
        outcomes.append(outcome)
        if on_outcome:
            on_outcome(outcome)
    return outcomes


class _Inline:
    """An executor that runs each task at once on the calling thread (compute with one worker)."""

    def submit(self, fn, *args) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(fn(*args))
        except Exception as err:  # KeyboardInterrupt and SystemExit propagate at once
            fut.set_exception(err)
        return fut

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        pass


def run_jobs(
    jobs: Sequence[J],
    load: Callable[[J], Any],
    compute: Callable[[J, Any], Any],
    save: Callable[[J, Any], None],
    *,
    overlap: bool = True,
    workers: int = 1,
    prefetch: int = 2,
    max_pending: int = 2,
    nbytes: Callable[[J], int] | None = None,
    max_bytes: float = 1 << 30,
    expected: tuple[type[BaseException], ...] = (OSError, ValueError),
    on_outcome: Callable[[Outcome[J]], None] | None = None,
) -> list[Outcome[J]]:
    """Run every job; returns the outcomes in job order (`on_outcome` also sees each, in order, as it is known).

    `workers` > 1 computes that many jobs at once on a thread pool — only for a `compute` that is thread-safe and
    leaves cores idle (e.g. numpy/scipy methods that run mostly on one core and release the GIL); results and
    messages stay in job order. `nbytes(job)`, when given, is the memory a loaded item will take (e.g. from the
    image header); it is asked on the loading thread, and its errors count like `load`'s.
    """
    if not overlap:
        return _serial(jobs, load, compute, save, expected, on_outcome)
    budget = _Budget(max_bytes)
    outcomes: list[Outcome[J]] = []
    reads: deque[tuple[Outcome[J], Future]] = deque()
    computing: deque[tuple[Outcome[J], Future | None]] = deque()
    done: deque[tuple[Outcome[J], Future | None]] = deque()  # in job order; a future while still being saved
    todo = iter(enumerate(jobs))

    def load_task(job: J) -> tuple[Any, int]:
        n = nbytes(job) if nbytes else 0
        budget.acquire(n)
        try:
            return load(job), n
        except BaseException:
            budget.release(n)
            raise

    def compute_task(job: J, loaded: tuple[Any, int]) -> Any:
        item, n = loaded
        try:
            return compute(job, item)
        finally:
            del item, loaded
            budget.release(n)

    def top_up() -> None:
        while len(reads) + len(computing) < max(1, prefetch) + workers:
            nxt = next(todo, None)
            if nxt is None:
                return
            reads.append((Outcome(*nxt), loader.submit(load_task, nxt[1])))

    def result(outcome: Outcome[J], fut: Future) -> tuple[bool, Any]:
        """(True, value), or (False, None) with the outcome's error set for an expected error."""
        try:
            return True, fut.result()
        except StopRun:
            raise
        except expected as err:
            outcome.error = err
            return False, None

    def drain(limit: int) -> None:
        """Report finished outcomes from the front; wait while more than `limit` are still being saved."""
        while done:
            outcome, fut = done[0]
            if fut is not None and sum(f is not None for _, f in done) <= limit and not fut.done():
                return
            if fut is not None:
                result(outcome, fut)
            done.popleft()
            outcomes.append(outcome)
            if on_outcome:
                on_outcome(outcome)

    loader = ThreadPoolExecutor(1, thread_name_prefix="gefu-load")
    computer = _Inline() if workers <= 1 else ThreadPoolExecutor(workers, thread_name_prefix="gefu-compute")
    saver = ThreadPoolExecutor(1, thread_name_prefix="gefu-save")
    try:
        top_up()
        while reads or computing:
            # start computing as many jobs as there are workers (with one worker: compute the next job now)
            while reads and len(computing) < workers:
                outcome, fut = reads.popleft()
                ok, loaded = result(outcome, fut)
                if ok:
                    computing.append((outcome, computer.submit(compute_task, outcome.job, loaded)))
                else:
                    computing.append((outcome, None))
                del loaded
                top_up()  # the next images decode while this one is computed
            outcome, fut = computing.popleft()
            ok, value = result(outcome, fut) if fut is not None else (False, None)
            done.append((outcome, saver.submit(save, outcome.job, value) if ok else None))
            del value
            top_up()
            drain(max_pending)
        drain(0)
    except BaseException:
        budget.cancel()
        loader.shutdown(wait=True, cancel_futures=True)
        computer.shutdown(wait=True, cancel_futures=True)
        saver.shutdown(wait=True)  # outputs already computed are still written (at most max_pending + 1, atomically)
        raise
    for pool in (loader, computer, saver):
        pool.shutdown(wait=True)
    return outcomes
