"""Exact additive aggregates of unique orders: the state from which every gold table is derived.

`GRAINS` is the one registry of them: a grain's keys (silver columns) and measures (`MEASURES`)
give its schema, its state records (pipeline.gold.state_records names them by grain), the merge's
encodings and the silver columns the merge reads; the gold tables say which grain they roll up
(pipeline.gold.tables). Money sums are decimal(38, 2) and discount sums decimal(38, 6): exact,
and they never overflow.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.contract import MONEY_SUM_TYPE, SILVER_SCHEMA, default_flag_column
from pipeline.errors import PipelineError

SUM_MONEY = MONEY_SUM_TYPE  # decimal(38, 2): the contract's type of summed money
SUM_DISCOUNT = pa.decimal128(38, 6)
UNIQUE = "1 per unique order"
DUPLICATE = "1 per duplicate dropped"


@dataclass(frozen=True)
class Measure:
    """A sum: of a silver column over the unique orders, or a count (UNIQUE, DUPLICATE); with
    `when` (a boolean silver column), only over the rows where it is true."""

    name: str
    type: pa.DataType
    source: str
    when: str = ""


MEASURES: dict[str, Measure] = {m.name: m for m in (
    Measure("order_count", pa.int64(), UNIQUE),
    Measure("total_quantity", pa.int64(), "quantity"),
    Measure("gross_revenue", SUM_MONEY, "gross_revenue"),
    Measure("total_revenue", SUM_MONEY, "revenue"),
    Measure("discount_sum", SUM_DISCOUNT, "discount_percent"),
    Measure("rows_in_gold", pa.int64(), UNIQUE),
    Measure("duplicates_dropped", pa.int64(), DUPLICATE),
    # what the region and category charts owe to soft defaults (a missing region counts as north)
    Measure("region_defaulted_orders", pa.int64(), UNIQUE, default_flag_column("region")),
    Measure("region_defaulted_revenue", SUM_MONEY, "revenue", default_flag_column("region")),
    Measure("category_defaulted_orders", pa.int64(), UNIQUE, default_flag_column("category")),
    Measure("category_defaulted_revenue", SUM_MONEY, "revenue", default_flag_column("category")),
)}
DEFAULTED_MEASURES = ("region_defaulted_orders", "region_defaulted_revenue", "category_defaulted_orders",
                      "category_defaulted_revenue")


@dataclass(frozen=True)
class Grain:
    """Sums of `measures` by `keys`. A grain that counts duplicates groups every row (its sums
    of columns are over the unique ones); the others group the unique orders only, so a group
    of duplicates alone is never a row of zeros."""

    name: str
    keys: tuple[str, ...]
    measures: tuple[str, ...]

    @property
    def schema(self) -> pa.Schema:
        return pa.schema([SILVER_SCHEMA.field(k) for k in self.keys] + [(m, MEASURES[m].type) for m in self.measures])

    @property
    def counts_duplicates(self) -> bool:
        return any(MEASURES[m].source == DUPLICATE for m in self.measures)


GRAINS: tuple[Grain, ...] = (
    # sale_month rides along with sale_date (it is a function of it): the monthly table rolls it up
    Grain("daily", ("sale_date", "sale_month", "region", "category"),
          ("order_count", "total_quantity", "gross_revenue", "total_revenue", "discount_sum", *DEFAULTED_MEASURES)),
    Grain("products", ("product_key",), ("order_count", "total_quantity", "total_revenue")),
    Grain("files", ("source_file",), ("rows_in_gold", "duplicates_dropped")),
)
GRAIN: dict[str, Grain] = {g.name: g for g in GRAINS}
# The silver columns aggregation reads: every grain's keys and every summed column.
AGGREGATE_INPUT_COLUMNS: tuple[str, ...] = tuple(dict.fromkeys(
    [k for g in GRAINS for k in g.keys] + [m.source for m in MEASURES.values() if m.source in SILVER_SCHEMA.names]
    + [m.when for m in MEASURES.values() if m.when]))


@dataclass(frozen=True)
class Aggregates(Mapping[str, pa.Table]):
    """grain name -> its table (the grain's schema), for every grain."""

    tables: Mapping[str, pa.Table]

    def __getitem__(self, grain: str) -> pa.Table:
        return self.tables[grain]

    def __iter__(self) -> Iterator[str]:
        return iter(self.tables)

    def __len__(self) -> int:
        return len(self.tables)

    @classmethod
    def empty(cls) -> Aggregates:
        return cls({g.name: g.schema.empty_table() for g in GRAINS})

    def plus(self, other: Aggregates) -> Aggregates:
        return sum_aggregates([self, other])


def sum_aggregates(parts: Sequence[Aggregates]) -> Aggregates:
    """Sum many aggregates at once (one group-by per grain, whatever the number of parts)."""
    return Aggregates({g.name: _add([p[g.name] for p in parts], g) for g in GRAINS})


def _add(tables: list[pa.Table], grain: Grain) -> pa.Table:
    """Sum aggregate tables by key, checked (totals over all history); sorted by key, so deterministic."""
    return _sum_by(pa.concat_tables([t.cast(grain.schema) for t in tables]), grain, checked=True)


def _sum_by(table: pa.Table, grain: Grain, checked: bool = False) -> pa.Table:
    """Sum `table`'s measures by key, then cast to `schema` (keys may still be dictionaries here,
    so only the grouped result is decoded) and sort by key.

    Arrow's integer sums wrap around silently. Unchecked sums are only those of one batch (a bucket
    of it, or a whole small one), which cannot pass int64: settings.validate bounds quantity by 1e9, and a batch holds far
    fewer than 9e9 rows. Every sum of sums (`checked`) is summed exactly and refused past int64.
    """
    schema = grain.schema
    summed = sum_by_key(table.select(schema.names), list(grain.keys), list(grain.measures), checked)
    return summed.select(schema.names).cast(schema).sort_by([(k, "ascending") for k in grain.keys])


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


def aggregate_orders(rows: pa.Table, keep: pa.Array) -> Aggregates:
    """Aggregates of a bucket's rows (AGGREGATE_INPUT_COLUMNS), `keep` marking the unique orders."""
    kept = np.asarray(keep.to_numpy(zero_copy_only=False), dtype=bool)
    unique = rows.filter(keep)
    tables = {}
    for grain in GRAINS:
        over, flags = (rows, kept) if grain.counts_duplicates else (unique, np.ones(unique.num_rows, dtype=bool))
        columns = {k: over.column(k) for k in grain.keys}
        for name in grain.measures:
            columns[name] = _measure_values(over, flags, MEASURES[name])
        tables[grain.name] = _sum_by(pa.table(columns), grain)
    return Aggregates(tables)


def _measure_values(rows: pa.Table, kept: np.ndarray, measure: Measure) -> pa.Array:
    """What each row adds to `measure`: a count, or its column's value where the order is unique
    (and its `when` flag is set)."""
    if measure.when:
        kept = kept & np.asarray(rows.column(measure.when).to_numpy(zero_copy_only=False), dtype=bool)
    if measure.source in (UNIQUE, DUPLICATE):
        return pa.array((kept if measure.source == UNIQUE else ~kept).astype(np.int64))
    values = rows.column(measure.source).cast(measure.type)
    if kept.all():
        return values
    return pc.if_else(pa.array(kept), values, pa.scalar(0, measure.type).cast(measure.type))


def revenue_order(key: Sequence[str]) -> list[tuple[str, str]]:
    """Highest revenue first, ties by the dedup key ascending: the anomaly ranking."""
    return [("revenue", "descending"), *((name, "ascending") for name in key)]


def top_revenue_orders(candidates: pa.Table, n: int, key: Sequence[str]) -> pa.Table:
    """The n orders with the highest revenue (`revenue_order`), in that order.

    A top-k selection, not a full sort: buckets hold hundreds of thousands of orders.
    """
    if candidates.num_rows == 0:
        return candidates
    order = revenue_order(key)
    if candidates.num_rows > n:
        keys = candidates.select([name for name, _ in order])
        candidates = candidates.take(pc.select_k_unstable(keys, k=n, sort_keys=order))
    return candidates.sort_by(order)
