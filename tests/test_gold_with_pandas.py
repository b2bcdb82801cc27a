"""Gold as a pandas user reads it: `pandas.read_parquet("<data_root>/gold/<table>.parquet")`.

pandas is a dependency of the product for this reason alone: users read gold with it. These tests
run the real CLI up to gold and read EVERY gold table with pandas (never with the pipeline's code):

1. a hand-written bronze set whose gold is worked out by hand in the comments: exact order counts,
   quantities, money as `decimal.Decimal`, averages, ranks and data-quality counts;
2. a generated bronze set whose gold is recomputed here with pandas from silver (first valid
   occurrence of an order_id wins), so every table is checked against an independent computation;
3. README's "Reading gold" snippet, taken from README.md by its marker and run where the quick
   start leaves gold (`sample_data/`), with `dtype_backend="pyarrow"` (decimal128, date32).

What a pandas user can rely on (checked below, same with pandas 2.2+ and 3.x):
- money (decimal128 in Parquet) arrives as object dtype holding exact `decimal.Decimal` values at
  scale 2 (avg_discount: scale 4), never float; `groupby(...).sum()` on them stays exact Decimal;
- `sale_date` (Parquet/Arrow date32) arrives as object dtype holding `datetime.date` (pyarrow's
  default `date_as_object=True`), not datetime64; `pd.to_datetime(df["sale_date"])` converts it;
- counts and quantities are int64, `rank` is int32, default flags are bool;
- text is object dtype (pandas 2) or the `str` dtype (pandas 3): both hold plain Python `str`.
"""
from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pandas as pd
import pytest

from pipeline.contract import GOLD_TABLES
from pipeline.generator import generate_bronze
from tests.conftest import HEADER, write_bronze
from tests.gold_helpers import copy_bronze, layered_config, read_gold, run_gold

D = Decimal
MONEY_COLUMNS = {
    "monthly_sales_summary": ("gross_revenue", "total_revenue"),
    "daily_sales": ("total_revenue",),
    "region_wise_performance": ("total_revenue",),
    "category_discount_map": ("total_revenue",),
    "defaults_by_region_category": ("total_revenue", "region_defaulted_revenue", "category_defaulted_revenue"),
    "top_products": ("total_revenue",),
    "anomaly_records": ("unit_price", "gross_revenue", "revenue", "discount_amount"),
    "data_quality": (),
}
AVG_DISCOUNT_TABLES = ("monthly_sales_summary", "category_discount_map")
INT64_COLUMNS = {
    "monthly_sales_summary": ("order_count", "total_quantity"),
    "daily_sales": ("order_count", "total_quantity"),
    "region_wise_performance": ("order_count", "total_quantity"),
    "category_discount_map": ("order_count",),
    "defaults_by_region_category": ("order_count", "region_defaulted_orders", "category_defaulted_orders"),
    "top_products": ("total_quantity", "order_count"),
    "anomaly_records": ("quantity", "source_row"),
    "data_quality": ("rows_read", "rows_valid", "rows_rejected", "duplicates_dropped", "rows_in_gold"),
}


def read_gold_pandas(root: Path) -> dict[str, pd.DataFrame]:
    """Every gold table exactly as a user reads it."""
    frames = {}
    for name in GOLD_TABLES:
        path = root / "gold" / f"{name}.parquet"
        assert path.exists(), f"gold table {path} is missing"
        frames[name] = pd.read_parquet(path)
    return frames


def records(df: pd.DataFrame, columns: list[str] | None = None) -> list[tuple]:
    return list(df[columns or list(df.columns)].itertuples(index=False, name=None))


def assert_decimal_column(series: pd.Series, scale: int) -> None:
    """Exact Decimal at the contract's scale in every row: no float anywhere."""
    assert series.dtype == object, f"{series.name}: {series.dtype}, expected object dtype of Decimal"
    bad = [v for v in series if type(v) is not Decimal or v.as_tuple().exponent != -scale]
    assert not bad, f"{series.name}: not Decimal at scale {scale}: {bad[:3]}"


def assert_user_dtypes(frames: dict[str, pd.DataFrame]) -> None:
    for name, df in frames.items():
        assert len(df) > 0, name
        # the table's key identifies a row
        assert not df.duplicated(list(GOLD_TABLES[name])).any(), f"{name}: duplicate keys {GOLD_TABLES[name]}"
        for column in MONEY_COLUMNS[name]:
            assert_decimal_column(df[column], 2)
        if name in AVG_DISCOUNT_TABLES:
            assert_decimal_column(df["avg_discount"], 4)
        for column in INT64_COLUMNS[name]:
            assert df[column].dtype == "int64", f"{name}.{column}: {df[column].dtype}"
        if "rank" in df.columns:
            assert df["rank"].dtype == "int32" and list(df["rank"]) == list(range(1, len(df) + 1))
        if "sale_date" in df.columns:
            # date32 in Parquet -> object dtype of datetime.date (not datetime64, not Timestamp)
            assert df["sale_date"].dtype == object
            assert all(type(v) is dt.date for v in df["sale_date"]), f"{name}.sale_date"
        for column in df.columns:
            if column.startswith("default_") and name == "anomaly_records":
                assert df[column].dtype == bool, f"{name}.{column}: {df[column].dtype}"
        for column in GOLD_TABLES[name]:
            if column != "sale_date":
                assert pd.api.types.is_string_dtype(df[column]), f"{name}.{column}: {df[column].dtype}"
                assert all(type(v) is str for v in df[column])


def assert_pandas_equals_pyarrow(root: Path, frames: dict[str, pd.DataFrame]) -> None:
    """Reading with pandas loses nothing: the same columns and values as pyarrow reads."""
    tables = read_gold(root)
    for name, df in frames.items():
        table = tables[name]
        assert list(df.columns) == table.column_names, name
        assert df.to_dict("records") == table.to_pylist(), f"{name}: pandas and pyarrow disagree"


def month_of(dates: pd.Series) -> pd.Series:
    return pd.to_datetime(dates).dt.strftime("%Y-%m")


def assert_daily_rolls_up(frames: dict[str, pd.DataFrame]) -> None:
    """groupby over daily_sales re-adds exactly (Decimal) to the monthly, region and category totals."""
    daily = frames["daily_sales"]
    measures = ["order_count", "total_quantity", "total_revenue"]
    by_month = daily.groupby(month_of(daily["sale_date"]).rename("sale_month"))[measures].sum().reset_index()
    assert all(type(v) is Decimal for v in by_month["total_revenue"])  # the sum stayed exact
    assert records(by_month) == records(frames["monthly_sales_summary"], ["sale_month", *measures])
    by_region = daily.groupby("region")[measures].sum().reset_index()
    assert records(by_region) == records(frames["region_wise_performance"], ["region", *measures])
    by_category = daily.groupby("category")[["order_count", "total_revenue"]].sum().reset_index()
    assert records(by_category) == records(frames["category_discount_map"], ["category", "order_count", "total_revenue"])
    total = daily["total_revenue"].sum()
    assert type(total) is Decimal and total == frames["monthly_sales_summary"]["total_revenue"].sum()
    assert daily["order_count"].sum() == frames["data_quality"]["rows_in_gold"].sum()


# --- 1. hand-written bronze, gold worked out by hand ----------------------------------------------

FILE_1 = "sales_1.csv"
FILE_2 = "sales_2.csv"  # natural order: FILE_1 first, so its rows win duplicates
HAND_FILES = {
    FILE_1: "\n".join([
        HEADER,
        # 1 H01: 2 x 25.00 = 50.00, 10 % off -> 45.00 (discount_amount 5.00)
        "H01,Desk Lamp,home appliance,2,25.00,0.1,north,2024-05-01,a@x.com",
        # 2 H02: 4 x 7.50 = 30.00
        "H02,Phone Case,electronics,4,7.50,0,south,2024-05-01,b@x.com",
        # 3 H03: 25.00, 20 % off -> 20.00; no region -> north (default)
        "H03,Desk Lamp,Home Appliance,1,25.00,0.2,,2024-05-01,c@x.com",
        # 4 H01 again: duplicate, dropped
        "H01,Desk Lamp,home appliance,9,99.00,0,south,2024-06-01,a@x.com",
        # 5 rejected: invalid_quantity
        "H04,Phone Case,electronics,x,7.50,0,south,2024-05-03,",
        # 6 rejected: missing_order_id
        ",Phone Case,electronics,1,7.50,0,south,2024-05-03,",
    ]) + "\n",
    FILE_2: "\n".join([
        HEADER,
        # 1 H05: 3 x 7.50 = 22.50, 50 % off -> 11.25 (discount_amount 11.25)
        "H05,Phone Case,electronics,3,7.50,0.5,south,2024-06-10,d@x.com",
        # 2 H02 again (first seen in FILE_1): duplicate, dropped; no email (default, still counted)
        "H02,Phone Case,electronics,1,7.50,0,south,2024-05-01,",
        # 3 H06: 80.00, 25 % off -> 60.00 (discount_amount 20.00)
        "H06,Blender,home_appliance,1,80.00,0.25,north,2024-06-10,e@x.com",
        # 4 H07: 2 x 80.00 = 160.00
        "H07,Blender,home appliance,2,80.00,0,north,2024-06-11,f@x.com",
        # 5 rejected: invalid_unit_price (0)
        "H08,Phone Case,electronics,1,0,0,north,2024-06-11,",
        # 6 H09: 10 x 3.00 = 30.00 (ties H02); no discount -> 0 (default)
        "H09,Cable,electronics,10,3.00,,north,2024-06-12,g@x.com",
    ]) + "\n",
}
# The 7 orders in gold:
# id  file row product_key category       region date       qty gross  revenue discount
# H01 1    1   desk_lamp   home_appliance north  2024-05-01 2   50.00  45.00   0.1
# H02 1    2   phone_case  electronics    south  2024-05-01 4   30.00  30.00   0
# H03 1    3   desk_lamp   home_appliance north  2024-05-01 1   25.00  20.00   0.2
# H05 2    1   phone_case  electronics    south  2024-06-10 3   22.50  11.25   0.5
# H06 2    3   blender     home_appliance north  2024-06-10 1   80.00  60.00   0.25
# H07 2    4   blender     home_appliance north  2024-06-11 2   160.00 160.00  0
# H09 2    6   cable       electronics    north  2024-06-12 10  30.00  30.00   0
# total revenue 356.25

# Cuts: top 3 products leave cable out; top 4 anomalies cut inside the H02/H09 tie at 30.00.
HAND_CONFIG = "[gold]\ntop_products_n = 3\nanomaly_top_n = 4\n"

EXPECTED = {
    "monthly_sales_summary": [
        # sale_month, order_count, total_quantity, gross_revenue, total_revenue, avg_discount
        ("2024-05", 3, 7, D("105.00"), D("95.00"), D("0.1000")),  # H01 H02 H03: (0.1+0+0.2)/3
        ("2024-06", 4, 16, D("292.50"), D("261.25"), D("0.1875")),  # H05 H06 H07 H09: (0.5+0.25)/4
    ],
    "daily_sales": [
        # sale_date, region, category, order_count, total_quantity, total_revenue
        (dt.date(2024, 5, 1), "north", "home_appliance", 2, 3, D("65.00")),  # H01 + H03
        (dt.date(2024, 5, 1), "south", "electronics", 1, 4, D("30.00")),  # H02
        (dt.date(2024, 6, 10), "north", "home_appliance", 1, 1, D("60.00")),  # H06
        (dt.date(2024, 6, 10), "south", "electronics", 1, 3, D("11.25")),  # H05
        (dt.date(2024, 6, 11), "north", "home_appliance", 1, 2, D("160.00")),  # H07
        (dt.date(2024, 6, 12), "north", "electronics", 1, 10, D("30.00")),  # H09
    ],
    "region_wise_performance": [
        # region, order_count, total_quantity, total_revenue
        ("north", 5, 16, D("315.00")),  # H01 H03 H06 H07 H09: 45+20+60+160+30
        ("south", 2, 7, D("41.25")),  # H02 H05: 30+11.25
    ],
    "category_discount_map": [
        # category, order_count, avg_discount, total_revenue
        ("electronics", 3, D("0.1667"), D("71.25")),  # H02 H05 H09: 0.5/3 = 0.16666.. half up
        ("home_appliance", 4, D("0.1375"), D("285.00")),  # H01 H03 H06 H07: (0.1+0.2+0.25+0)/4
    ],
    "defaults_by_region_category": [
        # region, category, order_count, total_revenue, region_defaulted_orders, region_defaulted_revenue,
        #   category_defaulted_orders, category_defaulted_revenue
        ("north", "electronics", 1, D("30.00"), 0, D("0.00"), 0, D("0.00")),  # H09
        ("north", "home_appliance", 4, D("285.00"), 1, D("20.00"), 0, D("0.00")),  # H01 H03 H06 H07; H03 had no region
        ("south", "electronics", 2, D("41.25"), 0, D("0.00"), 0, D("0.00")),  # H02 H05
    ],
    "top_products": [
        # rank, product_key, total_quantity, total_revenue, order_count
        (1, "blender", 3, D("220.00"), 2),
        (2, "desk_lamp", 3, D("65.00"), 2),
        (3, "phone_case", 7, D("41.25"), 2),  # cable (30.00) is cut
    ],
    "anomaly_records": [
        # rank, order_id, revenue, gross_revenue, discount_amount, unit_price, quantity, source_file, source_row
        (1, "H07", D("160.00"), D("160.00"), D("0.00"), D("80.00"), 2, FILE_2, 4),
        (2, "H06", D("60.00"), D("80.00"), D("20.00"), D("80.00"), 1, FILE_2, 3),
        (3, "H01", D("45.00"), D("50.00"), D("5.00"), D("25.00"), 2, FILE_1, 1),
        (4, "H02", D("30.00"), D("30.00"), D("0.00"), D("7.50"), 4, FILE_1, 2),  # H02 < H09 at 30.00
    ],
    "data_quality": [
        # file, read, valid, rejected, malformed, missing_id, bad_qty, bad_price,
        #   defaults: product, category, discount, region, date, email; duplicates, in gold
        (FILE_1, 6, 4, 2, 0, 1, 1, 0, 0, 0, 0, 1, 0, 0, 1, 3),  # region: H03; duplicate: H01
        (FILE_2, 6, 5, 1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 1, 1, 4),  # discount: H09; email: H02; duplicate: H02
    ],
}
COLUMNS = {
    "anomaly_records": ["rank", "order_id", "revenue", "gross_revenue", "discount_amount", "unit_price", "quantity",
                        "source_file", "source_row"],
    "data_quality": ["source_file", "rows_read", "rows_valid", "rows_rejected", "rejected_malformed_row",
                     "rejected_missing_order_id", "rejected_invalid_quantity", "rejected_invalid_unit_price",
                     "default_product_name", "default_category", "default_discount_percent", "default_region",
                     "default_sale_date", "default_customer_email", "duplicates_dropped", "rows_in_gold"],
}


@pytest.fixture(scope="module")
def hand_gold(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, pd.DataFrame]]:
    base = tmp_path_factory.mktemp("pandas-hand")
    root = base / "data"
    write_bronze(root, HAND_FILES)
    run_gold(root, layered_config(base, HAND_CONFIG))
    return root, read_gold_pandas(root)


@pytest.mark.parametrize("table", list(GOLD_TABLES))
def test_every_gold_table_by_hand(hand_gold, table: str) -> None:
    _, frames = hand_gold
    df = frames[table]
    assert records(df, COLUMNS.get(table)) == EXPECTED[table]
    # Decimal("45.0") == Decimal("45.00"): compare the text too, so the scale is pinned as well
    for column in MONEY_COLUMNS[table]:
        assert [str(v) for v in df[column]] == [f"{v:.2f}" for v in df[column]]


def test_hand_gold_dtypes_and_rollups(hand_gold) -> None:
    root, frames = hand_gold
    assert_user_dtypes(frames)
    assert_pandas_equals_pyarrow(root, frames)
    assert_daily_rolls_up(frames)
    assert frames["daily_sales"]["total_revenue"].sum() == D("356.25")
    assert list(frames["data_quality"]["extra_columns"]) == ["", ""]
    anomalies = frames["anomaly_records"]
    assert "customer_email" not in anomalies.columns  # gold never holds emails
    h01 = anomalies.set_index("order_id").loc["H01"]
    assert (h01["sale_date"], h01["discount_percent"], h01["product_key"]) == (dt.date(2024, 5, 1), D("0.100000"), "desk_lamp")


# --- 2. generated bronze, gold recomputed with pandas from silver ------------------------------------

@pytest.fixture(scope="module")
def generated_gold(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, pd.DataFrame]]:
    base = tmp_path_factory.mktemp("pandas-generated")
    source = base / "source"
    generate_bronze(source, rows=3000, files=2, seed=11)  # sales_data_part_0001.csv, ..._0002.csv
    root = base / "data"
    copy_bronze(source, root)
    run_gold(root, layered_config(base, ""))
    return root, read_gold_pandas(root)


def winning_orders(root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Silver's valid rows, and the first valid occurrence of each order_id (zero-padded file names:
    plain string order is the natural file order)."""
    parts = sorted((root / "silver").rglob("*.parquet"))
    assert parts, "no silver parts"
    silver = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    silver = silver.sort_values(["source_file", "source_row"], kind="stable", ignore_index=True)
    return silver, silver.drop_duplicates("order_id", keep="first", ignore_index=True)


def avg4(total: Decimal, count: int) -> Decimal:
    return (total / count).quantize(D("0.0001"), rounding=ROUND_HALF_UP)


def test_generated_gold_matches_pandas_recomputation_from_silver(generated_gold) -> None:
    root, frames = generated_gold
    assert_user_dtypes(frames)
    assert_pandas_equals_pyarrow(root, frames)
    assert_daily_rolls_up(frames)
    silver, orders = winning_orders(root)
    assert len(orders) < len(silver)  # the sample has duplicates

    monthly = orders.groupby("sale_month").agg(order_count=("order_id", "size"), total_quantity=("quantity", "sum"),
                                               gross_revenue=("gross_revenue", "sum"), total_revenue=("revenue", "sum"),
                                               discount_sum=("discount_percent", "sum")).reset_index()
    expected = [(m, n, q, g, r, avg4(s, n)) for m, n, q, g, r, s in records(monthly)]
    assert records(frames["monthly_sales_summary"]) == expected

    daily = orders.groupby(["sale_date", "region", "category"]).agg(
        order_count=("order_id", "size"), total_quantity=("quantity", "sum"), total_revenue=("revenue", "sum")).reset_index()
    assert records(frames["daily_sales"]) == records(daily)

    regions = orders.groupby("region").agg(order_count=("order_id", "size"), total_quantity=("quantity", "sum"),
                                           total_revenue=("revenue", "sum")).reset_index()
    assert records(frames["region_wise_performance"]) == records(regions)

    categories = orders.groupby("category").agg(order_count=("order_id", "size"), discount_sum=("discount_percent", "sum"),
                                                total_revenue=("revenue", "sum")).reset_index()
    assert records(frames["category_discount_map"]) == [(c, n, avg4(s, n), r) for c, n, s, r in records(categories)]

    flags = orders.assign(region_defaulted_orders=orders["default_region"].astype("int64"),
                          region_defaulted_revenue=orders["revenue"].where(orders["default_region"], D("0.00")),
                          category_defaulted_orders=orders["default_category"].astype("int64"),
                          category_defaulted_revenue=orders["revenue"].where(orders["default_category"], D("0.00")))
    defaults = flags.groupby(["region", "category"]).agg(
        order_count=("order_id", "size"), total_revenue=("revenue", "sum"),
        region_defaulted_orders=("region_defaulted_orders", "sum"), region_defaulted_revenue=("region_defaulted_revenue", "sum"),
        category_defaulted_orders=("category_defaulted_orders", "sum"),
        category_defaulted_revenue=("category_defaulted_revenue", "sum")).reset_index()
    assert records(frames["defaults_by_region_category"]) == records(defaults)
    assert defaults["region_defaulted_orders"].sum() > 0  # the sample has rows without a region

    products = orders.groupby("product_key").agg(total_quantity=("quantity", "sum"), total_revenue=("revenue", "sum"),
                                                 order_count=("order_id", "size")).reset_index()
    products = products.sort_values(["total_revenue", "product_key"], ascending=[False, True]).head(10)
    assert records(frames["top_products"]) == [(i, *row) for i, row in enumerate(records(products), start=1)]

    top = orders.sort_values(["revenue", "order_id"], ascending=[False, True]).head(20)
    assert records(frames["anomaly_records"], ["order_id", "revenue", "source_file", "source_row"]) == records(
        top, ["order_id", "revenue", "source_file", "source_row"])

    quality = frames["data_quality"].set_index("source_file")
    assert list(quality.index) == ["sales_data_part_0001.csv", "sales_data_part_0002.csv"]
    assert quality["rows_read"].sum() == 3000
    assert quality["rows_valid"].to_dict() == silver.groupby("source_file").size().to_dict()
    assert quality["rows_in_gold"].to_dict() == orders.groupby("source_file").size().to_dict()
    assert (quality["rows_valid"] == quality["rows_in_gold"] + quality["duplicates_dropped"]).all()
    assert (quality["rows_read"] == quality["rows_valid"] + quality["rows_rejected"]).all()


def test_pyarrow_backend_keeps_decimal_types(generated_gold) -> None:
    """`dtype_backend="pyarrow"`: money stays decimal128 (not float) and sums to the same Decimal."""
    root, frames = generated_gold
    arrow = pd.read_parquet(root / "gold" / "daily_sales.parquet", dtype_backend="pyarrow")
    assert str(arrow["total_revenue"].dtype).startswith("decimal128(")
    total = arrow["total_revenue"].sum()
    assert type(total) is Decimal and total == frames["daily_sales"]["total_revenue"].sum()


# --- 3. README's "Reading gold" snippet, run where the quick start leaves gold ------------------------

SNIPPET_MARKER = "<!-- readme-snippet: reading-gold"


def readme_snippet() -> str:
    """The ```python block right after the marker in README.md: the test breaks if README drifts."""
    from tests.conftest import REPO

    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert SNIPPET_MARKER in text, "README.md lost its reading-gold snippet marker"
    after = text.split(SNIPPET_MARKER, 1)[1].split("\n", 1)[1]
    assert after.startswith("```python\n"), "the reading-gold marker must be followed by a ```python block"
    return after.removeprefix("```python\n").split("\n```", 1)[0]


def test_readme_snippet_reads_the_quick_starts_gold_with_arrow_dtypes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The quick start's run (no --data-root, no data/bronze/) on a small sample stand-in, from a
    fresh folder, then README's snippet exactly as written, in that folder."""
    import os
    import subprocess
    import sys

    from run import SAMPLE_ROOT, SAMPLE_SEED
    from tests.conftest import REPO

    generate_bronze(tmp_path / SAMPLE_ROOT / "bronze", rows=2000, files=2, seed=SAMPLE_SEED)  # instead of 1M rows
    result = subprocess.run([sys.executable, str(REPO / "run.py"), "--workers", "2"], cwd=tmp_path, env=dict(os.environ),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "running on the embedded sample" in result.stdout and not (tmp_path / "data").exists()
    monkeypatch.chdir(tmp_path)
    names: dict = {}
    exec(compile(readme_snippet(), "README.md reading-gold snippet", "exec"), names)  # noqa: S102 - README's own code
    daily = names["daily"]
    assert str(daily["total_revenue"].dtype) == "decimal128(38, 2)[pyarrow]"
    assert str(daily["sale_date"].dtype) == "date32[day][pyarrow]"
    assert str(daily["order_count"].dtype) == "int64[pyarrow]" and str(daily["region"].dtype) == "string[pyarrow]"
    regions = pd.read_parquet(tmp_path / SAMPLE_ROOT / "gold" / "region_wise_performance.parquet")
    by_region = names["by_region"]
    assert str(by_region.dtype) == "decimal128(38, 2)[pyarrow]"
    assert {k: Decimal(v) for k, v in by_region.items()} == dict(zip(regions["region"], regions["total_revenue"]))
