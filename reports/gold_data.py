"""Gold tables read for the report, and the figures derived from them (exact where money is involved).

The report reads gold only. Everything here is a plain function of the gold rows, so each figure
can be pinned by a test with a hand-written table.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import PurePath

from pipeline.contract import CENTS, GOLD_TABLES, SENTINEL_DATE, SENTINEL_MONTH
from pipeline.storage.layout import DataLayout
from pipeline.storage.store import LOCAL_FILES, Store

# Sums use Decimal's default 28 significant digits: exact for any total below 1e26 (1e11 orders at
# the largest possible order value, 1e15), far beyond what a run can read.
SENTINEL_DAY = dt.date.fromisoformat(SENTINEL_DATE)
LATEST_DAYS = 90
MAX_MONTHS = 120


@dataclass(frozen=True)
class Gold:
    """Every gold table as a list of row dicts (decimals stay Decimal, dates stay date)."""

    monthly: list[dict]
    daily: list[dict]
    regions: list[dict]
    categories: list[dict]
    products: list[dict]
    anomalies: list[dict]
    quality: list[dict]
    defaults: list[dict]  # defaults_by_region_category: what rests on soft defaults


def _table_path(gold_dir: PurePath, table: str) -> PurePath:
    return DataLayout(gold_dir.parent).gold_table_path(table)


def read_gold(gold_dir: PurePath, store: Store = LOCAL_FILES) -> Gold:
    """Read every gold table; a missing one is an error that says which and why."""
    rows = {}
    for table in GOLD_TABLES:
        path = _table_path(gold_dir, table)
        if not store.exists(path):
            raise FileNotFoundError(f"gold table {table} is missing ({path}): run Silver -> Gold before the report")
        rows[table] = store.read_parquet(path).to_pylist()
    return Gold(monthly=rows["monthly_sales_summary"], daily=rows["daily_sales"], regions=rows["region_wise_performance"],
                categories=rows["category_discount_map"], products=rows["top_products"],
                anomalies=rows["anomaly_records"], quality=rows["data_quality"], defaults=rows["defaults_by_region_category"])


def gold_fingerprint(gold_dir: PurePath, store: Store = LOCAL_FILES) -> str:
    """Which gold files a report was rendered from (name, size, mtime; on object storage the ETag
    too): a rewrite changes it."""
    digest = hashlib.blake2b(digest_size=12)
    for table in GOLD_TABLES:
        stat = store.stat(_table_path(gold_dir, table))
        seen = f"{stat.size} {stat.mtime_ns}{' ' + stat.etag if stat.etag else ''}" if stat else "-1 -1"
        digest.update(f"{table} {seen}\n".encode())
    return digest.hexdigest()


# --- headline ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Headline:
    revenue: Decimal
    orders: int
    units: int
    avg_order_value: Decimal | None
    avg_discount: Decimal | None
    unknown_date_revenue: Decimal
    unknown_date_orders: int
    first_day: dt.date | None
    last_day: dt.date | None


def headline(gold: Gold) -> Headline:
    """Totals over unique orders. The overall average discount is the order-weighted mean of the
    monthly averages: gold keeps them rounded to 4 places, so it is exact to within 0.00005."""
    revenue = sum((m["total_revenue"] for m in gold.monthly), Decimal(0))
    orders = sum(m["order_count"] for m in gold.monthly)
    units = sum(m["total_quantity"] for m in gold.monthly)
    weighted = sum((m["avg_discount"] * m["order_count"] for m in gold.monthly), Decimal(0))
    unknown = [d for d in gold.daily if d["sale_date"] == SENTINEL_DAY]
    days = [d["sale_date"] for d in dated_rows(gold.daily)]
    return Headline(
        revenue=revenue,
        orders=orders,
        units=units,
        avg_order_value=(revenue / orders).quantize(CENTS, rounding=ROUND_HALF_UP) if orders else None,
        avg_discount=weighted / orders if orders else None,
        unknown_date_revenue=sum((d["total_revenue"] for d in unknown), Decimal(0)),
        unknown_date_orders=sum(d["order_count"] for d in unknown),
        first_day=min(days, default=None),
        last_day=max(days, default=None),
    )


# --- time ----------------------------------------------------------------------------------------

def dated_rows(daily: list[dict]) -> list[dict]:
    """daily_sales without the sentinel month: what the time charts show."""
    return [d for d in daily if _month(d["sale_date"]) != SENTINEL_MONTH]


@dataclass(frozen=True)
class Undated:
    """What the sentinel month holds, said next to the time charts that leave it out."""

    revenue: Decimal
    orders: int


def undated(daily: list[dict]) -> Undated:
    rows = [d for d in daily if _month(d["sale_date"]) == SENTINEL_MONTH]
    return Undated(sum((d["total_revenue"] for d in rows), Decimal(0)), sum(d["order_count"] for d in rows))


def _month(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def _month_window(first: str, last: str, limit: int) -> list[str]:
    """Every month from first to last, at most the latest `limit`: a month without sales is an empty column."""
    year, month = int(last[:4]), int(last[5:])
    months: list[str] = []
    while len(months) < limit and f"{year:04d}-{month:02d}" >= first:
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return months[::-1]


@dataclass(frozen=True)
class MonthlyRevenue:
    """Revenue per month and region for the chart, and what lies before the months it shows."""

    months: list[str]
    by_region: dict[str, list[float]]
    earlier_months: int  # months with sales before the first month shown
    earlier_revenue: Decimal


def monthly_revenue_by_region(daily: list[dict], max_months: int = MAX_MONTHS) -> MonthlyRevenue:
    """The latest `max_months` months (sentinel left out), each region's revenue per month, regions
    by total revenue. The bound keeps the chart readable whatever dates the input holds."""
    sums: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for row in dated_rows(daily):
        sums[(_month(row["sale_date"]), row["region"])] += row["total_revenue"]
    if not sums:
        return MonthlyRevenue([], {}, 0, Decimal(0))
    months = _month_window(min(m for m, _ in sums), max(m for m, _ in sums), max_months)
    earlier = [(m, v) for (m, _), v in sums.items() if m < months[0]]
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for (_, region), value in sums.items():
        totals[region] += value
    regions = sorted(totals, key=lambda r: (-totals[r], r))
    by_region = {r: [float(sums.get((m, r), 0)) for m in months] for r in regions}
    return MonthlyRevenue(months, by_region, len({m for m, _ in earlier}), sum((v for _, v in earlier), Decimal(0)))


def latest_daily_revenue(daily: list[dict], days: int = LATEST_DAYS) -> tuple[list[dt.date], list[float]]:
    """Revenue per calendar day over the `days` days ending on the latest day with data (sentinel
    month left out); days without sales inside the window are zero, not skipped."""
    sums: dict[dt.date, Decimal] = defaultdict(Decimal)
    for row in dated_rows(daily):
        sums[row["sale_date"]] += row["total_revenue"]
    if not sums:
        return [], []
    last = max(sums)
    first = max(min(sums), last - dt.timedelta(days=days - 1))
    window = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    return window, [float(sums.get(day, 0)) for day in window]


def by_revenue(rows: list[dict], key: str) -> list[dict]:
    """Rows by total revenue, largest first; ties by key so the order is deterministic."""
    return sorted(rows, key=lambda r: (-r["total_revenue"], r[key]))


# --- what the data covers ------------------------------------------------------------------------

@dataclass(frozen=True)
class Coverage:
    """What gold covers, said at the top of the page: the latest sale date, the files, the rows."""

    last_day: dt.date | None  # the latest real sale date (the unknown-date sentinel left out)
    files: list[str]  # data_quality's files, in its (natural) order
    rows_read: int
    orders: int  # unique orders in gold


def coverage(gold: Gold) -> Coverage:
    days = [d["sale_date"] for d in dated_rows(gold.daily)]
    return Coverage(last_day=max(days, default=None), files=[r["source_file"] for r in gold.quality],
                    rows_read=sum(r["rows_read"] for r in gold.quality), orders=sum(m["order_count"] for m in gold.monthly))


# --- anomalies -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class AnomalyGroup:
    """Anomaly orders of one shape (same quantity and unit price): one line instead of many equal ones."""

    quantity: int
    unit_price: Decimal
    rows: list[dict]  # by rank, best first

    @property
    def revenues(self) -> list[Decimal]:
        return [r["revenue"] for r in self.rows]


def anomaly_groups(anomalies: list[dict]) -> list[AnomalyGroup]:
    """The anomaly orders grouped by (quantity, unit_price), groups in the order of their best rank.
    Why that key: the largest orders are mostly "max quantity x max price" rows of many products,
    equal in all that matters; grouping by product as well would leave them one per line."""
    groups: dict[tuple[int, Decimal], list[dict]] = {}
    for row in sorted(anomalies, key=lambda r: r["rank"]):
        groups.setdefault((row["quantity"], row["unit_price"]), []).append(row)
    return [AnomalyGroup(quantity, price, rows) for (quantity, price), rows in groups.items()]


def ties_at_the_cut(anomalies: list[dict]) -> tuple[int, Decimal | None]:
    """How many listed orders share the lowest revenue listed (and that revenue): when several do,
    orders of the same revenue may exist beyond the ones gold keeps."""
    revenues = [r["revenue"] for r in anomalies]
    if not revenues:
        return 0, None
    lowest = min(revenues)
    return revenues.count(lowest), lowest
