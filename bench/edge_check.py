#!/usr/bin/env python
"""Do the DuckDB and Polars jobs follow the contract on its edges, not only on generated data?

    python bench/edge_check.py [--scratch DIR] [--keep]

Writes a few hundred hand-made rows (one contract edge per row: number syntax, rounding, bounds,
dates, aliases, white space, null tokens, dedup of a rejected first occurrence, ...) as bronze
CSV, runs the pipeline (`run.py --until gold`), the DuckDB job and the Polars job on them, and
compares the three daily_sales tables with bench/compare.py. Exit 0 when all agree.
"""
from __future__ import annotations

import argparse
import datetime as dt
import itertools
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

from compare import compare_daily_sales  # noqa: E402

NBSP = "\u00a0"
QUANTITIES = ["3", "+3", "3.0", "1e3", "1E3", "3.0000001", "2.5", "-2", "0", "1000000", "1000001", "1e6", "1e7",
              "0.3e1", "30e-1", "3.", ".3e1", " 3 ", f"{NBSP}3{NBSP}", "\u0663", "3,000", "0x10", "nan", "inf", "",
              "NULL", "1e400", "1e-400", "00003", "3.0000000000000000000000001", "7\u3000", "-0", "+0.7e1"]
PRICES = ["12.345", "12.344", "19.995", "0.005", "0.004", "$5", "-$5", "$-5", "5$", "$ 5", "€1,234.50", "£3.1",
          "1,234", "12,34", "1,2345", "1000000000", "1000000000.004", "1000000000.005", "1e9", "1.5e2", "2.5E-1",
          "$1e3", "+$5", ".5", "5.", "0", "0.001", "abc", "1,234,567.891", "9999999999999999999999", "1e400",
          "-0.001", "\u0663", "NaN", " $7.10 ", "1,000,000,000.00", "0.0049999", "0.00500", "3.14159e+2"]
DISCOUNTS = ["0.1234565", "0.1234564", "1", "1.0000004", "1.0000005", "-0", "-0.0000004", "-0.0000005", "1e-1",
             "25%", "0.5e0", ".5", "", "NA", "0.15", "2", "-0.1", "0.99999995", "5e-7", "4e-7"]
DATES = ["2024-3-5", "2024-03-05", "05/03/2024", "5/3/2024", "03-05-2024", "2024/03/05", "2024-02-30", "2024-02-29",
         "2023-02-29", "2024-03-05T10:20", "2024-03-05 10:20:00", "2024-03-05T10:20:00Z", "2024-03-05T10:20:00+01:00",
         "2024-03-05T25:00:00", "2024-02-30T10:00:00", "2024-03-05T10:20:00.123", "0000-01-01", "2024-01- 5",
         "31/12/2024", "12-31-2024", "13-01-2024", "2024-03-05x", "\u0661\u0662/\u0660\u0663/\u0662\u0660\u0662\u0664",
         "2024-003-05", "1900-02-29", "2000-02-29", "2024-12-31t23:59", "2024-12-31T23:59:59,5-0330", "", "none",
         "20240305", "2024-13-01", "29/02/2023", "02-29-2024"]
CATEGORIES = ["Electronics", " ELECTRONIC ", "home  appliance", f"Home{NBSP}Appliance", "HomeAppliance", "home-appl",
              "CLOTHING", "toys", "\u0130", "ELECTRON\u0130CS", "elec tronics", "Fashion\t", "", "N/A", "cloths"]
REGIONS = ["Nort", " SOUTH ", "mars", "EAST", "West\t", "", "null", f"{NBSP}north", "NORTH  ", "so uth"]
IDS = ["", " ", "NULL", "none", "N/A", "nan", "NA", "Na", "nULL"]


def _field(value: str) -> str:
    if any(ch in value for ch in ',"\r\n') or value != value.strip(" "):
        return '"' + value.replace('"', '""') + '"'
    return value


def _rows() -> list[list[str]]:
    """(order_id, product_name, category, quantity, unit_price, discount, region, sale_date, email)."""
    base = ["P", "electronics", "2", "10.00", "0.1", "east", "2024-01-15", "a@b.co"]
    rows, n = [], itertools.count(1)

    def add(order_id: str | None = None, **changes: str) -> None:
        values = dict(zip(["product_name", "category", "quantity", "unit_price", "discount_percent", "region",
                           "sale_date", "customer_email"], base))
        i = next(n)
        values["sale_date"] = (dt.date(2000, 1, 1) + dt.timedelta(days=i)).isoformat()  # one key per row
        values.update(changes)
        rows.append([order_id if order_id is not None else f"E-{i}", *values.values()])

    for q in QUANTITIES:
        add(quantity=q)
    for p in PRICES:
        add(unit_price=p)
        add(unit_price=p, quantity="7", discount_percent="0.333333")
    for d in DISCOUNTS:
        add(discount_percent=d, unit_price="19.99", quantity="3")
    for d in DATES:
        add(sale_date=d)
    for c in CATEGORIES:
        add(category=c)
    for r in REGIONS:
        add(region=r)
    for i in IDS:
        add(order_id=i)
    # dedup: a rejected first occurrence claims nothing; padded ids are the same id; the first valid wins
    add(order_id="D-1", quantity="zero")
    add(order_id=" D-1 ", quantity="4", unit_price="1.00")
    add(order_id="D-1", quantity="5", unit_price="1000.00")
    add(order_id=f"{NBSP}D-2", quantity="6")
    add(order_id="d-2", quantity="6")  # ids are case sensitive
    return rows


def write_bronze(bronze: Path) -> None:
    rows = _rows()
    header = "order_id,product_name,category,quantity,unit_price,discount_percent,region,sale_date,customer_email"
    half = len(rows) // 2
    bronze.mkdir(parents=True, exist_ok=True)
    # two files; the second has a shuffled, oddly spelled header, CRLF, a BOM and repeats ids of the first
    (bronze / "part_1.csv").write_text(header + "\n" + "".join(",".join(map(_field, r)) + "\n" for r in rows[:half]),
                                       encoding="utf-8")
    order = [7, 0, 3, 4, 5, 6, 2, 1, 8]
    names = header.split(",")
    head2 = ",".join(f" {names[i].upper()} " for i in order)
    later = rows[half:] + [["E-1", "P", "fashion", "9", "9.99", "0", "west", "2024-02-01", ""]]
    body2 = "".join(",".join(_field(r[i]) for i in order) + "\r\n" for r in later)
    (bronze / "part_2.csv").write_bytes(b"\xef\xbb\xbf" + (head2 + "\r\n" + body2 + "\r\n").encode("utf-8"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scratch", type=Path, help="folder for the run (default: a new one under bench/out/)")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    import _common

    every_space = "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace())
    assert _common.WS_CHARS == every_space, "bench/_common.py WS_CHARS is not Python's str.isspace set"
    (BENCH / "out").mkdir(exist_ok=True)
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="edge-", dir=BENCH / "out"))
    root = scratch / "pipeline"
    write_bronze(root / "bronze")
    py = sys.executable
    subprocess.run([py, str(REPO / "run.py"), "--data-root", str(root), "--workers", "1", "--until", "gold"],
                   check=True, stdout=subprocess.DEVNULL)
    expected = root / "gold" / "daily_sales.parquet"
    ok = True
    for name in ("duckdb", "polars"):
        out = scratch / f"{name}_daily_sales.parquet"
        subprocess.run([py, str(BENCH / f"{name}_job.py"), "--bronze", str(root / "bronze"), "--out", str(out)],
                       check=True, stdout=subprocess.DEVNULL)
        result = compare_daily_sales(expected, out)
        print(f"{name}: {result.summary()}")
        for line in result.details(limit=40):
            print("   ", line)
        ok &= result.equal
    if not args.keep:
        shutil.rmtree(scratch, ignore_errors=True)
    else:
        print(f"kept {scratch}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
