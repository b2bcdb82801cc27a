"""The HTML report: every section from gold only, exact figures, deterministic bytes, no e-mails,
and a real headless Chromium that loads it offline without errors."""
from __future__ import annotations

import dataclasses
import datetime as dt
import gzip
import json
import os
import re
import shutil
import struct
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import luigi
import pyarrow as pa
import pytest

from pipeline.bronze.discovery import discover_bronze
from pipeline.bronze.silver import FileMetrics
from pipeline.contract import REJECT_REASONS, SILVER_SCHEMA, SOFT_FIELDS
from pipeline.gold.aggregates import GRAIN, Aggregates
from pipeline.gold.tables import build_gold_tables, write_gold_table
from pipeline.storage.layout import DataLayout
from reports.formatting import EMAIL_PATTERN, money, percent, product
from reports.gold_data import anomaly_groups, latest_daily_revenue, monthly_revenue_by_region, read_gold
from reports.render import (
    anomaly_section,
    category_defaults_note,
    load_run_info,
    named_counts,
    rank_ranges,
    region_defaults_note,
    render_report,
    run_section,
    write_report,
)
from reports.template import RUN_BEGIN, RUN_END
from tests.conftest import HEADER, REPO, run_cli, write_bronze

CHROMIUM = Path("/usr/bin/chromium")
SECTIONS = ("headline", "time", "regions", "categories", "products", "anomalies", "quality", "run")
CHARTS = ("chart-monthly", "chart-daily", "chart-regions", "chart-categories", "chart-products",
          "chart-funnel", "chart-rejects", "chart-defaults")
NARROW_CHARTS = ("chart-monthly-narrow", "chart-daily-narrow")  # the phone drawings of the charts over time
D = Decimal

# --- a hand-written gold -------------------------------------------------------------------------
# (sale_date, region, category, orders, units, gross, revenue, discount_sum)
DAILY = [
    ("1970-01-01", "north", "electronics", 2, 3, "300.00", "250.00", "0.400000"),
    ("2024-01-15", "north", "electronics", 3, 5, "1200.00", "1000.50", "0.300000"),
    ("2024-01-20", "south", "fashion", 1, 1, "99.99", "99.99", "0"),
    ("2024-03-02", "east", "home_appliance", 4, 10, "5000.00", "4500.25", "0.600000"),
    ("2024-03-02", "north", "fashion", 1, 2, "40.00", "30.00", "0.250000"),
]
# (orders, revenue) of a DAILY row whose region was missing and defaulted to north (the others: none)
REGION_DEFAULTED = {("2024-01-15", "north", "electronics"): (1, "400.00")}
# Worked out by hand from DAILY.
REVENUE, ORDERS, UNITS = "$5,880.74", "11", "21"
AVG_ORDER_VALUE = "$534.61"        # 5880.74 / 11 = 534.6127...
AVG_DISCOUNT = "14.1 %"            # (0.40 + 0.30 + 0.85) / 11 = 0.1409...
UNKNOWN_SHARE = "4.3 %"            # 250.00 / 5880.74 = 0.0425...
PRODUCTS = [("iphone_14", 3, 5, "1000.50"), ("cotton_tee", 2, 3, "129.99"), ("dyson_v15", 4, 10, "4500.25"),
            ("unknown_product", 2, 3, "250.00")]
FILES = [("a.csv", 6, 1), ("date=2024-03-02/b.csv", 5, 2)]
METRICS = [
    FileMetrics("a.csv", 1, rows_read=10, rows_valid=7, rows_rejected={"missing_order_id": 2, "invalid_quantity": 1},
                defaults_applied={"region": 1, "sale_date": 2, "customer_email": 3},
                extra_columns=["coupon_code"], missing_optional_columns=[]),
    FileMetrics("date=2024-03-02/b.csv", 1, rows_read=8, rows_valid=7, rows_rejected={"invalid_unit_price": 1},
                defaults_applied={}, extra_columns=[], missing_optional_columns=["customer_email"]),
]
BUYER_EMAIL = "buyer.one@example.com"


def _daily_table(rows: list[tuple]) -> pa.Table:
    """(sale_date, region, category, order_count, total_quantity, gross, revenue, discount_sum) rows."""
    names = ["sale_date", "region", "category", "order_count", "total_quantity", "gross_revenue", "total_revenue", "discount_sum"]
    columns = dict(zip(names, zip(*rows))) if rows else {name: () for name in names}
    defaulted = [REGION_DEFAULTED.get(row[:3], (0, "0")) for row in rows]
    values = {**columns, "sale_date": [dt.date.fromisoformat(d) for d in columns["sale_date"]],
              "sale_month": [d[:7] for d in columns["sale_date"]],
              **{name: [D(v) for v in columns[name]] for name in names[5:]},
              "region_defaulted_orders": [o for o, _ in defaulted], "region_defaulted_revenue": [D(r) for _, r in defaulted],
              "category_defaulted_orders": [0] * len(rows), "category_defaulted_revenue": [D(0)] * len(rows)}
    schema = GRAIN["daily"].schema
    return pa.table({f.name: pa.array(values[f.name], f.type) for f in schema}, schema=schema)


def _anomalies() -> pa.Table:
    """Two silver rows, with an e-mail in silver and one hidden in a product name."""
    base = {"product_key": "dyson_v15", "category": "home_appliance", "quantity": 4, "unit_price": D("1250.00"),
            "discount_percent": D("0.100000"), "region": "east", "sale_date": dt.date(2024, 3, 2), "sale_month": "2024-03",
            "gross_revenue": D("5000.00"), "revenue": D("4500.00"), "discount_amount": D("500.00"),
            "customer_email": BUYER_EMAIL, "source_file": "date=2024-03-02/b.csv", "key_hash": 1, "bucket": 0,
            **{f"default_{f}": False for f in SOFT_FIELDS}}
    rows = [{**base, "order_id": "ORD-2", "product_name": "dyson v15", "source_row": 3},
            {**base, "order_id": "ORD-1", "product_name": "gift card for jane.doe@example.org", "source_row": 1,
             "revenue": D("0.25"), "default_sale_date": True}]
    return pa.Table.from_pylist(rows, schema=SILVER_SCHEMA)


def _aggregates(daily: list[tuple], products: list[tuple], files: list[tuple]) -> Aggregates:
    product_rows = [{"product_key": k, "order_count": o, "total_quantity": q, "total_revenue": D(r)} for k, o, q, r in products]
    file_rows = [{"source_file": f, "rows_in_gold": g, "duplicates_dropped": d} for f, g, d in files]
    return Aggregates({"daily": _daily_table(daily), "products": pa.Table.from_pylist(product_rows, schema=GRAIN["products"].schema),
                       "files": pa.Table.from_pylist(file_rows, schema=GRAIN["files"].schema)})


def write_gold(root: Path, aggregates: Aggregates, anomalies: pa.Table, metrics: list[FileMetrics]) -> Path:
    """Gold exactly as pipeline.gold.tables builds and writes it."""
    layout = DataLayout(root)
    for name, table in build_gold_tables(aggregates, anomalies, metrics, top_products_n=10, anomaly_top_n=20, key=("order_id",)).items():
        write_gold_table(layout.store, layout.gold_table_path(name), table, covers="test")
    return layout.gold_dir


@pytest.fixture(scope="module")
def gold_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Shared and read-only: a test that changes gold works on `own_gold`."""
    return write_gold(tmp_path_factory.mktemp("gold") / "data", _aggregates(DAILY, PRODUCTS, FILES), _anomalies(), METRICS)


@pytest.fixture
def own_gold(tmp_path: Path, gold_dir: Path) -> Path:
    copy = tmp_path / "data" / "gold"
    shutil.copytree(gold_dir, copy)
    return copy


@pytest.fixture(scope="module")
def html(gold_dir: Path) -> str:
    """Rendered once per module: matplotlib takes about a second for the eight charts."""
    return render_report(gold_dir, load_run_info(gold_dir))


def card_value(page: str, label: str) -> str:
    match = re.search(rf'<div class="label">{re.escape(label)}</div><div class="value">([^<]*)</div>', page)
    assert match, f"no card {label!r}"
    return match.group(1)


def without_run_section(page: str) -> str:
    """The page without its run-dependent blocks (the run section, the files needing attention)."""
    assert page.count(RUN_BEGIN) == page.count(RUN_END) == 2
    return re.sub(rf"{re.escape(RUN_BEGIN)}.*?{re.escape(RUN_END)}", "", page, flags=re.S)


def section_of(page: str, anchor: str) -> str:
    start = page.index(f'<section id="{anchor}">')
    return page[start:page.index("</section>", start)]


# --- content -------------------------------------------------------------------------------------

def test_every_section_and_chart_is_present(html: str) -> None:
    for anchor in SECTIONS:
        assert f'<section id="{anchor}">' in html
        assert f'href="#{anchor}"' in html
    for chart in CHARTS + NARROW_CHARTS:
        assert len(re.findall(rf'<svg class="chart (wide|narrow|compact)" id="{chart}"', html)) == 1, chart
    assert html.count("<svg ") == len(CHARTS) + len(NARROW_CHARTS)
    assert re.findall(r'aria-label="([^"]+)"', html)[1:] == [
        "Revenue by month and region", "Revenue by month and region",
        "Revenue per day, last 48 days of data (2024-01-15 to 2024-03-02)",
        "Revenue per day, last 48 days of data (2024-01-15 to 2024-03-02)",
        "Revenue by region", "Revenue and average discount by category", "Top 4 products by revenue",
        "Rows from bronze to gold", "Rejected rows by reason (the row went to quarantine)",
        "Defaults applied by field (the row was kept)"]


def test_headline_figures_equal_gold(html: str) -> None:
    assert card_value(html, "Revenue") == REVENUE
    assert card_value(html, "Orders") == ORDERS
    assert card_value(html, "Units") == UNITS
    assert card_value(html, "Average order value") == AVG_ORDER_VALUE
    assert card_value(html, "Average discount") == AVG_DISCOUNT
    assert card_value(html, "Unknown sale date") == UNKNOWN_SHARE
    assert "of revenue: $250.00 in 2 orders dated 1970-01-01" in html


def test_sentinel_month_is_left_out_of_time_charts_and_noted(gold_dir: Path, html: str) -> None:
    gold = read_gold(gold_dir)
    monthly = monthly_revenue_by_region(gold.daily)
    assert monthly.months == ["2024-01", "2024-02", "2024-03"]  # the empty month is shown, 1970-01 is not
    assert monthly.by_region == {"east": [0.0, 0.0, 4500.25], "north": [1000.50, 0.0, 30.00], "south": [99.99, 0.0, 0.0]}
    assert (monthly.earlier_months, monthly.earlier_revenue) == (0, D(0))
    days, revenue = latest_daily_revenue(gold.daily)
    assert (days[0], days[-1], len(days)) == (dt.date(2024, 1, 15), dt.date(2024, 3, 2), 48)
    assert sum(revenue) == pytest.approx(5880.74 - 250.00)
    assert "left out of these charts. It holds $250.00 in 2 orders, 4.3 % of revenue." in html


def test_latest_days_window_is_90_calendar_days_ending_on_the_last_sale() -> None:
    rows = [{"sale_date": dt.date(2024, 1, 1) + dt.timedelta(days=i), "total_revenue": D(i)} for i in range(0, 200, 2)]
    days, revenue = latest_daily_revenue(rows)
    last = dt.date(2024, 1, 1) + dt.timedelta(days=198)
    assert (days[0], days[-1], len(days)) == (last - dt.timedelta(days=89), last, 90)
    assert revenue[:3] == [0.0, 110.0, 0.0]  # a day without sales is an empty column, not skipped


def test_tables_hold_exact_money_right_aligned(html: str) -> None:
    assert '<td class="num">$5,880.74</td>' in html  # region total
    assert '<td class="num">$4,500.25</td>' in html
    assert "<td>fashion</td><td class=\"num\">2</td><td class=\"num\">$129.99</td><td class=\"num\">2.2 %</td><td class=\"num\">12.50 %</td>" in html
    assert re.search(r"<th class=\"num\">Revenue</th>", html)
    assert money(D("1234567.885")) == "$1,234,567.89"
    assert money(D("-5")) == "-$5.00"
    assert percent(D("0.12345"), 2) == "12.35 %"


def test_data_quality_funnel_rejects_defaults_files_and_drift(html: str) -> None:
    quality = html[html.index('<section id="quality">'):html.index('<section id="run">')]
    for step, rows in (("Rows read", "18"), ("Valid", "14"), ("Unique orders", "11"), ("In gold", "11")):
        assert f"<td>{step}</td><td class=\"num\">{rows}</td>" in quality
    assert "date=2024-03-02/<wbr>b.csv" not in quality  # only source paths in the anomaly table break
    assert '<td class="text">date=2024-03-02/b.csv</td><td class="num">8</td><td class="num">7</td><td class="num">1</td>' in quality
    assert '<td class="text">2 files</td><td class="num">18</td><td class="num">14</td><td class="num">4</td><td class="num">3</td><td class="num">11</td>' in quality
    assert '<td class="text">a.csv</td><td class="text">coupon_code</td><td class="text">—</td>' in quality
    assert '<td class="text">date=2024-03-02/b.csv</td><td class="text">—</td><td class="text">customer_email</td>' in quality
    for reason, rows, of_read in zip(REJECT_REASONS, ("0", "2", "1", "1"), ("0.0 %", "11.1 %", "5.6 %", "5.6 %")):
        assert f'<td>{reason}</td><td class="num">{rows}</td><td class="num">{of_read}</td>' in quality
    for field, rows in zip(SOFT_FIELDS, ("0", "0", "0", "1", "2", "3")):
        assert f'<td>{field}</td><td class="num">{rows}</td>' in quality


def test_anomalies_table_groups_orders_of_one_shape_without_emails(html: str) -> None:
    """The two anomaly orders are 4 x $1,250.00 each: one line counting them, named by its first order."""
    anomalies = section_of(html, "anomalies")
    assert ('<td class="num wrap">2 (1–2)</td><td class="num">4 × $1,250.00</td><td class="num wrap">$0.25 to $4,500.00</td>'
            '<td class="num">×8.4</td><td class="text">dyson_v15</td><td class="text">east</td><td class="text">2024-03-02</td>'
            '<td class="path">ORD-2 (date=2024-03-02/<wbr>b.csv:3)</td><td class="text">sale_date (1/2)</td>') in anomalies
    assert "ORD-1" not in anomalies  # the second order of the line is counted, not listed
    assert "average order value, $534.61" in anomalies  # 4500.00 / 534.61 = 8.42
    assert "gift card" not in anomalies  # products are named by product_key, as everywhere on the page


def test_no_email_address_anywhere(html: str) -> None:
    assert EMAIL_PATTERN.findall(html) == []
    assert "example.com" not in html and "example.org" not in html


def test_page_is_self_contained(html: str) -> None:
    assert "<script" not in html.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "url(http" not in html and "@import" not in html


def test_same_gold_gives_same_bytes_outside_the_run_section(own_gold: Path, html: str) -> None:
    """Another folder (other mtimes), other run metadata, another process and hash seed: same page."""
    script = ("import sys; from pathlib import Path; from reports.render import render_report; "
              "sys.stdout.write(render_report(Path(sys.argv[1]), {'rendered_at': '2030-01-01T00:00:00Z', 'run': {'workers': 7}}))")
    env = {**os.environ, "PYTHONHASHSEED": "123", "PYTHONPATH": str(REPO)}
    again = subprocess.run([sys.executable, "-c", script, str(own_gold)], cwd=REPO, env=env, capture_output=True,
                           text=True, timeout=120, check=True).stdout
    assert again != html
    assert without_run_section(again) == without_run_section(html)


def test_run_section_says_not_recorded_when_nothing_was_recorded(own_gold: Path) -> None:
    run = run_section(load_run_info(own_gold), 0.1).body
    assert run.count("not recorded") >= 8
    assert "Report rendered at" in run and '<td class="num">0.10 s</td>' in run


def test_run_section_shows_what_the_run_files_record(own_gold: Path) -> None:
    """Exactly the keys the product writes: pipeline.gold.step's record and the root task's _record_run."""
    (own_gold / "_silver_to_gold_run.json").write_text(json.dumps(
        {"files": 2, "parts_merged": 2, "rows_merged": 14, "new_unique_orders": 11, "merge_seconds": 0.5,
         "merge_rows_per_second": 28, "publish_seconds": 0.25, "tables_written": ["a", "b"], "gold_mode": "upsert",
         "seconds": 0.8, "started_at": "2026-01-01T10:00:02.250Z", "finished_at": "2026-01-01T10:00:03.050Z"}))
    (own_gold / "_run.json").write_text(json.dumps({"started_at": "2026-01-01T10:00:00.000Z", "workers": 4, "scheduler": "local",
                                                    "bronze_files": 2}))
    run = run_section(load_run_info(own_gold), 0.1).body
    for fact in ('<td class="num">4</td>', '<td class="num">upsert</td>', '<td class="num">0.50 s</td>',
                 '<td class="num">28</td>', '<td class="num">2 tables</td>', '<td class="num">2.25 s</td>',
                 '<td class="num">0.80 s</td>', '<td class="num">local</td>'):
        assert fact in run, fact
    assert 'Bronze → Silver</td><td class="num">not recorded' not in run


def test_stage_times_come_from_recorded_start_times_when_no_duration_is_recorded() -> None:
    info = {"rendered_at": "2026-01-01T10:00:09Z", "run": {"started_at": "2026-01-01T10:00:00Z", "workers": 2},
            "silver_to_gold": {"started_at": "2026-01-01T10:00:04Z", "finished_at": "2026-01-01T10:00:07Z"}}
    run = run_section(info, 0.5).body
    assert '<td>Bronze → Silver</td><td class="num">4.00 s</td>' in run
    assert '<td>Whole run (to this report)</td><td class="num">9.50 s</td>' in run
    assert '<td class="num">2026-01-01T10:00:07Z</td>' in run  # Silver -> Gold's own finish time


def test_hostile_text_and_far_apart_dates_keep_the_page_small_and_fast(tmp_path: Path) -> None:
    """Input decides product names and dates: a 3 MB name or years 0001..9999 must not blow up the page."""
    daily = [("0001-01-01", "north", "fashion", 1, 1, "2.00", "2.00", "0"), *DAILY[1:],
             ("9999-12-31", "east", "fashion", 1, 1, "3.00", "3.00", "0")]
    products = [("x" * 200_000, 1, 1, "3.00"), *PRODUCTS]
    anomalies = _anomalies().set_column(SILVER_SCHEMA.get_field_index("product_name"), "product_name",
                                        pa.array(["y" * 3_000_000, "z"]))
    gold_dir = write_gold(tmp_path / "data", _aggregates(daily, products, FILES), anomalies, METRICS)
    monthly = monthly_revenue_by_region(read_gold(gold_dir).daily)
    assert (len(monthly.months), monthly.months[-1], monthly.earlier_months, monthly.earlier_revenue) == (120, "9999-12", 3, D("5632.74"))
    page = render_report(gold_dir, None)
    assert len(page) < 1_000_000
    assert "x" * 119 + "…" in page and "x" * 121 not in page and "y" * 121 not in page
    assert "The monthly chart shows the latest 120 months; 3 earlier months with sales hold $5,632.74" in page


def test_empty_gold_still_renders_and_says_no_orders(tmp_path: Path) -> None:
    rejected_only = [FileMetrics("a.csv", 1, rows_read=3, rows_valid=0, rows_rejected={"missing_order_id": 3},
                                 defaults_applied={}, extra_columns=[], missing_optional_columns=[])]
    gold_dir = write_gold(tmp_path / "data", _aggregates([], [], []), SILVER_SCHEMA.empty_table(), rejected_only)
    page = render_report(gold_dir, None)
    assert "No orders in gold yet" in page
    assert card_value(page, "Revenue") == "$0.00"
    assert card_value(page, "Orders") == "0"
    assert card_value(page, "Average order value") == "—"
    assert [c for c in CHARTS if f'id="{c}"' in page] == ["chart-funnel", "chart-rejects", "chart-defaults"]


def test_missing_gold_table_is_a_clear_error(own_gold: Path) -> None:
    (own_gold / "top_products.parquet").unlink()
    with pytest.raises(FileNotFoundError, match="gold table top_products is missing"):
        render_report(own_gold, None)


# --- telling the truth about the data -------------------------------------------------------------

def test_data_as_of_line_names_the_latest_sale_date_files_and_rows_from_gold_alone(html: str) -> None:
    header = html[html.index('<header class="page">'):html.index("</header>")]
    assert ('<p class="asof">Data as of <strong>2024-03-02</strong>, the latest sale date in gold: 11 unique orders from '
            '18 rows read in 2 bronze files (<code>a.csv</code>, <code>date=2024-03-02/<wbr>b.csv</code>).</p>') in header
    assert RUN_BEGIN not in header  # deterministic: when the run happened is the run section's business


def test_data_as_of_line_with_many_files_names_the_first_two_and_the_last(busy_html: str) -> None:
    assert ("in 4 bronze files (<code>incoming/<wbr>2024/<wbr>region=central/<wbr>sales_data_part_0001.csv</code>, "
            "<code>incoming/<wbr>2024/<wbr>region=central/<wbr>sales_data_part_0002.csv</code>, …, "
            "<code>incoming/<wbr>2024/<wbr>region=central/<wbr>sales_data_part_0004.csv</code>; all 4 are listed under "
            "Data quality, per file).") in busy_html


def attention(page: str) -> str:
    """The files-needing-attention box, from its opening tag to the end of its run-dependent block."""
    start = page.rindex("<div ", 0, page.index('id="attention"'))
    return page[start:page.index(RUN_END, start)]


def test_files_needing_attention_name_what_the_run_recorded_and_mostly_rejected_files(own_gold: Path) -> None:
    """The run's FAILED lines (gold/_run.json, as tasks.root records them) and gold's mostly rejected files."""
    (own_gold / "_run.json").write_text(json.dumps({
        "started_at": "2026-01-01T10:00:00.000Z", "workers": 2, "scheduler": "local", "bronze_files": 3,
        "files_failed": ["c.csv: lines end with a bare CR"],
        "files_not_run": ["old.csv: ingested earlier but no longer under /data/bronze (its rows are still in gold); restore it, "
                          "or run `python run.py --forget old.csv` to drop it"]}))
    page = render_report(own_gold, load_run_info(own_gold), rejected_share_warning=0.2)
    box = attention(page)
    assert page.index('id="attention"') < page.index('<nav class="toc"')  # at the top, before the contents
    assert "<h2>Files needing attention (3)</h2>" in box
    assert "<li><strong>failed</strong>: c.csv: lines end with a bare CR</li>" in box
    assert "<strong>not read</strong>: old.csv: ingested earlier but no longer under /data/bronze" in box
    assert "run `python run.py --forget old.csv` to drop it</li>" in box  # the repair command is kept whole
    # a.csv: 3 of 10 rows rejected (30 %) is above 0.2; b.csv (1 of 8) is not
    assert ("<li><strong>mostly rejected</strong>: a.csv: 3 of its 10 rows rejected (30.0 %, mostly missing_order_id): "
            "check its encoding (UTF-8), delimiter and columns</li>") in box
    assert "b.csv" not in box


def test_all_files_read_cleanly_when_the_run_recorded_no_problem(own_gold: Path, html: str) -> None:
    (own_gold / "_run.json").write_text(json.dumps({"started_at": "2026-01-01T10:00:00.000Z", "files_failed": [],
                                                    "files_not_run": []}))
    box = attention(render_report(own_gold, load_run_info(own_gold)))
    assert 'class="clean"' in box
    assert "All 2 files read cleanly: none failed, none is gone or changed, none had more than 50 % of its rows rejected." in box
    # no run record (an older run, or the report task alone): it does not claim what it cannot know
    unknown = attention(html)
    assert 'class="unverified"' in unknown and "read cleanly" not in unknown
    assert "Which files failed or are gone was not recorded by the run that built this gold" in unknown


def _corrupt_gzip() -> bytes:
    """A gzip whose header reads fine but whose stream breaks two thirds in: it fails in silver, not at the plan."""
    rows = "".join(f"G{i},Tee {i},fashion,{i % 7 + 1},{i % 97 + 1},0,north,2024-05-01,\n" for i in range(200_000))
    data = bytearray(gzip.compress(f"{HEADER}\n{rows}".encode()))
    data[len(data) * 2 // 3] ^= 0xFF
    return bytes(data)


def test_a_real_run_records_failed_and_gone_files_and_the_report_shows_them(data_root: Path) -> None:
    """Through run.py: a clean first run says so; then a gone file and a file that cannot be read
    (CR-only line ends: found by the plan) and one failing in silver (a corrupt gzip stream) are each
    named at the top of the page, as tasks.root recorded them in gold/_run.json."""
    write_bronze(data_root, {"a.csv": f"{HEADER}\nA1,Tee,fashion,1,20,0,north,2024-05-01,\n"})
    first = run_cli("--data-root", str(data_root), "--workers", "1")
    assert first.returncode == 0, first.stdout + first.stderr
    report = DataLayout(data_root).report_path
    assert "All 1 file read cleanly" in attention(report.read_text(encoding="utf-8"))
    (data_root / "bronze" / "a.csv").unlink()
    write_bronze(data_root, {"b.csv": f"{HEADER}\rB1,Tee,fashion,1,20,0,north,2024-05-03,\r".encode(), "g.csv.gz": _corrupt_gzip(),
                             "d.csv": f"{HEADER}\nD1,Hat,fashion,1,5,0,south,2024-05-04,\n"})
    second = run_cli("--data-root", str(data_root), "--workers", "1")
    assert second.returncode == 1, second.stdout + second.stderr
    box = attention(report.read_text(encoding="utf-8"))
    assert "<h2>Files needing attention (3)</h2>" in box
    assert re.search(r"<strong>failed</strong>: [^<]*g\.csv\.gz: not a valid gzip stream", box), box
    assert "<strong>not read</strong>: b.csv: lines end with a bare CR" in box
    assert "<strong>not read</strong>: a.csv: ingested earlier but no longer under" in box
    record = json.loads(DataLayout(data_root).run_record_path.read_text())
    assert (len(record["files_failed"]), len(record["files_not_run"])) == (1, 2)


def test_region_and_category_notes_say_how_much_revenue_rests_on_defaults(gold_dir: Path) -> None:
    """defaults_by_region_category beside the charts: one north order of $400.00 had no region."""
    gold = read_gold(gold_dir)
    note = region_defaults_note(gold, "north")
    # north: 250.00 + 1000.50 + 30.00 = 1280.50 over 2 + 3 + 1 = 6 orders; 400 / 1280.50 = 31.24 %
    assert ("north: $400.00 of its $1,280.50 (31.2 %) and 1 of its 6 orders come from rows whose region was missing "
            "or unknown and counted in north.") in note
    assert "counted in the default region ([cleaning] default_region)" in region_defaults_note(gold, None)
    assert "Every order had a known category" in category_defaults_note(gold)
    defaults = [{**row, "category_defaulted_orders": row["order_count"], "category_defaulted_revenue": row["total_revenue"]}
                if row["category"] == "fashion" else row for row in gold.defaults]
    note = category_defaults_note(dataclasses.replace(gold, defaults=defaults))
    assert ("fashion: $129.99 of its $129.99 (100.0 %) and 2 of its 2 orders come from rows whose category was "
            "missing or unknown.") in note


def test_defaults_notes_sit_beside_the_region_and_category_charts(html: str) -> None:
    for anchor, chart in (("regions", "chart-regions"), ("categories", "chart-categories")):
        part = section_of(html, anchor)
        assert re.search(rf'<div class="with-note"><div><figure><svg class="chart compact" id="{chart}".*?</figure></div>'
                         r'<div class="side-note"><p class="note">[^<]*(known|come from rows)', part, re.S), anchor


def test_anomaly_groups_count_equal_orders_and_rank_ranges_read_as_ranges() -> None:
    rows = [{"rank": r, "quantity": q, "unit_price": D(p), "revenue": D(v)} for r, q, p, v in
            [(1, 20, "2499.00", "49980.00"), (2, 20, "2499.00", "49980.00"), (3, 7, "9000.00", "49000.00"),
             (5, 20, "2499.00", "47481.00"), (4, 20, "2499.00", "48000.00")]]
    groups = anomaly_groups(rows)
    assert [(g.quantity, g.unit_price, [r["rank"] for r in g.rows]) for g in groups] == [
        (20, D("2499.00"), [1, 2, 4, 5]), (7, D("9000.00"), [3])]
    assert rank_ranges([5, 1, 2, 3, 7, 8, 10]) == "1–3, 5, 7–8, 10"
    assert named_counts(["east", "east"]) == "east"
    assert named_counts(["b", "a", "b", "c", "d", "e"]) == "b (2), a (1), c (1), 2 more"


def test_busy_anomalies_are_one_line_with_their_count_and_ratio_to_the_average_order(busy_html: str) -> None:
    """The 20 orders gold keeps are all 20 x $2,499.00: one line, not 20 nearly equal ones."""
    anomalies = section_of(busy_html, "anomalies")
    assert anomalies.count("<tr>") == 2  # the heading and one line
    assert '<td class="num wrap">20 (1–20)</td><td class="num">20 × $2,499.00</td>' in anomalies
    assert '<td class="num wrap">$47,462.00 to $47,481.00</td><td class="num">×23.7</td>' in anomalies
    assert "dyson_v15" in anomalies and "samsung galaxy" not in anomalies
    assert "north (4), central (4)" not in anomalies  # ties by name: central first
    assert "central (4), east (4), north (4), 2 more" in anomalies
    assert "customer_email (7/20)</td>" in anomalies  # every field fits the cell, none is cut


def test_a_tie_at_the_lowest_listed_revenue_is_said(gold_dir: Path) -> None:
    gold = read_gold(gold_dir)
    tied = [{**row, "revenue": D("49980.00")} for row in gold.anomalies]
    body = anomaly_section(dataclasses.replace(gold, anomalies=tied)).body
    assert "2 of these orders have the lowest revenue listed, $49,980.00: gold keeps only the top orders" in body
    assert "$49,980.00 each" in body
    assert "lowest revenue listed" not in anomaly_section(gold).body


def test_products_are_spelled_alike_in_every_section(html: str) -> None:
    """dyson_v15 is a top product and an anomaly: one spelling (formatting.product) in the chart, the tables."""
    products, anomalies = section_of(html, "products"), section_of(html, "anomalies")
    assert ">dyson_v15</text>" in products  # the chart's label, as SVG text
    assert '<td class="text">dyson_v15</td>' in products and '<td class="text">dyson_v15</td>' in anomalies
    assert "dyson v15" not in html
    assert product("dyson_v15") == "dyson_v15"


def test_charts_draw_text_as_text_in_a_fallback_font_stack(html: str) -> None:
    for svg in re.findall(r"<svg .*?</svg>", html, re.S):
        assert "<text " in svg and "DejaVuSans-" not in svg  # no glyph outlines
        assert "font-family: 'DejaVu Sans', Arial, Helvetica, sans-serif" in svg


# --- the task ------------------------------------------------------------------------------------

def _report_task(root: Path):
    """The Report task a run on `root` as it is now would build (what tasks.Pipeline plans)."""
    from pipeline.running.preflight import gold_digest, plan_run, write_files_list
    from pipeline.storage.layout import DataLayout
    from tasks.config import load_settings
    from tasks.report import Report

    layout, settings = DataLayout(root), load_settings(str(root))
    plan = plan_run(layout, settings, discover_bronze(root / "bronze"), [])
    inputs = write_files_list(layout, plan.gold_files, gold_digest(layout, plan.gold_files, plan.runnable, settings))
    return Report(data_root=str(root), inputs=inputs)


def _build(task: luigi.Task) -> None:
    result = luigi.build([task], local_scheduler=True, workers=1, log_level="CRITICAL", detailed_summary=True)
    assert result.status.name == "SUCCESS", result.summary_text


def test_report_task_renders_after_gold_and_never_counts_an_old_page(data_root: Path) -> None:
    write_bronze(data_root, {"a.csv": f"{HEADER}\nA1,iPhone 14,electronics,2,$500.00,0.1,north,2024-05-01,x@y.com\n"
                                      f"A2,Tee,clothes,1,20,,south,,\nA1,dup,fashion,1,1,0,east,2024-05-02,\n"})
    layout = DataLayout(data_root)
    task = _report_task(data_root)
    _build(task)
    marker = layout.report_dir / f"_rendered-{task.inputs}.json"
    assert marker.exists() and task.complete()
    page = layout.report_path.read_text(encoding="utf-8")
    assert card_value(page, "Revenue") == "$920.00" and card_value(page, "Orders") == "2"
    assert "x@y.com" not in page
    # gold rewritten (e.g. --rebuild-gold): the page on disk no longer counts
    shutil.rmtree(layout.gold_dir)
    assert not task.complete()
    # a new bronze file: a new inputs digest, so the old marker does not count; it is replaced
    write_bronze(data_root, {"b.csv": f"{HEADER}\nB1,iPad,electronics,1,100,0,west,2024-06-01,\n"})
    newer = _report_task(data_root)
    assert not newer.complete()
    _build(newer)
    assert [p.name for p in layout.report_dir.glob("_rendered-*.json")] == [f"_rendered-{newer.inputs}.json"]
    assert card_value(layout.report_path.read_text(encoding="utf-8"), "Orders") == "3"
    # the report reads gold only
    shutil.rmtree(layout.silver_dir)
    write_report(layout.gold_dir, layout.report_path, None)


# --- a real browser ------------------------------------------------------------------------------

PROBE_HEAD = """<script>
window.__errors = [];
window.addEventListener("error", e => window.__errors.push(String(e.message || (e.target && (e.target.src || e.target.href)))), true);
</script>"""
PROBE_TAIL = """<script>
window.addEventListener("load", () => {
  const sizes = [...document.querySelectorAll("svg, img")].map(el => {
    const box = el.getBoundingClientRect();
    return el.tagName === "IMG" ? [el.id || el.src.slice(0, 40), el.naturalWidth, el.naturalHeight]
                                : [el.id, Math.round(box.width), Math.round(box.height)];
  });
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({errors: window.__errors, sizes: sizes});
  document.body.appendChild(out);
});
</script>"""


def need_chromium() -> None:
    """Skip without Chromium, saying why; but fail under CI=true, where a skipped browser test would hide that
    the report was never opened in a browser."""
    if CHROMIUM.exists():
        return
    why = f"chromium not installed: {CHROMIUM} is missing (run .ci/install-browser; it needs apt-get and root)"
    if os.environ.get("CI", "").strip().lower() in ("true", "1"):
        pytest.fail(f"{why}; CI=true, so the browser test must run", pytrace=False)
    pytest.skip(why)


def test_a_missing_chromium_fails_under_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys.modules[__name__], "CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        need_chromium()
    for value in (None, "", "false"):
        if value is None:
            monkeypatch.delenv("CI")
        else:
            monkeypatch.setenv("CI", value)
        with pytest.raises(pytest.skip.Exception, match="no-chromium is missing"):
            need_chromium()


def _chromium(profile: Path, *args: str) -> subprocess.CompletedProcess:
    """Headless Chromium with no network at all: any request would fail and be reported."""
    command = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
               "--proxy-server=http://127.0.0.1:9", "--enable-logging=stderr", "--v=0", "--hide-scrollbars", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=90)


def _console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def test_chromium_loads_the_page_offline_without_errors_and_draws_every_chart(tmp_path: Path, html: str) -> None:
    need_chromium()
    report = tmp_path / "report" / "index.html"
    report.parent.mkdir()
    report.write_text(html, encoding="utf-8")
    page = html
    probe = report.with_name("probe.html")  # same folder, so relative references would resolve the same
    probe.write_text(page.replace("<head>", "<head>\n" + PROBE_HEAD, 1).replace("</body>", PROBE_TAIL + "\n</body>", 1),
                     encoding="utf-8")

    dumped = _chromium(tmp_path / "profile-dom", "--virtual-time-budget=5000", "--dump-dom", probe.as_uri())
    match = re.search(r'<pre id="probe">(.*?)</pre>', dumped.stdout, re.S)
    assert match, f"the probe did not run: {dumped.stderr[-2000:]}"
    result = json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    assert result["errors"] == []
    assert _console_messages(dumped.stderr) == []
    assert sorted(name for name, _, _ in result["sizes"]) == sorted(CHARTS + NARROW_CHARTS)
    shown = [size for size in result["sizes"] if size[1] > 0]  # a 1280 px window: the wide drawings
    assert sorted(name for name, _, _ in shown) == sorted(CHARTS)
    assert all(width > 300 and height > 100 for _, width, height in shown), shown

    shot = tmp_path / "report.png"
    taken = _chromium(tmp_path / "profile-shot", f"--screenshot={shot}", "--window-size=1280,2400", report.as_uri())
    assert shot.exists() and shot.stat().st_size > 20_000, taken.stderr[-2000:]
    assert _png_size(shot) == (1280, 2400)
    assert _console_messages(taken.stderr) == []


# --- the page fits a desktop and a phone window --------------------------------------------------

WIDTHS = (1400, 390)  # a desktop window and a phone (iPhone 12 to 15: 390 CSS px)


def _busy_gold(root: Path) -> Path:
    """A gold shaped like a real run's: 8-digit order ids (and one UUID), millions in revenue, long file
    names and column names, every default applied, snake_case product keys, and one 3,000-character
    product name without a space (input decides names): what the layout must fit."""
    regions, categories = ("north", "south", "east", "west", "central"), ("electronics", "home_appliance", "sports_outdoor")
    daily = [((dt.date(2023, 1, 3) + dt.timedelta(days=11 * i)).isoformat(), regions[i % 5], categories[i % 3], 1234, 5678,
              f"{2_600_000 + 17 * i}.00", f"{2_469_135 + 13 * i}.79", "123.400000") for i in range(66)]
    names = ["samsung galaxy s23 ultra 512gb phantom black", "apple macbook pro 16 m3 max", "dyson v15 detect absolute",
             "y" * 3000, "sony wh-1000xm5 wireless noise cancelling headphones"]
    products = [(n.replace(" ", "_"), 1000 - i, 3000 - i, f"{987_654 - 1000 * i}.21") for i, n in enumerate(names)]
    files = [f"incoming/2024/region=central/sales_data_part_{i:04d}.csv" for i in range(1, 5)]
    base = _anomalies().to_pylist()[0]
    rows = [{**base, "order_id": f"ORD-{10_000_000 + 7919 * i:08d}" if i != 4 else "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
             "product_name": names[i % 5], "category": categories[i % 3], "region": regions[i % 5], "quantity": 20,
             "unit_price": D("2499.00"), "discount_percent": D("0.050000"), "gross_revenue": D("49980.00"), "revenue": D(47481 - i),
             "source_file": files[i % 4], "source_row": 100_000 + 37 * i,
             **{f"default_{f}": (i + j) % 3 == 0 for j, f in enumerate(SOFT_FIELDS)}} for i in range(25)]
    extra = ["coupon_code", "loyalty_tier_identifier", "marketing_campaign_source", "warehouse_location_code"]
    metrics = [FileMetrics(f, 1, rows_read=1_234_567, rows_valid=1_200_000, rows_rejected={r: 8_641 for r in REJECT_REASONS},
                           defaults_applied={s: 12_345 for s in SOFT_FIELDS}, extra_columns=extra,
                           missing_optional_columns=list(SOFT_FIELDS)) for f in files]
    gold = _aggregates(daily, products, [(f, 1_199_000, 1_000) for f in files])
    return write_gold(root, gold, pa.Table.from_pylist(rows, schema=SILVER_SCHEMA), metrics)


@pytest.fixture(scope="module")
def busy_html(tmp_path_factory: pytest.TempPathFactory) -> str:
    info = {"rendered_at": "2026-01-01T10:00:09.123Z",
            "run": {"started_at": "2026-01-01T10:00:00.000Z", "workers": 16, "rows_cleaned": 123_456_789,
                    "rows_per_second": 9_876_543},
            "silver_to_gold": {"started_at": "2026-01-01T10:00:04.000Z", "finished_at": "2026-01-01T10:00:07.456Z",
                               "files": 1234, "parts_merged": 5678, "rows_merged": 123_456_789, "new_unique_orders": 98_765_432,
                               "merge_seconds": 1234.5, "merge_rows_per_second": 9_876_543, "gold_mode": "upsert"}}
    return render_report(_busy_gold(tmp_path_factory.mktemp("busy") / "data"), info)


# Injected into the test's copy of the page only. Every element outside a scroll container must lie
# inside the viewport and inside <main>; an element inside one is checked through its container.
# A container that scrolls hides part of its content (with hidden scroll bars, a cut column).
LAYOUT_PROBE = """<script>
window.addEventListener("load", () => {
  const name = el => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
    + (el.getAttribute("class") ? "." + el.getAttribute("class").trim().split(/\\s+/).join(".") : "")
    + (el.parentElement && el.parentElement !== document.body ? " in " + name(el.parentElement) : "");
  const clips = el => getComputedStyle(el).overflowX !== "visible";
  const inScroller = el => { for (let p = el.parentElement; p; p = p.parentElement) if (clips(p)) return true; return false; };
  const page = document.documentElement.clientWidth, main = document.querySelector("main").getBoundingClientRect();
  const wide = [], scrolling = [], reported = new Set();
  for (const el of document.body.querySelectorAll("*")) {
    if (el.closest("svg") !== null && el.tagName.toLowerCase() !== "svg") continue;  // drawn inside the chart's box
    const box = el.getBoundingClientRect();
    if (!inScroller(el) && (box.left < -0.5 || box.right > Math.min(page, main.right) + 0.5)) {
      reported.add(el);  // the outermost element that is too wide names the problem: not its cells too
      if (!reported.has(el.parentElement)) wide.push([name(el), Math.round(box.width), Math.round(box.left), Math.round(box.right)]);
    }
    if (clips(el) && el.scrollWidth > el.clientWidth + 1)
      scrolling.push([name(el), el.clientWidth, el.scrollWidth, el.querySelector("table") !== null]);
  }
  parent.postMessage(JSON.stringify({frame: "FRAME", viewport: window.innerWidth, page: page, main: Math.round(main.right),
    scrollWidth: document.documentElement.scrollWidth, wide: wide, scrolling: scrolling}), "*");
});
</script>"""


def _layout_in_window(tmp_path: Path, pages: dict[str, str], width: int, probe_script: str = LAYOUT_PROBE) -> dict[str, dict]:
    """Each page laid out in a viewport exactly `width` CSS px wide, measured by `probe_script` (LAYOUT_PROBE).

    Headless Chromium makes no window narrower than 500 px, so every page is opened in an iframe of
    that width (its own viewport: media queries, innerWidth) inside a `--window-size=W,900` window;
    the frame posts its measurements to the outer page, which --dump-dom prints.
    """
    frames = []
    for key, page in pages.items():
        copy = tmp_path / f"{key}-{width}.html"
        probe = probe_script.replace('"FRAME"', json.dumps(key))
        copy.write_text(page.replace("</body>", probe + "\n</body>", 1), encoding="utf-8")
        frames.append(f'<iframe src="{copy.name}" width="{width}" height="900"></iframe>')
    outer = tmp_path / f"window-{width}.html"
    outer.write_text(
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><style>body { margin: 0 } iframe { display: block; border: 0 }'
        "</style></head><body>" + "".join(frames) + '<pre id="layout"></pre><script>\nconst results = [];\n'
        'window.addEventListener("message", e => { results.push(JSON.parse(e.data));'
        ' document.getElementById("layout").textContent = JSON.stringify(results); });\n</script></body></html>\n',
        encoding="utf-8")
    dumped = _chromium(tmp_path / f"profile-{width}", f"--window-size={width},900", "--virtual-time-budget=5000",
                       "--dump-dom", outer.as_uri())
    match = re.search(r'<pre id="layout">(.*?)</pre>', dumped.stdout, re.S)
    assert match, f"the layout probe did not run: {dumped.stderr[-2000:]}"
    results = json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">"))
    by_frame = {result.pop("frame"): result for result in results}
    assert sorted(by_frame) == sorted(pages), f"frames that reported: {sorted(by_frame)}; {dumped.stderr[-2000:]}"
    assert _console_messages(dumped.stderr) == []
    return by_frame


@pytest.mark.parametrize("width", WIDTHS)
def test_no_element_is_wider_than_the_page_at_desktop_and_phone_widths(tmp_path: Path, html: str, busy_html: str,
                                                                        width: int) -> None:
    """At 1400 px everything fits the page column and nothing hides behind a scroll bar (no cut column);
    at 390 px nothing sticks out of the page either, and a table too wide for a phone scrolls inside its
    own box (the only thing that may scroll sideways)."""
    need_chromium()
    # A phone lays a page without it out 980 px wide and zooms out; the frames below cannot show that.
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    problems = []
    for key, layout in sorted(_layout_in_window(tmp_path, {"gold": html, "busy": busy_html}, width).items()):
        assert layout["viewport"] == width, (key, layout)
        where = f"{key} page (its column ends at x={layout['main']})"
        problems += [f"{where}: {name} is {wide} px wide, x={left} to {right}" for name, wide, left, right in layout["wide"]]
        if layout["scrollWidth"] > width:
            problems.append(f"{where}: the page scrolls sideways, {layout['scrollWidth']} px wide")
        for name, shown, content, holds_table in layout["scrolling"]:
            if width >= 1000 or not holds_table:
                problems.append(f"{where}: {name} cuts its content, {content} px wide, {shown} px shown")
    assert not problems, f"in a {width} px window:\n" + "\n".join(problems)


# --- chart text is readable at desktop and phone widths -----------------------------------------

MIN_CHART_TEXT_PX = 9  # CSS px: the smallest chart text anyone should have to read
# Every chart's rendered text size: the font size in the SVG's user units times the scale from
# those units to CSS px on screen (getScreenCTM: the viewBox scaling, any rotation), per <text>;
# and the height of each upright text's box, measured independently of the font size.
FONT_PROBE = """<script>
window.addEventListener("load", () => {
  const charts = [];
  for (const svg of document.querySelectorAll("svg.chart")) {
    const box = svg.getBoundingClientRect(), shown = box.width > 0 && getComputedStyle(svg).display !== "none";
    let smallest = null, lowest = null, texts = 0;
    if (shown) for (const t of svg.querySelectorAll("text")) {
      const m = t.getScreenCTM(), size = parseFloat(getComputedStyle(t).fontSize) * Math.hypot(m.a, m.b);
      smallest = smallest === null ? size : Math.min(smallest, size);
      if (Math.abs(m.b) < 1e-6) { const h = t.getBoundingClientRect().height; lowest = lowest === null ? h : Math.min(lowest, h); }
      texts++;
    }
    charts.push({id: svg.id, shown: shown, width: Math.round(box.width), texts: texts, smallest: smallest, box: lowest});
  }
  parent.postMessage(JSON.stringify({frame: "FRAME", viewport: window.innerWidth, charts: charts}), "*");
});
</script>"""


@pytest.mark.parametrize("width", WIDTHS)
def test_chart_text_renders_at_9_css_px_or_more_at_desktop_and_phone_widths(tmp_path: Path, html: str, busy_html: str,
                                                                             width: int) -> None:
    """Measured in Chromium: each chart shows exactly one drawing (wide or phone-narrow), and none of
    its text is drawn smaller than MIN_CHART_TEXT_PX (at 390 px it was 4 px when charts were page-wide)."""
    need_chromium()
    problems = []
    for key, result in sorted(_layout_in_window(tmp_path, {"gold": html, "busy": busy_html}, width, FONT_PROBE).items()):
        assert result["viewport"] == width
        shown = [c for c in result["charts"] if c["shown"]]
        assert sorted(c["id"].removesuffix("-narrow") for c in shown) == sorted(CHARTS), (key, result["charts"])
        narrow = {c["id"] for c in shown if c["id"].endswith("-narrow")}
        assert narrow == (set() if width >= 1000 else set(NARROW_CHARTS)), (key, narrow)
        for chart in shown:
            assert chart["texts"] > 5, chart
            if chart["smallest"] < MIN_CHART_TEXT_PX or chart["box"] < MIN_CHART_TEXT_PX:
                problems.append(f"{key} page, {chart['id']} ({chart['width']} px wide): text {chart['smallest']:.2f} px, "
                                f"smallest upright text box {chart['box']:.2f} px high")
    assert not problems, f"in a {width} px window:\n" + "\n".join(problems)


def test_sections_drawn_in_forked_processes_give_the_page_drawn_in_one(own_gold: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The report draws its sections on every core (reports.render, pipeline.cores.forked_map): the
    page must be the one a single process draws, byte for byte outside the run section."""
    import reports.render as render

    pages = {}
    for cores in (1, 2, 5):
        monkeypatch.setattr(render, "usable_cores", lambda cores=cores: cores)
        pages[cores] = without_run_section(render_report(own_gold, None))
    assert pages[2] == pages[1] and pages[5] == pages[1]
