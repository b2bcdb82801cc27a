"""How many cores a run may use: the default of `--workers` and the merge's thread count."""
from __future__ import annotations

import os
from pathlib import Path


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
