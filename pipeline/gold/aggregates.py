"""Exact additive aggregates of unique orders: the state from which every gold table is derived.

Three grains cover all gold tables: (sale_date, region, category) for the time, region and
category tables; product_key for top products; source_file for data quality. Money sums are
decimal(38, 2) and discount sums decimal(38, 6): exact, and they never overflow.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.contract import MONEY_SUM_TYPE
from pipeline.errors import PipelineError

SUM_MONEY = MONEY_SUM_TYPE  # decimal(38, 2): the contract's type of summed money
SUM_DISCOUNT = pa.decimal128(38, 6)

DAILY_KEYS = ("sale_date", "region", "category")
PRODUCT_KEYS = ("product_key",)
FILE_KEYS = ("source_file",)

DAILY_SCHEMA = pa.schema([("sale_date", pa.date32()), ("region", pa.string()), ("category", pa.string()),
                          ("order_count", pa.int64()), ("total_quantity", pa.int64()), ("gross_revenue", SUM_MONEY),
                          ("total_revenue", SUM_MONEY), ("discount_sum", SUM_DISCOUNT)])
PRODUCT_SCHEMA = pa.schema([("product_key", pa.string()), ("order_count", pa.int64()), ("total_quantity", pa.int64()),
                            ("total_revenue", SUM_MONEY)])
FILE_SCHEMA = pa.schema([("source_file", pa.string()), ("rows_in_gold", pa.int64()), ("duplicates_dropped", pa.int64())])


@dataclass(frozen=True)
class Aggregates:
    daily: pa.Table
    products: pa.Table
    files: pa.Table

    @classmethod
    def empty(cls) -> Aggregates:
        return cls(DAILY_SCHEMA.empty_table(), PRODUCT_SCHEMA.empty_table(), FILE_SCHEMA.empty_table())

    def plus(self, other: Aggregates) -> Aggregates:
        return sum_aggregates([self, other])


def sum_aggregates(parts: list[Aggregates]) -> Aggregates:
    """Sum many aggregates at once (one group-by per grain, whatever the number of parts)."""
    return Aggregates(
        daily=_add([p.daily for p in parts], DAILY_KEYS, DAILY_SCHEMA),
        products=_add([p.products for p in parts], PRODUCT_KEYS, PRODUCT_SCHEMA),
        files=_add([p.files for p in parts], FILE_KEYS, FILE_SCHEMA),
    )


def _add(tables: list[pa.Table], keys: tuple[str, ...], schema: pa.Schema) -> pa.Table:
    """Sum aggregate tables by key, checked (totals over all history); sorted by key, so deterministic."""
    return _sum_by(pa.concat_tables([t.cast(schema) for t in tables]), keys, schema, checked=True)


def _sum_by(table: pa.Table, keys: tuple[str, ...], schema: pa.Schema, checked: bool = False) -> pa.Table:
    """Sum `table`'s measures by key, then cast to `schema` (keys may still be dictionaries here,
    so only the grouped result is decoded) and sort by key.

    Arrow's integer sums wrap around silently. Unchecked sums are only those of one bucket of one
    batch, which cannot pass int64: settings.validate bounds quantity by 1e9, and a batch holds far
    fewer than 9e9 rows. Every sum of sums (`checked`) is summed exactly and refused past int64.
    """
    measures = [f.name for f in schema if f.name not in keys]
    summed = sum_by_key(table.select(schema.names), list(keys), measures, checked)
    return summed.select(schema.names).cast(schema).sort_by([(k, "ascending") for k in keys])


_EXACT_INTEGER = pa.decimal128(38, 0)


def sum_by_key(table: pa.Table, keys: list[str], measures: list[str], checked: bool = True) -> pa.Table:
    """`table` grouped by `keys` with each measure summed (column names kept); with `checked`,
    integer measures are summed exactly and a total past int64 raises PipelineError, never wraps."""
    widened = [m for m in measures if checked and pa.types.is_integer(table.schema.field(m).type)]
    for name in widened:
        table = table.set_column(table.schema.get_field_index(name), name, table.column(name).cast(_EXACT_INTEGER))
    summed = table.group_by(keys, use_threads=False).aggregate([(m, "sum") for m in measures])
    summed = summed.rename_columns([c[:-4] if c.endswith("_sum") and c[:-4] in measures else c for c in summed.column_names])
    for name in widened:
        try:
            narrowed = summed.column(name).cast(pa.int64())
        except pa.ArrowInvalid:
            raise PipelineError(f"gold's {name} passes the int64 range (more than {2**63 - 1:,}): the sum cannot be "
                                "stored exactly, so no gold is published") from None
        summed = summed.set_column(summed.schema.get_field_index(name), name, narrowed)
    return summed


def aggregate_orders(unique: pa.Table, duplicates_by_file: pa.Table) -> Aggregates:
    """Aggregates of a set of unique orders (silver rows) and of the duplicates they displaced."""
    ones = pa.array(np.ones(unique.num_rows, dtype=np.int64))
    base = pa.table({
        "sale_date": unique.column("sale_date"),
        "region": unique.column("region"),
        "category": unique.column("category"),
        "product_key": unique.column("product_key"),
        "source_file": unique.column("source_file"),
        "order_count": ones,
        "total_quantity": unique.column("quantity"),
        "gross_revenue": unique.column("gross_revenue").cast(SUM_MONEY),
        "total_revenue": unique.column("revenue").cast(SUM_MONEY),
        "discount_sum": unique.column("discount_percent").cast(SUM_DISCOUNT),
        "rows_in_gold": ones,
        "duplicates_dropped": pa.array(np.zeros(unique.num_rows, dtype=np.int64)),
    })
    daily = _sum_by(base, DAILY_KEYS, DAILY_SCHEMA)
    products = _sum_by(base, PRODUCT_KEYS, PRODUCT_SCHEMA)
    dup = duplicates_by_file.append_column("rows_in_gold", pa.array(np.zeros(duplicates_by_file.num_rows, dtype=np.int64)))
    files = _add([_sum_by(base, FILE_KEYS, FILE_SCHEMA), dup.select(FILE_SCHEMA.names)], FILE_KEYS, FILE_SCHEMA)
    return Aggregates(daily=daily, products=products, files=files)


TOP_REVENUE_ORDER = [("revenue", "descending"), ("order_id", "ascending")]


def top_revenue_orders(candidates: pa.Table, n: int) -> pa.Table:
    """The n orders with the highest revenue, ties broken by order_id ascending, in that order.

    A top-k selection, not a full sort: buckets hold hundreds of thousands of orders.
    """
    if candidates.num_rows == 0:
        return candidates
    if candidates.num_rows > n:
        keys = candidates.select(["revenue", "order_id"])
        candidates = candidates.take(pc.select_k_unstable(keys, k=n, sort_keys=TOP_REVENUE_ORDER))
    return candidates.sort_by(TOP_REVENUE_ORDER)
