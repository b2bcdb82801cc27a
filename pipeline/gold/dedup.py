"""First-wins dedup of one bucket: within the new rows (input order) and against the seen keys.

Within the new rows, ids are compared as exact strings (an Arrow hash group-by). Against the keys
of earlier batches, each stored segment is sorted by the 64-bit order_hash: the new rows' hashes,
sorted too, are binary-searched in it (cost grows with log(seen), where a hash set of the seen ids
would be rebuilt for every batch: 150 ms against 4 ms for 1.4M seen keys), and every hash match
is confirmed on the order_id strings, so the answer stays exact. A match whose ids differ (a
64-bit collision) sends the bucket to the all-strings path, `_seen_by_strings`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SEEN_SCHEMA = pa.schema([("order_hash", pa.uint64()), ("order_id", pa.string())])


@dataclass(frozen=True)
class SeenSegment:
    """The keys one earlier batch added to a bucket, sorted by hash."""

    hashes: np.ndarray  # uint64, ascending
    ids: pa.Array  # order_id, aligned with `hashes`

    @classmethod
    def from_table(cls, table: pa.Table) -> SeenSegment:
        """A stored segment (SEEN_SCHEMA), as `first_wins` wrote it: already sorted by hash."""
        return cls(table.column("order_hash").to_numpy(), table.column("order_id").combine_chunks())


@dataclass(frozen=True)
class DedupResult:
    keep: pa.Array  # boolean per input row: True for the rows that enter gold
    unique_count: int
    new_keys: pa.Table  # SEEN_SCHEMA: the keys this batch adds to the bucket, sorted by hash
    duplicates_by_file: pa.Table  # source_file, duplicates_dropped (rows of this batch only)


def first_wins(rows: pa.Table, seen: list[SeenSegment]) -> DedupResult:
    """Keep the first row of each order_id in `rows` (already in input order) not seen before.

    `rows` needs order_id, order_hash and source_file.
    """
    ids = rows.column("order_id").combine_chunks()
    hashes = rows.column("order_hash").to_numpy()
    position = pa.array(np.arange(len(ids), dtype=np.int64))
    first = pa.table({"order_id": ids, "position": position}).group_by("order_id", use_threads=False).aggregate([("position", "min")])
    keep = np.zeros(len(ids), dtype=bool)
    keep[first.column("position_min").to_numpy()] = True
    candidates = np.flatnonzero(keep)
    by_hash = candidates[np.argsort(hashes[candidates])]  # introsort; a stable sort costs far more (bench/README.md)
    seen_rows = _seen_by_hash(ids, hashes, by_hash, seen)
    if seen_rows is None:
        seen_rows = _seen_by_strings(ids, candidates, seen)
    keep[seen_rows] = False
    new = by_hash[keep[by_hash]]  # still in hash order
    new_keys = pa.table({"order_hash": hashes[new], "order_id": ids.take(pa.array(new))}, schema=SEEN_SCHEMA)
    return _result(rows, keep, new_keys)


def _seen_by_hash(ids: pa.Array, hashes: np.ndarray, by_hash: np.ndarray, seen: list[SeenSegment]) -> np.ndarray | None:
    """Rows (of `by_hash`, candidates in hash order) whose id a segment holds; None on a collision."""
    found = []
    wanted = hashes[by_hash]
    for segment in seen:
        if not len(segment.hashes):
            continue
        at = np.minimum(np.searchsorted(segment.hashes, wanted), len(segment.hashes) - 1)
        hit = np.flatnonzero(segment.hashes[at] == wanted)
        if not len(hit):
            continue
        same = pc.equal(ids.take(pa.array(by_hash[hit])), segment.ids.take(pa.array(at[hit])))
        if not pc.all(same).as_py():
            return None  # two ids share a hash: decide this bucket on the strings alone
        found.append(by_hash[hit])
    return np.concatenate(found) if found else np.empty(0, dtype=np.int64)


def _seen_by_strings(ids: pa.Array, candidates: np.ndarray, seen: list[SeenSegment]) -> np.ndarray:
    """Candidate rows whose id a segment holds, by exact string lookup (the hash-collision path)."""
    seen_ids = pa.concat_arrays([segment.ids for segment in seen]) if seen else pa.array([], pa.string())
    present = pc.is_in(ids.take(pa.array(candidates)), value_set=seen_ids).to_numpy(zero_copy_only=False)
    return candidates[present]


def _result(rows: pa.Table, keep: np.ndarray, new_keys: pa.Table) -> DedupResult:
    mask = pa.array(keep)
    dropped = pa.table({"source_file": pc.filter(rows.column("source_file"), pc.invert(mask))})
    dropped = dropped.group_by("source_file", use_threads=False).aggregate([("source_file", "count")])
    duplicates = dropped.rename_columns(["source_file", "duplicates_dropped"]).select(["source_file", "duplicates_dropped"])
    return DedupResult(keep=mask, unique_count=int(keep.sum()), new_keys=new_keys, duplicates_by_file=duplicates)
