"""How many cores a run may use (the default of `--workers`, the merge's thread count), and how
work is spread over them in order."""
from __future__ import annotations

import collections
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


def usable_cores() -> int:
    """CPUs this process may run on (its affinity), counted as physical cores where hyper-threads
    pair them: two hyper-threads of one core do not clean twice as fast."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    cores = set()
    for cpu in cpus:
        try:
            cores.add(Path(f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list").read_text().strip())
        except OSError:
            cores.add(str(cpu))
    return max(1, len(cores))


def ordered_map(pool: ThreadPoolExecutor, run: Callable[[Item], Result], items: Iterable[Item], window: int) -> Iterator[Result]:
    """pool.map with at most `window` items submitted ahead of the one being consumed, so the
    results waiting in memory stay bounded (pool.map submits everything at once)."""
    upcoming = iter(items)
    pending = collections.deque(pool.submit(run, item) for _, item in zip(range(window), upcoming))  # range first: zip would drop an item
    while pending:
        future = pending.popleft()
        following = next(upcoming, None)
        if following is not None:
            pending.append(pool.submit(run, following))
        yield future.result()


_FORKED_CALLS: Sequence[Callable[[], object]] = ()


def _call_forked(index: int) -> object:
    return _FORKED_CALLS[index]()


def forked_map(calls: Sequence[Callable[[], Result]], processes: int) -> list[Result]:
    """Each call's result, in order, from up to `processes` forked processes.

    For work that holds the GIL (drawing charts) and needs what this process already loaded and
    read: a forked child inherits both, where a spawned one would import matplotlib again. The calls
    are inherited, never pickled; only their results travel back. Serial where fork is not the
    platform's (macOS, Windows) or one process would do.
    """
    global _FORKED_CALLS
    if processes < 2 or len(calls) < 2 or not sys.platform.startswith("linux"):
        return [call() for call in calls]
    _FORKED_CALLS = calls
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=min(processes, len(calls)), mp_context=context) as pool:
            return list(pool.map(_call_forked, range(len(calls))))  # type: ignore[arg-type]
    finally:
        _FORKED_CALLS = ()
