"""First-wins dedup of one bucket: within the new rows (input order) and against the seen keys."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True)
class DedupResult:
    keep: pa.Array  # boolean per input row: True for the rows that enter gold
    unique_count: int
    new_keys: pa.Array  # the order_ids this batch adds to the bucket (string)
    duplicates_by_file: pa.Table  # source_file, duplicates_dropped (rows of this batch only)


def first_wins(rows: pa.Table, seen: pa.Array | None) -> DedupResult:
    """Keep the first row of each order_id in `rows` (already in input order) not seen before.

    Keys are compared as exact strings (Arrow hash tables), so there is no hash-collision risk.
    """
    count = rows.num_rows
    ids = rows.column("order_id")
    position = pa.array(np.arange(count, dtype=np.int64))
    first = pa.table({"order_id": ids, "position": position}).group_by("order_id", use_threads=False).aggregate([("position", "min")])
    keep = np.zeros(count, dtype=bool)
    keep[first.column("position_min").to_numpy()] = True
    if seen is not None and len(seen):
        keep &= ~pc.is_in(ids, value_set=seen).to_numpy(zero_copy_only=False)
    mask = pa.array(keep)
    new_ids = pc.filter(ids, mask).combine_chunks()
    dropped = pa.table({"source_file": pc.filter(rows.column("source_file"), pc.invert(mask))})
    dropped = dropped.group_by("source_file", use_threads=False).aggregate([("source_file", "count")])
    duplicates = dropped.rename_columns(["source_file", "duplicates_dropped"]).select(["source_file", "duplicates_dropped"])
    return DedupResult(keep=mask, unique_count=int(keep.sum()), new_keys=new_ids, duplicates_by_file=duplicates)
