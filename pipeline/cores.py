"""How many cores a run may use (the default of `--workers`, the merge's thread count), and how
work is spread over them in order."""
from __future__ import annotations

import collections
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
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
