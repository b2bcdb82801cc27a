"""First-wins dedup of one bucket: within the new rows (input order) and against the seen keys.

A row's key is its dedup key text (pipeline.bronze.hashing.key_text of `[gold] dedup_key`).
Within the new rows, keys are compared as exact strings (an Arrow hash group-by). Against the keys
of earlier batches, each stored segment is sorted by the 64-bit key_hash and kept as two records:
the hashes alone, and the key texts beside them. The new rows' hashes, sorted too, are
binary-searched in each segment's hashes, one segment in memory at a time; only a segment with a
hash match has its texts read, and every match is confirmed on the key strings, so the answer
stays exact while probing history reads 8 bytes per stored key (bench/README.md). A match whose
keys differ (a 64-bit collision) sends the bucket to the all-strings path, `_seen_by_strings`.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

SEEN_SCHEMA = pa.schema([("key_hash", pa.uint64()), ("key", pa.string())])


@dataclass(frozen=True)
class SeenSegment:
    """The keys one earlier batch added to a bucket, sorted by hash, read only when probed: a
    bucket's history is never in memory whole."""

    hashes: Callable[[], np.ndarray]  # uint64, ascending
    keys: Callable[[], pa.Array]  # the key texts, aligned with `hashes`

    @classmethod
    def from_table(cls, table: pa.Table) -> SeenSegment:
        """A segment held in memory (SEEN_SCHEMA), as `first_wins` wrote it: already sorted by hash."""
        hashes, keys = table.column("key_hash").to_numpy(), table.column("key").combine_chunks()
        return cls(lambda: hashes, lambda: keys)


@dataclass(frozen=True)
class DedupResult:
    keep: pa.Array  # boolean per input row: True for the rows that enter gold
    unique_count: int
    new_keys: pa.Table  # SEEN_SCHEMA: the keys this batch adds to the bucket, sorted by hash


def first_wins(keys: pa.Array, hashes: np.ndarray, seen: Sequence[SeenSegment]) -> DedupResult:
    """Keep the first row of each key (rows in input order) not seen before.

    `keys`: each row's key text (a dictionary too); `hashes`: its key_hash.
    """
    texts = keys.cast(pa.string()) if pa.types.is_dictionary(keys.type) else keys
    hashes = np.asarray(hashes, dtype=np.uint64)
    position = pa.array(np.arange(len(texts), dtype=np.int64))
    first = pa.table({"key": texts, "position": position}).group_by("key", use_threads=False).aggregate([("position", "min")])
    keep = np.zeros(len(texts), dtype=bool)
    keep[first.column("position_min").to_numpy()] = True
    candidates = np.flatnonzero(keep)
    by_hash = candidates[np.argsort(hashes[candidates])]  # introsort; a stable sort costs far more (bench/README.md)
    seen_rows = _seen_by_hash(texts, hashes, by_hash, seen)
    if seen_rows is None:
        seen_rows = _seen_by_strings(texts, candidates, seen)
    keep[seen_rows] = False
    new = by_hash[keep[by_hash]]  # still in hash order
    new_keys = pa.table({"key_hash": hashes[new], "key": texts.take(pa.array(new))}, schema=SEEN_SCHEMA)
    return DedupResult(keep=pa.array(keep), unique_count=int(keep.sum()), new_keys=new_keys)


def _seen_by_hash(texts: pa.Array, hashes: np.ndarray, by_hash: np.ndarray, seen: Sequence[SeenSegment]) -> np.ndarray | None:
    """Rows (of `by_hash`, candidates in hash order) whose key a segment holds; None on a collision."""
    found = []
    wanted = hashes[by_hash]
    for segment in seen:
        stored = segment.hashes()
        if not len(stored) or not len(wanted):
            continue
        at = np.minimum(np.searchsorted(stored, wanted), len(stored) - 1)
        hit = np.flatnonzero(stored[at] == wanted)
        if not len(hit):
            continue
        same = pc.equal(texts.take(pa.array(by_hash[hit])), segment.keys().take(pa.array(at[hit])))
        if not pc.all(same).as_py():
            return None  # two keys share a hash: decide this bucket on the strings alone
        found.append(by_hash[hit])
    return np.concatenate(found) if found else np.empty(0, dtype=np.int64)


def _seen_by_strings(texts: pa.Array, candidates: np.ndarray, seen: Sequence[SeenSegment]) -> np.ndarray:
    """Candidate rows whose key a segment holds, by exact string lookup (the hash-collision path)."""
    wanted = texts.take(pa.array(candidates))
    present = np.zeros(len(candidates), dtype=bool)
    for segment in seen:  # one segment's texts at a time
        present |= pc.is_in(wanted, value_set=segment.keys()).to_numpy(zero_copy_only=False)
    return candidates[present]
