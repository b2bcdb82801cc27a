"""Parquet writing for silver and quarantine parts, always through the atomic-write helper.

Silver parts are sorted by bucket (then source_row) with one row group per bucket, and the map
bucket -> row group kept in the file's metadata: Silver -> Gold reads one bucket of every part at
a time, so dedup memory is bounded by a bucket, not by the input.
"""
from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.atomic import atomic_path
from pipeline.chunking import fingerprint_file
from pipeline.contract import SILVER_DICTIONARY_COLUMNS

BUCKET_ROW_GROUPS_KEY = b"bucket_row_groups"
# Statistics are only worth their cost where readers filter; order_id and email are skipped.
_SILVER_STATISTICS = ["bucket", "source_row", "sale_date", "quantity"]


def file_digest(path: Path) -> str:
    """CRC-32 (hex) of a file's bytes: recorded when a part is written, checked before it is merged."""
    return f"{fingerprint_file(path).crc32:08x}"


def bytes_digest(data: bytes | memoryview) -> str:
    """`file_digest` of a file holding exactly `data`."""
    return f"{zlib.crc32(data):08x}"


def write_silver_part(path: Path, silver: pa.Table, before_publish: "Callable[[str], None] | None" = None) -> None:
    """Write `silver` (in source_row order, or already grouped by bucket) as one row group per bucket, atomically.

    `before_publish(digest)` runs after the bytes are complete but before the part appears under
    its name (the checkpoint), so whatever records the digest is on disk first.
    """
    buckets = silver.column("bucket").to_numpy()
    if len(buckets) > 1 and np.any(buckets[1:] < buckets[:-1]):  # clean_records already groups them
        order = np.argsort(buckets, kind="stable")
        silver, buckets = silver.take(pa.array(order)), buckets[order]
    present = np.unique(buckets)
    starts = np.searchsorted(buckets, present, side="left")
    stops = np.searchsorted(buckets, present, side="right")
    row_groups = {int(b): i for i, b in enumerate(present)}
    # Built in memory, then written with one call: the checksum comes from these bytes instead of a
    # read back, and the file gets one write instead of thousands (25 MB: 0.169 s -> 0.141 s).
    sink = pa.BufferOutputStream()
    # No stored Arrow schema: the dictionary columns read back as the plain text of SILVER_SCHEMA.
    with pq.ParquetWriter(sink, silver.schema, compression="snappy", write_statistics=_SILVER_STATISTICS,
                          use_dictionary=list(SILVER_DICTIONARY_COLUMNS), store_schema=False) as writer:
        if not len(present):
            writer.write_table(silver)
        for start, stop in zip(starts, stops):
            writer.write_table(silver.slice(int(start), int(stop - start)), row_group_size=int(stop - start))
        writer.add_key_value_metadata({BUCKET_ROW_GROUPS_KEY: json.dumps(row_groups).encode()})
    data = memoryview(sink.getvalue())
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
        if before_publish is not None:
            before_publish(bytes_digest(data))


def silver_bucket_row_groups(path: Path) -> dict[int, int]:
    """bucket -> row group index of a silver part (buckets with no rows are absent)."""
    metadata = pq.read_schema(path).metadata or {}
    return {int(k): v for k, v in json.loads(metadata[BUCKET_ROW_GROUPS_KEY]).items()}


def write_table_atomic(path: Path, table: pa.Table) -> None:
    """Plain atomic Parquet write (quarantine parts, gold tables)."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="snappy")


class SilverPartReader:
    """Open silver parts once and read one bucket (row group) of each on demand.

    Columns of `schema` typed as dictionaries are read as such (Parquet stores them dictionary
    encoded): no string is materialised, and the pieces' dictionaries are unified once per bucket.
    """

    def __init__(self, paths: list[Path], columns: list[str], schema: pa.Schema | None = None) -> None:
        dictionaries = [f.name for f in schema if pa.types.is_dictionary(f.type)] if schema is not None else []
        self._files = [pq.ParquetFile(p, read_dictionary=dictionaries or None) for p in paths]
        self._groups = [silver_bucket_row_groups(p) for p in paths]
        self._columns = columns

    def read_bucket(self, bucket: int, schema: pa.Schema, part_column: str | None = None) -> pa.Table:
        """Rows of `bucket` from every part, parts in the order given (input order is kept); with
        `part_column`, an int32 column of that name gives each row's part (its index in `paths`).

        Each merge thread decodes its own columns (no Arrow thread pool shared by both threads):
        a 9.3M-row merge went from 3.54-4.0 s to 3.40-3.57 s."""
        pieces = [(i, f.read_row_group(g[bucket], columns=self._columns, use_threads=False))
                  for i, (f, g) in enumerate(zip(self._files, self._groups)) if bucket in g]
        rows = pa.concat_tables([schema.empty_table(), *(p.replace_schema_metadata(None).cast(schema) for _, p in pieces)])
        if any(pa.types.is_dictionary(f.type) for f in schema):
            rows = rows.unify_dictionaries()
        if part_column is not None:
            parts = np.repeat(np.array([i for i, _ in pieces], dtype=np.int32), [p.num_rows for _, p in pieces])
            rows = rows.append_column(part_column, pa.array(parts, pa.int32()))
        return rows

    def close(self) -> None:
        for f in self._files:
            f.close()
