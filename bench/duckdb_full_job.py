#!/usr/bin/env python
"""The pipeline's outputs from bronze as one DuckDB SQL script: the same work, for an honest ratio.

    python bench/duckdb_full_job.py --bronze DIR/bronze --out OUT_DIR [--threads N] [--print-sql]

bench/duckdb_job.py writes daily_sales alone, so a ratio against it compares the pipeline's whole
product with one table. This job composes the same SQL builders (the same reads, cleaning maps,
revenue rule and first-wins dedup: duckdb_job.prelude, joined_maps, first_wins, group_by) into a
script that also writes what the pipeline writes, each to Parquet under OUT_DIR:

- silver/: every valid row with its cleaned columns (contract.SILVER_SCHEMA but key_hash and bucket),
- quarantine/: every rejected row with its reason and raw values (QUARANTINE_SCHEMA),
- gold/<table>.parquet: the eight gold tables, from the deduplicated valid rows, with the
  pipeline's columns, exact DECIMAL money, row order and top-k rules,
- gold/orders/sale_month=YYYY-MM/: one row per unique order (hive-partitioned by month).

What differs from the pipeline (none of it changes the tables on generated data; benchmark.py
checks every gold table, the row counts and the revenue of silver, quarantine and orders):
- no key_hash / bucket (XXH64 of the key, and the bucket the merge routes by): they only serve
  the pipeline's bucketed exactly-once merge, which this one-shot job does not have;
- silver and orders are written by DuckDB's threads in no particular row order (the pipeline
  writes silver by bucket, then input order, one part per chunk, and orders one file per batch);
- the default dedup key (order_id) only, and every setting at luigi.cfg's default (as duckdb_job);
- lower-casing is DuckDB's (as in duckdb_job's aliases, with İ fixed), which differs from
  Python's str.lower for a few letters (final sigma): customer_email and product_name could
  then differ, no total does;
- no restartability, no state, no report, no run history: one process, one transaction-less script.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as k  # noqa: E402
import duckdb_job as dj  # noqa: E402

from pipeline import contract  # noqa: E402

flag = contract.default_flag_column  # the silver boolean that says a field's soft default was applied

# silver's columns but the merge's routing (key_hash, bucket); the orders dataset also leaves out
# customer_email ([gold] orders_include_email = false) and sale_month (its folder)
SILVER_COLUMNS = tuple(f.name for f in contract.SILVER_SCHEMA if f.name not in ("key_hash", "bucket"))
ORDERS_COLUMNS = tuple(c for c in SILVER_COLUMNS if c not in ("customer_email", "sale_month"))
ANOMALY_COLUMNS = tuple(c for c in SILVER_COLUMNS if c != "customer_email")  # pipeline.gold.tables.ANOMALY_COLUMNS
# silver (the temp table) keeps integer units: its columns, and the written columns made of them
SILVER_UNITS = ("file_idx", "source_row", "input_order", "order_id", "product_name", "product_key", "category", "quantity", "cents", "ppm",
                "region", "sale_date", "sale_month", "customer_email", "gross_cents", "revenue_cents",
                *(flag(f) for f in contract.SOFT_FIELDS))
AS_WRITTEN = {
    "unit_price": "CAST(money({s}.cents) AS DECIMAL(18, 2))",
    "discount_percent": "CAST(CAST({s}.ppm AS DECIMAL(7, 0)) * CAST(0.000001 AS DECIMAL(6, 6)) AS DECIMAL(7, 6))",
    "gross_revenue": "CAST(money({s}.gross_cents) AS DECIMAL(18, 2))",
    "revenue": "CAST(money({s}.revenue_cents) AS DECIMAL(18, 2))",
    "discount_amount": "CAST(money({s}.gross_cents - {s}.revenue_cents) AS DECIMAL(18, 2))",
    "source_file": "f.source_file",
}
DEFAULTED = {f: flag(f) for f in ("region", "category")}
# The daily grain (pipeline.gold.aggregates.GRAINS "daily"): sums over the unique orders, in units
DAILY_GRAIN = {
    "order_count": "count(*)", "total_quantity": "sum(quantity)", "gross_cents": "sum(gross_cents)",
    "revenue_cents": "sum(revenue_cents)", "ppm_sum": "sum(ppm)",
    **{m: expression for field, defaulted in DEFAULTED.items() for m, expression in (
        (f"{field}_defaulted_orders", f"count_if({defaulted})"),
        (f"{field}_defaulted_cents", f"coalesce(sum(revenue_cents) FILTER (WHERE {defaulted}), 0)"))},
}
# What a gold table's measure is, rolled up from the daily grain (exact: HUGEINT sums, DECIMAL out;
# avg_discount = round_half_up(ppm sum / orders, 4) in integers, as the pipeline's Decimal quantize)
ROLLED_UP = {
    "order_count": "CAST(sum(order_count) AS BIGINT)",
    "total_quantity": "CAST(sum(total_quantity) AS BIGINT)",
    "gross_revenue": "money(sum(gross_cents))",
    "total_revenue": "money(sum(revenue_cents))",
    "avg_discount": "avg_discount(sum(ppm_sum), sum(order_count))",
    **{m: expression for field in DEFAULTED for m, expression in (
        (f"{field}_defaulted_orders", f"CAST(sum({field}_defaulted_orders) AS BIGINT)"),
        (f"{field}_defaulted_revenue", f"money(sum({field}_defaulted_cents))"))},
}
ROLLUPS: dict[str, tuple[str, ...]] = {  # pipeline.gold.tables: each keyed table's measures, in its column order
    "monthly_sales_summary": ("order_count", "total_quantity", "gross_revenue", "total_revenue", "avg_discount"),
    "daily_sales": ("order_count", "total_quantity", "total_revenue"),
    "region_wise_performance": ("order_count", "total_quantity", "total_revenue"),
    "category_discount_map": ("order_count", "avg_discount", "total_revenue"),
    "defaults_by_region_category": ("order_count", "total_revenue", "region_defaulted_orders", "region_defaulted_revenue",
                                    "category_defaulted_orders", "category_defaulted_revenue"),
}


def _written(columns: tuple[str, ...], alias: str = "s") -> str:
    """`columns` as written, from a silver-shaped relation `alias` joined to input_files `f`."""
    return ", ".join(f"{AS_WRITTEN[c].format(s=alias)} AS {c}" if c in AS_WRITTEN else f"{alias}.{c}" for c in columns)


def _input_files(files: list[k.InputFile]) -> str:
    """A small table of the files: index, path relative to bronze/, header drift (for data_quality)."""
    rows = ", ".join(f"({f.index}, {k.sql_string(f.relative_path)}, {k.sql_string(','.join(f.extra_columns))}, "
                     f"{k.sql_string(','.join(f.missing_optional))})" for f in files)
    return ("CREATE TEMP TABLE input_files AS SELECT * FROM (VALUES " + rows
            + ") t(file_idx, source_file, extra_columns, missing_optional_columns);\n")


def _silver() -> str:
    """Every valid row, cleaned, in integer units (as the pipeline's cleaning keeps them until written)."""
    maps = tuple(dj.MAP_ALIASES)
    flags = ", ".join(f"{dj.MAP_ALIASES[f]}.defaulted AS {flag(f)}" for f in contract.SOFT_FIELDS if f in maps)
    return f"""CREATE TEMP TABLE silver AS
SELECT *, customer_email IS NULL AS {flag("customer_email")} FROM (
    SELECT r.file_idx, r.rec AS source_row, input_order(r.file_idx, r.rec) AS input_order, r.order_id,
           pn.product_name, pn.product_key, ct.category, q.quantity, p.unit_price AS cents, dm.discount_percent AS ppm,
           rg.region, dt.sale_date, dt.sale_month,
           CASE WHEN regexp_full_match(py_lower(trim_ws(r.customer_email)), {k.sql_string(k.EMAIL)})
                THEN py_lower(trim_ws(r.customer_email)) END AS customer_email,
           q.quantity * p.unit_price AS gross_cents, revenue_cents(q.quantity * p.unit_price, dm.discount_percent) AS revenue_cents,
           {flags}
    {dj.joined_maps(maps)}
    WHERE {dj.VALID}
);
"""


def _quarantine(files: list[k.InputFile]) -> str:
    """Every rejected row: the first hard rule it fails, its raw values (NULL where the file lacks the column)."""
    reason = "CASE " + " ".join(f"WHEN NOT ({rule}) THEN {k.sql_string(name)}" for name, rule in dj.HARD_RULES) + " END"

    def raw(c: str) -> str:
        value = "r.raw_order_id" if c == "order_id" else f"r.{c}"
        lacking = [str(f.index) for f in files if c not in f.positions]
        return f"CASE WHEN r.file_idx IN ({', '.join(lacking)}) THEN NULL ELSE {value} END" if lacking else value

    raws = ", ".join(f"{raw(c)} AS raw_{c}" for c in contract.INPUT_COLUMNS)
    return f"""CREATE TEMP TABLE quarantine AS
SELECT r.file_idx, r.rec AS source_row, {reason} AS reason, CAST(NULL AS VARCHAR) AS raw_text, {raws}
{dj.joined_maps(("quantity", "unit_price"))}
WHERE NOT ({dj.VALID});
"""


def _data_quality() -> str:
    """One row per file, natural order: records read, valid, rejected by reason, defaults, dedup."""
    reasons = ", ".join(f"count_if(reason = {k.sql_string(r)}) AS rejected_{r}"
                        for r in contract.REJECT_REASONS if r != contract.MALFORMED_ROW)
    defaults = ", ".join(f"count_if({flag(f)}) AS {flag(f)}" for f in contract.SOFT_FIELDS)
    counts = ["rows_read", "rows_valid", "rows_rejected", *(f"rejected_{r}" for r in contract.REJECT_REASONS),
              *(flag(f) for f in contract.SOFT_FIELDS), "duplicates_dropped", "rows_in_gold"]
    derived = {f"rejected_{contract.MALFORMED_ROW}": "0",  # DuckDB stops on a malformed record (bench/README.md)
               "duplicates_dropped": "coalesce(s.rows_valid, 0) - coalesce(g.rows_in_gold, 0)"}
    columns = ", ".join(f"CAST({derived.get(c, f'coalesce({c}, 0)')} AS BIGINT) AS {c}" for c in counts)
    return f"""SELECT f.source_file, {columns}, f.extra_columns, f.missing_optional_columns
FROM input_files f
LEFT JOIN records_read n USING (file_idx)
LEFT JOIN (SELECT file_idx, count(*) AS rows_valid, {defaults} FROM silver GROUP BY file_idx) s USING (file_idx)
LEFT JOIN (SELECT file_idx, count(*) AS rows_rejected, {reasons} FROM quarantine GROUP BY file_idx) q USING (file_idx)
LEFT JOIN (SELECT file_idx, count(*) AS rows_in_gold FROM orders GROUP BY file_idx) g USING (file_idx)
ORDER BY f.file_idx"""


def _ranked(select: str, order: str, n: int, columns: str) -> str:
    """The `n` first rows of `select` by `order` (a top-k, not a sort), with rank 1..n as INTEGER."""
    return (f"SELECT CAST(row_number() OVER (ORDER BY {order}) AS INTEGER) AS rank, {columns}\n"
            f"FROM ({select}\n      ORDER BY {order} LIMIT {n}) s JOIN input_files f USING (file_idx)\nORDER BY rank")


def _top_products(n: int) -> str:
    """The n products of highest total_revenue, ties by product_key (pipeline.gold.tables.top_products)."""
    products = dj.group_by("orders", ("product_key",), {
        "total_quantity": "CAST(sum(quantity) AS BIGINT)", "revenue_cents": "sum(revenue_cents)", "order_count": "count(*)"},
        order=False)
    order = "revenue_cents DESC, product_key"
    return (f"SELECT CAST(row_number() OVER (ORDER BY {order}) AS INTEGER) AS rank, product_key, total_quantity,\n"
            f"       money(revenue_cents) AS total_revenue, order_count\n"
            f"FROM ({products}\n      ORDER BY {order} LIMIT {n})\nORDER BY rank")


def build_sql(files: list[k.InputFile], out: Path, threads: int | None) -> str:
    gold = out / "gold"
    rollups = "".join(dj.copy_to(dj.group_by("daily_grain", contract.GOLD_TABLES[t], {m: ROLLED_UP[m] for m in measures}),
                                 gold / f"{t}.parquet") for t, measures in ROLLUPS.items())
    anomalies = _ranked("SELECT * FROM orders", "revenue_cents DESC, order_id", k.SETTINGS.anomaly_top_n,
                        _written(ANOMALY_COLUMNS))
    return dj.prelude(files, threads, contract.INPUT_COLUMNS, keep_raw_order_id=True) + f"""
-- avg_discount = round_half_up(ppm_sum / n / 1e6, 4), exact for the non-negative sums it gets
CREATE OR REPLACE TEMP MACRO avg_discount(ppm_sum, n) AS
    CAST(CAST((2 * ppm_sum + 100 * n) // (200 * n) AS DECIMAL(5, 0)) * CAST(0.0001 AS DECIMAL(4, 4)) AS DECIMAL(5, 4));
{_input_files(files)}
-- 3. silver: every valid row, cleaned
{_silver()}
{dj.copy_to(f"SELECT {_written(SILVER_COLUMNS)} FROM silver s JOIN input_files f USING (file_idx)", out / "silver",
            ", PER_THREAD_OUTPUT true")}
-- 4. quarantine: every rejected row, its reason, its raw values
{_quarantine(files)}
{dj.copy_to("SELECT f.source_file, q.* EXCLUDE (file_idx) FROM quarantine q JOIN input_files f USING (file_idx)",
            out / "quarantine", ", PER_THREAD_OUTPUT true")}
-- records read per file (data_quality); then the raw records are no longer needed
CREATE TEMP TABLE records_read AS SELECT file_idx, count(*) AS rows_read FROM raw_rows GROUP BY file_idx;
DROP TABLE raw_rows;
-- 5. the first valid occurrence of each order_id in input order: gold/orders/, by month
CREATE TEMP TABLE orders AS
{dj.first_wins("silver", tuple(c for c in SILVER_UNITS if c != "customer_email"), materialized=True)};
{dj.copy_to(f"SELECT {_written(ORDERS_COLUMNS)}, s.sale_month FROM orders s JOIN input_files f USING (file_idx)",
            gold / "orders", ", PARTITION_BY (sale_month)")}
-- 6. the daily grain of the unique orders, and the keyed gold tables rolled up from it
CREATE TEMP TABLE daily_grain AS
{dj.group_by("orders", ("sale_date", "sale_month", "region", "category"), DAILY_GRAIN, order=False)};
{rollups}
-- 7. the ranked tables (ties by key ascending) and data_quality
{dj.copy_to(_top_products(k.SETTINGS.top_products_n), gold / "top_products.parquet")}
{dj.copy_to(anomalies, gold / "anomaly_records.parquet")}
{dj.copy_to(_data_quality(), gold / "data_quality.parquet")}"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bronze", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path, help="folder to write silver/, quarantine/, gold/ into "
                                                                "(absent or empty)")
    parser.add_argument("--threads", type=int, help="DuckDB threads (default: DuckDB's, all cores)")
    parser.add_argument("--print-sql", action="store_true", help="print the SQL script and exit")
    args = parser.parse_args(argv)
    if args.out.exists() and any(args.out.iterdir()):
        parser.error(f"--out {args.out} is not empty")
    files = k.readable_inputs(args.bronze)
    if not files:
        return 1
    sql = build_sql(files, args.out.resolve(), args.threads)
    if args.print_sql:
        print(sql)
        return 0
    (args.out / "gold").mkdir(parents=True, exist_ok=True)
    dj.execute(sql, f"{len(files)} files -> {args.out}/silver, quarantine, gold")
    return 0


if __name__ == "__main__":
    sys.exit(main())
