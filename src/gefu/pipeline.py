"""Run load → compute → save over a list of jobs, with loading ahead and saving behind on background threads.

    outcomes = run_jobs(jobs, load, compute, save, on_outcome=report)

`compute` runs on the calling thread, one job after another in job order (a model, a progress bar and Ctrl-C
stay where they are; `workers` > 1 computes several jobs at once, for thread-safe CPU methods); `load` (decode
the next images) runs on one background thread ahead of it and `save` (encode and write the previous outputs)
on another behind it. Decoding and encoding release the GIL (Pillow,
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
    run = _Overlapped(load, compute, save, workers, prefetch, max_pending, nbytes, max_bytes, expected, on_outcome)
    return run(jobs)


class _Overlapped:
    """The overlapped loop of `run_jobs`. Three queues, all in job order: `reads` (being loaded), `computing`
    (loaded, being computed) and `done` (computed: being saved, or failed), drained from the front."""

    def __init__(self, load, compute, save, workers, prefetch, max_pending, nbytes, max_bytes, expected, on_outcome):
        self.load, self.compute, self.save, self.nbytes = load, compute, save, nbytes
        self.workers, self.prefetch, self.max_pending = max(1, workers), max(1, prefetch), max_pending
        self.expected, self.on_outcome = expected, on_outcome
        self.budget = _Budget(max_bytes)
        self.outcomes: list[Outcome] = []
        self.reads: deque[tuple[Outcome, Future]] = deque()
        self.computing: deque[tuple[Outcome, Future | None]] = deque()
        self.done: deque[tuple[Outcome, Future | None]] = deque()

    def __call__(self, jobs: Sequence) -> list[Outcome]:
        self.todo = iter(enumerate(jobs))
        self.loader = ThreadPoolExecutor(1, thread_name_prefix="gefu-load")
        self.computer = _Inline() if self.workers == 1 else ThreadPoolExecutor(self.workers, "gefu-compute")
        self.saver = ThreadPoolExecutor(1, thread_name_prefix="gefu-save")
        try:
            self._loop()
        except BaseException:
            self.budget.cancel()
            self.loader.shutdown(wait=True, cancel_futures=True)
            self.computer.shutdown(wait=True, cancel_futures=True)
            self.saver.shutdown(wait=True)  # outputs already computed are still written (at most max_pending + 1)
            raise
        for pool in (self.loader, self.computer, self.saver):
            pool.shutdown(wait=True)
        return self.outcomes

    def _loop(self) -> None:
        self._top_up()
        while self.reads or self.computing:
            # start computing as many jobs as there are workers (one worker: compute the next job now, inline)
            while self.reads and len(self.computing) < self.workers:
                outcome, fut = self.reads.popleft()
                ok, loaded = self._result(outcome, fut)
                task = self.computer.submit(self._compute_task, outcome.job, loaded) if ok else None
                self.computing.append((outcome, task))
                del loaded
                self._top_up()  # the next images decode while this one is computed
            outcome, fut = self.computing.popleft()
            ok, value = self._result(outcome, fut) if fut is not None else (False, None)
            self.done.append((outcome, self.saver.submit(self.save, outcome.job, value) if ok else None))
            del value, fut
            self._top_up()
            self._drain(self.max_pending)
        self._drain(0)

    def _load_task(self, job: Any) -> tuple[Any, int]:
        n = self.nbytes(job) if self.nbytes else 0
        self.budget.acquire(n)
        try:
            return self.load(job), n
        except BaseException:
            self.budget.release(n)
            raise

    def _compute_task(self, job: Any, loaded: tuple[Any, int]) -> Any:
        item, n = loaded
        try:
            return self.compute(job, item)
        finally:
            del item, loaded
            self.budget.release(n)

    def _top_up(self) -> None:
        while len(self.reads) + len(self.computing) < self.prefetch + self.workers:
            nxt = next(self.todo, None)
            if nxt is None:
                return
            self.reads.append((Outcome(*nxt), self.loader.submit(self._load_task, nxt[1])))

    def _result(self, outcome: Outcome, fut: Future) -> tuple[bool, Any]:
        """(True, value), or (False, None) with the outcome's error set for an expected error."""
        try:
            return True, fut.result()
        except StopRun:
            raise
        except self.expected as err:
            outcome.error = err
            return False, None

    def _drain(self, limit: int) -> None:
        """Report finished outcomes from the front; wait while more than `limit` are still being saved."""
        while self.done:
            outcome, fut = self.done[0]
            if fut is not None:
                if sum(f is not None for _, f in self.done) <= limit and not fut.done():
                    return
                self._result(outcome, fut)
            self.done.popleft()
            self.outcomes.append(outcome)
            if self.on_outcome:
                self.on_outcome(outcome)
