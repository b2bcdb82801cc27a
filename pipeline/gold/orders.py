"""gold/orders/: one row per unique order (its first occurrence in input order), partitioned by month.

Why it is written by the merge and not derived from the state: the state holds aggregates and
keys, not rows, and re-implementing dedup over silver is exactly what the table spares its
readers. Each merge batch knows which of its rows are duplicates; it keeps their positions in
the state with each bucket (`dropped`, about 5 % of the rows, committed with the bucket) and,
once every bucket is in, writes the batch's orders as one file per month:
`gold/orders/sale_month=YYYY-MM/batch-NNNNNN.parquet`. The name is a function of the batch and
the content a function of silver, so a batch redone after a kill rewrites the same bytes under
the same names (exactly once: never an order twice, never one missing), and the batch is marked
merged only after its files are published. A state that is emptied (a late file, a changed
setting, `--rebuild-gold`) empties the dataset with it, and it grows again batch by batch.
"""
from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePath

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.contract import SILVER_DICTIONARY_COLUMNS, SILVER_MEMORY_SCHEMA, SILVER_SCHEMA
from pipeline.cores import ordered_map, usable_cores
from pipeline.storage.layout import DataLayout
from pipeline.storage.parquet_io import SmallPartPool
from pipeline.storage.store import Store

PARTITION_COLUMN = "sale_month"
# Silver's own machinery, not an order's fields: the dedup hash and the merge's bucket number.
INTERNAL_COLUMNS = ("key_hash", "bucket")
DROPPED_SCHEMA = pa.schema([("part", pa.int32()), ("source_row", pa.int64())])
# No stored Arrow schema (as silver): dictionary columns read back as plain text. Dictionaries only
# for the low-cardinality text, statistics only where readers filter (a lookup by order or file, a
# date range): 0.17 -> 0.10 s per 463k rows. No page checksums: 40 % more write time; the state
# checks every file's size instead.
WRITE_OPTIONS: dict = {"compression": "snappy", "store_schema": False,
                       "use_dictionary": [c for c in SILVER_DICTIONARY_COLUMNS if c != PARTITION_COLUMN],
                       "write_statistics": ["order_id", "sale_date", "source_file", "source_row"]}
FLUSH_ROWS = 262_144  # rows buffered before each month's row group is written: bounds memory to a few parts
BLOCK_ROWS, BLOCK_PARTS = 65_536, 500  # consecutive parts split by month together (small files' parts are tiny)
_BATCH_FILE = re.compile(r"^sale_month=[^/]+/batch-(\d{6})\.parquet$")


def orders_columns(include_email: bool) -> list[str]:
    """The silver columns an order row holds (the month is the partition folder, not a column)."""
    hidden = {*INTERNAL_COLUMNS, PARTITION_COLUMN, *(() if include_email else ("customer_email",))}
    return [f.name for f in SILVER_SCHEMA if f.name not in hidden]


def orders_schema(include_email: bool, dictionaries: bool = False) -> pa.Schema:
    """As readers see it; as written, low-cardinality text is dictionary encoded (as in silver)."""
    fields = [SILVER_MEMORY_SCHEMA.field(c) if dictionaries else SILVER_SCHEMA.field(c) for c in orders_columns(include_email)]
    return pa.schema(fields)


def dropped_rows(rows: pa.Table, keep: pa.Array) -> pa.Table:
    """(part, source_row) of a bucket's duplicates: what the orders of its batch leave out."""
    dropped = rows.select(["part", "source_row"]).filter(pc.invert(keep))
    return dropped.cast(DROPPED_SCHEMA)


def write_batch_orders(layout: DataLayout, parts_store: Store, part_paths: Sequence[PurePath], dropped: pa.Table,
                       batch_number: int, include_email: bool, pool: SmallPartPool | None = None) -> tuple[int, dict[str, int]]:
    """Publish the orders of one merge batch (its parts' rows but the `dropped` ones), one file
    per month; returns the orders written and the files (relative name -> size). Streams segment
    by segment (a part, or consecutive small parts that `pool` holds already), so memory holds a
    few parts."""
    columns = orders_columns(include_email)
    schema = orders_schema(include_email, dictionaries=True)
    dropped_keys = np.sort(_row_keys(dropped.column("part").to_numpy(), dropped.column("source_row").to_numpy()))
    dictionary_columns = [c for c in SILVER_DICTIONARY_COLUMNS if c in (*columns, PARTITION_COLUMN)]
    scratch = layout.staging_dir / f"orders-{os.getpid()}-batch-{batch_number:06d}"  # this host's disk, removed after
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    writers: dict[str, pq.ParquetWriter] = {}
    pending: dict[str, list[pa.Table]] = {}
    buffered = written = 0

    def flush() -> None:
        """One row group per month for what is buffered (parts of small files are a few rows each)."""
        nonlocal buffered
        for month in pending:
            if month not in writers:
                writers[month] = pq.ParquetWriter(scratch / f"{month}.parquet", schema, **WRITE_OPTIONS)

        def write(month: str) -> None:
            rows = pa.concat_tables(pending[month]).unify_dictionaries().combine_chunks()
            writers[month].write_table(rows.cast(schema) if rows.schema != schema else rows)

        with ThreadPoolExecutor(usable_cores(), thread_name_prefix="orders-write") as threads:
            list(threads.map(write, list(pending)))
        pending.clear()
        buffered = 0

    def segment_by_month(segment: tuple[int, int]) -> list[tuple[str, pa.Table]]:
        """A segment's kept rows by month: from the pool when it holds them, else read."""
        first, stop = segment
        if pool is not None and first in pool.parts:
            rows, parts = pool.parts_rows(first, stop)
        else:
            with parts_store.parquet_file(part_paths[first], read_dictionary=dictionary_columns) as part:
                rows = part.read(columns=[*columns, PARTITION_COLUMN]).unify_dictionaries().combine_chunks()
            parts = np.full(rows.num_rows, first, dtype=np.int32)
        lo, hi = np.searchsorted(dropped_keys, _row_keys(np.array([first, stop], np.int64), np.zeros(2, np.int64)))
        keep = None
        if hi > lo:
            keys = _row_keys(parts, rows.column("source_row").to_numpy())
            keep = pa.array(~np.isin(keys, dropped_keys[lo:hi], assume_unique=True))
        return _by_month(rows.replace_schema_metadata(None), keep, columns)

    try:
        # Segments are read (or sliced from the pool) and split by month on every core, Arrow
        # releasing the GIL; their pieces are buffered and written in input order.
        cores = usable_cores()
        with ThreadPoolExecutor(cores, thread_name_prefix="orders") as threads:
            for pieces in ordered_map(threads, segment_by_month, _segments(len(part_paths), pool), window=cores + 1):
                for month, piece in pieces:
                    pending.setdefault(month, []).append(piece)
                    buffered += piece.num_rows
                    written += piece.num_rows
                if buffered >= FLUSH_ROWS:
                    flush()
        flush()
        for writer in writers.values():
            writer.close()
        files = {orders_file_name(month, batch_number): (scratch / f"{month}.parquet").stat().st_size for month in writers}
        _publish(layout, [(scratch / f"{month}.parquet", orders_file_path(layout, month, batch_number)) for month in sorted(writers)])
    finally:
        for writer in writers.values():
            writer.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return written, files


def _row_keys(parts: np.ndarray, source_rows: np.ndarray) -> np.ndarray:
    """One int64 per row of a batch: its part, then its source_row (rows of a file are far fewer than 2**40)."""
    return (parts.astype(np.int64) << 40) | source_rows.astype(np.int64)


def _segments(parts: int, pool: SmallPartPool | None) -> Iterator[tuple[int, int]]:
    """(first, stop) ranges of parts in input order: consecutive parts the pool holds together,
    up to BLOCK_ROWS rows or BLOCK_PARTS parts (a small file's part holds a few rows of many
    months, and a split per part cost 8 ms a part), any other part alone."""
    pooled = pool.parts if pool is not None else frozenset()
    first = 0
    while first < parts:
        stop = first + 1
        if first in pooled:
            rows = pool.row_count(first)  # type: ignore[union-attr]
            while stop < parts and stop in pooled and stop - first < BLOCK_PARTS and rows < BLOCK_ROWS:
                rows += pool.row_count(stop)  # type: ignore[union-attr]
                stop += 1
        yield first, stop
        first = stop


def _by_month(rows: pa.Table, keep: pa.Array | None, columns: list[str]) -> list[tuple[str, pa.Table]]:
    """The kept rows (all where `keep` is None) as `columns`, grouped by month, in their order
    within a month: one stable sort of the kept rows' month codes and one take (a filter, then a
    take, was two passes over the rows)."""
    if rows.num_rows == 0:
        return []
    codes = pc.dictionary_encode(rows.column(PARTITION_COLUMN)).combine_chunks()
    if keep is None:
        order = pc.array_sort_indices(codes.indices)
    else:
        kept = pc.indices_nonzero(keep)
        order = kept.take(pc.array_sort_indices(codes.indices.take(kept)))
    if len(order) == 0:
        return []
    sorted_codes = codes.indices.take(order).to_numpy()
    rows = rows.select(columns).take(order)
    starts = [0, *(int(i) + 1 for i in (sorted_codes[1:] != sorted_codes[:-1]).nonzero()[0]), len(sorted_codes)]
    months = codes.dictionary.to_pylist()
    return [(months[sorted_codes[a]], rows.slice(a, b - a)) for a, b in zip(starts, starts[1:])]


def _publish(layout: DataLayout, files: list[tuple[Path, PurePath]]) -> None:
    """A batch's files, one per month, published together: locally with one file-system sync for
    all (an fsync each was most of a small batch's cost), on object storage as parallel PUTs."""
    with layout.store.deferred_publication():
        for local, path in files:
            layout.store.upload(local, path)


def orders_file_name(month: str, batch_number: int) -> str:
    """A file's name relative to gold/orders/ (hive style: readers take the month from the folder)."""
    return f"{PARTITION_COLUMN}={month}/batch-{batch_number:06d}.parquet"


def orders_file_path(layout: DataLayout, month: str, batch_number: int) -> PurePath:
    return layout.orders_dir / orders_file_name(month, batch_number)


def orders_listing(layout: DataLayout) -> dict[str, int]:
    """The dataset's files as they are now (relative name -> size), in one listing: what the state
    and the publication marker are compared with."""
    base = str(layout.orders_dir).rstrip("/") + "/"
    found = {}
    for stat in layout.store.list_files(layout.orders_dir) if layout.store.is_dir(layout.orders_dir) else []:
        name = str(stat.path).removeprefix(base)
        if _BATCH_FILE.search(name):
            found[name] = stat.size
    return dict(sorted(found.items()))


def remove_orders(layout: DataLayout) -> None:
    """Delete the whole dataset: the order rows of a state being emptied go with it."""
    layout.store.delete_tree(layout.orders_dir)
