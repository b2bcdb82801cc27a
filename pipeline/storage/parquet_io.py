"""Parquet writing for silver and quarantine parts, always through the atomic-write helper.

Silver parts are sorted by bucket (then source_row) with one row group per bucket, and the map
bucket -> row group kept in the file's metadata: Silver -> Gold reads one bucket of every part at
a time, so dedup memory is bounded by a bucket, not by the input.
"""
from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable
from pathlib import PurePath

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.contract import SILVER_DICTIONARY_COLUMNS
from pipeline.storage.fingerprint import fingerprint_file
from pipeline.storage.store import Store

BUCKET_ROW_GROUPS_KEY = b"bucket_row_groups"
# A part with fewer rows is written as one row group for all its buckets: a row group per bucket
# costs a Parquet write call each (most of a tiny part's write time), and Silver -> Gold
# reads such parts whole, once per batch (SmallPartPool), instead of once per bucket.
SINGLE_ROW_GROUP_ROWS = 50_000
POOL_READ_PARTS = 500
# Statistics are only worth their cost where readers filter; order_id and email are skipped.
_SILVER_STATISTICS = ["bucket", "source_row", "sale_date", "quantity"]


def file_digest(store: Store, path: PurePath) -> str:
    """CRC-32 (hex) of a file's bytes as the store returns them: recorded when a part is written,
    checked before it is merged (a store that returns other bytes than were sent is caught here)."""
    return f"{fingerprint_file(store, path).crc32:08x}"


def bytes_digest(data: bytes | memoryview) -> str:
    """`file_digest` of a file holding exactly `data`."""
    return f"{zlib.crc32(data):08x}"


def write_silver_part(store: Store, path: PurePath, silver: pa.Table, before_publish: Callable[[str], None] | None = None) -> None:
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
    single = len(buckets) < SINGLE_ROW_GROUP_ROWS
    row_groups = {int(b): 0 if single else i for i, b in enumerate(present)}
    # Built in memory, then written with one call: the checksum comes from these bytes instead of a
    # read back, and the file gets one write instead of thousands.
    sink = pa.BufferOutputStream()
    # No stored Arrow schema: the dictionary columns read back as the plain text of SILVER_SCHEMA.
    with pq.ParquetWriter(sink, silver.schema, compression="snappy", write_statistics=_SILVER_STATISTICS,
                          use_dictionary=list(SILVER_DICTIONARY_COLUMNS), store_schema=False) as writer:
        if not len(present) or single:
            writer.write_table(silver, row_group_size=max(len(buckets), 1))
        for start, stop in ([] if single else zip(starts, stops)):
            writer.write_table(silver.slice(int(start), int(stop - start)), row_group_size=int(stop - start))
        writer.add_key_value_metadata({BUCKET_ROW_GROUPS_KEY: json.dumps(row_groups).encode()})
    data = memoryview(sink.getvalue())
    store.write_bytes(path, data, before_publish=None if before_publish is None else lambda: before_publish(bytes_digest(data)))


def silver_bucket_row_groups(store: Store, path: PurePath) -> dict[int, int]:
    """bucket -> row group index of a silver part (buckets with no rows are absent)."""
    return _bucket_row_groups(store.read_schema(path))


def _bucket_row_groups(schema: pa.Schema) -> dict[int, int]:
    return {int(k): v for k, v in json.loads((schema.metadata or {})[BUCKET_ROW_GROUPS_KEY]).items()}



class SilverPartReader:
    """Open silver parts once and read one bucket (row group) of each on demand.

    Columns of `schema` typed as dictionaries are read as such (Parquet stores them dictionary
    encoded): no string is materialised, and the pieces' dictionaries are unified once per bucket.
    """

    def __init__(self, store: Store, paths: list[PurePath], columns: list[str], schema: pa.Schema | None = None,
                 pool: SmallPartPool | None = None) -> None:
        dictionaries = [f.name for f in schema if pa.types.is_dictionary(f.type)] if schema is not None else []
        pooled = pool.parts if pool is not None else frozenset()
        # Parts in the pool are never opened here: at 2,000 small parts that is 2,000 opens per reader.
        self._files = {i: store.parquet_file(p, read_dictionary=dictionaries or None) for i, p in enumerate(paths) if i not in pooled}
        self._groups = {i: _bucket_row_groups(f.schema_arrow) for i, f in self._files.items()}
        self._columns = columns
        self._pool = pool

    def read_bucket(self, bucket: int, schema: pa.Schema, part_column: str | None = None) -> pa.Table:
        """Rows of `bucket` from every part, parts in the order given (input order is kept); with
        `part_column`, an int32 column of that name gives each row's part (its index in `paths`).

        Each merge thread decodes its own columns (no Arrow thread pool shared by both threads):
        a 9.3M-row merge went from 3.54-4.0 s to 3.40-3.57 s."""
        pieces = [(i, self._read(f, self._groups[i], bucket)) for i, f in self._files.items() if bucket in self._groups[i]]
        rows = pa.concat_tables([schema.empty_table(), *(p.replace_schema_metadata(None).cast(schema) for _, p in pieces)])
        parts = np.repeat(np.array([i for i, _ in pieces], dtype=np.int32), [p.num_rows for _, p in pieces])
        if self._pool is not None and self._pool.parts:
            pooled, pooled_parts = self._pool.bucket(bucket, schema.names)
            rows = pa.concat_tables([rows, pooled.cast(schema)])
            parts = np.concatenate([parts, pooled_parts])
            if len(pieces):  # both kinds: back into input order (a stable sort keeps each part's rows in order)
                order = np.argsort(parts, kind="stable")
                rows, parts = rows.take(pa.array(order)), parts[order]
        if any(pa.types.is_dictionary(f.type) for f in schema):
            rows = rows.unify_dictionaries()
        if part_column is not None:
            rows = rows.append_column(part_column, pa.array(parts, pa.int32()))
        return rows

    def read_all(self, schema: pa.Schema, part_column: str) -> pa.Table:
        """Every row of every part, as `read_bucket` of each bucket in turn gives them, in one table
        with an int32 `bucket` column and `part_column`: a small batch is merged in one pass
        (pipeline.gold.merge.merge_whole_batch), so a part is read once, not once per bucket."""
        target = pa.schema([*schema, pa.field("bucket", pa.int32())])
        pieces = [(i, f.read(columns=[*self._columns, "bucket"], use_threads=False)) for i, f in self._files.items()]
        tables = [p.replace_schema_metadata(None).select(target.names).cast(target) for _, p in pieces]
        parts = [np.repeat(np.int32(i), p.num_rows) for i, p in pieces]
        if self._pool is not None and self._pool.parts:
            pooled, pooled_parts, pooled_buckets = self._pool.whole(schema.names)
            tables.append(pooled.append_column("bucket", pa.array(pooled_buckets, pa.int32())).cast(target))
            parts.append(pooled_parts)
        rows = pa.concat_tables([target.empty_table(), *tables])
        part = np.concatenate([np.empty(0, np.int32), *parts]).astype(np.int32)
        bucket = np.asarray(rows.column("bucket").to_numpy(), dtype=np.int64)
        # By bucket, then part; a part's rows of one bucket keep their order (a stable sort)
        order = np.argsort(bucket * (1 << 32) + part, kind="stable")
        rows = rows.take(pa.array(order))
        if any(pa.types.is_dictionary(f.type) for f in schema):
            rows = rows.unify_dictionaries()
        return rows.combine_chunks().append_column(part_column, pa.array(part[order], pa.int32()))

    def _read(self, file: pq.ParquetFile, groups: dict[int, int], bucket: int) -> pa.Table:
        """Bucket `bucket` of one part: its row group, filtered when the part keeps every bucket in one."""
        if not _shares_row_groups(groups):
            return file.read_row_group(groups[bucket], columns=self._columns, use_threads=False)
        rows = file.read_row_group(groups[bucket], columns=[*self._columns, "bucket"], use_threads=False)
        return rows.filter(pc.equal(rows.column("bucket"), bucket)).drop_columns(["bucket"])

    def close(self) -> None:
        for f in self._files.values():
            f.close()


def _combined(table: pa.Table) -> pa.Table:
    """One contiguous array per column, dictionaries unified (many one-part chunks made every
    take and slice walk them)."""
    return table.unify_dictionaries().combine_chunks()


def _shares_row_groups(groups: dict[int, int]) -> bool:
    return len(set(groups.values())) < len(groups)


class SmallPartPool:
    """The single-row-group parts of a merge batch, each read once and shared (read only) by every
    merge thread and then by the orders step: a bucket's rows of 2,000 small parts are one take,
    not 2,000 reads, and a part's order rows are a slice, not a second read. Memory is bounded by
    the batch (see pipeline.gold.merge._next_batch)."""

    def __init__(self, store: Store, paths: list[PurePath], schema: pa.Schema, threads: int = 1,
                 fetch: Callable[[int], bytes | None] = lambda _index: None) -> None:
        """`fetch(i)`: part i's bytes, parsed from memory, or None to open it in `store` (called
        for every part in order, on the reading threads: what it checks, it checks before any
        part is pooled)."""
        from concurrent.futures import ThreadPoolExecutor

        dictionaries = [f.name for f in schema if pa.types.is_dictionary(f.type)]
        target = pa.schema([*schema, pa.field("bucket", pa.int32())])

        def read(index: int) -> tuple[pa.Table | None, float]:
            """The whole part if it is a small one (written as one row group), else None (one open
            either way: 0.2 ms for a small part, where pq.read_table takes 1 ms), and the CPU
            seconds it took."""
            cpu = time.thread_time()
            data = fetch(index)
            opened = (pq.ParquetFile(pa.BufferReader(data), read_dictionary=dictionaries or None) if data is not None
                      else store.parquet_file(paths[index], read_dictionary=dictionaries or None))
            with opened as part:
                whole = part.metadata.num_rows < SINGLE_ROW_GROUP_ROWS
                table = part.read(columns=target.names, use_threads=False) if whole else None
            return table, time.thread_time() - cpu

        # Read and combined POOL_READ_PARTS parts at a time: thousands of one-part tables held at
        # once cost many times the memory of their rows in per-table overhead.
        small: list[int] = []
        counts: list[int] = []
        combined: list[pa.Table] = []
        self.read_cpu_seconds = 0.0  # work any core can do
        with ThreadPoolExecutor(max(threads, 1)) as workers:
            for first in range(0, len(paths), POOL_READ_PARTS):
                read_back = list(workers.map(read, range(first, min(first + POOL_READ_PARTS, len(paths)))))  # decoding releases the GIL
                self.read_cpu_seconds += sum(cpu for _, cpu in read_back)
                found = [(first + i, table.replace_schema_metadata(None)) for i, (table, _) in enumerate(read_back) if table is not None]
                if found:
                    small.extend(i for i, _ in found)
                    combined.append(_combined(pa.concat_tables([t for _, t in found], promote_options="permissive").cast(target)))
                    counts.extend(t.num_rows for _, t in found)
        self.parts = frozenset(small)
        self._rows = _combined(pa.concat_tables([target.empty_table(), *combined]))  # part after part, as in the files
        stops = np.cumsum(np.array(counts, dtype=np.int64))
        self._part_slices = {part: (int(stop - count), count) for part, count, stop in zip(small, counts, stops)}
        part = np.repeat(np.array(small, dtype=np.int32), counts)
        self._part_in_file_order = part
        bucket = np.asarray(self._rows.column("bucket").to_numpy(), dtype=np.int64)
        self._by_bucket = np.argsort(bucket * (1 << 32) + part, kind="stable")  # by bucket, then part; each part's rows in order
        self._part = part[self._by_bucket]
        sorted_buckets = bucket[self._by_bucket]
        self._row_buckets = sorted_buckets.astype(np.int32)
        self._buckets, self._starts = np.unique(sorted_buckets, return_index=True)
        self._stops = np.append(self._starts[1:], len(sorted_buckets)).astype(np.int64)

    def bucket(self, bucket: int, columns: list[str]) -> tuple[pa.Table, np.ndarray]:
        """The bucket's rows of every pooled part (in part order), as `columns`, and each row's part."""
        at = int(np.searchsorted(self._buckets, bucket))
        if at == len(self._buckets) or self._buckets[at] != bucket:
            return self._rows.select(columns).slice(0, 0), np.empty(0, np.int32)
        start, stop = int(self._starts[at]), int(self._stops[at])
        return self._rows.select(columns).take(pa.array(self._by_bucket[start:stop])), self._part[start:stop]

    def whole(self, columns: list[str]) -> tuple[pa.Table, np.ndarray, np.ndarray]:
        """Every pooled row (by bucket, then part) as `columns`, each row's part and each row's bucket."""
        return self._rows.select(columns).take(pa.array(self._by_bucket)), self._part, self._row_buckets

    def row_count(self, part: int) -> int:
        """Rows of a pooled part."""
        return self._part_slices[part][1]

    def parts_rows(self, first: int, stop: int) -> tuple[pa.Table, np.ndarray]:
        """The rows of pooled parts first..stop-1 (every one pooled) as their files hold them, one
        part after the other, with every column of the pool, and each row's part: one slice."""
        start = self._part_slices[first][0]
        end = sum(self._part_slices[stop - 1])
        return self._rows.slice(start, end - start).drop_columns(["bucket"]), self._part_in_file_order[start:end]
