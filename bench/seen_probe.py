#!/usr/bin/env python
"""What the dedup of one day costs in one bucket as days and history pile up, in a real state file.

    python bench/seen_probe.py [--days 365] [--keys-per-day 15625] [--history-keys 0] [--cap 156250]

One bucket of the Silver -> Gold state (the merge does the same in each of `silver_buckets`, 64 by
default, so multiply by 64 for a day), in a real SQLite state written and read through the
pipeline's own code: `--history-keys` keys first, in runs of `--cap` keys (as a rebuild in full
batches leaves them), then `--days` days of `--keys-per-day` new keys each (15,625 = 1M orders a
day over 64 buckets; 2 % of them repeat the day before). Each day is probed against the bucket's
runs as the merge probes them (pipeline.gold.dedup.first_wins, reading each run from the state),
then its keys are committed: with `--mode runs`, the new run absorbs the newest small ones
(pipeline.gold.seen_runs); with `--mode segments` (how it was before) every day adds one run.
Printed: for the first and last days, the runs probed, the probe's seconds (read and search) and
the compaction's, and at the end the peak RSS of this process.
"""
from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.bronze.hashing import xxh64  # noqa: E402
from pipeline.gold import state_records as records  # noqa: E402
from pipeline.gold.dedup import SEEN_SCHEMA, SeenSegment, first_wins  # noqa: E402
from pipeline.gold.seen_runs import Run, merge_runs, runs_to_absorb  # noqa: E402
from pipeline.gold.state_store import StateReader, encode_hashes, encode_table, open_state, state_path  # noqa: E402

BUCKET = 0


def keys(start: int, count: int) -> pa.Array:
    return pc.binary_join_element_wise(pa.scalar("ORD-"), pa.array(np.arange(start, start + count)).cast(pa.string()), "")


def write_run(state, batch: int, run: pa.Table) -> None:
    state.put_encoded(records.seen_key(BUCKET, batch, "hashes"), encode_hashes(records.seen_key(BUCKET, batch, "hashes"),
                                                                              run.column("key_hash").to_numpy()))
    state.put_encoded(records.seen_key(BUCKET, batch, "keys"), encode_table(records.seen_key(BUCKET, batch, "keys"), run.select(["key"])))


def read_run(reader: StateReader, run: Run) -> pa.Table:
    return pa.table({"key_hash": reader.get_hashes(records.seen_key(BUCKET, run.batch, "hashes")),
                     "key": reader.get_table(records.seen_key(BUCKET, run.batch, "keys")).column("key")}, schema=SEEN_SCHEMA)


def segment(reader: StateReader, run: Run) -> SeenSegment:
    return SeenSegment(lambda: reader.get_hashes(records.seen_key(BUCKET, run.batch, "hashes")),
                       lambda: reader.get_table(records.seen_key(BUCKET, run.batch, "keys")).column("key").combine_chunks())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--keys-per-day", type=int, default=15_625)
    parser.add_argument("--history-keys", type=int, default=0)
    parser.add_argument("--cap", type=int, default=156_250, help="merge_batch_rows / silver_buckets (10M / 64)")
    parser.add_argument("--mode", choices=("runs", "segments"), default="runs")
    parser.add_argument("--report-every", type=int, default=0, help="print every N-th day too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="seen-probe-") as folder:
        state_dir = Path(folder)
        runs: list[Run] = []
        next_key, batch = 0, 0
        with open_state(state_dir) as state:
            while next_key < args.history_keys:
                count = min(args.cap, args.history_keys - next_key)
                texts = keys(next_key, count)
                order = np.argsort(xxh64(texts))
                write_run(state, batch, pa.table({"key_hash": xxh64(texts)[order], "key": texts.take(pa.array(order))},
                                                 schema=SEEN_SCHEMA))
                runs.append(Run(batch, count))
                next_key, batch = next_key + count, batch + 1
                state.commit()
        print(f"mode {args.mode}: {args.history_keys:,} keys of history in {len(runs)} runs, then {args.days} days of "
              f"{args.keys_per_day:,} keys")
        print(f"{'day':>5} {'runs probed':>12} {'probe s':>9} {'compact s':>10} {'new keys':>9}")
        previous = None
        for day in range(1, args.days + 1):
            fresh = keys(next_key, args.keys_per_day)
            if previous is not None:  # 2 % repeat the day before, as the generator does
                fresh = pa.concat_arrays([fresh.slice(0, args.keys_per_day - args.keys_per_day // 50),
                                          previous.slice(0, args.keys_per_day // 50)])
            next_key += args.keys_per_day
            reader = StateReader(state_path(state_dir))
            started = time.perf_counter()
            result = first_wins(fresh, xxh64(fresh), [segment(reader, run) for run in runs])
            probed = time.perf_counter() - started
            started = time.perf_counter()
            taken = runs_to_absorb(runs, result.new_keys.num_rows, args.cap) if args.mode == "runs" else 0
            absorbed = runs[len(runs) - taken:]
            run = merge_runs([*(read_run(reader, r) for r in absorbed), result.new_keys]) if absorbed else result.new_keys
            reader.close()
            with open_state(state_dir) as state:
                write_run(state, batch, run)
                for gone in absorbed:
                    for part in records.SEEN_PARTS:
                        state.delete(records.seen_key(BUCKET, gone.batch, part))
                state.commit()
            compacted = time.perf_counter() - started
            probed_runs = len(runs)
            runs = runs[: len(runs) - taken] + [Run(batch, run.num_rows)]
            batch += 1
            previous = fresh
            if day in (1, 2, args.days) or (args.report_every and day % args.report_every == 0):
                print(f"{day:>5} {probed_runs:>12} {probed:>9.4f} {compacted:>10.4f} {result.unique_count:>9,}", flush=True)
        print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; runs at the end {len(runs)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
