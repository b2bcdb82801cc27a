"""The data contract (docs/CONTRACT.md) as constants: one home for names, reasons and schemas.

Cleaning, the generator, gold and the tests import these instead of repeating strings.
"""
from __future__ import annotations

from decimal import Decimal

import pyarrow as pa

# --- header -----------------------------------------------------------------------------------
INPUT_COLUMNS: tuple[str, ...] = (
    "order_id",
    "product_name",
    "category",
    "quantity",
    "unit_price",
    "discount_percent",
    "region",
    "sale_date",
    "customer_email",
)
REQUIRED_COLUMNS: tuple[str, ...] = ("order_id", "quantity", "unit_price")
_SEPARATORS = str.maketrans("", "", "-_")


def column_key(name: str) -> str:
    """How header names are compared: `Order ID`, `order-id`, `OrderID`, `ORDER_ID` are one name."""
    return "".join(name.casefold().translate(_SEPARATORS).split())


# The cleaned columns that may form the dedup key (`[gold] dedup_key`, default order_id alone): every
# one that gold shows, so that gold's anomaly table names each order by its key (no e-mail reaches gold).
DEDUP_KEY_COLUMNS: tuple[str, ...] = (*(c for c in INPUT_COLUMNS if c != "customer_email"), "product_key", "sale_month")
DEFAULT_DEDUP_KEY: tuple[str, ...] = ("order_id",)

# Tokens that mean "missing" after trimming, compared case-insensitively.
NULL_TOKENS: tuple[str, ...] = ("", "null", "none", "nan", "n/a", "na")

# --- hard rules: quarantine reasons, in the order they are checked ------------------------------
MALFORMED_ROW = "malformed_row"
MISSING_ORDER_ID = "missing_order_id"
INVALID_QUANTITY = "invalid_quantity"
INVALID_UNIT_PRICE = "invalid_unit_price"
REJECT_REASONS: tuple[str, ...] = (MALFORMED_ROW, MISSING_ORDER_ID, INVALID_QUANTITY, INVALID_UNIT_PRICE)


def mostly_rejected(rows_read: int, rows_rejected: int, threshold: float) -> bool:
    """A file whose rejected share is above `threshold` (`[pipeline] rejected_share_warning`):
    every row rejected is what a wrong encoding or delimiter gives, and must never pass unsaid."""
    return rows_read > 0 and rows_rejected / rows_read > threshold


# --- soft rules: fields whose default can be applied, and the defaults ---------------------------
SOFT_FIELDS: tuple[str, ...] = (
    "product_name",
    "category",
    "discount_percent",
    "region",
    "sale_date",
    "customer_email",
)
UNKNOWN_PRODUCT = "unknown_product"
UNKNOWN_CATEGORY = "unknown"
SENTINEL_DATE = "1970-01-01"
SENTINEL_MONTH = "1970-01"

# --- money --------------------------------------------------------------------------------------
MONEY_SCALE = 2
CENTS = Decimal(1).scaleb(-MONEY_SCALE)  # 0.01: money is exact to the cent
# unit_price <= 1e9 (11 digits of cents), gross <= 1e6 * 1e9 = 1e15 -> 18 digits with cents.
MONEY_TYPE = pa.decimal128(18, MONEY_SCALE)
# Sums of money in gold: 38 digits never overflow for any input this pipeline can read.
MONEY_SUM_TYPE = pa.decimal128(38, MONEY_SCALE)
# Discounts are kept exactly to 6 decimal places (input beyond that is rounded half up).
DISCOUNT_SCALE = 6
DISCOUNT_TYPE = pa.decimal128(7, DISCOUNT_SCALE)
AVG_DISCOUNT_SCALE = 4

# --- silver -------------------------------------------------------------------------------------
DEFAULT_FLAG_PREFIX = "default_"


def default_flag_column(field: str) -> str:
    """Name of the silver boolean that says the soft default of `field` was applied."""
    return f"{DEFAULT_FLAG_PREFIX}{field}"


SILVER_SCHEMA = pa.schema(
    [
        ("order_id", pa.string()),
        ("product_name", pa.string()),
        ("product_key", pa.string()),
        ("category", pa.string()),
        ("quantity", pa.int64()),
        ("unit_price", MONEY_TYPE),
        ("discount_percent", DISCOUNT_TYPE),
        ("region", pa.string()),
        ("sale_date", pa.date32()),
        ("sale_month", pa.string()),
        ("customer_email", pa.string()),
        ("gross_revenue", MONEY_TYPE),
        ("revenue", MONEY_TYPE),
        ("discount_amount", MONEY_TYPE),
        ("source_file", pa.string()),
        ("source_row", pa.int64()),
        ("key_hash", pa.uint64()),  # XXH64 of the dedup key (pipeline.bronze.hashing)
        ("bucket", pa.int32()),
    ]
    + [(default_flag_column(f), pa.bool_()) for f in SOFT_FIELDS]
)

# Low-cardinality text of silver, cleaned once per distinct value: in memory and in the Parquet file
# it stays dictionary encoded (never spelled out row by row); read back, it is plain text.
SILVER_DICTIONARY_COLUMNS = ("product_name", "product_key", "category", "region", "sale_month", "source_file")
SILVER_MEMORY_SCHEMA = pa.schema([f.with_type(pa.dictionary(pa.int32(), f.type)) if f.name in SILVER_DICTIONARY_COLUMNS else f
                                  for f in SILVER_SCHEMA])

# --- quarantine ---------------------------------------------------------------------------------
QUARANTINE_SCHEMA = pa.schema(
    [
        ("source_file", pa.string()),
        ("source_row", pa.int64()),
        ("reason", pa.string()),
        ("raw_text", pa.string()),  # the whole record, for malformed rows only
    ]
    + [(f"raw_{c}", pa.string()) for c in INPUT_COLUMNS]
)

# --- gold ---------------------------------------------------------------------------------------
GOLD_TABLES: dict[str, tuple[str, ...]] = {
    "monthly_sales_summary": ("sale_month",),
    "daily_sales": ("sale_date", "region", "category"),
    "region_wise_performance": ("region",),
    "category_discount_map": ("category",),
    "defaults_by_region_category": ("region", "category"),  # what rests on soft defaults
    "top_products": ("product_key",),
    "anomaly_records": DEFAULT_DEDUP_KEY,  # ranked; each row one order, named by [gold] dedup_key
    "data_quality": ("source_file",),
}
