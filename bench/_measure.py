"""Run one command as this process's only child and report its cost as one JSON line on stdout.

    python bench/_measure.py LOG_FILE -- COMMAND [ARG...]

Why a wrapper: `getrusage(RUSAGE_CHILDREN).ru_maxrss` is the largest peak RSS of any waited-for
descendant, over the whole life of the calling process. The benchmark runs many contenders one
after another, so it starts a fresh wrapper per contender: the wrapper's own RUSAGE_CHILDREN then
covers exactly one command and everything that command waited for (run.py's Luigi worker
processes are joined by Luigi, so they are included).

Reported: wall seconds (child start to exit), peak RSS of the largest single process (ru_maxrss),
CPU seconds (user + system of the whole tree), the exit code, and the peak of the *sum* of RSS over
the process tree, sampled from /proc every 0.2 s (two Luigi workers at 1 GB each are 2 GB of
memory, while ru_maxrss says 1 GB). The command's stdout and stderr go to LOG_FILE.
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")


def _tree_rss(root: int) -> int:
    """Bytes of resident memory of `root` and all its descendants now (Linux /proc)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
            with open(f"/proc/{entry}/statm", "rb") as handle:
                resident = int(handle.read().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        fields = stat[stat.rindex(b")") + 2:].split()
        parents[int(entry)] = int(fields[1])
        rss[int(entry)] = resident * PAGE
    total, todo = 0, [root]
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, ()))
    return total


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    log = Path(argv[0])
    command = argv[2:]
    peak_sum = 0
    done = threading.Event()
    with open(log, "wb") as out:
        started = time.monotonic()
        child = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)

        def sample() -> None:
            nonlocal peak_sum
            while not done.wait(0.2):
                peak_sum = max(peak_sum, _tree_rss(child.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        rc = child.wait()
        wall = time.monotonic() - started
        done.set()
        sampler.join()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({
        "wall_s": wall,
        "max_rss_bytes": usage.ru_maxrss * 1024,  # Linux reports KiB
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "tree_rss_peak_bytes": peak_sum,
        "rc": rc,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
