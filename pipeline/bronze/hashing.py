"""The dedup key of a silver row, its XXH64 hash, and the silver bucket derived from the hash.

The key is `[gold] dedup_key`: one or more cleaned columns. Its text is the column's own text for a
one-column key of text (`order_id`, the default), else each column's Arrow text form joined by NUL
(a cleaned value never holds NUL: a record with one is quarantined as malformed), a missing value
written as the empty text (a cleaned value is never empty: empty is a null token). Equal keys give
equal texts and different keys different texts, so dedup compares texts exactly.

The hash is persisted (silver, the dedup state), so it is a standard one that anyone can
reproduce: XXH64 with seed 0 of the key text's UTF-8 bytes, `xxhash.xxh64_intdigest(text.encode())`
(tests/test_hashing.py checks it against that library). It is computed here with numpy for all
keys at once, one pass per 32-byte stripe, 8-byte word and tail byte; a row drops out of a pass
when its key has no more of them, so a rare long key costs only its own passes.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_P1 = np.uint64(0x9E3779B185EBCA87)
_P2 = np.uint64(0xC2B2AE3D27D4EB4F)
_P3 = np.uint64(0x165667B19E3779F9)
_P4 = np.uint64(0x85EBCA77C2B2AE63)
_P5 = np.uint64(0x27D4EB2F165667C5)
_STRIPE = 32
_WORD = 8
KEY_SEPARATOR = "\x00"


def key_text(table: pa.Table, key: Sequence[str]) -> pa.Array:
    """The dedup key text of every row of `table` (which holds the `key` columns, cleaned)."""
    columns = [_single_array(table.column(name)) for name in key]
    if len(columns) == 1 and _is_text(columns[0].type) and not columns[0].null_count:
        return _plain_text(columns[0])
    texts = [pc.fill_null(_decoded(_plain_text(column)), "") for column in columns]
    if len(texts) == 1:
        return texts[0]
    return pc.binary_join_element_wise(*texts, KEY_SEPARATOR)


def _decoded(text: pa.Array) -> pa.Array:
    return text.cast(text.type.value_type) if pa.types.is_dictionary(text.type) else text


def key_hash(table: pa.Table, key: Sequence[str]) -> np.ndarray:
    """uint64 XXH64 of each row's key text."""
    return xxh64(key_text(table, key))


def xxh64(texts: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """uint64 XXH64 (seed 0) of each text's UTF-8 bytes, whatever the chunking or slicing."""
    if isinstance(texts, pa.ChunkedArray):
        parts = [xxh64(chunk) for chunk in texts.chunks]
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.uint64)
    if not isinstance(texts, pa.Array):
        texts = pa.array(texts, type=pa.large_string())
    if texts.null_count:
        raise ValueError("xxh64: keys must not be null")
    if pa.types.is_dictionary(texts.type):  # each distinct text once, spread by the indices
        return xxh64(texts.dictionary)[texts.indices.to_numpy(zero_copy_only=False)]
    if not (pa.types.is_string(texts.type) or pa.types.is_large_string(texts.type)):
        texts = texts.cast(pa.large_string())  # string_view and friends
    starts, lengths, data = _utf8_layout(texts)
    return _xxh64(starts, lengths, data)


def bucket_of(hashes: np.ndarray, buckets: int) -> np.ndarray:
    """int32 bucket in [0, buckets) of each hash: `hash % buckets`, easy to reproduce anywhere."""
    if buckets < 1:
        raise ValueError(f"bucket_of: buckets must be >= 1, got {buckets}")
    return (np.asarray(hashes, dtype=np.uint64) % np.uint64(buckets)).astype(np.int32)


def _single_array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _is_text(type_: pa.DataType) -> bool:
    value_type = type_.value_type if pa.types.is_dictionary(type_) else type_
    return pa.types.is_string(value_type) or pa.types.is_large_string(value_type)


def _plain_text(values: pa.Array) -> pa.Array:
    """Text of each value; a dictionary stays one (its text is hashed once per distinct value)."""
    if pa.types.is_dictionary(values.type):
        return values if _is_text(values.type) else values.cast(values.type.value_type).cast(pa.string())
    return values if _is_text(values.type) else values.cast(pa.string())


def _utf8_layout(strings: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start, length) of every value in the data buffer, and the buffer followed by 8 zero bytes.

    Honours the array's slice offset and copies only this slice's bytes; the zero padding lets
    every 8-byte read stay in bounds.
    """
    offset_type = np.int64 if pa.types.is_large_string(strings.type) else np.int32
    _, offsets_buffer, data_buffer = strings.buffers()
    n = len(strings)
    if offsets_buffer is None:  # a zero-length array may carry no buffers at all
        offsets = np.zeros(n + 1, dtype=np.int64)
    else:
        offsets = np.frombuffer(offsets_buffer, dtype=offset_type)[strings.offset: strings.offset + n + 1]
        offsets = offsets.astype(np.int64)
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.empty(0, np.uint8)
    first, end = int(offsets[0]), int(offsets[-1])
    padded = np.zeros(end - first + _WORD, dtype=np.uint8)
    padded[: end - first] = data[first:end]
    return offsets[:-1] - first, np.diff(offsets), padded


def _xxh64(starts: np.ndarray, lengths: np.ndarray, padded: np.ndarray) -> np.ndarray:
    """XXH64's steps, each applied to every row that has the bytes for it."""
    # Every byte position viewed as the start of an (unaligned) little-endian uint64 / uint32.
    u64_at = np.ndarray(shape=(len(padded) - _WORD + 1,), dtype="<u8", buffer=padded, strides=(1,))
    u32_at = np.ndarray(shape=(len(padded) - 3,), dtype="<u4", buffer=padded, strides=(1,))
    lengths = lengths.astype(np.int64)
    with np.errstate(over="ignore"):
        hashes = np.full(len(lengths), _P5, dtype=np.uint64)
        stripes = lengths // _STRIPE
        long_rows = np.flatnonzero(stripes)
        if len(long_rows):
            hashes[long_rows] = _stripes(u64_at, starts[long_rows], stripes[long_rows])
        hashes += lengths.astype(np.uint64)
        at = starts + stripes * _STRIPE  # the first byte after the stripes
        rest = lengths - stripes * _STRIPE
        for k, rows in _rows_with(rest // _WORD):
            lane = _round(np.zeros(1, np.uint64), u64_at[at[rows] + k * _WORD])
            hashes[rows] = _rotl(hashes[rows] ^ lane, 27) * _P1 + _P4
        at = at + (rest // _WORD) * _WORD
        rest = rest % _WORD
        rows = np.flatnonzero(rest >= 4)
        if len(rows):
            word = u32_at[at[rows]].astype(np.uint64)
            hashes[rows] = _rotl(hashes[rows] ^ (word * _P1), 23) * _P2 + _P3
            at[rows] += 4
            rest[rows] -= 4
        for k, rows in _rows_with(rest):
            byte = padded[at[rows] + k].astype(np.uint64)
            hashes[rows] = _rotl(hashes[rows] ^ (byte * _P5), 11) * _P1
        return _avalanche(hashes)


def _stripes(u64_at: np.ndarray, starts: np.ndarray, stripes: np.ndarray) -> np.ndarray:
    """XXH64's four accumulators over the 32-byte stripes of rows with at least one, merged."""
    n = len(starts)
    acc = [np.full(n, _P1 + _P2, np.uint64), np.full(n, _P2, np.uint64), np.zeros(n, np.uint64),
           np.full(n, np.uint64(0) - _P1, np.uint64)]
    for k, rows in _rows_with(stripes):
        base = starts[rows] + k * _STRIPE
        for lane in range(4):
            acc[lane][rows] = _round(acc[lane][rows], u64_at[base + lane * _WORD])
    h = _rotl(acc[0], 1) + _rotl(acc[1], 7) + _rotl(acc[2], 12) + _rotl(acc[3], 18)
    for value in acc:
        h = (h ^ _round(np.zeros(1, np.uint64), value)) * _P1 + _P4
    return h


def _rows_with(counts: np.ndarray) -> Iterator[tuple[int, slice | np.ndarray]]:
    """Yield (k, rows) for k = 0, 1, ...: the rows whose count is above k.

    `rows` is a slice while every row is still active (no gather cost), then a shrinking index
    array, so the total work is proportional to the total count.
    """
    rows: slice | np.ndarray = slice(None)
    fewest = int(counts.min(initial=0))
    for k in range(int(counts.max(initial=0))):
        if isinstance(rows, slice) and k >= fewest:
            rows = np.flatnonzero(counts > k)
        elif not isinstance(rows, slice):
            rows = rows[counts[rows] > k]
        yield k, rows


def _rotl(x: np.ndarray, r: int) -> np.ndarray:
    return (x << np.uint64(r)) | (x >> np.uint64(64 - r))


def _round(acc: np.ndarray, lane: np.ndarray) -> np.ndarray:
    """XXH64's round of one 8-byte lane into an accumulator."""
    return _rotl(acc + lane.astype(np.uint64) * _P2, 31) * _P1


def _avalanche(h: np.ndarray) -> np.ndarray:
    """XXH64's final mix: every input bit affects every output bit."""
    h = h ^ (h >> np.uint64(33))
    h = h * _P2
    h = h ^ (h >> np.uint64(29))
    h = h * _P3
    return h ^ (h >> np.uint64(32))
