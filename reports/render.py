"""The sales report: one self-contained HTML page rendered from the gold tables only.

`render_report` is a pure function of the gold folder and the run metadata: the same gold gives
the same bytes, except inside the run section (between RUN_BEGIN and RUN_END), which says when
and how fast the data was produced. `write_report` publishes the page atomically.
"""
from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path, PurePath
from typing import Any

from pipeline.contract import DEFAULT_DEDUP_KEY, REJECT_REASONS, SENTINEL_DATE, SENTINEL_MONTH, SOFT_FIELDS, mostly_rejected
from pipeline.storage.layout import GOLD_RUN_FILE, RUN_RECORD_FILE
from pipeline.storage.store import LOCAL_FILES, Store
from pipeline.timestamps import utc_iso
from reports import charts
from reports.charts import ColumnSeries, Panel
from reports.formatting import NO_VALUE, NOT_RECORDED, count, money, percent, seconds, share
from reports.gold_data import (
    LATEST_DAYS,
    MAX_MONTHS,
    Gold,
    Headline,
    MonthlyRevenue,
    by_revenue,
    headline,
    latest_daily_revenue,
    monthly_revenue_by_region,
    read_gold,
    undated,
)
from reports.template import RUN_BEGIN, RUN_END, Column, Section, card, empty, figure, key_values, page, pair, paragraph, table

TITLE = "Sales report"
NO_ORDERS = "No orders in gold yet."
NO_ORDERS_HINT = "No orders in gold yet: nothing to chart. Add bronze files and run the pipeline again."


# --- headline ------------------------------------------------------------------------------------

def _unknown_date_detail(h: Headline) -> str:
    if not h.orders:
        return "no orders yet"
    if not h.unknown_date_orders:
        return "every order has a sale date"
    return f"{money(h.unknown_date_revenue)} in {count(h.unknown_date_orders)} orders dated {SENTINEL_DATE}"


def key_words(dedup_key: Sequence[str]) -> str:
    """How the report names the dedup key: `order_id`, or `(order_id, product_key)`."""
    return dedup_key[0] if len(dedup_key) == 1 else f"({', '.join(dedup_key)})"


def headline_section(gold: Gold, dedup_key: Sequence[str]) -> Section:
    h = headline(gold)
    cards = [
        card("Revenue", money(h.revenue), "after discounts"),
        card("Orders", count(h.orders), f"unique {key_words(dedup_key)}"),
        card("Units", count(h.units), "items sold"),
        card("Average order value", money(h.avg_order_value) if h.avg_order_value is not None else NO_VALUE,
             "revenue ÷ orders"),
        card("Average discount", percent(h.avg_discount) if h.avg_discount is not None else NO_VALUE, "mean over orders"),
        card("Unknown sale date", share(h.unknown_date_revenue, h.revenue), f"of revenue: {_unknown_date_detail(h)}"),
    ]
    body = f'<div class="cards">{"".join(cards)}</div>'
    if not h.orders:
        body += empty(NO_ORDERS_HINT)
    return Section("headline", "Headline figures", body)


def _period(h: Headline) -> str:
    if h.first_day is None:
        return "No dated orders in gold."
    return f"Orders dated {h.first_day.isoformat()} to {h.last_day.isoformat()}; every figure is over unique (deduplicated) orders."


# --- time ----------------------------------------------------------------------------------------

def _undated_note(gold: Gold, total: Decimal) -> str:
    held = undated(gold.daily)
    if not held.orders:
        return f"No order has an unknown sale date (month {SENTINEL_MONTH})."
    return (f"Orders whose sale date is unknown are recorded as {SENTINEL_DATE}; their month {SENTINEL_MONTH} is "
            f"left out of these charts. It holds {money(held.revenue)} in {count(held.orders)} orders, "
            f"{share(held.revenue, total)} of revenue.")


def _earlier_note(monthly: MonthlyRevenue, total: Decimal) -> str:
    if not monthly.earlier_months:
        return ""
    return paragraph(f"The monthly chart shows the latest {MAX_MONTHS} months; {count(monthly.earlier_months)} earlier "
                     f"months with sales hold {money(monthly.earlier_revenue)}, {share(monthly.earlier_revenue, total)} of revenue.")


def time_section(gold: Gold) -> Section:
    total = headline(gold).revenue
    monthly = monthly_revenue_by_region(gold.daily)
    days, per_day = latest_daily_revenue(gold.daily)
    if not monthly.months:
        return Section("time", "Sales over time", paragraph(_undated_note(gold, total)) + empty(NO_ORDERS))
    month_chart = charts.column_chart(
        "chart-monthly", "Revenue by month and region", monthly.months,
        ColumnSeries(monthly.by_region, charts.series_colors(r["region"] for r in gold.regions)),
        y_label="Revenue", x_label="Month of sale")
    day_chart = charts.column_chart(
        "chart-daily", f"Revenue per day, last {len(days)} days of data ({days[0]} to {days[-1]})",
        [d.isoformat() for d in days], ColumnSeries({"revenue": per_day}), y_label="Revenue", x_label="Sale date")
    note = paragraph(_undated_note(gold, total))
    window = paragraph(f"The daily chart shows the {LATEST_DAYS} calendar days ending on the latest sale date "
                       "(fewer when the data is shorter); a day without sales shows as an empty column.")
    body = note + figure(month_chart) + _earlier_note(monthly, total) + figure(day_chart) + window
    return Section("time", "Sales over time", body)


# --- regions, categories, products ---------------------------------------------------------------

def region_section(gold: Gold) -> Section:
    rows = by_revenue(gold.regions, "region")
    if not rows:
        return Section("regions", "Revenue by region", empty(NO_ORDERS))
    total = sum((r["total_revenue"] for r in rows), Decimal(0))
    colors = charts.series_colors(r["region"] for r in rows)
    chart = charts.bar_chart("chart-regions", "Revenue by region", [r["region"] for r in rows],
                             [Panel([float(r["total_revenue"]) for r in rows], "Revenue", "money",
                                    [colors[r["region"]] for r in rows])])
    columns = [Column("Region"), Column("Orders", True), Column("Units", True), Column("Revenue", True), Column("Share", True)]
    cells = [[r["region"], count(r["order_count"]), count(r["total_quantity"]), money(r["total_revenue"]),
              share(r["total_revenue"], total)] for r in rows]
    footer = ["Total", count(sum(r["order_count"] for r in rows)), count(sum(r["total_quantity"] for r in rows)),
              money(total), share(total, total)]
    return Section("regions", "Revenue by region", figure(chart) + table(columns, cells, footer=footer))


def category_section(gold: Gold) -> Section:
    rows = by_revenue(gold.categories, "category")
    if not rows:
        return Section("categories", "Revenue and discount by category", empty(NO_ORDERS))
    total = sum((r["total_revenue"] for r in rows), Decimal(0))
    chart = charts.bar_chart("chart-categories", "Revenue and average discount by category", [r["category"] for r in rows], [
        Panel([float(r["total_revenue"]) for r in rows], "Revenue", "money", title="Revenue"),
        Panel([float(r["avg_discount"]) for r in rows], "Average discount", "percent", [charts.PALETTE[1]],
              title="Average discount"),
    ])
    columns = [Column("Category"), Column("Orders", True), Column("Revenue", True), Column("Share", True),
               Column("Average discount", True)]
    cells = [[r["category"], count(r["order_count"]), money(r["total_revenue"]), share(r["total_revenue"], total),
              percent(r["avg_discount"], 2)] for r in rows]
    return Section("categories", "Revenue and discount by category", figure(chart) + table(columns, cells))


def product_section(gold: Gold) -> Section:
    rows = sorted(gold.products, key=lambda r: r["rank"])
    if not rows:
        return Section("products", "Top products", empty(NO_ORDERS))
    chart = charts.bar_chart("chart-products", f"Top {len(rows)} products by revenue", [r["product_key"] for r in rows],
                             [Panel([float(r["total_revenue"]) for r in rows], "Revenue", "money")])
    columns = [Column("Rank", True), Column("Product", css="text"), Column("Orders", True), Column("Units", True),
               Column("Revenue", True)]
    cells = [[str(r["rank"]), r["product_key"], count(r["order_count"]), count(r["total_quantity"]),
              money(r["total_revenue"])] for r in rows]
    return Section("products", "Top products", figure(chart) + table(columns, cells))


def _defaults_applied(row: dict) -> str:
    return ", ".join(f for f in SOFT_FIELDS if row.get(f"default_{f}")) or NO_VALUE


def anomaly_section(gold: Gold) -> Section:
    rows = sorted(gold.anomalies, key=lambda r: r["rank"])
    title = "Anomaly orders"
    if not rows:
        return Section("anomalies", title, empty(NO_ORDERS))
    lead = paragraph(f"The {len(rows)} orders with the highest revenue: worth a look before trusting the totals. "
                     "Defaults applied, if any, name the fields whose value was missing or invalid.")
    columns = [Column("Rank", True), Column("Order", css="id"), Column("Product", css="text"), Column("Region"),
               Column("Sale date", css="nowrap"), Column("Qty", True), Column("Unit price", True),
               Column("Discount", True), Column("Revenue", True), Column("Source file:row", css="path")]
    cells = [[str(r["rank"]), r["order_id"], r["product_name"], r["region"], r["sale_date"].isoformat(),
              count(r["quantity"]), money(r["unit_price"]), percent(r["discount_percent"], 1), money(r["revenue"]),
              f"{r['source_file']}:{r['source_row']}"] for r in rows]
    if any(_defaults_applied(r) != NO_VALUE for r in rows):  # the column only when it says something
        columns.append(Column("Defaults applied"))
        cells = [row + [_defaults_applied(r)] for row, r in zip(cells, rows)]
    return Section("anomalies", title, lead + table(columns, cells, css="wide"))


# --- data quality --------------------------------------------------------------------------------

def _funnel(gold: Gold, dedup_key: Sequence[str]) -> str:
    q = gold.quality
    read, valid = sum(r["rows_read"] for r in q), sum(r["rows_valid"] for r in q)
    duplicates = sum(r["duplicates_dropped"] for r in q)
    unique, in_gold = valid - duplicates, sum(m["order_count"] for m in gold.monthly)
    steps = [("Rows read", read, "", ""), ("Valid", valid, count(read - valid), "rejected by a hard rule"),
             ("Unique orders", unique, count(duplicates), f"duplicate {key_words(dedup_key)} (the first occurrence wins)"),
             ("In gold", in_gold, count(unique - in_gold), "unique orders not (yet) in gold")]
    chart = charts.bar_chart("chart-funnel", "Rows from bronze to gold", [s[0] for s in steps],
                             [Panel([float(s[1]) for s in steps], "Rows", "count")])
    columns = [Column("Step"), Column("Rows", True), Column("Dropped", True), Column("Why")]
    cells = [[name, count(rows), dropped or NO_VALUE, why or NO_VALUE] for name, rows, dropped, why in steps]
    return figure(chart) + table(columns, cells)


def _reasons_and_defaults(gold: Gold) -> str:
    """Rejects by reason and soft defaults by field: a chart each, then the exact counts side by side."""
    q = gold.quality
    read, valid = sum(r["rows_read"] for r in q), sum(r["rows_valid"] for r in q)
    rejects = [sum(r[f"rejected_{reason}"] for r in q) for reason in REJECT_REASONS]
    defaults = [sum(r[f"default_{field}"] for r in q) for field in SOFT_FIELDS]
    reject_chart = charts.bar_chart("chart-rejects", "Rejected rows by reason (the row went to quarantine)",
                                    list(REJECT_REASONS), [Panel(rejects, "Rows rejected", "count", [charts.PALETTE[3]])])
    default_chart = charts.bar_chart("chart-defaults", "Defaults applied by field (the row was kept)", list(SOFT_FIELDS),
                                     [Panel(defaults, "Rows with the default", "count", [charts.PALETTE[5]])])
    reject_table = table([Column("Reason"), Column("Rows", True), Column("Of rows read", True)],
                         [[reason, count(n), share(n, read)] for reason, n in zip(REJECT_REASONS, rejects)],
                         caption="Rejected rows")
    default_table = table([Column("Field"), Column("Rows", True), Column("Of valid rows", True)],
                          [[field, count(n), share(n, valid)] for field, n in zip(SOFT_FIELDS, defaults)],
                          caption="Defaults applied")
    return figure(reject_chart) + figure(default_chart) + pair(reject_table, default_table)


def _per_file(gold: Gold) -> str:
    q = gold.quality
    columns = [Column("File", css="text"), Column("Rows read", True), Column("Valid", True), Column("Rejected", True),
               Column("Duplicates", True), Column("In gold", True)]
    keys = ("rows_read", "rows_valid", "rows_rejected", "duplicates_dropped", "rows_in_gold")
    cells = [[r["source_file"], *(count(r[k]) for k in keys)] for r in q]
    footer = [f"{len(q)} files", *(count(sum(r[k] for r in q)) for k in keys)]
    return "<h3>Per file</h3>" + table(columns, cells, footer=footer)


def _schema_drift(gold: Gold) -> str:
    drifted = [r for r in gold.quality if r["extra_columns"] or r["missing_optional_columns"]]
    if not drifted:
        return "<h3>Schema drift</h3>" + paragraph("None: every file had exactly the expected columns.")
    columns = [Column("File", css="text"), Column("Extra columns (ignored)", css="text"),
               Column("Missing optional columns (defaulted)", css="text")]
    cells = [[r["source_file"], r["extra_columns"].replace(",", ", ") or NO_VALUE,
              r["missing_optional_columns"].replace(",", ", ") or NO_VALUE] for r in drifted]
    return "<h3>Schema drift</h3>" + table(columns, cells)


def _mostly_rejected(gold: Gold, threshold: float) -> str:
    """Files most of whose rows were rejected, first: the console warned once; the page says it too."""
    flagged = [r for r in gold.quality if mostly_rejected(r["rows_read"], r["rows_rejected"], threshold)]
    if not flagged:
        return ""
    columns = [Column("File", css="text"), Column("Rows read", True), Column("Rejected", True), Column("Share", True),
               Column("Main reason", css="text")]
    cells = [[r["source_file"], count(r["rows_read"]), count(r["rows_rejected"]), share(r["rows_rejected"], r["rows_read"]),
              max(REJECT_REASONS, key=lambda reason: r[f"rejected_{reason}"])] for r in flagged]
    note = paragraph(f"More than {threshold:.0%} of these files' rows were rejected: check their encoding (UTF-8), "
                     "delimiter and columns before trusting the totals above.")
    return "<h3>Files mostly rejected</h3>" + note + table(columns, cells)


def quality_section(gold: Gold, rejected_share_warning: float, dedup_key: Sequence[str]) -> Section:
    if not gold.quality:
        return Section("quality", "Data quality", empty("No bronze file has been ingested yet."))
    body = (_mostly_rejected(gold, rejected_share_warning) + _funnel(gold, dedup_key) + _reasons_and_defaults(gold) + _per_file(gold)
            + _schema_drift(gold))
    return Section("quality", "Data quality", body)


# --- the run -------------------------------------------------------------------------------------

def _value(data: dict | None, key: str, fmt: Callable[[Any], str] = str) -> str:
    """A recorded value, formatted; absent or unreadable (a hand-edited file) says 'not recorded'."""
    if not data or data.get(key) is None:
        return NOT_RECORDED
    try:
        return fmt(data[key])
    except (TypeError, ValueError):
        return NOT_RECORDED


def _secs(value: Any) -> str:
    return seconds(float(value))


def _elapsed(start: Any, end: Any) -> float | None:
    """Seconds between two recorded ISO times; None when either is missing or they are out of order."""
    try:
        seconds_between = (dt.datetime.fromisoformat(str(end)) - dt.datetime.fromisoformat(str(start))).total_seconds()
    except (TypeError, ValueError):
        return None
    return seconds_between if seconds_between >= 0 else None


def _stages(info: dict[str, Any], render_seconds: float) -> str:
    """How long each stage took and how fast it went, from what the run and Silver -> Gold recorded:
    Bronze -> Silver is the time from the run's start to Silver -> Gold's start, the whole run the
    time from the run's start to the end of this rendering; what nobody recorded says so."""
    gold_run, run = info.get("silver_to_gold") or {}, info.get("run") or {}
    bronze = _elapsed(run.get("started_at"), gold_run.get("started_at"))
    until_render = _elapsed(run.get("started_at"), info.get("rendered_at"))
    rows = [
        ["Bronze → Silver", seconds(bronze), NO_VALUE if bronze is not None else NOT_RECORDED, NO_VALUE],
        ["Silver → Gold: merge", _value(gold_run, "merge_seconds", _secs), _value(gold_run, "rows_merged", count),
         _value(gold_run, "merge_rows_per_second", count)],
        ["Silver → Gold: publish gold", _value(gold_run, "publish_seconds", _secs),
         _value(gold_run, "tables_written", lambda v: f"{len(v)} tables"), NO_VALUE],
        ["Silver → Gold: total", _value(gold_run, "seconds", _secs), NO_VALUE, NO_VALUE],
        ["Report: read gold and render", seconds(render_seconds), NO_VALUE, NO_VALUE],
        ["Whole run (to this report)", seconds(until_render + render_seconds if until_render is not None else None), NO_VALUE, NO_VALUE],
    ]
    columns = [Column("Stage"), Column("Took", True), Column("Rows", True), Column("Rows/s", True)]
    return table(columns, rows, caption="Stages")


def _gold_finished_at(info: dict[str, Any]) -> str:
    """Silver -> Gold's own finish time if it records one, else when its run file was written."""
    recorded = _value(info.get("silver_to_gold"), "finished_at")
    return recorded if recorded != NOT_RECORDED else str(info.get("silver_to_gold_written_at") or NOT_RECORDED)


def run_section(run_info: dict[str, Any] | None, render_seconds: float) -> Section:
    """When the data was produced and how fast: the only part of the page that differs between runs."""
    info = run_info or {}
    gold_run, run = info.get("silver_to_gold"), info.get("run")
    facts = [
        ("Report rendered at", _value(info, "rendered_at")),
        ("Run started at", _value(run, "started_at")),
        ("Silver → Gold finished at", _gold_finished_at(info)),
        ("Workers", _value(run, "workers", count)),
        ("Scheduler", _value(run, "scheduler")),
        ("Gold write mode", _value(gold_run, "gold_mode")),
        ("Bronze files in this publication", _value(gold_run, "files", count)),
        ("Silver parts merged", _value(gold_run, "parts_merged", count)),
        ("New unique orders", _value(gold_run, "new_unique_orders", count)),
    ]
    body = key_values(facts, caption="When and how") + _stages(info, render_seconds)
    return Section("run", "The run", f"{RUN_BEGIN}\n{body}\n{RUN_END}")


# --- the page ------------------------------------------------------------------------------------

def render_report(gold_dir: PurePath, run_info: dict[str, Any] | None, rejected_share_warning: float = 0.5,
                  dedup_key: Sequence[str] = DEFAULT_DEDUP_KEY, store: Store = LOCAL_FILES) -> str:
    """The whole page as HTML text, from the gold tables in `gold_dir` and the run metadata
    (`rejected_share_warning`: `[pipeline] rejected_share_warning`; `dedup_key`: `[gold] dedup_key`)."""
    started = time.monotonic()
    gold = read_gold(gold_dir if store.remote else Path(gold_dir), store)
    content = [headline_section(gold, dedup_key), time_section(gold), region_section(gold), category_section(gold),
               product_section(gold), anomaly_section(gold), quality_section(gold, rejected_share_warning, dedup_key)]
    sections = content + [run_section(run_info, time.monotonic() - started)]
    footer = ("Rendered from the gold tables only; self-contained: it needs no network and no scripts. "
              "Money is exact to the cent in tables and cards; charts round to whole units.")
    return page(TITLE, _period(headline(gold)), sections, footer)


def write_report(gold_dir: PurePath, report_path: PurePath, run_info: dict[str, Any] | None,
                 rejected_share_warning: float = 0.5, dedup_key: Sequence[str] = DEFAULT_DEDUP_KEY,
                 store: Store = LOCAL_FILES) -> None:
    """Render and publish atomically: a reader sees the old page or the new one, never half."""
    store.write_text(report_path, render_report(gold_dir, run_info, rejected_share_warning, dedup_key, store))


def _read_json(store: Store, path: PurePath) -> dict | None:
    try:
        data = json.loads(store.read_text(path))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def load_run_info(gold_dir: PurePath, store: Store = LOCAL_FILES) -> dict[str, Any]:
    """The run metadata beside gold, plus now: Silver -> Gold's record (pipeline.gold.step) and the
    run's own (`started_at`, `workers`, `scheduler`, `bronze_files`, written by the root task before gold and the report are built)."""
    info: dict[str, Any] = {"rendered_at": utc_iso(time.time())}
    for key, name in (("silver_to_gold", GOLD_RUN_FILE), ("run", RUN_RECORD_FILE)):
        path = gold_dir / name
        info[key] = _read_json(store, path)
        stat = store.stat(path) if info[key] is not None else None
        if stat is not None:
            info[f"{key}_written_at"] = utc_iso(stat.mtime_ns / 1e9)
    return info
