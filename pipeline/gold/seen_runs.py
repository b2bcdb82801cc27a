"""A bucket's seen keys as a few sorted runs, so that probing them costs the same day after day.

Each batch adds one run per bucket (its new keys, sorted by hash). Probing costs about the same
per run whatever its size (a binary search per new key: bench/README.md "The day after"), so a run
per batch made every day dearer than the one before. Here the new keys absorb the newest runs
while each is no larger than what it joins (a binary counter: a key is rewritten about log2 times
over its life) and the result stays within `cap` keys: runs of full size are never rewritten again,
so a merge rewrites at most `cap` keys per bucket and memory stays bounded by it, whatever the
history. Which runs hold a key never changes a dedup answer, only its cost.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from pipeline.gold.dedup import SEEN_SCHEMA


@dataclass(frozen=True)
class Run:
    """One sorted run of a bucket's seen keys: named by the batch that wrote it."""

    batch: int
    rows: int


def runs_from_json(value: list) -> list[Run]:
    return [Run(int(batch), int(rows)) for batch, rows in value]


def runs_to_json(runs: Sequence[Run]) -> list:
    return [[run.batch, run.rows] for run in runs]


def runs_to_absorb(runs: Sequence[Run], new_rows: int, cap: int) -> int:
    """How many of the newest runs (the end of `runs`, oldest first) the batch's `new_rows` keys
    merge with: each no larger than what it joins, the whole at most `cap`."""
    size, taken = new_rows, 0
    for run in reversed(runs):
        if run.rows > size or run.rows + size > cap:
            break
        size, taken = size + run.rows, taken + 1
    return taken


def merge_runs(tables: Sequence[pa.Table]) -> pa.Table:
    """Several runs (SEEN_SCHEMA) as one, sorted by hash."""
    whole = pa.concat_tables([SEEN_SCHEMA.empty_table(), *(t.cast(SEEN_SCHEMA) for t in tables)]).combine_chunks()
    order = np.argsort(whole.column("key_hash").to_numpy())  # any order among equal hashes: they are confirmed on the texts
    return whole.take(pa.array(order))
