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
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as k  # noqa: E402

# daily_sales needs neither product_name nor customer_email (their soft rules change no total)
NEEDED_COLUMNS = tuple(c for c in k.INPUT_COLUMNS if c not in ("product_name", "customer_email"))


def _read_file(f: k.InputFile) -> str:
    names = [f"c{i}" for i in range(f.width)]
    columns = "{" + ", ".join(f"'{n}': 'VARCHAR'" for n in names) + "}"
    select = ",\n       ".join(
        f"coalesce(c{f.positions[col]}, '') AS {col}" if col in f.positions else f"'' AS {col}"
        for col in NEEDED_COLUMNS
    )
    return (
        f"SELECT {f.index} AS file_idx, ordinality AS rec,\n       {select}\n"
        f"FROM read_csv({k.sql_string(str(f.path))}, header = true, auto_detect = false, columns = {columns},\n"
        f"              delim = ',', quote = '\"', escape = '\"', strict_mode = false) WITH ORDINALITY"
    )


def _number_map(name: str, src: str, pattern: str, prefix: str, scale: int, valid_units: str, otherwise: str) -> str:
    """A table `{name}_map` (raw -> units or `otherwise`) over the distinct raw values of `src`.

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
SELECT raw, CASE WHEN {valid_units} THEN units ELSE {otherwise} END AS {name} FROM num;
"""


def _date_map() -> str:
    """A table `sale_date_map` (raw -> date) over the distinct raw sale_date values.

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
)
SELECT raw, coalesce(CASE WHEN ts <> '' THEN real_date({iso}) ELSE coalesce({", ".join(tries)}) END,
                     DATE '{k.SENTINEL_DATE}') AS sale_date
FROM b;
"""


def _alias_map(column: str, lookup: dict[str, str], default: str) -> str:
    whens = " ".join(f"WHEN {k.sql_string(a)} THEN {k.sql_string(c)}" for a, c in lookup.items())
    return f"""CREATE TEMP TABLE {column}_map AS
SELECT raw, CASE normal_text(raw) {whens} ELSE {k.sql_string(default)} END AS {column}
FROM (SELECT DISTINCT {column} AS raw FROM raw_rows);
"""


def build_sql(files: list[k.InputFile], out: Path, threads: int | None) -> str:
    trim_rx = f"^{k.WS_RUN}|{k.WS_RUN}$"
    nulls = ", ".join(k.sql_string(t) for t in k.NULLS)
    reads = "\nUNION ALL\n".join(_read_file(f) for f in files)
    settings = f"SET threads = {threads};\n" if threads else ""
    return f"""{settings}SET preserve_insertion_order = false;

-- white space trimmed (a regex: DuckDB's trim(x, characters) is ten times slower with 29 characters)
CREATE OR REPLACE TEMP MACRO trim_ws(x) AS regexp_replace(x, {k.sql_string(trim_rx)}, '', 'g');
-- NULL when a trimmed value is missing (empty or a null token in any case)
CREATE OR REPLACE TEMP MACRO null_token(t) AS CASE WHEN lower(t) IN ({nulls}) THEN NULL ELSE t END;
CREATE OR REPLACE TEMP MACRO present(x) AS null_token(trim_ws(x));
-- trimmed, inner white space collapsed, lower-cased like Python's str.lower (İ -> i + U+0307)
CREATE OR REPLACE TEMP MACRO normal_text(x) AS
    lower(replace(regexp_replace(present(x), {k.sql_string(k.WS_RUN)}, ' ', 'g'), 'İ', 'i' || chr(775)));
-- a real calendar date or NULL (strptime never rolls 2024-02-30 over)
CREATE OR REPLACE TEMP MACRO real_date(y, m, d) AS
    CASE WHEN y BETWEEN 1 AND 9999 AND m BETWEEN 1 AND 12 AND d >= 1
              AND d <= day(last_day(make_date(y, m, 1))) THEN make_date(y, m, d) END;

-- 1. every record of every file, all VARCHAR, in input order (file_idx, rec); order_id trimmed once
CREATE TEMP TABLE raw_rows AS
SELECT * REPLACE (trim_ws(order_id) AS order_id) FROM (
{reads}
);

-- 2. each rule once per distinct raw value (hard rules: NULL = invalid; soft rules: the default)
{_number_map("quantity", "quantity", k.PLAIN_NUMBER, "+-", 0, f"ok AND exact AND units BETWEEN 1 AND {k.MAX_QUANTITY}", "NULL")}
{_number_map("unit_price", "unit_price", k.PRICE_NUMBER, k.PRICE_PREFIX, k.MONEY_SCALE,
             f"ok AND units > 0 AND units <= {k.MAX_UNIT_PRICE * 100}", "NULL")}
{_number_map("discount_percent", "discount_percent", k.PLAIN_NUMBER, "+-", k.DISCOUNT_SCALE, "ok AND units BETWEEN 0 AND 1000000", "0")}
{_date_map()}
{_alias_map("category", k.CATEGORY_LOOKUP, k.DEFAULT_CATEGORY)}
{_alias_map("region", k.REGION_LOOKUP, k.DEFAULT_REGION)}
-- 3. valid rows (order_id present, quantity and unit_price valid), first valid occurrence of each
--    order_id in input order, revenue in exact cents, daily_sales
COPY (
WITH
valid AS (
    SELECT r.order_id, (r.file_idx::BIGINT << 40) + r.rec AS input_order,
           q.quantity, p.unit_price AS cents, dm.discount_percent AS ppm, dt.sale_date, rg.region, ct.category
    FROM raw_rows r
    JOIN quantity_map q ON q.raw = r.quantity
    JOIN unit_price_map p ON p.raw = r.unit_price
    JOIN discount_percent_map dm ON dm.raw = r.discount_percent
    JOIN sale_date_map dt ON dt.raw = r.sale_date
    JOIN region_map rg ON rg.raw = r.region
    JOIN category_map ct ON ct.raw = r.category
    WHERE q.quantity IS NOT NULL AND p.unit_price IS NOT NULL AND null_token(r.order_id) IS NOT NULL
),
firsts AS (
    SELECT arg_min(struct_pack(quantity, cents, ppm, sale_date, region, category), input_order) AS o
    FROM valid GROUP BY order_id
),
priced AS (
    -- revenue cents = round_half_up(gross * keep / 1e6), keep = 1e6 - discount millionths, exact in
    -- BIGINT as in the pipeline: gross (<= 1e17) = high * 1e6 + low, only low * keep / 1e6 is rounded
    SELECT sale_date, region, category, quantity,
           (gross // 1000000) * keep + ((gross % 1000000) * keep + 500000) // 1000000 AS revenue_cents
    FROM (SELECT o.sale_date AS sale_date, o.region AS region, o.category AS category, o.quantity AS quantity,
                 o.quantity * o.cents AS gross, 1000000 - o.ppm AS keep
          FROM firsts)
)
SELECT sale_date, region, category, count(*) AS order_count, CAST(sum(quantity) AS BIGINT) AS total_quantity,
       CAST(sum(CAST(revenue_cents AS HUGEINT)) AS DECIMAL(36, 0)) * CAST(0.01 AS DECIMAL(2, 2)) AS total_revenue
FROM priced
GROUP BY ALL
ORDER BY sale_date, region, category
) TO {k.sql_string(str(out))} (FORMAT parquet);
"""


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
    import duckdb

    started = time.monotonic()
    con = duckdb.connect()
    con.execute(sql)
    print(f"duckdb {duckdb.__version__}: {len(files)} files -> {args.out} in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
