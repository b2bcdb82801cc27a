"""Gold tables from the exact aggregates, and their atomic publication (upsert or overwrite).

Each gold file carries, in its Parquet metadata, the digest of the set of silver parts it covers,
and the state records the CRC-32 of every gold file it published. Publishing is therefore
idempotent: a table already at the current digest is left alone, one at the previous digest is
upserted with this batch's keys, anything else is rebuilt from the state. A file whose bytes are
not those the state published (a flipped bit, a copy from elsewhere) is neither left nor upserted:
it is rebuilt from the state, which holds every total.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable
from decimal import ROUND_HALF_UP, Decimal
from pathlib import PurePath

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.bronze.discovery import natural_key
from pipeline.bronze.silver import FileMetrics
from pipeline.contract import AVG_DISCOUNT_SCALE, GOLD_TABLES, REJECT_REASONS, SILVER_SCHEMA, SOFT_FIELDS
from pipeline.gold.aggregates import DEFAULTED_MEASURES, SUM_MONEY, Aggregates, revenue_order, sum_by_key
from pipeline.storage.parquet_io import bytes_digest, file_digest
from pipeline.storage.store import Store

COVERS_KEY = b"pipeline.covers"
AVG_DISCOUNT_TYPE = pa.decimal128(5, AVG_DISCOUNT_SCALE)
# Gold never holds customer emails; hashes and buckets are internal.
ANOMALY_COLUMNS = tuple(f.name for f in SILVER_SCHEMA if f.name not in ("customer_email", "key_hash", "bucket"))
RANKED_TABLES = ("top_products", "anomaly_records")
# The grain (pipeline.gold.aggregates.GRAINS) each keyed table rolls up: its key columns are some of
# the grain's, so the keys a batch touches are its delta's rows, projected (`touched_keys`).
ROLLED_UP_FROM: dict[str, str] = {
    "monthly_sales_summary": "daily",
    "daily_sales": "daily",
    "region_wise_performance": "daily",
    "category_discount_map": "daily",
    "defaults_by_region_category": "daily",
    "data_quality": "files",
}


def covers_digest(part_names: Iterable[str]) -> str:
    """Digest of a set of silver part names: what a gold file covers."""
    digest = hashlib.blake2b(digest_size=16)
    for name in sorted(part_names):
        digest.update(name.encode("utf-8") + b"\n")
    return digest.hexdigest()


def _avg(discount_sums: pa.Array, counts: pa.Array) -> pa.Array:
    """round_half_up(sum / count, 4), exactly, for the few rows of a summary table."""
    quantum = Decimal(1).scaleb(-AVG_DISCOUNT_SCALE)
    values = [
        (Decimal(s) / Decimal(c)).quantize(quantum, rounding=ROUND_HALF_UP) if c else Decimal(0).quantize(quantum)
        for s, c in zip(discount_sums.to_pylist(), counts.to_pylist())
    ]
    return pa.array(values, AVG_DISCOUNT_TYPE)


def _rollup(daily: pa.Table, keys: list[str], measures: list[str]) -> pa.Table:
    summed = sum_by_key(daily, keys, measures)
    return summed.select(keys + measures).sort_by([(k, "ascending") for k in keys])


def monthly_sales_summary(daily: pa.Table) -> pa.Table:
    rolled = _rollup(daily, ["sale_month"], ["order_count", "total_quantity", "gross_revenue", "total_revenue", "discount_sum"])
    avg = _avg(rolled.column("discount_sum"), rolled.column("order_count"))
    return rolled.drop_columns(["discount_sum"]).append_column("avg_discount", avg)


def daily_sales(daily: pa.Table) -> pa.Table:
    return _rollup(daily, list(GOLD_TABLES["daily_sales"]), ["order_count", "total_quantity", "total_revenue"])


def region_wise_performance(daily: pa.Table) -> pa.Table:
    return _rollup(daily, ["region"], ["order_count", "total_quantity", "total_revenue"])


def category_discount_map(daily: pa.Table) -> pa.Table:
    rolled = _rollup(daily, ["category"], ["order_count", "discount_sum", "total_revenue"])
    avg = _avg(rolled.column("discount_sum"), rolled.column("order_count"))
    return pa.table({"category": rolled.column("category"), "order_count": rolled.column("order_count"),
                     "avg_discount": avg, "total_revenue": rolled.column("total_revenue")})


def defaults_by_region_category(daily: pa.Table) -> pa.Table:
    """How much of each region's and category's orders and revenue rests on a soft default (a
    missing region is counted in the default region, a missing category in `unknown`)."""
    return _rollup(daily, ["region", "category"], ["order_count", "total_revenue", *DEFAULTED_MEASURES])


def _ranked(table: pa.Table, sort_keys: list[tuple[str, str]], n: int) -> pa.Table:
    top = table.sort_by(sort_keys).slice(0, n)
    return pa.table({"rank": pa.array(range(1, top.num_rows + 1), pa.int32()), **{c: top.column(c) for c in top.column_names}})


def top_products(products: pa.Table, n: int) -> pa.Table:
    ranked = _ranked(products, [("total_revenue", "descending"), ("product_key", "ascending")], n)
    return ranked.select(["rank", "product_key", "total_quantity", "total_revenue", "order_count"])


def anomaly_records(anomalies: pa.Table, n: int, key: tuple[str, ...]) -> pa.Table:
    return _ranked(anomalies.select(list(ANOMALY_COLUMNS)), revenue_order(key), n)


def data_quality(file_metrics: list[FileMetrics], files: pa.Table) -> pa.Table:
    """Bronze metrics joined with the dedup counts, one row per file in input order."""
    merged = {row["source_file"]: row for row in files.to_pylist()}
    ordered = sorted(file_metrics, key=lambda m: natural_key(m.source_file))
    columns: dict[str, list] = {"source_file": [m.source_file for m in ordered],
                                "rows_read": [m.rows_read for m in ordered],
                                "rows_valid": [m.rows_valid for m in ordered],
                                "rows_rejected": [sum(m.rows_rejected.values()) for m in ordered]}
    for reason in REJECT_REASONS:
        columns[f"rejected_{reason}"] = [m.rows_rejected.get(reason, 0) for m in ordered]
    for field in SOFT_FIELDS:
        columns[f"default_{field}"] = [m.defaults_applied.get(field, 0) for m in ordered]
    columns["duplicates_dropped"] = [merged.get(m.source_file, {}).get("duplicates_dropped", 0) for m in ordered]
    columns["rows_in_gold"] = [merged.get(m.source_file, {}).get("rows_in_gold", 0) for m in ordered]
    columns["extra_columns"] = [",".join(m.extra_columns) for m in ordered]
    columns["missing_optional_columns"] = [",".join(m.missing_optional_columns) for m in ordered]
    types = {c: (pa.string() if c in ("source_file", "extra_columns", "missing_optional_columns") else pa.int64()) for c in columns}
    return pa.table({c: pa.array(v, types[c]) for c, v in columns.items()})


def build_gold_tables(aggregates: Aggregates, anomalies: pa.Table, file_metrics: list[FileMetrics],
                      top_products_n: int, anomaly_top_n: int, key: tuple[str, ...]) -> dict[str, pa.Table]:
    """Every gold table of the contract, from the state alone (this is `overwrite`)."""
    daily = aggregates["daily"]
    tables = {
        "monthly_sales_summary": monthly_sales_summary(daily),
        "daily_sales": daily_sales(daily),
        "region_wise_performance": region_wise_performance(daily),
        "category_discount_map": category_discount_map(daily),
        "defaults_by_region_category": defaults_by_region_category(daily),
        "top_products": top_products(aggregates["products"], top_products_n),
        "anomaly_records": anomaly_records(anomalies, anomaly_top_n, key),
        "data_quality": data_quality(file_metrics, aggregates["files"]),
    }
    assert set(tables) == set(GOLD_TABLES)
    return tables


def upsert(old: pa.Table, fresh: pa.Table, keys: tuple[str, ...], touched: pa.Table) -> pa.Table:
    """Merge by key: keep old rows whose key was not touched, take fresh rows for touched or new keys."""
    key_list = list(keys)
    new_keys = fresh.select(key_list).join(old.select(key_list), key_list, join_type="left anti")
    touched_all = pa.concat_tables([touched.select(key_list).cast(fresh.select(key_list).schema), new_keys])
    kept = old.cast(fresh.schema).join(touched_all, key_list, join_type="left anti")
    replaced = fresh.join(touched_all, key_list, join_type="left semi")
    merged = pa.concat_tables([kept.select(fresh.column_names), replaced.select(fresh.column_names)])
    # Rows follow the order of the full recomputation (e.g. natural file order for data_quality).
    order = fresh.select(key_list).append_column("_position", pa.array(range(fresh.num_rows), pa.int64()))
    positioned = merged.join(order, key_list, join_type="left outer")
    return positioned.sort_by("_position").drop_columns(["_position"]).select(fresh.column_names)


def touched_keys(delta: Aggregates) -> dict[str, pa.Table]:
    """Keys of each keyed gold table that this batch's new orders change."""
    return {name: delta[grain].select(list(GOLD_TABLES[name])) for name, grain in ROLLED_UP_FROM.items()}


def gold_covers(store: Store, path: PurePath) -> str | None:
    if not store.exists(path):
        return None
    metadata = store.read_schema(path).metadata or {}
    value = metadata.get(COVERS_KEY)
    return value.decode() if value else None


def _published_covers(store: Store, path: PurePath, checksum: str | None) -> str | None:
    """What a gold file covers, if its bytes are the ones the state published (else None)."""
    try:
        return gold_covers(store, path) if checksum and file_digest(store, path) == checksum else None
    except FileNotFoundError:
        return None


def write_gold_table(store: Store, path: PurePath, table: pa.Table, covers: str) -> str:
    """Atomic write; the covers digest travels in the file so a re-run knows what it holds.
    Returns the file's CRC-32, from the bytes written."""
    stamped = table.replace_schema_metadata({COVERS_KEY: covers.encode()})
    sink = pa.BufferOutputStream()
    pq.write_table(stamped, sink, compression="snappy")
    data = memoryview(sink.getvalue())
    store.write_bytes(path, data)
    return bytes_digest(data)


def publish(store: Store, gold_paths: dict[str, PurePath], fresh: dict[str, pa.Table], covers: str, previous_covers: str | None,
            mode: str, touched: dict[str, pa.Table], checksums: dict[str, str]) -> list[str]:
    """Write every table not yet at `covers`; returns the names written. `checksums` (table ->
    CRC-32 of the file the state published) is read, and updated with what is written."""
    written = []
    for name, table in fresh.items():
        path = gold_paths[name]
        current = _published_covers(store, path, checksums.get(name))
        if current == covers:
            continue
        result = table
        if mode == "upsert" and name not in RANKED_TABLES and current is not None and current == previous_covers:
            result = upsert(store.read_parquet(path).replace_schema_metadata(None), table, GOLD_TABLES[name], touched[name])
        checksums[name] = write_gold_table(store, path, result, covers)
        written.append(name)
    return written


__all__ = ["build_gold_tables", "publish", "covers_digest", "touched_keys", "ANOMALY_COLUMNS", "SUM_MONEY"]
