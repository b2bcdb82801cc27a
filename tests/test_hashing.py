"""key_hash is persisted (silver, dedup state): it is XXH64 (seed 0) of the key text's UTF-8 bytes,
exact per key, layout blind, and reproducible with the reference library (xxhash)."""
from __future__ import annotations

import datetime
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.bronze.hashing import bucket_of, key_hash, key_text, xxh64


def reference_hash(text: str) -> int:
    """The reference implementation: what any reader of silver can compute."""
    return xxhash.xxh64_intdigest(text.encode("utf-8"))


# Pinned: a change of algorithm (or of byte order, or of seed) fails here, whatever the library says.
PINNED = {
    "": 17241709254077376921,
    "a": 15154266338359012955,
    "a\0": 16506783541394571158,
    "ORD-00000001": 14374090311507490727,
    "é": 1717938401253289848,
    "日本語": 8176744303664166369,
    "x" * 31: 6979749295578388976,
    "x" * 32: 16347827090234290411,
    "x" * 300: 9473281768960284095,
}

ids_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300)


@pytest.mark.parametrize("text, expected", PINNED.items(), ids=[repr(k[:12]) for k in PINNED])
def test_hash_of_known_ids_is_pinned(text: str, expected: int) -> None:
    assert int(xxh64(pa.array([text]))[0]) == expected
    assert reference_hash(text) == expected


def test_result_is_uint64_one_per_id() -> None:
    hashes = xxh64(pa.array(["a", "b", "c"]))
    assert hashes.dtype == np.uint64 and hashes.shape == (3,)


@settings(max_examples=40, deadline=None)
@given(st.lists(ids_text, max_size=40))
def test_vectorised_hash_matches_reference(order_ids: list[str]) -> None:
    assert xxh64(pa.array(order_ids, pa.string())).tolist() == [reference_hash(i) for i in order_ids]


def test_ids_that_differ_only_by_trailing_zero_bytes_differ() -> None:
    hashes = xxh64(pa.array(["a", "a\0", "a\0\0", "", "\0", "\0" * 8, "abcdefgh", "abcdefgh\0"]))
    assert len(set(hashes.tolist())) == 8


def test_sliced_array_hashes_like_its_values() -> None:
    values = ["ORD-1", "a much longer order id over sixteen bytes", "", "é-1", "ORD-22", "x" * 500, "z"]
    full = xxh64(pa.array(values))
    for start in range(len(values)):
        for length in range(len(values) - start + 1):
            sliced = pa.array(values).slice(start, length)
            assert xxh64(sliced).tolist() == full[start: start + length].tolist()


def test_chunking_and_string_layouts_do_not_change_hashes() -> None:
    values = [f"ORD-{i}" for i in range(50)] + ["x" * 300, "日本語", ""]
    expected = xxh64(pa.array(values)).tolist()
    chunked = pa.chunked_array([pa.array(values[:7]), pa.array(values[7:8]), pa.array([], pa.string()), pa.array(values[8:])])
    assert xxh64(chunked).tolist() == expected
    assert xxh64(pa.array(values, pa.large_string())).tolist() == expected
    assert xxh64(pa.array(values).cast(pa.string_view())).tolist() == expected
    assert xxh64(pc.dictionary_encode(pa.array(values + values[:5]))).tolist() == expected + expected[:5]
    assert xxh64(values).tolist() == expected  # a plain list is accepted too


def test_long_ids_among_short_ones_hash_correctly() -> None:
    values = ["a"] * 10 + ["b" * 1000] + ["c" * 17] + [""] + ["d" * n for n in range(1, 70)]
    assert xxh64(pa.array(values)).tolist() == [reference_hash(v) for v in values]


def test_empty_input_gives_empty_hashes() -> None:
    assert xxh64(pa.array([], pa.string())).shape == (0,)
    assert xxh64(pa.chunked_array([], pa.string())).shape == (0,)


def test_null_order_id_is_refused() -> None:
    with pytest.raises(ValueError, match="null"):
        xxh64(pa.array(["a", None]))


def test_bucket_is_hash_modulo_buckets() -> None:
    hashes = np.array([0, 1, 63, 64, 2**64 - 1, 12345678901234567890], dtype=np.uint64)
    buckets = bucket_of(hashes, 64)
    assert buckets.dtype == np.int32
    assert buckets.tolist() == [0, 1, 63, 0, 63, 12345678901234567890 % 64]
    assert bucket_of(hashes, 1).tolist() == [0] * 6


def test_buckets_spread_evenly() -> None:
    hashes = xxh64(pa.array([f"ORD-{i:08d}" for i in range(64_000)]))
    counts = np.bincount(bucket_of(hashes, 64), minlength=64)
    assert counts.min() > 800 and counts.max() < 1200  # 1000 expected per bucket


def test_bucket_count_must_be_positive() -> None:
    with pytest.raises(ValueError):
        bucket_of(np.array([1], dtype=np.uint64), 0)


def test_one_text_column_is_its_own_key_text() -> None:
    table = pa.table({"order_id": ["A-1", "B-2"]})
    assert key_text(table, ["order_id"]).to_pylist() == ["A-1", "B-2"]
    assert key_hash(table, ["order_id"]).tolist() == [reference_hash("A-1"), reference_hash("B-2")]


def test_a_key_of_several_columns_joins_their_text_with_nul() -> None:
    table = pa.table({
        "order_id": ["A", "A", "A"],
        "product_key": pa.array(["x", None, "x"]).dictionary_encode(),
        "sale_date": pa.array([datetime.date(2024, 1, 2)] * 3),
        "unit_price": pa.array([Decimal("1.50"), Decimal("1.50"), Decimal("2.00")], pa.decimal128(18, 2)),
        "quantity": pa.array([3, 3, 3], pa.int64()),
    })
    key = ["order_id", "product_key", "sale_date", "unit_price", "quantity"]
    assert key_text(table, key).to_pylist() == ["A\0x\x002024-01-02\x001.50\x003", "A\0\x002024-01-02\x001.50\x003",
                                               "A\0x\x002024-01-02\x002.00\x003"]
    assert key_hash(table, key).tolist() == [reference_hash(t) for t in key_text(table, key).to_pylist()]


def test_key_columns_in_another_order_are_another_key() -> None:
    table = pa.table({"a": ["1"], "b": ["2"]})
    assert key_text(table, ["a", "b"]).to_pylist() != key_text(table, ["b", "a"]).to_pylist()
