#!/usr/bin/env python
"""The contract's bronze -> daily_sales job in Polars' lazy API (a benchmark contender).

    python bench/polars_job.py --bronze DIR/bronze --out daily_sales.parquet

Python only finds the files and their headers (the same helpers as the pipeline, see _common.py)
and builds one lazy query; Polars runs it with one `collect()`:

1. every file scanned with all columns as strings, in input order (file index, then row index);
2. each rule computed once per distinct raw value (a small lazy frame per column, joined back on
   the raw text), exactly as pipeline/bronze/cleaning.py defines it: trimming of Unicode white space,
   null tokens, number syntax by one regex, exponents expanded as text, half-up rounding on the
   digits, date formats as Python's strptime reads them, ISO timestamps, alias maps;
3. valid rows only, first occurrence of each trimmed order_id in input order;
4. daily_sales with exact integer cents, written to Parquet as decimal(38, 2).

Polars reads an empty line as a record whose fields are all empty (the pipeline skips it): such a
record fails `missing_order_id`, and a rejected row claims no order_id, so daily_sales is the same.
"""
from __future__ import annotations

import argparse
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as k  # noqa: E402
import polars as pl  # noqa: E402

NEEDED_COLUMNS = tuple(c for c in k.INPUT_COLUMNS if c not in ("product_name", "customer_email"))
ZEROS = "0" * k.EXPONENT_CAP


def _scan(f: k.InputFile) -> pl.LazyFrame:
    names = [f"c{i}" for i in range(f.width)]
    lf = pl.scan_csv(f.path, has_header=True, new_columns=names, infer_schema=False, quote_char='"',
                     empty_string_is_null=False)
    return lf.with_row_index("rec").select(
        (pl.lit(f.index, pl.Int64) * (1 << 40) + pl.col("rec").cast(pl.Int64)).alias("input_order"),
        *[(pl.col(f"c{f.positions[c]}").fill_null("") if c in f.positions else pl.lit("")).alias(c)
          for c in NEEDED_COLUMNS],
    )


def trim_ws(e: pl.Expr) -> pl.Expr:
    return e.str.strip_chars(k.WS_CHARS)


def null_token(t: pl.Expr) -> pl.Expr:
    return pl.when(t.str.to_lowercase().is_in(list(k.NULLS))).then(None).otherwise(t)


def present(e: pl.Expr) -> pl.Expr:
    return null_token(trim_ws(e))


def normal_text(e: pl.Expr) -> pl.Expr:
    collapsed = present(e).str.replace_all(k.WS_RUN, " ")
    return collapsed.str.replace_all("İ", "i\u0307", literal=True).str.to_lowercase()


def _digits_int(e: pl.Expr) -> pl.Expr:
    return pl.when(e == "").then(pl.lit(0, pl.Int64)).otherwise(e.cast(pl.Int64, strict=False))


def parse_units(frame: pl.LazyFrame, pattern: str, prefix: str, scale: int) -> pl.LazyFrame:
    """pipeline.bronze.cleaning._parse_numbers on column `raw`: adds ok, exact and signed units (saturated at 1e18).

    Built as successive steps (columns), not one nested expression: each step is computed once.
    """
    col = pl.col
    frame = frame.with_columns(present(col("raw")).alias("_t"))
    frame = frame.with_columns(col("_t").str.contains(pattern).fill_null(False).alias("ok"))
    frame = frame.with_columns(pl.when(col("ok")).then(col("_t")).otherwise(pl.lit("")).alias("_chk"))
    frame = frame.with_columns(
        col("_chk").str.starts_with("-").alias("_neg"),
        col("_chk").str.strip_chars_start(prefix).str.replace_all(",", "", literal=True).str.to_lowercase().alias("_plain"),
    )
    frame = frame.with_columns(
        col("_plain").str.extract_groups(r"^([0-9]*)(?:\.([0-9]*))?(?:e([+-]?[0-9]+))?$").alias("_m"))
    frame = frame.with_columns(
        col("_m").struct.field("1").fill_null("").alias("_m_whole"),
        col("_m").struct.field("2").fill_null("").alias("_m_frac"),
        col("_m").struct.field("3").fill_null("").alias("_expo"),
    )
    magnitude = col("_expo").str.strip_chars_start("+-").str.strip_chars_start("0")
    shift_abs = pl.when(magnitude.str.len_chars() <= 9).then(_digits_int(magnitude)).otherwise(10**9)
    frame = frame.with_columns(
        (col("_m_whole") + col("_m_frac")).alias("_digits"),
        (col("_m_whole").str.len_chars().cast(pl.Int64)
         + pl.when(col("_expo").str.starts_with("-")).then(-shift_abs).otherwise(shift_abs)).alias("_point"),
    )
    frame = frame.with_columns(col("_digits").str.len_chars().cast(pl.Int64).alias("_n"))
    point, n_digits, digits, zeros = col("_point"), col("_n"), col("_digits"), pl.lit(ZEROS)
    expanded = (
        pl.when(point <= 0).then(pl.lit(".") + zeros.str.slice(0, pl.min_horizontal(-point, k.EXPONENT_CAP).clip(0)) + digits)
        .when(point >= n_digits).then(digits + zeros.str.slice(0, pl.min_horizontal(point - n_digits, k.EXPONENT_CAP).clip(0)))
        .otherwise(digits.str.slice(0, point.clip(0)) + pl.lit(".") + digits.str.slice(point.clip(0)))
    )
    frame = frame.with_columns(
        pl.when(col("_expo") != "").then(expanded).otherwise(col("_plain"))
        .str.extract_groups(r"^([0-9]*)(?:\.([0-9]*))?$").alias("_p"))
    frame = frame.with_columns(
        col("_p").struct.field("1").fill_null("").str.strip_chars_start("0").alias("_whole"),
        col("_p").struct.field("2").fill_null("").alias("_frac"),
    )
    frame = frame.with_columns(col("_frac").str.pad_end(scale + 1, "0").alias("_padded"))
    whole, frac, padded = col("_whole"), col("_frac"), col("_padded")
    kept = _digits_int(padded.str.slice(0, scale)) if scale else pl.lit(0, pl.Int64)
    round_up = (padded.str.slice(scale, 1) >= "5").cast(pl.Int64)
    frame = frame.with_columns(
        (frac.str.slice(scale).str.strip_chars_end("0") == "").alias("exact"),
        pl.when(whole.str.len_chars() > 18 - scale).then(pl.lit(k.SATURATED, pl.Int64))
        .otherwise(_digits_int(whole) * 10**scale + kept + round_up).alias("_units"),
    )
    frame = frame.with_columns(pl.when(col("_neg")).then(-col("_units")).otherwise(col("_units")).alias("units"))
    return frame.select("raw", "ok", "exact", "units")


def real_date(y: pl.Expr, m: pl.Expr, d: pl.Expr) -> pl.Expr:
    """The date y-m-d when it is a real calendar date (years 1..9999), else null."""
    leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
    days = (pl.when(m == 2).then(28 + leap.cast(pl.Int64))
            .when(m.is_in([4, 6, 9, 11])).then(30).otherwise(31))
    ok = y.is_between(1, 9999) & m.is_between(1, 12) & (d >= 1) & (d <= days)
    return pl.when(ok).then(pl.date(pl.when(ok).then(y).otherwise(1970), pl.when(ok).then(m).otherwise(1),
                                    pl.when(ok).then(d).otherwise(1)))


def parse_date(raw: pl.Expr) -> pl.Expr:
    t = present(raw)
    ts = t.str.extract(k.ISO_TIMESTAMP, 1)
    iso = real_date(*(ts.str.slice(a, n).cast(pl.Int64, strict=False) for a, n in ((0, 4), (5, 2), (8, 2))))
    tries = []
    for f in k.date_format_regexes():
        g = t.str.extract_groups(f.pattern)
        part = {name: g.struct.field(str(i + 1)).str.strip_chars(" ").cast(pl.Int64, strict=False)
                for i, name in enumerate(f.groups)}
        tries.append(real_date(part["y"], part["m"], part["d"]))
    date = pl.when(ts.is_not_null()).then(iso).otherwise(pl.coalesce(tries))
    return date.fill_null(pl.lit(k.SENTINEL_DATE).str.to_date())


def _distinct(rows: pl.LazyFrame, column: str) -> pl.LazyFrame:
    return rows.select(pl.col(column).unique().alias("raw"))


def _alias(rows: pl.LazyFrame, column: str, lookup: dict[str, str], default: str) -> pl.LazyFrame:
    value = normal_text(pl.col("raw")).replace_strict(lookup, default=default, return_dtype=pl.String)
    return _distinct(rows, column).with_columns(value.alias(column))


def _number(rows: pl.LazyFrame, column: str, pattern: str, prefix: str, scale: int, valid, otherwise=None) -> pl.LazyFrame:
    parsed = parse_units(_distinct(rows, column), pattern, prefix, scale)
    value = pl.when(valid(pl.col("units")) & pl.col("ok")).then(pl.col("units"))
    return parsed.select("raw", (value if otherwise is None else value.otherwise(otherwise)).alias(column))


def _dates(rows: pl.LazyFrame) -> pl.LazyFrame:
    frame = _distinct(rows, "sale_date").with_columns(present(pl.col("raw")).alias("_t"))
    frame = frame.with_columns(pl.col("_t").str.extract(k.ISO_TIMESTAMP, 1).alias("_ts"))
    ts = pl.col("_ts")
    iso = real_date(*(ts.str.slice(a, n).cast(pl.Int64, strict=False) for a, n in ((0, 4), (5, 2), (8, 2))))
    tries = []
    for i, f in enumerate(k.date_format_regexes()):
        frame = frame.with_columns(pl.col("_t").str.extract_groups(f.pattern).alias(f"_f{i}"))
        part = {name: pl.col(f"_f{i}").struct.field(str(g + 1)).str.strip_chars(" ").cast(pl.Int64, strict=False)
                for g, name in enumerate(f.groups)}
        tries.append(real_date(part["y"], part["m"], part["d"]))
    date = pl.when(ts.is_not_null()).then(iso).otherwise(pl.coalesce(tries))
    return frame.select("raw", date.fill_null(pl.lit(k.SENTINEL_DATE).str.to_date()).alias("sale_date"))


def build(files: list[k.InputFile]) -> pl.LazyFrame:
    rows = pl.concat([_scan(f) for f in files], how="vertical")
    exact_whole = lambda u: pl.col("exact") & u.is_between(1, k.MAX_QUANTITY)  # noqa: E731
    maps = {
        "quantity": _number(rows, "quantity", k.PLAIN_NUMBER, "+-", 0, exact_whole),
        "unit_price": _number(rows, "unit_price", k.PRICE_NUMBER, k.PRICE_PREFIX, k.MONEY_SCALE,
                              lambda u: (u > 0) & (u <= k.MAX_UNIT_PRICE * 100)),
        "discount_percent": _number(rows, "discount_percent", k.PLAIN_NUMBER, "+-", k.DISCOUNT_SCALE,
                                    lambda u: u.is_between(0, 10**k.DISCOUNT_SCALE), otherwise=0),
        "sale_date": _dates(rows),
        "category": _alias(rows, "category", k.CATEGORY_LOOKUP, k.DEFAULT_CATEGORY),
        "region": _alias(rows, "region", k.REGION_LOOKUP, k.DEFAULT_REGION),
    }
    clean = rows.with_columns(null_token(trim_ws(pl.col("order_id"))).alias("order_id"))
    for column, mapped in maps.items():
        clean = clean.join(mapped.rename({column: f"{column}_clean"}), left_on=column, right_on="raw", how="left")
    valid = clean.filter(
        pl.col("order_id").is_not_null() & pl.col("quantity_clean").is_not_null() & pl.col("unit_price_clean").is_not_null()
    )
    # first valid occurrence of each order_id in input order
    firsts = valid.filter(pl.col("input_order") == pl.col("input_order").min().over("order_id"))
    gross = pl.col("quantity_clean") * pl.col("unit_price_clean")
    keep = 10**k.DISCOUNT_SCALE - pl.col("discount_percent_clean")
    # round_half_up(gross * keep / 1e6) exactly in int64, as the pipeline does
    revenue = (gross // 10**6) * keep + ((gross % 10**6) * keep + 500_000) // 10**6
    return (
        firsts.group_by(pl.col("sale_date_clean").alias("sale_date"), pl.col("region_clean").alias("region"),
                        pl.col("category_clean").alias("category"))
        .agg(pl.len().cast(pl.Int64).alias("order_count"),
             pl.col("quantity_clean").sum().cast(pl.Int64).alias("total_quantity"),
             revenue.cast(pl.Int128).sum().alias("revenue_cents"))
        .sort("sale_date", "region", "category")
    )


def write_daily_sales(df: pl.DataFrame, out: Path) -> None:
    """Integer cents -> decimal(38, 2), exactly (a few thousand rows: plain Python is fine)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    cents = df.get_column("revenue_cents").to_list()
    table = df.drop("revenue_cents").to_arrow().append_column(
        "total_revenue", pa.array([Decimal(c).scaleb(-2) for c in cents], pa.decimal128(38, 2)))
    table = table.cast(pa.schema([("sale_date", pa.date32()), ("region", pa.string()), ("category", pa.string()),
                                  ("order_count", pa.int64()), ("total_quantity", pa.int64()),
                                  ("total_revenue", pa.decimal128(38, 2))]))
    pq.write_table(table, out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bronze", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path, help="daily_sales Parquet file to write")
    parser.add_argument("--explain", action="store_true", help="print the optimized plan and exit")
    args = parser.parse_args(argv)
    files = k.readable_inputs(args.bronze)
    if not files:
        return 1
    query = build(files)
    if args.explain:
        print(query.explain())
        return 0
    started = time.monotonic()
    df = query.collect()
    write_daily_sales(df, args.out)
    print(f"polars {pl.__version__}: {len(files)} files -> {args.out} in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
