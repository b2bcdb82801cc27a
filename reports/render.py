"""The sales report: one self-contained HTML page rendered from the gold tables only.

`render_report` is a pure function of the gold folder and the run metadata: the same gold gives
the same bytes, except inside the blocks marked run-dependent (between RUN_BEGIN and RUN_END):
the run section, which says when and how fast the data was produced, and the box of files needing
attention, which names the files this run recorded as failed or not read. `write_report`
publishes the page atomically.
"""
from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path, PurePath
from typing import Any

from pipeline.contract import (
    DEFAULT_DEDUP_KEY,
    REJECT_REASONS,
    SENTINEL_DATE,
    SENTINEL_MONTH,
    SOFT_FIELDS,
    UNKNOWN_CATEGORY,
    mostly_rejected,
)
from pipeline.cores import forked_map, usable_cores
from pipeline.storage.layout import GOLD_RUN_FILE, RUN_RECORD_FILE
from pipeline.storage.store import LOCAL_FILES, Store
from pipeline.timestamps import utc_iso
from reports import charts
from reports.charts import ColumnSeries, Panel
from reports.formatting import NO_VALUE, NOT_RECORDED, count, data_text, money, percent, product, ratio, seconds, share, shorten, text
from reports.gold_data import (
    LATEST_DAYS,
    MAX_MONTHS,
    AnomalyGroup,
    Gold,
    Headline,
    MonthlyRevenue,
    anomaly_groups,
    by_revenue,
    coverage,
    headline,
    latest_daily_revenue,
    monthly_revenue_by_region,
    read_gold,
    ties_at_the_cut,
    undated,
)
from reports.template import (
    Column,
    Section,
    card,
    empty,
    figure,
    key_values,
    page,
    pair,
    paragraph,
    run_dependent,
    table,
    with_note,
)

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


def _files_named(files: list[str]) -> str:
    """The files gold covers, named (HTML): all of up to three, else the first two and the last."""
    shown = files if len(files) <= 3 else [files[0], files[1], "…", files[-1]]
    more = f"; all {count(len(files))} are listed under Data quality, per file" if len(files) > 3 else ""
    return ", ".join(f"<code>{data_text(f).replace('/', '/<wbr>')}</code>" if f != "…" else f for f in shown) + text(more)


def as_of_line(gold: Gold) -> str:
    """The first thing a reader needs (HTML): how fresh the data is and what it covers. From gold
    alone; when the run happened is the run section's business."""
    c = coverage(gold)
    day = (f"Data as of <strong>{c.last_day.isoformat()}</strong>, the latest sale date in gold" if c.last_day
           else "Data as of: no dated order in gold yet")
    files = f"{count(len(c.files))} bronze file{'' if len(c.files) == 1 else 's'}"
    covers = f"{count(c.orders)} unique orders from {count(c.rows_read)} rows read in {files}"
    named = f" ({_files_named(c.files)})" if c.files else ""
    return f'<p class="asof">{day}: {text(covers)}{named}.</p>'


# --- files needing attention ---------------------------------------------------------------------

def _recorded_lines(run: dict, key: str) -> list[str] | None:
    """A list of lines the run recorded (gold/_run.json), or None when it recorded none (an older
    run, a hand-written record)."""
    lines = run.get(key)
    return [str(line) for line in lines] if isinstance(lines, list) else None


def _mostly_rejected_lines(gold: Gold, threshold: float) -> list[str]:
    lines = []
    for r in gold.quality:
        if mostly_rejected(r["rows_read"], r["rows_rejected"], threshold):
            reason = max(REJECT_REASONS, key=lambda name: r[f"rejected_{name}"])
            lines.append(f"{r['source_file']}: {count(r['rows_rejected'])} of its {count(r['rows_read'])} rows rejected "
                         f"({share(r['rows_rejected'], r['rows_read'])}, mostly {reason}): check its encoding (UTF-8), "
                         "delimiter and columns")
    return lines


MAX_PROBLEM_CHARS = 600  # a recorded line names a file and the command that repairs it: keep it whole


def _problem_list(problems: list[tuple[str, str]]) -> str:
    items = "".join(f"<li><strong>{text(kind)}</strong>: {text(shorten(line, MAX_PROBLEM_CHARS))}</li>"
                    for kind, line in problems)
    return f"<ul>{items}</ul>"


def attention_box(gold: Gold, run_info: dict[str, Any] | None, threshold: float) -> str:
    """Files that failed, could not be read, are gone, or had most rows rejected, at the top of the
    page: today's run recorded the first three (gold/_run.json), gold's data_quality gives the last.
    Marked as run-dependent: which files failed is the run's, not gold's."""
    run = (run_info or {}).get("run")
    run = run if isinstance(run, dict) else {}
    failed, not_run = _recorded_lines(run, "files_failed"), _recorded_lines(run, "files_not_run")
    problems = ([("failed", line) for line in failed or []] + [("not read", line) for line in not_run or []]
                + [("mostly rejected", line) for line in _mostly_rejected_lines(gold, threshold)])
    files = len(gold.quality)
    if problems:
        body = (f"<h2>Files needing attention ({count(len(problems))})</h2>"
                + paragraph("Gold leaves out a file that failed; a gone or changed file keeps its earlier rows in gold. "
                            "Fix these before trusting the totals below.") + _problem_list(problems))
        css = "attention"
    elif failed is None or not_run is None:
        body = paragraph(f"No file had more than {percent(threshold, 0)} of its rows rejected. Which files failed or are gone "
                         "was not recorded by the run that built this gold (gold/_run.json), so it cannot be said here.")
        css = "unverified"
    else:
        body = paragraph(f"All {count(files)} file{'' if files == 1 else 's'} read cleanly: none failed, none is gone or "
                         f"changed, none had more than {percent(threshold, 0)} of its rows rejected.")
        css = "clean"
    return run_dependent(f'<div class="{css}" id="attention">{body}</div>')


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

def _defaulted(gold: Gold, field: str, value: str) -> tuple[int, Decimal, int, Decimal]:
    """(orders, revenue) of `field` = `value` that rest on `field`'s soft default, and all its
    (orders, revenue): unique orders, as in every chart (defaults_by_region_category)."""
    rows = [r for r in gold.defaults if r[field] == value]
    return (sum(r[f"{field}_defaulted_orders"] for r in rows), sum((r[f"{field}_defaulted_revenue"] for r in rows), Decimal(0)),
            sum(r["order_count"] for r in rows), sum((r["total_revenue"] for r in rows), Decimal(0)))


def _defaults_note(gold: Gold, field: str, counted_in: str, none_left: str) -> str:
    """For each value of `field` (region or category) holding orders whose own value was missing or
    unknown: how much of its revenue and orders they are; `counted_in` says where they went."""
    notes = []
    for value in sorted({r[field] for r in gold.defaults}):
        orders, revenue, all_orders, all_revenue = _defaulted(gold, field, value)
        if orders:
            notes.append(f"{value}: {money(revenue)} of its {money(all_revenue)} ({share(revenue, all_revenue)}) and "
                         f"{count(orders)} of its {count(all_orders)} orders come from rows whose {field} was missing or "
                         f"unknown{counted_in}.")
    return paragraph(" ".join(notes) if notes else f"Every order had a known {field}: {none_left} holds no defaulted rows.")


def region_defaults_note(gold: Gold, default_region: str | None) -> str:
    """Beside the region chart: defaulted rows can make the default region look bigger than it is."""
    where = default_region or "the default region ([cleaning] default_region)"
    return _defaults_note(gold, "region", f" and counted in {where}", "no region")


def category_defaults_note(gold: Gold) -> str:
    """Beside the category chart: the orders whose category was missing or unknown are counted in `unknown`."""
    return _defaults_note(gold, "category", "", UNKNOWN_CATEGORY)


def region_section(gold: Gold, default_region: str | None = None) -> Section:
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
    body = with_note(figure(chart), region_defaults_note(gold, default_region)) + table(columns, cells, footer=footer)
    return Section("regions", "Revenue by region", body)


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
    body = with_note(figure(chart), category_defaults_note(gold)) + table(columns, cells)
    return Section("categories", "Revenue and discount by category", body)


def product_section(gold: Gold) -> Section:
    rows = sorted(gold.products, key=lambda r: r["rank"])
    if not rows:
        return Section("products", "Top products", empty(NO_ORDERS))
    chart = charts.bar_chart("chart-products", f"Top {len(rows)} products by revenue", [product(r["product_key"]) for r in rows],
                             [Panel([float(r["total_revenue"]) for r in rows], "Revenue", "money")])
    columns = [Column("Rank", True), Column("Product", css="text"), Column("Orders", True), Column("Units", True),
               Column("Revenue", True)]
    cells = [[str(r["rank"]), product(r["product_key"]), count(r["order_count"]), count(r["total_quantity"]),
              money(r["total_revenue"])] for r in rows]
    note = paragraph("Products are named by their product_key, the name gold groups by (lower case, every other "
                     "character as _), the same in every section of this page.")
    return Section("products", "Top products", figure(chart) + note + table(columns, cells))


def rank_ranges(ranks: Sequence[int]) -> str:
    """Ranks as ranges: [1, 2, 3, 5, 7, 8] -> '1–3, 5, 7–8'."""
    runs: list[list[int]] = []
    for rank in sorted(ranks):
        if runs and rank == runs[-1][-1] + 1:
            runs[-1].append(rank)
        else:
            runs.append([rank])
    return ", ".join(f"{run[0]}–{run[-1]}" if len(run) > 1 else str(run[0]) for run in runs)


def named_counts(values: Sequence[str], limit: int = 3) -> str:
    """'east' when every value is one; else the most common first with their counts: 'north (3), east (2), 1 more'."""
    tally: dict[str, int] = {}
    for value in values:
        tally[value] = tally.get(value, 0) + 1
    if len(tally) == 1:
        return next(iter(tally))
    ordered = sorted(tally, key=lambda v: (-tally[v], v))
    more = f", {len(ordered) - limit} more" if len(ordered) > limit else ""
    return ", ".join(f"{v} ({tally[v]})" for v in ordered[:limit]) + more


def _sale_dates(group: AnomalyGroup) -> str:
    days = sorted(r["sale_date"] for r in group.rows)
    return days[0].isoformat() if days[0] == days[-1] else f"{days[0].isoformat()} to {days[-1].isoformat()}"


def _revenue_range(group: AnomalyGroup) -> str:
    low, high = min(group.revenues), max(group.revenues)
    if low != high:
        return f"{money(low)} to {money(high)}"
    return money(high) + (" each" if len(group.rows) > 1 else "")


def _group_defaults(group: AnomalyGroup) -> str:
    """The fields that got a default, with in how many of the group's orders when not all."""
    found = []
    for name in SOFT_FIELDS:
        hits = sum(bool(r.get(f"default_{name}")) for r in group.rows)
        if hits:
            found.append(name if hits == len(group.rows) else f"{name} ({hits}/{len(group.rows)})")
    return ", ".join(found) or NO_VALUE


def _times_typical(group: AnomalyGroup, typical: Decimal | None) -> str:
    return ratio(max(group.revenues) / typical) if typical else NO_VALUE


def _anomaly_lead(rows: list[dict], groups: list[AnomalyGroup], typical: Decimal | None) -> str:
    lead = paragraph(
        f"The {count(len(rows))} orders with the highest revenue that gold keeps: worth a look before trusting the totals. "
        f"Orders of the same quantity and unit price are one line, with how many there are ({count(len(groups))} "
        f"line{'' if len(groups) == 1 else 's'} here), and the first order of each line is named. × average order is a "
        f"line's highest revenue over the average order value, {money(typical) if typical else NO_VALUE} (revenue ÷ "
        "orders; gold keeps no median). Defaults applied name the fields whose value was missing or invalid, and in how "
        "many of the line's orders when not in all.")
    tied, lowest = ties_at_the_cut(rows)
    if tied > 1:
        lead += paragraph(f"{count(tied)} of these orders have the lowest revenue listed, {money(lowest)}: gold keeps only "
                          "the top orders by revenue ([gold] anomaly_top_n), so more orders of that revenue may exist.")
    return lead


def anomaly_section(gold: Gold) -> Section:
    """The top orders by revenue, equal-shaped ones as one line with a count, and how far each
    line is above the average order: twenty identical rows say less than one line that counts them."""
    rows = sorted(gold.anomalies, key=lambda r: r["rank"])
    title = "Anomaly orders"
    if not rows:
        return Section("anomalies", title, empty(NO_ORDERS))
    groups, typical = anomaly_groups(rows), headline(gold).avg_order_value
    columns = [Column("Orders (ranks)", True, "wrap"), Column("Qty × unit price", True), Column("Revenue", True, "wrap"),
               Column("× average order", True), Column("Products", css="text"), Column("Regions", css="text"),
               Column("Sale dates", css="text"), Column("First order (source file:row)", css="path")]
    cells = [[f"{count(len(g.rows))} ({rank_ranges([r['rank'] for r in g.rows])})", f"{count(g.quantity)} × {money(g.unit_price)}",
              _revenue_range(g), _times_typical(g, typical), named_counts([product(r["product_key"]) for r in g.rows]),
              named_counts([r["region"] for r in g.rows]), _sale_dates(g),
              f"{g.rows[0]['order_id']} ({g.rows[0]['source_file']}:{g.rows[0]['source_row']})"] for g in groups]
    if any(_group_defaults(g) != NO_VALUE for g in groups):  # the column only when it says something
        columns.append(Column("Defaults applied", css="text"))
        cells = [row + [_group_defaults(g)] for row, g in zip(cells, groups)]
    return Section("anomalies", title, _anomaly_lead(rows, groups, typical) + table(columns, cells, css="wide"))


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
    return Section("run", "The run", run_dependent(body))


# --- the page ------------------------------------------------------------------------------------

def render_report(gold_dir: PurePath, run_info: dict[str, Any] | None, rejected_share_warning: float = 0.5,
                  dedup_key: Sequence[str] = DEFAULT_DEDUP_KEY, store: Store = LOCAL_FILES,
                  default_region: str | None = None) -> str:
    """The whole page as HTML text, from the gold tables in `gold_dir` and the run metadata
    (`rejected_share_warning`: `[pipeline] rejected_share_warning`; `dedup_key`: `[gold] dedup_key`;
    `default_region`: `[cleaning] default_region`, named beside the region chart)."""
    started = time.monotonic()
    gold = read_gold(gold_dir if store.remote else Path(gold_dir), store)
    builders: list[Callable[[], Section]] = [
        lambda: headline_section(gold, dedup_key), lambda: time_section(gold), lambda: region_section(gold, default_region),
        lambda: category_section(gold), lambda: product_section(gold), lambda: anomaly_section(gold),
        lambda: quality_section(gold, rejected_share_warning, dedup_key)]
    content = forked_map(builders, usable_cores())  # the charts hold the GIL: one process per core
    sections = content + [run_section(run_info, time.monotonic() - started)]
    footer = ("Rendered from the gold tables, and the run's record beside them for the files needing attention and the "
              "run section; self-contained: it needs no network and no scripts. Money is exact to the cent in tables and "
              "cards; charts show at most 4 significant digits.")
    lead = as_of_line(gold) + paragraph(_period(headline(gold)), "lead")
    return page(TITLE, lead, sections, footer, attention_box(gold, run_info, rejected_share_warning))


def write_report(gold_dir: PurePath, report_path: PurePath, run_info: dict[str, Any] | None,
                 rejected_share_warning: float = 0.5, dedup_key: Sequence[str] = DEFAULT_DEDUP_KEY,
                 store: Store = LOCAL_FILES, default_region: str | None = None) -> None:
    """Render and publish atomically: a reader sees the old page or the new one, never half."""
    store.write_text(report_path, render_report(gold_dir, run_info, rejected_share_warning, dedup_key, store, default_region))


def _read_json(store: Store, path: PurePath) -> dict | None:
    try:
        data = json.loads(store.read_text(path))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def load_run_info(gold_dir: PurePath, store: Store = LOCAL_FILES) -> dict[str, Any]:
    """The run metadata beside gold, plus now: Silver -> Gold's record (pipeline.gold.step) and the
    run's own (`started_at`, `workers`, `scheduler`, `bronze_files`, and the lines of the files that
    failed or could not be read, `files_failed` and `files_not_run`, written by the root task before
    gold and the report are built)."""
    info: dict[str, Any] = {"rendered_at": utc_iso(time.time())}
    for key, name in (("silver_to_gold", GOLD_RUN_FILE), ("run", RUN_RECORD_FILE)):
        path = gold_dir / name
        info[key] = _read_json(store, path)
        stat = store.stat(path) if info[key] is not None else None
        if stat is not None:
            info[f"{key}_written_at"] = utc_iso(stat.mtime_ns / 1e9)
    return info
