"""First-wins dedup of one bucket, on real Arrow tables: exact even when 64-bit hashes collide."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from pipeline.bronze.hashing import xxh64
from pipeline.gold.dedup import SEEN_SCHEMA, SeenSegment, first_wins


def _rows(ids: list[str], hashes: list[int] | None = None) -> tuple[pa.Array, np.ndarray]:
    """Key texts and their hashes (forced ones where given)."""
    values = np.array(hashes, dtype=np.uint64) if hashes is not None else xxh64(pa.array(ids))
    return pa.array(ids, pa.string()), values


def _segment(ids: list[str], hashes: list[int] | None = None) -> SeenSegment:
    return SeenSegment.from_table(first_wins(*_rows(ids, hashes), []).new_keys)


def test_first_occurrence_wins_within_the_rows_and_against_earlier_batches() -> None:
    earlier = _segment(["B", "D"])
    result = first_wins(*_rows(["A", "B", "A", "C", "D", "C"]), [earlier])
    assert result.keep.to_pylist() == [True, False, False, True, False, False]
    assert result.unique_count == 2
    assert sorted(result.new_keys.column("key").to_pylist()) == ["A", "C"]


def test_new_keys_are_sorted_by_hash_for_the_next_batch() -> None:
    keys = first_wins(*_rows([f"ORD-{i}" for i in range(1000)]), []).new_keys
    assert keys.schema.equals(SEEN_SCHEMA)
    hashes = keys.column("key_hash").to_numpy()
    assert (np.diff(hashes.astype(np.float64)) >= 0).all() and len(hashes) == 1000


def test_a_hash_shared_by_two_ids_never_merges_them() -> None:
    # Forced collisions: X and Y carry the same hash, in the seen keys and in the new rows.
    seen = _segment(["X", "Z"], hashes=[7, 9])
    result = first_wins(*_rows(["Y", "X", "Y", "Z", "W"], hashes=[7, 7, 7, 9, 7]), [seen])
    assert result.keep.to_pylist() == [True, False, False, False, True]
    assert sorted(result.new_keys.column("key").to_pylist()) == ["W", "Y"]


def test_colliding_keys_stored_together_are_still_told_apart_later() -> None:
    seen = _segment(["P", "Q"], hashes=[5, 5])  # one segment holding two ids with one hash
    result = first_wins(*_rows(["Q", "P", "R"], hashes=[5, 5, 5]), [seen])
    assert result.keep.to_pylist() == [False, False, True]


def test_many_batches_equal_one_batch() -> None:
    rng = np.random.default_rng(7)
    ids = [f"O{int(i)}" for i in rng.integers(0, 3000, size=10_000)]
    whole = first_wins(*_rows(ids), []).keep.to_pylist()
    segments, kept = [], []
    for start in range(0, len(ids), 1500):
        result = first_wins(*_rows(ids[start:start + 1500]), segments)
        kept += result.keep.to_pylist()
        segments.append(SeenSegment.from_table(result.new_keys))
    assert kept == whole and sum(whole) == len(set(ids))


def test_a_segment_without_a_hash_match_never_has_its_texts_read() -> None:
    """Probing history reads hashes; a segment's key texts are read only to confirm a match."""
    held = first_wins(*_rows(["A", "B", "C"]), []).new_keys
    read: list[str] = []

    def segment(name: str, table: pa.Table) -> SeenSegment:
        def keys() -> pa.Array:
            read.append(name)
            return table.column("key").combine_chunks()
        return SeenSegment(lambda: table.column("key_hash").to_numpy(), keys)

    other = first_wins(*_rows(["X", "Y"]), []).new_keys
    result = first_wins(*_rows(["D", "B", "E"]), [segment("other", other), segment("held", held)])
    assert result.keep.to_pylist() == [True, False, True]
    assert read == ["held"]


def test_the_collision_path_reads_every_segment_and_stays_exact() -> None:
    first, second = _segment(["P"], hashes=[5]), _segment(["S"], hashes=[8])
    result = first_wins(*_rows(["Q", "S", "P"], hashes=[5, 8, 5]), [first, second])
    assert result.keep.to_pylist() == [True, False, False]
