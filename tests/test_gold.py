"""Silver -> Gold through the real CLI: hand-computed gold values, first-wins dedup, later-run
duplicates, and the equivalences the contract promises (upsert == overwrite, one file per run ==
all files in one run, 1 worker == 4 workers).

Every expected number below was worked out by hand from the CSV text in this file (the working is
in the comments); none is computed by calling the pipeline's code.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pipeline.generator import generate_bronze
from tests.conftest import HEADER, write_bronze
from tests.gold_helpers import (
    D,
    assert_gold_equal,
    copy_bronze,
    generated_names,
    layered_config,
    read_gold,
    rows,
    run_gold,
    run_ok,
    temp_files,
)

# --- 1. hand-written bronze ----------------------------------------------------------------------
#
# Natural order of the three files (this defines "first"):
#   A = date=2026-11-24/sales_part_2.csv   (plain string order would put part_10 first)
#   B = date=2026-11-24/sales_part_10.csv
#   C = date=2026-11-25/sales_part_1.csv   (the folder decides before the file's own number)
FILE_A = "date=2026-11-24/sales_part_2.csv"
FILE_B = "date=2026-11-24/sales_part_10.csv"
FILE_C = "date=2026-11-25/sales_part_1.csv"

HAND_FILES = {
    FILE_A: "\n".join([
        HEADER,
        # 1 O01: 2 x 100.00 = 200.00, 10 % off -> 180.00
        "O01,iPhone 14,Electronics,2,100.00,0.1,north,2024-01-15,a@x.com",
        # 2 O02: quantity 3.0 -> 3, $1,234.50 -> 1234.50, gross 3703.50; region nort -> north; clothes -> fashion
        'O02,Blue  Jeans,clothes,3.0,"$1,234.50",0,nort,2024-01-20,b@x.com',
        # 3 O03: 12.345 -> 12.35 (half up), 25 % off: 9.2625 -> 9.26; email missing (default)
        "O03,Air Fryer,home appliance,1,12.345,0.25,south,2024-02-03,",
        # 4 O01 again in the same file: dropped (duplicate of row 1)
        "O01,iPhone 14,electronics,5,100.00,0,north,2024-01-15,a@x.com",
        # 5 O04 rejected (invalid_quantity): does not claim O04
        "O04,iphone-14,electronic,abc,50.00,0,east,2024-02-10,",
        # 6 rejected: missing_order_id
        ",Widget,electronics,1,10.00,0,east,2024-02-10,",
        # 7 O05 rejected: invalid_unit_price (0): does not claim O05
        "O05,Widget,electronics,1,0,0,west,2024-02-11,",
    ]) + "\n",
    FILE_B: "\n".join([
        HEADER,
        # 1 O02 again (first seen in A): dropped; email missing (default)
        "O02,Blue Jeans,fashion,1,9.99,0,south,2024-03-01,",
        # 2 O04: first VALID occurrence, counts; 50 % off: 25.00; no date -> 1970-01-01 (default)
        "O04,iPhone-14,Electronics,1,50.00,0.5,east,,c@x.com",
        # 3 O06: 2 x 12.35 = 24.70, 5 % off: 23.465 -> 23.47 (half up; half even would give 23.46)
        "O06,Air Fryer,Home Appliance,2,12.345,0.05,West,2024-02-28,",
        # 4 O07: toys is no known category -> unknown (default); 4 x 2.50 = 10.00
        "O07,Gadget,toys,4,2.50,0,north,2024-01-15,",
        # 5 O08: discount abc -> 0 (default); 100.00
        "O08,iPhone 14,electronics,1,100.00,abc,north,2024-01-15,d@x.com",
        # 6 O09: no product -> unknown_product, no region -> north (defaults); 2 x 5.00 = 10.00
        "O09,,electronics,2,5.00,0,,2024-02-11,",
    ]) + "\n",
    FILE_C: "\n".join([
        HEADER,
        # 1 O05: valid now (A's O05 was rejected): 2 x 10.00 = 20.00, 20 % off -> 16.00
        "O05,Widget,electronics,2,10.00,0.2,west,2024-02-11,e@x.com",
        # 2 ' O06 ' trims to O06, first seen in B: dropped
        " O06 ,Air Fryer,home_appliance,9,12.35,0,west,2024-02-28,",
        # 3 O10: 1234.5 -> 1234.50
        "O10,Blue Jeans,Fashion,1,1234.5,0,south,2024-03-01,f@x.com",
        # 4 O11: 0.01 % off: 9.999 -> 10.00; g@x has no tld -> email default
        "O11,Widget,electronics,1,10.00,0.0001,East,2024-03-02,g@x",
        # 5 O10 again in the same file: dropped
        "O10,Blue Jeans,fashion,1,1.00,0,south,2024-03-01,",
        # 6 O12: 0.004 rounds to 0.00 -> invalid_unit_price
        "O12,Gadget,TOYS,1,0.004,0,south,2024-03-05,",
    ]) + "\n",
}

# The 11 orders in gold (winner rows):
# id  file row product_key      category       region date        qty gross    revenue  discount
# O01 A 1  iphone_14        electronics    north  2024-01-15  2   200.00   180.00   0.1
# O02 A 2  blue_jeans       fashion        north  2024-01-20  3   3703.50  3703.50  0
# O03 A 3  air_fryer        home_appliance south  2024-02-03  1   12.35    9.26     0.25
# O04 B 2  iphone_14        electronics    east   1970-01-01  1   50.00    25.00    0.5
# O06 B 3  air_fryer        home_appliance west   2024-02-28  2   24.70    23.47    0.05
# O07 B 4  gadget           unknown        north  2024-01-15  4   10.00    10.00    0
# O08 B 5  iphone_14        electronics    north  2024-01-15  1   100.00   100.00   0
# O09 B 6  unknown_product  electronics    north  2024-02-11  2   10.00    10.00    0
# O05 C 1  widget           electronics    west   2024-02-11  2   20.00    16.00    0.2
# O10 C 3  blue_jeans       fashion        south  2024-03-01  1   1234.50  1234.50  0
# O11 C 4  widget           electronics    east   2024-03-02  1   10.00    10.00    0.0001
# total revenue 5321.73

# top_products_n and anomaly_top_n are lowered so that each cut falls inside a tie.
HAND_CONFIG = "[gold]\ntop_products_n = 5\nanomaly_top_n = 9\n"

EXPECTED_MONTHLY = [
    # sale_month, order_count, total_quantity, gross_revenue, total_revenue, avg_discount
    ("1970-01", 1, 1, D("50.00"), D("25.00"), D("0.5000")),  # O04
    # O01 O02 O07 O08: qty 2+3+4+1; gross 200+3703.50+10+100; revenue 180+3703.50+10+100; discount 0.1/4 = 0.025
    ("2024-01", 4, 10, D("4013.50"), D("3993.50"), D("0.0250")),
    # O03 O06 O09 O05: qty 1+2+2+2; gross 12.35+24.70+10+20; revenue 9.26+23.47+10+16; (0.25+0.05+0+0.2)/4 = 0.125
    ("2024-02", 4, 7, D("67.05"), D("58.73"), D("0.1250")),
    # O10 O11: discount 0.0001/2 = 0.00005 -> 0.0001 half up (half even would give 0.0000)
    ("2024-03", 2, 2, D("1244.50"), D("1244.50"), D("0.0001")),
]
EXPECTED_DAILY = [
    # sale_date, region, category, order_count, total_quantity, total_revenue
    (dt.date(1970, 1, 1), "east", "electronics", 1, 1, D("25.00")),  # O04
    (dt.date(2024, 1, 15), "north", "electronics", 2, 3, D("280.00")),  # O01 + O08
    (dt.date(2024, 1, 15), "north", "unknown", 1, 4, D("10.00")),  # O07
    (dt.date(2024, 1, 20), "north", "fashion", 1, 3, D("3703.50")),  # O02
    (dt.date(2024, 2, 3), "south", "home_appliance", 1, 1, D("9.26")),  # O03
    (dt.date(2024, 2, 11), "north", "electronics", 1, 2, D("10.00")),  # O09
    (dt.date(2024, 2, 11), "west", "electronics", 1, 2, D("16.00")),  # O05
    (dt.date(2024, 2, 28), "west", "home_appliance", 1, 2, D("23.47")),  # O06
    (dt.date(2024, 3, 1), "south", "fashion", 1, 1, D("1234.50")),  # O10
    (dt.date(2024, 3, 2), "east", "electronics", 1, 1, D("10.00")),  # O11
]
EXPECTED_REGIONS = [
    # region, order_count, total_quantity, total_revenue
    ("east", 2, 2, D("35.00")),  # O04 25.00 + O11 10.00
    ("north", 5, 12, D("4003.50")),  # O01 O02 O07 O08 O09: 180+3703.50+10+100+10
    ("south", 2, 2, D("1243.76")),  # O03 9.26 + O10 1234.50
    ("west", 2, 4, D("39.47")),  # O06 23.47 + O05 16.00
]
EXPECTED_CATEGORIES = [
    # category, order_count, avg_discount, total_revenue
    # O01 O04 O08 O09 O05 O11: (0.1+0.5+0+0+0.2+0.0001)/6 = 0.13335 -> 0.1334; 180+25+100+10+16+10
    ("electronics", 6, D("0.1334"), D("341.00")),
    ("fashion", 2, D("0.0000"), D("4938.00")),  # O02 + O10
    ("home_appliance", 2, D("0.1500"), D("32.73")),  # O03 + O06: (0.25+0.05)/2
    ("unknown", 1, D("0.0000"), D("10.00")),  # O07
]
EXPECTED_TOP_PRODUCTS = [
    # rank, product_key, total_quantity, total_revenue, order_count
    (1, "blue_jeans", 4, D("4938.00"), 2),
    (2, "iphone_14", 4, D("305.00"), 3),  # O01 180 + O04 25 + O08 100
    (3, "air_fryer", 3, D("32.73"), 2),
    (4, "widget", 3, D("26.00"), 2),
    (5, "gadget", 4, D("10.00"), 1),  # ties with unknown_product at 10.00: gadget < unknown_product
]
EXPECTED_ANOMALIES = [
    # rank, order_id, revenue, gross_revenue, discount_amount, unit_price, quantity, source_file, source_row
    (1, "O02", D("3703.50"), D("3703.50"), D("0.00"), D("1234.50"), 3, FILE_A, 2),
    (2, "O10", D("1234.50"), D("1234.50"), D("0.00"), D("1234.50"), 1, FILE_C, 3),
    (3, "O01", D("180.00"), D("200.00"), D("20.00"), D("100.00"), 2, FILE_A, 1),
    (4, "O08", D("100.00"), D("100.00"), D("0.00"), D("100.00"), 1, FILE_B, 5),
    (5, "O04", D("25.00"), D("50.00"), D("25.00"), D("50.00"), 1, FILE_B, 2),
    (6, "O06", D("23.47"), D("24.70"), D("1.23"), D("12.35"), 2, FILE_B, 3),
    (7, "O05", D("16.00"), D("20.00"), D("4.00"), D("10.00"), 2, FILE_C, 1),
    # three orders at 10.00 (O07, O09, O11): order_id ascending, the cut at 9 leaves O11 out
    (8, "O07", D("10.00"), D("10.00"), D("0.00"), D("2.50"), 4, FILE_B, 4),
    (9, "O09", D("10.00"), D("10.00"), D("0.00"), D("5.00"), 2, FILE_B, 6),
]
DQ_COLUMNS = ["source_file", "rows_read", "rows_valid", "rows_rejected", "rejected_malformed_row", "rejected_missing_order_id",
              "rejected_invalid_quantity", "rejected_invalid_unit_price", "default_product_name", "default_category",
              "default_discount_percent", "default_region", "default_sale_date", "default_customer_email",
              "duplicates_dropped", "rows_in_gold"]
EXPECTED_DATA_QUALITY = [
    # file, read, valid, rejected, malformed, missing_id, bad_qty, bad_price,
    #   defaults: product, category, discount, region, date, email; duplicates, in gold
    (FILE_A, 7, 4, 3, 0, 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 3),  # email: row 3; duplicate: row 4 (O01)
    (FILE_B, 6, 6, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 4, 1, 5),  # email: rows 1 3 4 6; duplicate: row 1 (O02)
    (FILE_C, 6, 5, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 3, 2, 3),  # email: rows 2 4 5; duplicates: rows 2 (O06) and 5 (O10)
]


@pytest.fixture(scope="module")
def hand_gold(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("hand")
    root = base / "data"
    write_bronze(root, HAND_FILES)
    result = run_ok(root, layered_config(base, HAND_CONFIG))  # the whole CLI run, report included
    return root, read_gold(root), result


def test_monthly_sales_summary_by_hand(hand_gold) -> None:
    _, gold, _ = hand_gold
    table = gold["monthly_sales_summary"]
    assert table.column_names == ["sale_month", "order_count", "total_quantity", "gross_revenue", "total_revenue", "avg_discount"]
    assert str(table.schema.field("gross_revenue").type).startswith("decimal128(")
    assert str(table.schema.field("total_revenue").type).startswith("decimal128(")
    assert rows(table, table.column_names) == EXPECTED_MONTHLY


def test_daily_sales_by_hand(hand_gold) -> None:
    _, gold, _ = hand_gold
    table = gold["daily_sales"]
    assert table.column_names == ["sale_date", "region", "category", "order_count", "total_quantity", "total_revenue"]
    assert str(table.schema.field("total_revenue").type).startswith("decimal128(")
    assert rows(table, table.column_names) == EXPECTED_DAILY


def test_region_wise_performance_by_hand(hand_gold) -> None:
    _, gold, _ = hand_gold
    table = gold["region_wise_performance"]
    assert table.column_names == ["region", "order_count", "total_quantity", "total_revenue"]
    assert rows(table, table.column_names) == EXPECTED_REGIONS


def test_category_discount_map_by_hand(hand_gold) -> None:
    _, gold, _ = hand_gold
    table = gold["category_discount_map"]
    assert table.column_names == ["category", "order_count", "avg_discount", "total_revenue"]
    assert rows(table, table.column_names) == EXPECTED_CATEGORIES


def test_top_products_by_hand_ties_by_product_key(hand_gold) -> None:
    _, gold, _ = hand_gold
    table = gold["top_products"]
    assert table.column_names == ["rank", "product_key", "total_quantity", "total_revenue", "order_count"]
    assert str(table.schema.field("total_revenue").type).startswith("decimal128(")
    assert rows(table, table.column_names) == EXPECTED_TOP_PRODUCTS


def test_anomaly_records_by_hand_ties_by_order_id(hand_gold) -> None:
    _, gold, _ = hand_gold
    table = gold["anomaly_records"]
    columns = ["rank", "order_id", "revenue", "gross_revenue", "discount_amount", "unit_price", "quantity", "source_file", "source_row"]
    assert rows(table, columns) == EXPECTED_ANOMALIES
    assert "customer_email" not in table.column_names  # gold never holds emails
    for money in ("revenue", "gross_revenue", "discount_amount", "unit_price"):
        assert str(table.schema.field(money).type).startswith("decimal128(")
    # the whole silver row of the order with the most defaults: O04 (sentinel date)
    o04 = {r["order_id"]: r for r in table.to_pylist()}["O04"]
    assert (o04["product_name"], o04["product_key"], o04["category"], o04["region"]) == ("iphone-14", "iphone_14", "electronics", "east")
    assert (o04["sale_date"], o04["sale_month"], o04["discount_percent"]) == (dt.date(1970, 1, 1), "1970-01", D("0.5"))
    assert o04["default_sale_date"] is True and o04["default_discount_percent"] is False
    # O09: the unknown product and the default region
    o09 = {r["order_id"]: r for r in table.to_pylist()}["O09"]
    assert (o09["product_name"], o09["product_key"], o09["region"]) == ("unknown_product", "unknown_product", "north")
    assert o09["default_product_name"] is True and o09["default_region"] is True


def test_data_quality_by_hand(hand_gold) -> None:
    _, gold, _ = hand_gold
    table = gold["data_quality"]
    assert rows(table, DQ_COLUMNS) == EXPECTED_DATA_QUALITY
    # every valid row is either in gold or counted as a duplicate
    for r in table.to_pylist():
        assert r["rows_valid"] == r["rows_in_gold"] + r["duplicates_dropped"]


def test_hand_run_leaves_no_temp_files_and_rerun_changes_nothing(hand_gold, tmp_path: Path) -> None:
    root, gold, _ = hand_gold
    assert temp_files(root) == []
    before = {p.name: p.stat().st_mtime_ns for p in (root / "gold").glob("*.parquet")}
    again = run_ok(root, layered_config(tmp_path, HAND_CONFIG))
    assert "Nothing to do" in again.stdout
    assert {p.name: p.stat().st_mtime_ns for p in (root / "gold").glob("*.parquet")} == before
    assert_gold_equal(read_gold(root), gold)


# --- 2. first wins, in natural file order ----------------------------------------------------------

ORDER_FILES = {
    # written in an order that is neither natural nor plain string order
    "date=2026-11-25/part_1.csv": HEADER + "\nX3,p,electronics,1,30.00,0,north,2024-01-01,\n",
    "b/part_10.csv": HEADER + "\nX1,p,electronics,1,10.00,0,north,2024-01-01,\nX2,p,electronics,1,20.00,0,north,2024-01-01,\n",
    "date=2026-11-24/part_9.csv": HEADER + "\nX3,p,electronics,1,31.00,0,north,2024-01-01,\nX2,p,electronics,1,21.00,0,north,2024-01-01,\n",
    "b/part_2.csv": HEADER + "\nX1,p,electronics,1,11.00,0,north,2024-01-01,\nX1,p,electronics,1,12.00,0,north,2024-01-01,\n"
                    "X4,p,electronics,1,40.00,0,north,2024-01-01,\nX4,p,electronics,1,41.00,0,north,2024-01-01,\n",
}
NATURAL_ORDER = ["b/part_2.csv", "b/part_10.csv", "date=2026-11-24/part_9.csv", "date=2026-11-25/part_1.csv"]


@pytest.mark.parametrize("chunk_rows, workers", [pytest.param(500_000, "1", marks=pytest.mark.slow), (1, "2")])
def test_first_valid_occurrence_wins_in_natural_file_order(tmp_path: Path, chunk_rows: int, workers: str) -> None:
    """chunk_rows = 1 puts every record in its own silver part, so first-wins must hold across parts too."""
    root = tmp_path / "data"
    write_bronze(root, ORDER_FILES)
    run_gold(root, layered_config(tmp_path, f"[pipeline]\nchunk_rows = {chunk_rows}\n"), "--workers", workers)
    gold = read_gold(root)
    winners = rows(gold["anomaly_records"].sort_by("order_id"), ["order_id", "unit_price", "source_file", "source_row"])
    assert winners == [
        ("X1", D("11.00"), "b/part_2.csv", 1),  # part_2 before part_10; row 1 before row 2
        ("X2", D("20.00"), "b/part_10.csv", 2),  # b/ before date=...
        ("X3", D("31.00"), "date=2026-11-24/part_9.csv", 1),  # 11-24 before 11-25
        ("X4", D("40.00"), "b/part_2.csv", 3),  # within a file: the earlier row
    ]
    assert rows(gold["data_quality"], ["source_file", "duplicates_dropped", "rows_in_gold"]) == [
        ("b/part_2.csv", 2, 2),
        ("b/part_10.csv", 1, 1),
        ("date=2026-11-24/part_9.csv", 1, 1),
        ("date=2026-11-25/part_1.csv", 1, 0),
    ]
    assert rows(gold["region_wise_performance"], ["region", "order_count", "total_revenue"]) == [("north", 4, D("102.00"))]


# --- 3. a duplicate arriving in a later run -----------------------------------------------------------

LATER_A = HEADER + "\nK1,Thing,electronics,1,10.00,0,north,2024-01-01,\nK2,Thing,electronics,2,5.00,0,north,2024-01-01,\n"
# K1 again, with other values everywhere: if it leaked into gold it would add a month, region,
# category, day and product.
LATER_B = HEADER + "\nK1,Other,fashion,7,99.00,0.5,south,2024-05-05,\nK3,Thing,electronics,1,1.00,0,north,2024-01-01,\n"


# overwrite with a later duplicate: test_upsert_keeps_data_quality_in_natural_file_order (the default run)
@pytest.mark.parametrize("mode", ["upsert", pytest.param("overwrite", marks=pytest.mark.slow)])
def test_duplicate_in_a_later_run_is_dropped(tmp_path: Path, mode: str) -> None:
    root = tmp_path / "data"
    env = layered_config(tmp_path, f"[gold]\nmode = {mode}\n")
    write_bronze(root, {"a.csv": LATER_A})
    run_gold(root, env)
    first = read_gold(root)
    assert rows(first["anomaly_records"], ["order_id", "revenue", "source_file", "source_row"]) == [
        ("K1", D("10.00"), "a.csv", 1), ("K2", D("10.00"), "a.csv", 2)]

    write_bronze(root, {"b.csv": LATER_B})
    run_gold(root, env)
    gold = read_gold(root)
    assert rows(gold["data_quality"], ["source_file", "rows_valid", "duplicates_dropped", "rows_in_gold"]) == [
        ("a.csv", 2, 0, 2), ("b.csv", 2, 1, 1)]
    assert rows(gold["monthly_sales_summary"], ["sale_month", "order_count", "total_quantity", "gross_revenue", "total_revenue", "avg_discount"]) == [
        ("2024-01", 3, 4, D("21.00"), D("21.00"), D("0.0000"))]
    assert rows(gold["daily_sales"], gold["daily_sales"].column_names) == [(dt.date(2024, 1, 1), "north", "electronics", 3, 4, D("21.00"))]
    assert rows(gold["region_wise_performance"], ["region", "order_count", "total_quantity", "total_revenue"]) == [("north", 3, 4, D("21.00"))]
    assert rows(gold["category_discount_map"], ["category", "order_count", "avg_discount", "total_revenue"]) == [
        ("electronics", 3, D("0.0000"), D("21.00"))]
    assert rows(gold["top_products"], ["rank", "product_key", "total_quantity", "total_revenue", "order_count"]) == [(1, "thing", 4, D("21.00"), 3)]
    # K1 is still A's row, unchanged
    assert rows(gold["anomaly_records"], ["order_id", "revenue", "source_file", "source_row"]) == [
        ("K1", D("10.00"), "a.csv", 1), ("K2", D("10.00"), "a.csv", 2), ("K3", D("1.00"), "b.csv", 2)]
    assert gold["anomaly_records"].slice(0, 2).equals(first["anomaly_records"])

    # the same two files in one run give the same gold
    once = tmp_path / "once"
    write_bronze(once, {"a.csv": LATER_A, "b.csv": LATER_B})
    run_gold(once, env)
    assert_gold_equal(gold, read_gold(once), f"{mode}: two runs vs one run")


# --- 4. equivalences -----------------------------------------------------------------------------------

def test_upsert_keeps_data_quality_in_natural_file_order(tmp_path: Path) -> None:
    """Files named part_2 / part_10 (not zero padded) ingested over two runs with upsert."""
    files = {"part_2.csv": HEADER + "\nP1,a,electronics,1,1.00,0,north,2024-01-01,\n",
             "part_10.csv": HEADER + "\nP2,b,fashion,1,2.00,0,south,2024-02-01,\nP1,a,electronics,1,1.00,0,north,2024-01-01,\n"}
    results = {}
    for mode in ("upsert", "overwrite"):
        root = tmp_path / mode / "data"
        env = layered_config(tmp_path / mode, f"[gold]\nmode = {mode}\n")
        write_bronze(root, {"part_2.csv": files["part_2.csv"]})
        run_gold(root, env)
        write_bronze(root, {"part_10.csv": files["part_10.csv"]})
        run_gold(root, env)
        results[mode] = read_gold(root)
    expected_dq = [("part_2.csv", 0, 1), ("part_10.csv", 1, 1)]  # natural order, as in a single run
    assert rows(results["overwrite"]["data_quality"], ["source_file", "duplicates_dropped", "rows_in_gold"]) == expected_dq
    assert rows(results["upsert"]["data_quality"], ["source_file", "duplicates_dropped", "rows_in_gold"]) == expected_dq
    assert_gold_equal(results["upsert"], results["overwrite"], "upsert vs overwrite")


@pytest.fixture(scope="module")
def generated_bronze(tmp_path_factory: pytest.TempPathFactory) -> Path:
    bronze = tmp_path_factory.mktemp("generated") / "bronze"
    generate_bronze(bronze, rows=15_000, files=3, seed=3)  # three files: two runs that upsert into gold
    return bronze


def _one_file_per_run(bronze: Path, base: Path, mode: str) -> dict:
    root = base / "data"
    env = layered_config(base, f"[gold]\nmode = {mode}\n")
    names = generated_names(bronze)
    assert len(names) == 3
    for count in range(1, len(names) + 1):
        copy_bronze(bronze, root, names[:count])
        run_gold(root, env)
    assert temp_files(root) == []
    return read_gold(root)


def _all_in_one_run(bronze: Path, base: Path, workers: int, mode: str = "upsert") -> dict:
    root = base / "data"
    copy_bronze(bronze, root)
    run_gold(root, layered_config(base, f"[gold]\nmode = {mode}\n"), "--workers", str(workers))
    assert temp_files(root) == []
    return read_gold(root)


@pytest.fixture(scope="module")
def one_run_gold(generated_bronze: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Gold of all the generated files in one run, one worker, the default config."""
    return _all_in_one_run(generated_bronze, tmp_path_factory.mktemp("one-run"), workers=1)


@pytest.mark.slow  # upsert = overwrite, two runs = one, an upsert run = one run: each proved by a default test
def test_upsert_overwrite_incremental_and_single_run_all_agree(tmp_path: Path, generated_bronze: Path, one_run_gold: dict) -> None:
    reference = one_run_gold
    assert reference["data_quality"].num_rows == 3
    assert sum(reference["data_quality"].column("duplicates_dropped").to_pylist()) > 0  # the sample has duplicates
    upsert = _one_file_per_run(generated_bronze, tmp_path / "upsert", "upsert")
    overwrite = _one_file_per_run(generated_bronze, tmp_path / "overwrite", "overwrite")
    assert_gold_equal(upsert, overwrite, "upsert vs overwrite (one file per run)")
    assert_gold_equal(upsert, reference, "one file per run vs all files in one run")


@pytest.mark.slow  # the default run compares 1 and 4 workers on many chunks (below) and in tests/test_bronze_pipeline.py
def test_one_worker_equals_four_workers(tmp_path: Path, generated_bronze: Path) -> None:
    one = _all_in_one_run(generated_bronze, tmp_path / "w1", workers=1, mode="overwrite")
    four = _all_in_one_run(generated_bronze, tmp_path / "w4", workers=4, mode="overwrite")
    assert_gold_equal(four, one, "--workers 4 vs --workers 1")


def test_worker_count_does_not_change_gold_with_small_chunks(tmp_path: Path, generated_bronze: Path, one_run_gold: dict) -> None:
    """Many chunks finishing in any order: gold still depends only on input order."""
    tables = []
    for workers in (1, 4):
        base = tmp_path / f"w{workers}"
        root = base / "data"
        copy_bronze(generated_bronze, root)
        run_gold(root, layered_config(base, "[pipeline]\nchunk_rows = 1500\nsilver_buckets = 8\n"), "--workers", str(workers))
        tables.append(read_gold(root))
    assert_gold_equal(tables[1], tables[0], "chunk_rows 1500: --workers 4 vs --workers 1")
    assert_gold_equal(tables[0], one_run_gold, "chunk_rows 1500, 8 buckets vs the default config")
