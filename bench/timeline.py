#!/usr/bin/env python
"""Where a run's wall time goes, from Luigi's own task events.

    python bench/timeline.py [--spans] --data-root DIR [--workers 2] [other run.py arguments]

Runs `run.py` in this process with a START and a SUCCESS handler on every task (they fire in the
process that runs the task, so a file collects them), then prints each phase: start-up until the
first task, the scans, the chunk phase (first chunk task start to last chunk task end, with its
rows/s), Silver -> Gold, the report, and how long fewer task slots than workers were busy during
the scans and chunks. Run it on a data root holding only bronze/ to time a whole first run.
`--spans` also lists every task's start and end: a process's first task paying a one-off cost (an
import, fresh memory) shows there as a longer span than the same task's later ones.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SCAN, CHUNK, GROUP = "ScanBronzeFile", "BronzeChunkToSilver", "SmallFilesToSilver"


def record_events(events: Path, started: float) -> None:
    import luigi

    def handler(kind: str):
        def note(task: luigi.Task, *_args: object) -> None:
            with open(events, "a", encoding="utf-8") as out:
                out.write(f"{time.time() - started:.4f} {os.getpid()} {kind} {task.task_family}\n")
        return note

    luigi.Task.event_handler(luigi.Event.START)(handler("start"))
    luigi.Task.event_handler(luigi.Event.SUCCESS)(handler("end"))


def spans(events: Path) -> list[tuple[float, float, str]]:
    """(start, end, task family) of every task that succeeded, by start time."""
    open_tasks: dict[str, tuple[float, str]] = {}
    done = []
    for line in events.read_text(encoding="utf-8").splitlines():
        at, pid, kind, family = line.split()
        if kind == "start":
            open_tasks[pid] = (float(at), family)
        elif pid in open_tasks:
            begin, family = open_tasks.pop(pid)
            done.append((begin, float(at), family))
    return sorted(done)


def under_busy(work: list[tuple[float, float, str]], slots: int) -> float:
    """Seconds, between the first start and the last end of `work`, with fewer than `slots` running."""
    edges = sorted([(s, 1) for s, _, _ in work] + [(e, -1) for _, e, _ in work])
    idle, running, last = 0.0, 0, edges[0][0]
    for at, step in edges:
        if running < slots:
            idle += at - last
        running, last = running + step, at
    return idle


def main(argv: list[str]) -> int:
    import run

    show_spans = "--spans" in argv
    argv = [a for a in argv if a != "--spans"]

    events = Path(tempfile.mkstemp(prefix="timeline-", suffix=".txt")[1])
    started = time.time()
    record_events(events, started)
    code = run.main(argv)
    total = time.time() - started
    done = spans(events)
    events.unlink()
    if not done:
        print("no task ran (nothing to do?)")
        return code
    workers = int(argv[argv.index("--workers") + 1]) if "--workers" in argv else 1
    scans = [s for s in done if s[2] == SCAN]
    chunks = [s for s in done if s[2] in (CHUNK, GROUP)]

    def phase(family: str) -> str:
        found = [s for s in done if s[2] == family]
        return f"{found[0][0]:6.2f} -> {max(e for _, e, _ in found):6.2f} s" if found else "   (not run)"

    if show_spans:
        for begin, end, family in done:
            print(f"  {family:28s} {begin:7.3f} -> {end:7.3f} s  ({end - begin:.3f} s)")
    print(f"start-up until the first task   {done[0][0]:6.2f} s")
    print(f"scans ({len(scans)})                        {phase(SCAN)}")
    if chunks:
        groups = sum(1 for s in chunks if s[2] == GROUP)
        first, last = chunks[0][0], max(e for _, e, _ in chunks)
        parts, rows = _rows_read(Path(argv[argv.index("--data-root") + 1])) if "--data-root" in argv else (0, 0)
        # the rate only when this run cleaned every chunk of the data root (a fresh root)
        rate = f", {rows / (last - first):,.0f} rows/s" if rows and not groups and parts == len(chunks) else ""
        print(f"chunk tasks ({len(chunks) - groups}), small-file groups ({groups}) "
              f"{first:6.2f} -> {last:6.2f} s = {last - first:.2f} s{rate}, "
              f"{sum(e - s for s, e, _ in chunks) / len(chunks):.2f} s per task on average")
        print(f"  fewer than {workers} tasks running, scans and chunks: {under_busy(scans + chunks, workers):.2f} s")
    print(f"Silver -> Gold                  {phase('SilverToGold')}")
    if "--data-root" in argv:
        print_merge_account(Path(argv[argv.index("--data-root") + 1]))
    print(f"report                          {phase('Report')}")
    print(f"whole run                       {total:6.2f} s (exit {code})")
    return code


def print_merge_account(data_root: Path) -> None:
    """Silver -> Gold's serial seconds (state commits in bucket order, set-up, folding, publishing:
    only the task's own thread can do them) and the CPU seconds of its per-bucket work (any core
    can do it), and the wall time they predict on more cores: serial + parallel / cores."""
    import json

    record = data_root / "gold" / "_silver_to_gold_run.json"
    if not record.exists():
        return
    run = json.loads(record.read_text(encoding="utf-8"))
    serial = run.get("merge_serial_seconds", 0.0) + run.get("publish_seconds", 0.0)
    parallel = run.get("merge_parallel_cpu_seconds", 0.0)
    share = serial / (serial + parallel) if serial + parallel else 0.0
    predicted = ", ".join(f"{cores} cores {serial + parallel / cores:.2f} s" for cores in (4, 8, 16))
    print(f"  serial {serial:.2f} s (merge {run.get('merge_serial_seconds', 0.0):.2f}, publish {run.get('publish_seconds', 0.0):.2f}), "
          f"parallel CPU {parallel:.2f} s: serial is {share:.0%} of the merge's CPU seconds")
    print(f"  predicted Silver -> Gold wall: {predicted}")


def _rows_read(data_root: Path) -> tuple[int, int]:
    """(chunks, records read) over every chunk of the data root, from the metrics beside silver."""
    import json

    metrics = [json.loads(p.read_text(encoding="utf-8")) for p in (data_root / "silver").rglob("part-*.metrics.json")]
    return len(metrics), sum(m["rows_read"] for m in metrics)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
