"""The field rules of CONTRACT.md, table by table. Every expected value is worked out by hand."""
from __future__ import annotations

import datetime as dt
import re
from decimal import ROUND_HALF_UP, Decimal, localcontext

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import contract as c
from pipeline.bronze.cleaning import CleanResult, clean_records
from pipeline.bronze.hashing import xxh64
from pipeline.settings import Settings

SETTINGS = Settings()
SOURCE = "date=2026-11-25/sales_data_part_0003.csv"
VALID = {"order_id": "ORD-1", "quantity": "1", "unit_price": "10.00"}
SENTINEL = dt.date(1970, 1, 1)
WHITE_SPACE = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000"


def raw_table(rows: list[dict[str, str | None]], first_row: int = 1) -> pa.Table:
    """The reader's output: one string column per input column, plus source_row."""
    columns = {name: pa.array([row.get(name) for row in rows], pa.string()) for name in c.INPUT_COLUMNS}
    columns["source_row"] = pa.array(range(first_row, first_row + len(rows)), pa.int64())
    return pa.table(columns)


def clean(rows: list[dict[str, str | None]], config: Settings = SETTINGS) -> CleanResult:
    return clean_records(raw_table(rows), config, SOURCE)


def clean_one(config: Settings = SETTINGS, **fields: str | None) -> CleanResult:
    return clean([{**VALID, **fields}], config)


def silver_row(config: Settings = SETTINGS, **fields: str | None) -> dict:
    result = clean_one(config, **fields)
    assert result.quarantine.num_rows == 0, result.quarantine.column("reason").to_pylist()
    return result.silver.to_pylist()[0]


def reason_of(**fields: str | None) -> str | None:
    """The quarantine reason of one record, None when it reached silver."""
    reasons = clean_one(**fields).quarantine.column("reason").to_pylist()
    return reasons[0] if reasons else None


# --- trimming and missing values ------------------------------------------------------------------

@pytest.mark.parametrize("text", [" ORD-7 ", "\tORD-7\t", "\u00a0ORD-7\u00a0", "\u3000ORD-7\r\n", WHITE_SPACE + "ORD-7" + WHITE_SPACE])
def test_values_are_trimmed_of_unicode_white_space(text: str) -> None:
    assert silver_row(order_id=text)["order_id"] == "ORD-7"


def test_white_space_is_what_python_isspace_says() -> None:
    assert set(WHITE_SPACE) == {chr(i) for i in range(0x110000) if chr(i).isspace()}


@pytest.mark.parametrize("space", list(WHITE_SPACE), ids=[f"U+{ord(s):04X}" for s in WHITE_SPACE])
def test_every_white_space_collapses_inside_text(space: str) -> None:
    row = silver_row(product_name=f"{space}Big{space}{space}Box{space}", category=f"home{space}appliance")
    assert (row["product_name"], row["category"]) == ("big box", "home_appliance")


def test_zero_width_space_is_not_white_space() -> None:
    assert silver_row(order_id="\u200bORD-7")["order_id"] == "\u200bORD-7"


@pytest.mark.parametrize("token", [None, "", " ", "\t\u00a0", "null", "NULL", "Null", "none", "None", "NONE",
                                   "nan", "NaN", "NAN", "n/a", "N/A", "N/a", "na", "NA", "Na", " \u00a0na\t"])
def test_null_tokens_mean_missing(token: str | None) -> None:
    assert reason_of(order_id=token) == c.MISSING_ORDER_ID
    row = silver_row(product_name=token)
    assert (row["product_name"], row["default_product_name"]) == ("unknown_product", True)


@pytest.mark.parametrize("text", ["nul", "nulls", "n.a.", "n / a", "0", "-", "nan1", "nana"])
def test_near_null_tokens_are_values(text: str) -> None:
    assert silver_row(order_id=text)["order_id"] == text


# --- hard rules --------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("3", 3), ("+3", 3), ("3.0", 3), (" 3 ", 3), ("\u00a03\t", 3), ("03", 3), ("3.000", 3), ("3.", 3),
    ("1", 1), ("1000000", 1_000_000),
    ("1e3", 1000), ("1E3", 1000), ("2.50e1", 25), (".5e1", 5), ("3e0", 3),  # exact whole numbers
])
def test_valid_quantity(text: str, expected: int) -> None:
    assert silver_row(quantity=text)["quantity"] == expected


@pytest.mark.parametrize("text", [
    "2.5", "zero", "-2", "0", "-0", "+0", "0.0", "1000001", "1e7", "١٢", "٣", "0x10", "1e400", "1e-400", "3e-1",
    "1,000", "$3", "inf", "nan", "3 4", "--3", "+-3", ".", "", None, "3.0000001", "e3", "3e", "99999999999999999999999",
])
def test_invalid_quantity(text: str | None) -> None:
    assert reason_of(quantity=text) == c.INVALID_QUANTITY


def test_max_quantity_is_configurable() -> None:
    config = SETTINGS.with_changes(max_quantity=10)
    assert silver_row(config, quantity="10")["quantity"] == 10
    assert clean_one(config, quantity="11").rejected_by_reason[c.INVALID_QUANTITY] == 1


@pytest.mark.parametrize("text, expected", [
    ("10", "10.00"), ("$12.50", "12.50"), ("€8", "8.00"), ("£3.10", "3.10"), ("+$5", "5.00"),
    ("1,234.50", "1234.50"), ("$1,000,000,000.00", "1000000000.00"), ("12,345,678", "12345678.00"),
    ("1e3", "1000.00"), ("1.5E2", "150.00"), ("1E+2", "100.00"), ("1e-2", "0.01"), ("125e-2", "1.25"),
    ("12.345", "12.35"), ("12.344", "12.34"), ("12.3449999", "12.34"), ("0.005", "0.01"), ("0.0149", "0.01"),
    (".5", "0.50"), ("5.", "5.00"), ("007.10", "7.10"), (" 9.99\u00a0", "9.99"),
    ("1000000000", "1000000000.00"), ("999999999.999", "1000000000.00"),
    ("1000000000.004", "1000000000.00"),  # the bound applies to the stored (rounded) price
])
def test_valid_unit_price(text: str, expected: str) -> None:
    assert silver_row(unit_price=text)["unit_price"] == Decimal(expected)


@pytest.mark.parametrize("text", [
    "0.004", "0", "0.00", "-5", "-0.01", "-$5", "$-5", "5$", "$", "€", "nan", "NaN", "inf", "-inf", "Infinity", "abc",
    "1000000000.01", "1000000000.005", "1e400", "1e10", "0x10", "١٢", "1,23.00", "12,34", "1234,567", ",123", "1,2345",
    "12 .5", "12.5.1", "$$5", "", None, "1e-400", "US$5", "¥5",
])
def test_invalid_unit_price(text: str | None) -> None:
    assert reason_of(unit_price=text) == c.INVALID_UNIT_PRICE


def test_max_unit_price_is_configurable() -> None:
    config = SETTINGS.with_changes(max_unit_price=100)
    assert silver_row(config, unit_price="100")["unit_price"] == Decimal("100.00")
    assert clean_one(config, unit_price="100.01").quarantine.column("reason").to_pylist() == [c.INVALID_UNIT_PRICE]


@pytest.mark.parametrize("fields, expected", [
    ({"order_id": None, "quantity": "zero", "unit_price": "nan"}, c.MISSING_ORDER_ID),
    ({"order_id": "", "quantity": "2.5"}, c.MISSING_ORDER_ID),
    ({"quantity": "-2", "unit_price": "abc"}, c.INVALID_QUANTITY),
    ({"quantity": None, "unit_price": None}, c.INVALID_QUANTITY),
    ({"unit_price": "0.004"}, c.INVALID_UNIT_PRICE),
    ({}, None),
])
def test_first_failing_reason_wins(fields: dict, expected: str | None) -> None:
    assert reason_of(**fields) == expected


def test_rejected_row_keeps_raw_untrimmed_values_and_lineage() -> None:
    rows = [{**VALID, "order_id": "OK"}, {"order_id": " \u00a0", "product_name": "  Widget\t", "category": None,
                                          "quantity": " 3 ", "unit_price": "$1,0", "discount_percent": "0.1 ",
                                          "region": "Nort", "sale_date": "2024-02-30", "customer_email": "A@B.CO "}]
    result = clean_records(raw_table(rows, first_row=41), SETTINGS, SOURCE)
    assert result.quarantine.to_pylist() == [{
        "source_file": SOURCE, "source_row": 42, "reason": c.MISSING_ORDER_ID, "raw_text": None,
        "raw_order_id": " \u00a0", "raw_product_name": "  Widget\t", "raw_category": None, "raw_quantity": " 3 ",
        "raw_unit_price": "$1,0", "raw_discount_percent": "0.1 ", "raw_region": "Nort", "raw_sale_date": "2024-02-30",
        "raw_customer_email": "A@B.CO ",
    }]
    assert result.silver.column("source_row").to_pylist() == [41]


# --- soft rules --------------------------------------------------------------------------------

@pytest.mark.parametrize("text, name, key", [
    ("iPhone 14", "iphone 14", "iphone_14"),
    ("iphone-14", "iphone-14", "iphone_14"),
    ("IPHONE  14", "iphone 14", "iphone_14"),
    ("  Galaxy \u00a0 S23\t", "galaxy s23", "galaxy_s23"),
    ("--Levi's 501--", "--levi's 501--", "levi_s_501"),
    ("Café Crème", "café crème", "caf_cr_me"),
    ("???", "???", "unknown_product"),  # empty key: default, but product_name itself was given
    ("ΟΔΟΣ", "οδος", "unknown_product"),  # Python's final sigma, not Arrow's σ
    ("İstanbul", "i\u0307stanbul", "i_stanbul"),  # Python lower-cases İ to i + combining dot
    ("Widget_X", "widget_x", "widget_x"),
    ("\u212a-Pop", "k-pop", "k_pop"),  # the Kelvin sign lower-cases to an ASCII k
])
def test_product_name_and_key(text: str, name: str, key: str) -> None:
    row = silver_row(product_name=text)
    assert (row["product_name"], row["product_key"], row["default_product_name"]) == (name, key, False)


@pytest.mark.parametrize("text", [None, "", "null", " N/A "])
def test_missing_product_name_defaults(text: str | None) -> None:
    row = silver_row(product_name=text)
    assert (row["product_name"], row["product_key"], row["default_product_name"]) == ("unknown_product", "unknown_product", True)


@pytest.mark.parametrize("text, expected", [
    ("electronics", "electronics"), ("Electronics", "electronics"), ("electronic", "electronics"),
    (" ELECTRONIC ", "electronics"), ("home appliance", "home_appliance"), ("Home  Appliance", "home_appliance"),
    ("home\u00a0appliance", "home_appliance"), ("HomeAppliance", "home_appliance"), ("home-appl", "home_appliance"),
    ("home_appliance", "home_appliance"), ("fashion", "fashion"), ("cloths", "fashion"), ("Clothes", "fashion"),
    ("CLOTHING", "fashion"),
])
def test_category_aliases(text: str, expected: str) -> None:
    row = silver_row(category=text)
    assert (row["category"], row["default_category"]) == (expected, False)


@pytest.mark.parametrize("text", ["toys", "electronicss", "home appl", "", None, "none"])
def test_unknown_category_defaults(text: str | None) -> None:
    row = silver_row(category=text)
    assert (row["category"], row["default_category"]) == ("unknown", True)


def test_category_aliases_are_configurable() -> None:
    config = SETTINGS.with_changes(category_aliases={"toys": ["Toy", "games"]})
    assert silver_row(config, category="GAMES")["category"] == "toys"
    assert silver_row(config, category="electronics")["category"] == "unknown"


@pytest.mark.parametrize("text, expected", [
    ("north", "north"), ("North", "north"), ("NORT", "north"), (" nort\u00a0", "north"), ("south", "south"),
    ("SOUTH", "south"), ("East", "east"), ("west", "west"),
])
def test_region_aliases(text: str, expected: str) -> None:
    row = silver_row(region=text)
    assert (row["region"], row["default_region"]) == (expected, False)


@pytest.mark.parametrize("text", ["central", "n", "", None, "NA"])
def test_unknown_region_defaults_to_configured_region(text: str | None) -> None:
    row = silver_row(region=text)
    assert (row["region"], row["default_region"]) == ("north", True)
    row = silver_row(SETTINGS.with_changes(default_region="west"), region=text)
    assert (row["region"], row["default_region"]) == ("west", True)


@pytest.mark.parametrize("text, expected", [
    ("0.25", "0.25"), ("1", "1"), ("1.0", "1"), ("0", "0"), ("-0", "0"), (" 0.1 ", "0.1"), (".5", "0.5"),
    ("1e-1", "0.1"), ("0.125", "0.125"), ("0.1234565", "0.123457"), ("0.1234564", "0.123456"),
    ("1.0000004", "1"),  # the bound applies to the stored (6 place) value
])
def test_valid_discount(text: str, expected: str) -> None:
    row = silver_row(discount_percent=text)
    assert (row["discount_percent"], row["default_discount_percent"]) == (Decimal(expected), False)


@pytest.mark.parametrize("text", ["1.5", "-0.1", "1.0000005", "25%", "abc", "", None, "nan", "inf", "0x1", "$0.1", "1,5"])
def test_invalid_discount_defaults_to_zero(text: str | None) -> None:
    row = silver_row(discount_percent=text)
    assert (row["discount_percent"], row["default_discount_percent"]) == (Decimal("0"), True)


@pytest.mark.parametrize("text, expected", [
    ("2024-03-05", dt.date(2024, 3, 5)),  # %Y-%m-%d
    ("25/12/2024", dt.date(2024, 12, 25)),  # only %d/%m/%Y
    ("05/03/2024", dt.date(2024, 3, 5)),  # %d/%m/%Y before any month-first reading
    ("12-25-2024", dt.date(2024, 12, 25)),  # only %m-%d-%Y
    ("2024/03/05", dt.date(2024, 3, 5)),  # %Y/%m/%d
    ("2024-3-5", dt.date(2024, 3, 5)),  # strptime accepts unpadded numbers
    ("2024-02-29", dt.date(2024, 2, 29)),
    ("2000-02-29", dt.date(2000, 2, 29)),
    ("2024-03-05T10:20:00", dt.date(2024, 3, 5)),
    ("2024-03-05 10:20:00", dt.date(2024, 3, 5)),
    ("2024-03-05T10:20", dt.date(2024, 3, 5)),
    ("2024-03-05T10:20:00.123456", dt.date(2024, 3, 5)),
    ("2024-03-05T10:20:00Z", dt.date(2024, 3, 5)),
    ("2024-03-05T23:59:59+05:30", dt.date(2024, 3, 5)),  # the date as written, no shift to UTC
    ("2024-03-05T00:00:00-0800", dt.date(2024, 3, 5)),
])
def test_valid_sale_date(text: str, expected: dt.date) -> None:
    row = silver_row(sale_date=text)
    month = f"{expected.year:04d}-{expected.month:02d}"
    assert (row["sale_date"], row["sale_month"], row["default_sale_date"]) == (expected, month, False)


@pytest.mark.parametrize("text", [
    "2024-02-30", "2023-02-29", "1900-02-29", "2024-13-01", "2024-00-10", "31/04/2024", "04-31-2024",
    "٢٠٢٤-٠٣-٠٥", "２０２４-03-05", "2024-03-05T24:00:00", "2024-03-05T10:60:00", "2024-02-30T10:00:00",
    "2024-03-05T10:20:00+25:00", "20240305", "yesterday", "2024-03", "", None, "null",
])
def test_invalid_sale_date_gets_sentinel(text: str | None) -> None:
    row = silver_row(sale_date=text)
    assert (row["sale_date"], row["sale_month"], row["default_sale_date"]) == (SENTINEL, "1970-01", True)


def test_date_formats_are_configurable_and_tried_in_order() -> None:
    config = SETTINGS.with_changes(date_formats=("%d.%m.%Y", "%m/%d/%Y"))
    assert silver_row(config, sale_date="05.03.2024")["sale_date"] == dt.date(2024, 3, 5)
    assert silver_row(config, sale_date="03/05/2024")["sale_date"] == dt.date(2024, 3, 5)
    assert silver_row(config, sale_date="2024-03-05")["sale_date"] == SENTINEL
    assert silver_row(config, sale_date="2024-03-05T10:20:00")["sale_date"] == dt.date(2024, 3, 5)


@pytest.mark.parametrize("text, expected", [
    ("a@b.co", "a@b.co"), ("A@B.CO", "a@b.co"), (" a.b+c@d.example.org\t", "a.b+c@d.example.org"),
    ("x@y.z", "x@y.z"), ("ÉLODIE@EXAMPLE.FR", "élodie@example.fr"),
])
def test_valid_email(text: str, expected: str) -> None:
    row = silver_row(customer_email=text)
    assert (row["customer_email"], row["default_customer_email"]) == (expected, False)


@pytest.mark.parametrize("text", ["a@@b.co", "a@b@c.co", "a b@c.co", "a\u00a0b@c.co", "a@b", "@b.co", "a@.co",
                                  "a@b.", "a@b..co", "ab.co", "", None, "null"])
def test_invalid_email_is_null_and_counted(text: str | None) -> None:
    row = silver_row(customer_email=text)
    assert (row["customer_email"], row["default_customer_email"]) == (None, True)


# --- money -------------------------------------------------------------------------------------

@pytest.mark.parametrize("quantity, price, discount, gross, revenue, discount_amount", [
    # 3 * 10.05 = 30.15; 30.15 * 0.875 = 26.38125 -> 26.38; 30.15 - 26.38 = 3.77
    ("3", "10.05", "0.125", "30.15", "26.38", "3.77"),
    # 30.15 * 0.5 = 15.075: a tie, rounded up (a binary float holds 15.074999...)
    ("3", "10.05", "0.5", "30.15", "15.08", "15.07"),
    # 0.01 * 0.5 = 0.005 -> 0.01
    ("1", "0.01", "0.5", "0.01", "0.01", "0.00"),
    ("2", "19.99", "0", "39.98", "39.98", "0.00"),
    ("2", "19.99", "1", "39.98", "0.00", "39.98"),
    # the discount was 0.1234565 -> 0.123457: 100 * 0.876543 = 87.6543 -> 87.65
    ("1", "100", "0.1234565", "100.00", "87.65", "12.35"),
    # 999999 * 999999999.99 = 999998999990000.01 (17 digits: a float would lose the cents);
    # * 0.999999 = 999998999990000.01 - 999998999.99000001 = 999997999991000.01999999 -> ...000.02
    ("999999", "999999999.99", "0.000001", "999998999990000.01", "999997999991000.02", "999998999.99"),
    # the largest gross: 1e6 * 1e9 = 1e15; * 0.666667 = 666667000000000
    ("1000000", "1000000000", "0.333333", "1000000000000000.00", "666667000000000.00", "333333000000000.00"),
])
def test_money_is_exact_and_rounded_half_up(quantity: str, price: str, discount: str, gross: str, revenue: str,
                                            discount_amount: str) -> None:
    row = silver_row(quantity=quantity, unit_price=price, discount_percent=discount)
    assert (row["gross_revenue"], row["revenue"], row["discount_amount"]) == (Decimal(gross), Decimal(revenue), Decimal(discount_amount))


# --- the table as a whole ------------------------------------------------------------------------

MIXED_ROWS = [
    {**VALID, "order_id": " A ", "product_name": "iPhone 14", "category": "electronic", "discount_percent": "0.1",
     "region": "South", "sale_date": "2024-03-05", "customer_email": "a@b.co"},
    {**VALID, "order_id": "B"},  # every optional field missing: five defaults + email
    {**VALID, "order_id": None, "category": "toys"},  # rejected: its defaults are not counted
    {**VALID, "order_id": "C", "quantity": "2.5"},
    {**VALID, "order_id": "D", "unit_price": "free", "quantity": "x"},
    {**VALID, "order_id": "E", "unit_price": "nan"},
    {**VALID, "order_id": "A", "product_name": "Widget", "category": "toys", "discount_percent": "2",
     "region": "nowhere", "sale_date": "2024-02-30", "customer_email": "bad"},
]


def test_counts_add_up_and_defaults_are_counted_on_silver_rows() -> None:
    result = clean(MIXED_ROWS)
    assert result.silver.num_rows + result.quarantine.num_rows == len(MIXED_ROWS)
    assert result.rejected_by_reason == {c.MISSING_ORDER_ID: 1, c.INVALID_QUANTITY: 2, c.INVALID_UNIT_PRICE: 1}
    assert result.defaults_by_field == {"product_name": 1, "category": 2, "discount_percent": 2, "region": 2,
                                        "sale_date": 2, "customer_email": 2}
    silver = result.silver.sort_by("source_row")
    flags = {f: silver.column(c.default_flag_column(f)).to_pylist() for f in c.SOFT_FIELDS}
    assert flags == {"product_name": [False, True, False], "category": [False, True, True],
                     "discount_percent": [False, True, True], "region": [False, True, True],
                     "sale_date": [False, True, True], "customer_email": [False, True, True]}


def test_silver_is_grouped_by_bucket_in_input_order_with_lineage_and_trimmed_ids() -> None:
    grouped = clean(MIXED_ROWS).silver
    keys = list(zip(grouped.column("bucket").to_pylist(), grouped.column("source_row").to_pylist()))
    assert keys == sorted(keys)  # the order parts are written in: by bucket, input order within one
    silver = grouped.sort_by("source_row")
    assert silver.column("order_id").to_pylist() == ["A", "B", "A"]
    assert silver.column("source_row").to_pylist() == [1, 2, 7]
    assert silver.column("source_file").to_pylist() == [SOURCE] * 3
    hashes = silver.column("key_hash").to_pylist()
    assert hashes[0] == hashes[2] == int(xxh64(pa.array(["A"]))[0])  # the trimmed id is hashed
    buckets = silver.column("bucket").to_numpy()
    assert ((buckets >= 0) & (buckets < SETTINGS.silver_buckets)).all()
    assert (buckets == np.array(hashes, dtype=np.uint64) % np.uint64(SETTINGS.silver_buckets)).all()


def test_quarantine_is_in_input_order_with_reasons() -> None:
    quarantine = clean(MIXED_ROWS).quarantine
    assert quarantine.column("source_row").to_pylist() == [3, 4, 5, 6]
    assert quarantine.column("reason").to_pylist() == [c.MISSING_ORDER_ID, c.INVALID_QUANTITY, c.INVALID_QUANTITY,
                                                       c.INVALID_UNIT_PRICE]
    assert quarantine.column("raw_text").null_count == 4


def test_output_schemas_are_exactly_the_contract() -> None:
    result = clean(MIXED_ROWS)
    assert result.silver.schema.equals(c.SILVER_MEMORY_SCHEMA, check_metadata=True)
    # the same columns as SILVER_SCHEMA, the low-cardinality text dictionary encoded over its clean values
    assert result.silver.schema.names == c.SILVER_SCHEMA.names
    assert [f.name for f in result.silver.schema if pa.types.is_dictionary(f.type)] == list(c.SILVER_DICTIONARY_COLUMNS)
    decoded = pa.Table.from_arrays([col.cast(pa.string()) if pa.types.is_dictionary(col.type) else col
                                    for col in result.silver.itercolumns()], schema=c.SILVER_SCHEMA)
    assert decoded.to_pylist() == result.silver.to_pylist()
    assert result.quarantine.schema.equals(c.QUARANTINE_SCHEMA, check_metadata=True)
    assert set(result.rejected_by_reason) == set(c.REJECT_REASONS) - {c.MALFORMED_ROW}
    assert set(result.defaults_by_field) == set(c.SOFT_FIELDS)


def test_empty_input_gives_empty_tables_and_zero_counts() -> None:
    result = clean([])
    assert result.silver.num_rows == result.quarantine.num_rows == 0
    assert result.silver.schema.equals(c.SILVER_MEMORY_SCHEMA) and result.quarantine.schema.equals(c.QUARANTINE_SCHEMA)
    assert set(result.rejected_by_reason.values()) == set(result.defaults_by_field.values()) == {0}


def test_missing_optional_column_given_as_nulls_means_defaults() -> None:
    table = raw_table([VALID, VALID]).set_column(c.INPUT_COLUMNS.index("region"), "region", pa.nulls(2, pa.string()))
    result = clean_records(table, SETTINGS, SOURCE)
    assert result.silver.column("region").to_pylist() == ["north", "north"]
    assert result.defaults_by_field["region"] == 2


def test_chunked_input_gives_the_same_result() -> None:
    table = raw_table(MIXED_ROWS * 3)
    chunked = pa.Table.from_batches(table.to_batches(max_chunksize=4))
    assert chunked.column("order_id").num_chunks > 1
    one, many = clean_records(table, SETTINGS, SOURCE), clean_records(chunked, SETTINGS, SOURCE)
    assert one.silver.equals(many.silver) and one.quarantine.equals(many.quarantine)


def test_raw_table_without_a_contract_column_is_refused() -> None:
    with pytest.raises(ValueError, match="region"):
        clean_records(raw_table([VALID]).drop_columns(["region"]), SETTINGS, SOURCE)


# --- the vectorised number parser against a decimal oracle ----------------------------------------

_PLAIN_NUMBER = r"([+-]?)((?:[0-9]+)(?:\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?"
_PRICE_NUMBER = r"([+-]?)[$€£]?((?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?"


def oracle_number(text: str | None, syntax: str, places: int) -> tuple[Decimal, bool] | None:
    """(value rounded half up to `places`, whether that was exact) by Python's decimal; None if no number."""
    match = re.fullmatch(syntax, (text or "").strip(WHITE_SPACE))
    if not match:
        return None
    sign, body, exponent = match.groups()
    value = Decimal(sign + body.replace(",", "") + (exponent or ""))
    if value.adjusted() > 15:
        return Decimal(10) ** 16, True  # far beyond every bound
    with localcontext() as context:
        context.prec = 80
        rounded = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)
    return rounded, rounded == value


def expected_quantity(text: str | None) -> int | None:
    parsed = oracle_number(text, _PLAIN_NUMBER, 0)
    return int(parsed[0]) if parsed and parsed[1] and 1 <= parsed[0] <= 1_000_000 else None


def expected_price(text: str | None) -> Decimal | None:
    parsed = oracle_number(text, _PRICE_NUMBER, 2)
    return parsed[0] if parsed and 0 < parsed[0] <= 10**9 else None


def expected_discount(text: str | None) -> Decimal:
    parsed = oracle_number(text, _PLAIN_NUMBER, 6)
    return parsed[0] if parsed and 0 <= parsed[0] <= 1 else Decimal(0)


number_text = st.builds(
    lambda sign, currency, whole, frac, exponent, pad: f"{pad}{sign}{currency}{whole}{frac}{exponent}{pad}",
    st.sampled_from(["", "+", "-"]),
    st.sampled_from(["", "", "", "$", "€", "£", "¥"]),
    st.one_of(st.from_regex(r"[0-9]{0,13}", fullmatch=True), st.sampled_from(["0", "1", "00", "999999", "1000000"]),
              st.from_regex(r"[0-9]{1,3}(,[0-9]{3}){1,3}", fullmatch=True), st.from_regex(r"[0-9,]{1,8}", fullmatch=True)),
    st.one_of(st.just(""), st.from_regex(r"\.[0-9]{0,12}", fullmatch=True), st.sampled_from([".5", ".0", ".005", ".0000005"])),
    st.one_of(st.just(""), st.from_regex(r"[eE][+-]?[0-9]{1,3}", fullmatch=True)),
    st.sampled_from(["", " ", "\u00a0"]),
)


@settings(max_examples=30, deadline=None)
@given(st.lists(number_text, min_size=1, max_size=60))
def test_number_parsing_agrees_with_decimal(texts: list[str]) -> None:
    def silver_by_row(column: str, rows: list[dict]) -> dict[int, object]:
        result = clean(rows)
        found = dict.fromkeys(range(1, len(rows) + 1))
        found.update(zip(result.silver.column("source_row").to_pylist(), result.silver.column(column).to_pylist()))
        return found

    numbered = list(enumerate(texts, start=1))
    assert silver_by_row("quantity", [{**VALID, "quantity": t} for t in texts]) == {i: expected_quantity(t) for i, t in numbered}
    assert silver_by_row("unit_price", [{**VALID, "unit_price": t} for t in texts]) == {i: expected_price(t) for i, t in numbered}
    assert silver_by_row("discount_percent", [{**VALID, "discount_percent": t} for t in texts]) == {
        i: expected_discount(t) for i, t in numbered}
