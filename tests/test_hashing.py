"""order_hash is persisted (silver, dedup state): it must be stable, exact per id, and layout blind."""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.bronze.hashing import bucket_of, order_hash

# --- an independent, byte-by-byte statement of the algorithm (pure Python ints) -----------------
MASK = (1 << 64) - 1
P1, P2, P3, P4, P5 = (
    0x9E3779B185EBCA87,
    0xC2B2AE3D27D4EB4F,
    0x165667B19E3779F9,
    0x85EBCA77C2B2AE63,
    0x27D4EB2F165667C5,
)


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & MASK


def reference_hash(order_id: str) -> int:
    """Length first, then each zero-padded little-endian 8-byte word, then the avalanche."""
    data = order_id.encode("utf-8")
    h = (P5 + len(data)) & MASK
    for i in range(0, len(data), 8):
        word = int.from_bytes(data[i: i + 8].ljust(8, b"\0"), "little")
        lane = (_rotl((word * P2) & MASK, 31) * P1) & MASK
        h = (_rotl(h ^ lane, 27) * P1 + P4) & MASK
    h ^= h >> 33
    h = (h * P2) & MASK
    h ^= h >> 29
    h = (h * P3) & MASK
    return h ^ (h >> 32)


# Computed once and pinned: a change of algorithm (or of byte order, or of padding) fails here.
PINNED = {
    "": 17241709254077376921,
    "a": 11917584344424898561,
    "a\0": 8659711738170984150,
    "ORD-00000001": 1116153248152070145,
    "é": 943735386553500586,
    "日本語": 18329953507428437607,
    "x" * 300: 8797163026155507566,
}

ids_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300)


@pytest.mark.parametrize("order_id, expected", PINNED.items(), ids=[repr(k[:12]) for k in PINNED])
def test_hash_of_known_ids_is_pinned(order_id: str, expected: int) -> None:
    assert int(order_hash(pa.array([order_id]))[0]) == expected
    assert reference_hash(order_id) == expected


def test_result_is_uint64_one_per_id() -> None:
    hashes = order_hash(pa.array(["a", "b", "c"]))
    assert hashes.dtype == np.uint64 and hashes.shape == (3,)


@settings(max_examples=40, deadline=None)
@given(st.lists(ids_text, max_size=40))
def test_vectorised_hash_matches_reference(order_ids: list[str]) -> None:
    assert order_hash(pa.array(order_ids, pa.string())).tolist() == [reference_hash(i) for i in order_ids]


def test_ids_that_differ_only_by_trailing_zero_bytes_differ() -> None:
    hashes = order_hash(pa.array(["a", "a\0", "a\0\0", "", "\0", "\0" * 8, "abcdefgh", "abcdefgh\0"]))
    assert len(set(hashes.tolist())) == 8


def test_sliced_array_hashes_like_its_values() -> None:
    values = ["ORD-1", "a much longer order id over sixteen bytes", "", "é-1", "ORD-22", "x" * 500, "z"]
    full = order_hash(pa.array(values))
    for start in range(len(values)):
        for length in range(len(values) - start + 1):
            sliced = pa.array(values).slice(start, length)
            assert order_hash(sliced).tolist() == full[start: start + length].tolist()


def test_chunking_and_string_layouts_do_not_change_hashes() -> None:
    values = [f"ORD-{i}" for i in range(50)] + ["x" * 300, "日本語", ""]
    expected = order_hash(pa.array(values)).tolist()
    chunked = pa.chunked_array([pa.array(values[:7]), pa.array(values[7:8]), pa.array([], pa.string()), pa.array(values[8:])])
    assert order_hash(chunked).tolist() == expected
    assert order_hash(pa.array(values, pa.large_string())).tolist() == expected
    assert order_hash(pa.array(values).cast(pa.string_view())).tolist() == expected
    assert order_hash(pc.dictionary_encode(pa.array(values + values[:5]))).tolist() == expected + expected[:5]
    assert order_hash(values).tolist() == expected  # a plain list is accepted too


def test_long_ids_among_short_ones_hash_correctly() -> None:
    values = ["a"] * 10 + ["b" * 1000] + ["c" * 17] + [""]
    assert order_hash(pa.array(values)).tolist() == [reference_hash(v) for v in values]


def test_empty_input_gives_empty_hashes() -> None:
    assert order_hash(pa.array([], pa.string())).shape == (0,)
    assert order_hash(pa.chunked_array([], pa.string())).shape == (0,)


def test_null_order_id_is_refused() -> None:
    with pytest.raises(ValueError, match="null"):
        order_hash(pa.array(["a", None]))


def test_bucket_is_hash_modulo_buckets() -> None:
    hashes = np.array([0, 1, 63, 64, 2**64 - 1, 12345678901234567890], dtype=np.uint64)
    buckets = bucket_of(hashes, 64)
    assert buckets.dtype == np.int32
    assert buckets.tolist() == [0, 1, 63, 0, 63, 12345678901234567890 % 64]
    assert bucket_of(hashes, 1).tolist() == [0] * 6


def test_buckets_spread_evenly() -> None:
    hashes = order_hash(pa.array([f"ORD-{i:08d}" for i in range(64_000)]))
    counts = np.bincount(bucket_of(hashes, 64), minlength=64)
    assert counts.min() > 800 and counts.max() < 1200  # 1000 expected per bucket


def test_bucket_count_must_be_positive() -> None:
    with pytest.raises(ValueError):
        bucket_of(np.array([1], dtype=np.uint64), 0)
