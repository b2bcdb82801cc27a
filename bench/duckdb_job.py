#!/usr/bin/env python
"""The contract's bronze -> daily_sales job as one DuckDB SQL script (a benchmark contender).

    python bench/duckdb_job.py --bronze DIR/bronze --out daily_sales.parquet [--threads N] [--print-sql]

Python only finds the files and their headers (the same helpers as the pipeline, see _common.py)
and writes the SQL text; all the work is the one SQL script DuckDB runs:

1. every file read with all columns as VARCHAR, in input order (file index, then record number
   from `WITH ORDINALITY`); blank lines are skipped, as in the pipeline;
2. values trimmed of Unicode white space; empty and null tokens are missing;
3. hard rules in order (order_id, quantity, unit_price) with the pipeline's exact number parsing:
   syntax checked by one regex, exponents expanded as text, rounded half up on the digits;
4. soft rules (category/region aliases, discount, sale_date formats and ISO timestamps), each
   computed once per distinct raw value and joined back, as the pipeline does;
5. first-wins dedup on the trimmed order_id in input order (valid rows only);
6. daily_sales = per (sale_date, region, category): order_count, total_quantity, total_revenue
   (exact: integer cents, revenue = round_half_up(gross * (1 - discount), 2)), written to Parquet.

The builders below (`prelude`, `joined_maps`, `first_wins`, `group_by`, `copy_to`) are also what
bench/duckdb_full_job.py composes into the job that writes everything the pipeline writes.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as k  # noqa: E402

from pipeline.contract import INVALID_QUANTITY, INVALID_UNIT_PRICE, MISSING_ORDER_ID  # noqa: E402

# daily_sales needs neither product_name nor customer_email (their soft rules change no total)
NEEDED_COLUMNS = tuple(c for c in k.INPUT_COLUMNS if c not in ("product_name", "customer_email"))


def _read_file(f: k.InputFile, wanted: tuple[str, ...]) -> str:
    """One file's `wanted` columns as VARCHAR, a missing one as '' (so every map join matches)."""
    names = [f"c{i}" for i in range(f.width)]
    columns = "{" + ", ".join(f"'{n}': 'VARCHAR'" for n in names) + "}"
    select = ",\n       ".join(
        f"coalesce(c{f.positions[col]}, '') AS {col}" if col in f.positions else f"'' AS {col}"
        for col in wanted
    )
    return (
        f"SELECT {f.index} AS file_idx, ordinality AS rec,\n       {select}\n"
        f"FROM read_csv({k.sql_string(str(f.path))}, header = true, auto_detect = false, columns = {columns},\n"
        f"              delim = ',', quote = '\"', escape = '\"', strict_mode = false) WITH ORDINALITY"
    )


def _number_map(name: str, src: str, pattern: str, prefix: str, scale: int, valid_units: str, otherwise: str) -> str:
    """A table `{name}_map` (raw -> units or `otherwise`, and `defaulted`) over the distinct raw values of `src`.

    pipeline.bronze.cleaning._parse_numbers in SQL: one regex checks the whole syntax; sign, currency and
    separators are stripped; an exponent is expanded as text (zeros capped at EXPONENT_CAP); the
    digits are rounded half up at `scale` places; `exact` says no non-zero digit was rounded away.
    Units are signed and saturated at 1e18 (every field's maximum is far below).
    """
    return f"""CREATE TEMP TABLE {name}_map AS
WITH
a AS (
    SELECT raw, ok, starts_with(chk, '-') AS neg, lower(replace(ltrim(chk, {k.sql_string(prefix)}), ',', '')) AS plain
    FROM (SELECT raw, ok, CASE WHEN ok THEN t ELSE '' END AS chk
          FROM (SELECT raw, t, coalesce(regexp_full_match(t, {k.sql_string(pattern)}), false) AS ok
                FROM (SELECT raw, present(raw) AS t FROM (SELECT DISTINCT {src} AS raw FROM raw_rows))))
),
b AS (
    SELECT raw, ok, neg, plain, contains(plain, 'e') AS has_e,
           split_part(split_part(plain, 'e', 1), '.', 1) AS m_whole,
           split_part(split_part(plain, 'e', 1), '.', 2) AS m_frac,
           split_part(plain, 'e', 2) AS expo
    FROM a
),
c AS (
    SELECT raw, ok, neg, plain, has_e, m_whole || m_frac AS digits,
           length(m_whole) + CASE
               WHEN NOT has_e THEN 0
               WHEN length(ltrim(ltrim(expo, '+-'), '0')) <= 9 THEN TRY_CAST(expo AS BIGINT)
               WHEN starts_with(expo, '-') THEN -1000000000 ELSE 1000000000 END AS point
    FROM b
),
d AS (
    SELECT raw, ok, neg, CASE
        WHEN NOT has_e THEN plain
        WHEN point <= 0 THEN '.' || repeat('0', CAST(least(-point, {k.EXPONENT_CAP}) AS BIGINT)) || digits
        WHEN point >= length(digits) THEN digits || repeat('0', CAST(least(point - length(digits), {k.EXPONENT_CAP}) AS BIGINT))
        ELSE substr(digits, 1, CAST(point AS BIGINT)) || '.' || substr(digits, CAST(point AS BIGINT) + 1) END AS plain
    FROM c
),
e AS (
    SELECT raw, ok, neg, ltrim(split_part(plain, '.', 1), '0') AS whole, split_part(plain, '.', 2) AS frac
    FROM d
),
num AS (
    SELECT raw, ok,
           rtrim(substr(frac, {scale + 1}), '0') = '' AS exact,
           (CASE WHEN neg THEN -1 ELSE 1 END) * CASE
               WHEN length(whole) > {18 - scale} THEN {k.SATURATED}
               ELSE CAST(CASE WHEN whole = '' THEN '0' ELSE whole END AS BIGINT) * {10 ** scale}
                    {"+ CAST(substr(rpad(frac, " + str(scale) + ", '0'), 1, " + str(scale) + ") AS BIGINT)" if scale else ""}
                    + CASE WHEN substr(rpad(frac, {scale + 1}, '0'), {scale + 1}, 1) >= '5' THEN 1 ELSE 0 END
           END AS units
    FROM e
)
SELECT raw, CASE WHEN {valid_units} THEN units ELSE {otherwise} END AS {name}, ({valid_units}) IS NOT TRUE AS defaulted
FROM num;
"""


def _date_map() -> str:
    """A table `sale_date_map` (raw -> date, sale_month, defaulted) over the distinct raw sale_date values.

    An ISO timestamp gives its date (if a real one); otherwise the first format whose regex (what
    Python's strptime accepts) matches and gives a real calendar date; otherwise 1970-01-01.
    """
    formats = k.date_format_regexes()
    tries = []
    for i, _format in enumerate(formats):
        y, m, d = (f"TRY_CAST(trim(f{i}.{g}) AS INTEGER)" for g in ("y", "m", "d"))
        tries.append(f"CASE WHEN f{i}.y <> '' THEN real_date({y}, {m}, {d}) END")
    extracts = ",\n           ".join(
        f"regexp_extract(t, {k.sql_string(f.pattern)}, [{', '.join(repr(g) for g in f.groups)}]) AS f{i}"
        for i, f in enumerate(formats)
    )
    iso = ", ".join(f"CAST(substr(ts, {a}, {n}) AS INTEGER)" for a, n in ((1, 4), (6, 2), (9, 2)))
    return f"""CREATE TEMP TABLE sale_date_map AS
WITH
a AS (
    SELECT raw, t, regexp_extract(t, {k.sql_string(k.ISO_TIMESTAMP)}, 1) AS ts
    FROM (SELECT raw, present(raw) AS t FROM (SELECT DISTINCT sale_date AS raw FROM raw_rows))
),
b AS (
    SELECT raw, ts,
           {extracts}
    FROM a
),
c AS (
    SELECT raw, CASE WHEN ts <> '' THEN real_date({iso}) ELSE coalesce({", ".join(tries)}) END AS found FROM b
)
SELECT raw, coalesce(found, DATE '{k.SENTINEL_DATE}') AS sale_date,
       substr(CAST(coalesce(found, DATE '{k.SENTINEL_DATE}') AS VARCHAR), 1, 7) AS sale_month, found IS NULL AS defaulted
FROM c;
"""


def _alias_map(column: str, lookup: dict[str, str], default: str) -> str:
    whens = " ".join(f"WHEN {k.sql_string(a)} THEN {k.sql_string(c)}" for a, c in lookup.items())
    return f"""CREATE TEMP TABLE {column}_map AS
SELECT raw, coalesce(found, {k.sql_string(default)}) AS {column}, found IS NULL AS defaulted
FROM (SELECT raw, CASE normal_text(raw) {whens} END AS found FROM (SELECT DISTINCT {column} AS raw FROM raw_rows));
"""


def _product_map() -> str:
    """A table `product_name_map` (raw -> product_name, product_key, defaulted): normal text, and
    its runs outside [a-z0-9] as `_`, trimmed of `_` (empty or missing: unknown_product)."""
    unknown = k.sql_string(k.UNKNOWN_PRODUCT)
    return f"""CREATE TEMP TABLE product_name_map AS
SELECT raw, coalesce(name, {unknown}) AS product_name,
       CASE WHEN coalesce(product_key, '') = '' THEN {unknown} ELSE product_key END AS product_key, name IS NULL AS defaulted
FROM (SELECT raw, name, trim(regexp_replace(name, '[^a-z0-9]+', '_', 'g'), '_') AS product_key
      FROM (SELECT raw, normal_text(raw) AS name FROM (SELECT DISTINCT product_name AS raw FROM raw_rows)));
"""


# Each cleaned column's map (a temp table over the distinct raw values) and its alias in the joins.
MAP_ALIASES = {"quantity": "q", "unit_price": "p", "discount_percent": "dm", "sale_date": "dt", "region": "rg",
               "category": "ct", "product_name": "pn"}
# The hard rules, in the pipeline's order: a row passing all three goes to silver, any other to quarantine.
HARD_RULES = ((MISSING_ORDER_ID, "null_token(r.order_id) IS NOT NULL"), (INVALID_QUANTITY, "q.quantity IS NOT NULL"),
              (INVALID_UNIT_PRICE, "p.unit_price IS NOT NULL"))
VALID = " AND ".join(rule for _, rule in HARD_RULES)
DAILY_KEYS = ("sale_date", "region", "category")


def _maps(columns: tuple[str, ...]) -> str:
    """The maps of the cleaned `columns` (hard rules: NULL = invalid; soft rules: the default)."""
    builders = {
        "quantity": lambda: _number_map("quantity", "quantity", k.PLAIN_NUMBER, "+-", 0,
                                        f"ok AND exact AND units BETWEEN 1 AND {k.MAX_QUANTITY}", "NULL"),
        "unit_price": lambda: _number_map("unit_price", "unit_price", k.PRICE_NUMBER, k.PRICE_PREFIX, k.MONEY_SCALE,
                                          f"ok AND units > 0 AND units <= {k.MAX_UNIT_PRICE * 100}", "NULL"),
        "discount_percent": lambda: _number_map("discount_percent", "discount_percent", k.PLAIN_NUMBER, "+-",
                                                k.DISCOUNT_SCALE, "ok AND units BETWEEN 0 AND 1000000", "0"),
        "sale_date": _date_map,
        "category": lambda: _alias_map("category", k.CATEGORY_LOOKUP, k.DEFAULT_CATEGORY),
        "region": lambda: _alias_map("region", k.REGION_LOOKUP, k.DEFAULT_REGION),
        "product_name": _product_map,
    }
    return "\n".join(builders[c]() for c in MAP_ALIASES if c in columns)


def prelude(files: list[k.InputFile], threads: int | None, columns: tuple[str, ...], keep_raw_order_id: bool = False) -> str:
    """Settings, macros, `raw_rows` (the `columns` of every record, in input order) and the maps of
    the cleaned ones; with `keep_raw_order_id`, raw_rows also keeps the untrimmed order_id."""
    trim_rx = f"^{k.WS_RUN}|{k.WS_RUN}$"
    nulls = ", ".join(k.sql_string(t) for t in k.NULLS)
    reads = "\nUNION ALL\n".join(_read_file(f, columns) for f in files)
    settings = f"SET threads = {threads};\n" if threads else ""
    raw_order_id = ", order_id AS raw_order_id" if keep_raw_order_id else ""
    return f"""{settings}SET preserve_insertion_order = false;

-- white space trimmed (a regex: DuckDB's trim(x, characters) is ten times slower with 29 characters)
CREATE OR REPLACE TEMP MACRO trim_ws(x) AS regexp_replace(x, {k.sql_string(trim_rx)}, '', 'g');
-- NULL when a trimmed value is missing (empty or a null token in any case)
CREATE OR REPLACE TEMP MACRO null_token(t) AS CASE WHEN lower(t) IN ({nulls}) THEN NULL ELSE t END;
CREATE OR REPLACE TEMP MACRO present(x) AS null_token(trim_ws(x));
-- lower-cased like Python's str.lower (İ -> i + U+0307)
CREATE OR REPLACE TEMP MACRO py_lower(x) AS lower(replace(x, 'İ', 'i' || chr(775)));
-- trimmed, inner white space collapsed, lower-cased
CREATE OR REPLACE TEMP MACRO normal_text(x) AS py_lower(regexp_replace(present(x), {k.sql_string(k.WS_RUN)}, ' ', 'g'));
-- a real calendar date or NULL (strptime never rolls 2024-02-30 over)
CREATE OR REPLACE TEMP MACRO real_date(y, m, d) AS
    CASE WHEN y BETWEEN 1 AND 9999 AND m BETWEEN 1 AND 12 AND d >= 1
              AND d <= day(last_day(make_date(y, m, 1))) THEN make_date(y, m, d) END;
-- the position of a record in input order: file index, then record number
CREATE OR REPLACE TEMP MACRO input_order(file_idx, rec) AS (file_idx::BIGINT << 40) + rec;
-- revenue cents = round_half_up(gross * keep / 1e6), keep = 1e6 - discount millionths, exact in
-- BIGINT as in the pipeline: gross (<= 1e17) = high * 1e6 + low, only low * keep / 1e6 is rounded
CREATE OR REPLACE TEMP MACRO revenue_cents(gross, ppm) AS
    (gross // 1000000) * (1000000 - ppm) + ((gross % 1000000) * (1000000 - ppm) + 500000) // 1000000;
-- integer cents (a sum: HUGEINT) as exact DECIMAL(38, 2)
CREATE OR REPLACE TEMP MACRO money(cents) AS CAST(cents AS DECIMAL(36, 0)) * CAST(0.01 AS DECIMAL(2, 2));

-- 1. every record of every file, all VARCHAR, in input order (file_idx, rec); order_id trimmed once
CREATE TEMP TABLE raw_rows AS
SELECT * REPLACE (trim_ws(order_id) AS order_id){raw_order_id} FROM (
{reads}
);

-- 2. each rule once per distinct raw value (hard rules: NULL = invalid; soft rules: the default)
{_maps(columns)}"""


def joined_maps(columns: tuple[str, ...]) -> str:
    """`FROM raw_rows r` joined to the maps of the cleaned `columns` (every raw value has its row)."""
    joins = "".join(f"\nJOIN {c}_map {a} ON {a}.raw = r.{c}" for c, a in MAP_ALIASES.items() if c in columns)
    return f"FROM raw_rows r{joins}"


def first_wins(source: str, fields: tuple[str, ...], materialized: bool = False) -> str:
    """The first row (smallest input_order) of each order_id of `source`, its `fields` as columns.

    Over a CTE, one pass: arg_min of the fields packed in a struct (a semi-join computes the CTE
    twice: this job at 1M rows took 1.4-1.8 s with arg_min, 1.5-1.8 s with it). Over a `materialized`
    table, the rows whose input_order is their order_id's minimum: for silver's 20 columns 0.1 s
    against arg_min's 0.3 s (300k rows).
    """
    if materialized:
        return (f"SELECT {', '.join(fields)} FROM {source}\n"
                f"WHERE input_order IN (SELECT min(input_order) FROM {source} GROUP BY order_id)")
    return (f"SELECT {', '.join(f'o.{f} AS {f}' for f in fields)}\n"
            f"FROM (SELECT arg_min(struct_pack({', '.join(fields)}), input_order) AS o FROM {source} GROUP BY order_id)")


def group_by(source: str, keys: tuple[str, ...], measures: dict[str, str], order: bool = True) -> str:
    """`measures` (name -> aggregate expression) of `source` by `keys`, in key order."""
    listed = ", ".join(keys)
    select = ", ".join([*keys, *(f"{expression} AS {name}" for name, expression in measures.items())])
    return f"SELECT {select}\nFROM {source}\nGROUP BY {listed}" + (f"\nORDER BY {listed}" if order else "")


def copy_to(select: str, out: Path, options: str = "") -> str:
    """`select` written to Parquet at `out` (a file; a folder with PER_THREAD_OUTPUT or PARTITION_BY options)."""
    return f"COPY (\n{select}\n) TO {k.sql_string(str(out))} (FORMAT parquet{options});\n"


# daily_sales from order rows (quantity, revenue_cents); duckdb_full_job rolls the same sums up from its daily grain
DAILY_SALES_OF_ORDERS = {"order_count": "count(*)", "total_quantity": "CAST(sum(quantity) AS BIGINT)",
                         "total_revenue": "money(sum(CAST(revenue_cents AS HUGEINT)))"}
_DAILY_FIELDS = ("quantity", "cents", "ppm", "sale_date", "region", "category")


def build_sql(files: list[k.InputFile], out: Path, threads: int | None) -> str:
    priced = ", ".join([*DAILY_KEYS, "quantity", "revenue_cents(quantity * cents, ppm) AS revenue_cents"])
    return prelude(files, threads, NEEDED_COLUMNS) + """
-- 3. valid rows (order_id present, quantity and unit_price valid), first valid occurrence of each
--    order_id in input order, revenue in exact cents, daily_sales
""" + copy_to(f"""WITH
valid AS (
    SELECT r.order_id, input_order(r.file_idx, r.rec) AS input_order,
           q.quantity, p.unit_price AS cents, dm.discount_percent AS ppm, dt.sale_date, rg.region, ct.category
    {joined_maps(NEEDED_COLUMNS)}
    WHERE {VALID}
),
firsts AS (
{first_wins("valid", _DAILY_FIELDS)}
),
priced AS (SELECT {priced} FROM firsts)
{group_by("priced", DAILY_KEYS, DAILY_SALES_OF_ORDERS)}""", out)


def execute(sql: str, label: str) -> None:
    """Run the script in a fresh in-memory DuckDB and say how long it took."""
    import duckdb

    started = time.monotonic()
    duckdb.connect().execute(sql)
    print(f"duckdb {duckdb.__version__}: {label} in {time.monotonic() - started:.1f} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bronze", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path, help="daily_sales Parquet file to write")
    parser.add_argument("--threads", type=int, help="DuckDB threads (default: DuckDB's, all cores)")
    parser.add_argument("--print-sql", action="store_true", help="print the SQL script and exit")
    args = parser.parse_args(argv)
    files = k.readable_inputs(args.bronze)
    if not files:
        return 1
    sql = build_sql(files, args.out, args.threads)
    if args.print_sql:
        print(sql)
        return 0
    execute(sql, f"{len(files)} files -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
