"""Independent analyses in worker processes, with a progress bar: what ``sweep(workers=N)`` and the zoo audit use.

Threads would not help: an analysis is Python bound, and the captures serialise on torch's process-wide state (see
``capture/patching.py``). Processes share nothing, so each result is the one a serial run gives. Where the platform
can fork, the workers inherit the task, so a closure or a lambda works (a sweep's ``build`` usually is one); where
it cannot, the task must pickle (a module-level function). CUDA cannot be used again in a forked child, so a parent
that has initialised it spawns its workers instead. A fork waits for the captures running in other threads to put
torch back (:data:`~fxflops.capture.patching.GLOBAL`), and the child starts with fresh locks (``patching``'s
at-fork reset), so a sweep with workers can run beside other threads' analyses.
"""
from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
from concurrent.futures import FIRST_EXCEPTION, Future, ProcessPoolExecutor, wait
from typing import Any, Callable, Iterator, Sequence, TypeVar

import torch

from ..capture.patching import GLOBAL
from ..errors import FxFlopsError

T = TypeVar("T")
R = TypeVar("R")

# Seconds a run goes before its progress bar shows: a quick sweep stays quiet.
PROGRESS_AFTER = 2.0

_TASK: list[Any] = []  # [task, items]: what a forked worker inherits (set in the parent just before forking)


def each(task: Callable[[T], R], items: Sequence[T], *, workers: int = 1, progress: bool | None = None,
         desc: str = "") -> Iterator[tuple[int, R]]:
    """``(i, task(items[i]))`` for every item, in the order they finish; with ``workers`` > 1 in that many processes.

    ``progress``: a bar on stderr after :data:`PROGRESS_AFTER` seconds (None: only where stderr is a terminal;
    False: never). A task's exception is raised here, after the runs in flight finish and the rest are cancelled.
    """
    if not isinstance(workers, int) or workers < 1:
        raise FxFlopsError(f"workers must be a positive integer, got {workers!r}")
    with _bar(len(items), progress, desc) as bar:
        if workers == 1 or len(items) <= 1:
            for i, item in enumerate(items):
                yield i, task(item)
                bar.update()
            return
        for i, result in _pooled(task, items, min(workers, len(items))):
            yield i, result
            bar.update()


def _pooled(task: Callable[[T], R], items: Sequence[T], workers: int) -> Iterator[tuple[int, R]]:
    fork = "fork" in multiprocessing.get_all_start_methods() and not torch.cuda.is_initialized()
    if not fork:
        try:
            pickle.dumps((task, items))
        except Exception:  # noqa: BLE001 - any pickling failure means the same thing to the user
            raise FxFlopsError(f"workers > 1 needs {getattr(task, '__qualname__', task)!r} to be a module-level "
                               "function on this platform (its processes cannot fork); or use workers=1") from None
    # Only indices go to the workers and results come back: forked workers inherit the task and the items
    _TASK[:] = [task, items]
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork" if fork else "spawn"),
                               initializer=_started, initargs=(workers, None if fork else (task, items)))
    try:
        # The pool forks on the first submit: not while another thread's capture has torch patched (fx's tracer,
        # dynamo), or the workers would inherit the patches half-done. Captures hold GLOBAL while they patch.
        with GLOBAL.exclusive():
            pending: set[Future] = {pool.submit(_run, i) for i in range(len(items))}
        while pending:
            done, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for f in done:
                yield f.result()  # a task's exception is raised here
    finally:
        _TASK.clear()
        pool.shutdown(wait=True, cancel_futures=True)


def _started(workers: int, job: tuple[Callable, Sequence] | None) -> None:
    """A worker's set-up: its share of the cores, its job when it was not forked with it, Ctrl-C left to the parent."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the pool; workers print no tracebacks
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))
    if job is not None:
        _TASK[:] = list(job)


def _run(i: int) -> tuple[int, Any]:
    task, items = _TASK
    return i, task(items[i])


def _bar(total: int, progress: bool | None, desc: str) -> Any:
    from tqdm.auto import tqdm  # imported on use: most analyses never show a bar

    # disable=None: tqdm shows the bar only on a terminal, so logs and tests stay clean
    disable = None if progress is None else not progress
    return tqdm(total=total, desc=desc, delay=PROGRESS_AFTER, leave=False, disable=disable, unit="run")
