#!/usr/bin/env python
"""What one new day costs as history grows: the merge of one new file on top of H rows of history.

    python bench/day_after.py --history 5000000 40000000 [--day-rows 1000000] [--repeat 2] [--scratch DIR]

For each history size H: a data root with H generated rows (files of `--rows-per-file`) is run
once, untimed (kept under the scratch folder and reused by a later call). Then, `--repeat` times,
the next day's file is generated into it (`generate --day-offset K`: new order numbers, about 2 %
repeating the day before) and `run.py` runs: each day adds its rows to the history the next one
is measured on, as in production (a copy of the root per trial would not do: a hard link or a copy
changes every bronze file's ctime, and the run then rightly re-reads them all to check them).
Printed per day: the history under it, the run's wall seconds, the Silver -> Gold merge's wall,
serial and parallel CPU seconds (gold/_silver_to_gold_run.json) and the peak RSS of its process.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable


def _run(*args: str) -> float:
    started = time.monotonic()
    done = subprocess.run([PY, str(REPO / "run.py"), *args], cwd=REPO, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"run.py {' '.join(args)} failed ({done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return time.monotonic() - started


def history_root(scratch: Path, rows: int, rows_per_file: int, workers: int) -> Path:
    """A data root holding `rows` rows of history, merged (made once, then reused)."""
    root = scratch / f"history-{rows}"
    if (root / "gold" / "_silver_to_gold_run.json").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    files = max(1, rows // rows_per_file)
    made = _run("generate", "--rows", str(rows), "--files", str(files), "--data-root", str(root))
    ran = _run("--data-root", str(root), "--workers", str(workers))
    print(f"history of {rows:,} rows: generated in {made:.0f} s, first run {ran:.0f} s", flush=True)
    return root


def history_rows(root: Path) -> int:
    """Rows read into silver so far: what the day is merged on top of."""
    return sum(json.loads(p.read_text())["rows_read"] for p in (root / "silver").glob("*/_file_metrics.json"))


def next_day(root: Path) -> int:
    """The first day number with no file yet (generator.PARTS_PER_DAY numbers a day's files)."""
    from pipeline.generator import PARTS_PER_DAY

    numbers = [int("".join(c for c in p.stem if c.isdigit()) or 0) for p in (root / "bronze").rglob("*.csv")]
    return max(numbers, default=0) // PARTS_PER_DAY + 1


def one_day(root: Path, rows: int, workers: int) -> dict:
    """The next day's file into `root`, then a timed run."""
    _run("generate", "--rows", str(rows), "--files", "1", "--day-offset", str(next_day(root)), "--data-root", str(root))
    wall = _run("--data-root", str(root), "--workers", str(workers))
    record = json.loads((root / "gold" / "_silver_to_gold_run.json").read_text())
    if record["parts_merged"] == 0 or record["state_rebuilt_because"]:
        sys.exit(f"the day's run did not merge incrementally: {record}")
    return {"run_s": wall, **{k: record.get(k, 0) for k in ("merge_seconds", "merge_serial_seconds", "merge_parallel_cpu_seconds",
                                                            "peak_rss_mb", "rows_merged", "new_unique_orders")}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, nargs="+", default=[5_000_000, 40_000_000], metavar="ROWS")
    parser.add_argument("--day-rows", type=int, default=1_000_000)
    parser.add_argument("--rows-per-file", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--scratch", type=Path, default=REPO / "bench" / "out" / "day-after")
    args = parser.parse_args()
    args.scratch.mkdir(parents=True, exist_ok=True)
    print(f"{'history rows':>14} {'run s':>7} {'merge s':>8} {'serial s':>9} {'parallel CPU s':>15} {'merge CPU s':>12} "
          f"{'peak RSS MB':>12}")
    results = []
    for rows in sorted(args.history):
        history = history_root(args.scratch, rows, args.rows_per_file, args.workers)
        for _ in range(args.repeat):
            rows = history_rows(history)
            r = one_day(history, args.day_rows, args.workers)
            cpu = r["merge_serial_seconds"] + r["merge_parallel_cpu_seconds"]
            print(f"{rows:>14,} {r['run_s']:>7.2f} {r['merge_seconds']:>8.2f} {r['merge_serial_seconds']:>9.2f} "
                  f"{r['merge_parallel_cpu_seconds']:>15.2f} {cpu:>12.2f} {r['peak_rss_mb']:>12,}", flush=True)
            results.append({"history_rows": rows, **r})
    (args.scratch / f"results-{time.strftime('%Y%m%d-%H%M%S')}.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
