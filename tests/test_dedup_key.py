"""`[gold] dedup_key`: which cleaned columns make an order, through the command line on real files.

A line-item export (one row per order line) keeps every line under `order_id, product_key`, where
the default key (`order_id`) keeps the first line of each order only; a true duplicate line is
still dropped. The key is cleaned before it is hashed (trimmed ids, aliased names), and a change of
the key is refused on an existing data root until `--reprocess-all`.
"""
from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import HEADER, run_cli, write_bronze
from tests.gold_helpers import layered_config, read_gold, run_gold

LINE_ITEMS = "\n".join([
    HEADER,
    "ORD-1,Dyson V15,home appliance,1,1000.00,0,north,2024-03-01,a@example.com",
    "ORD-1,Filter,home appliance,2,50.00,0,north,2024-03-01,a@example.com",
    " ORD-1 ,filter,Home Appliance,1,10.00,0,north,2024-03-01,a@example.com",  # same line again, spelt otherwise: a duplicate
    "ORD-2,Dyson V15,home appliance,1,10.00,0,south,2024-03-02,b@example.com",
    "",
])
LINE_KEY = "[gold]\ndedup_key = order_id, product_key\n"


def _revenue_and_orders(root: Path) -> tuple[Decimal, int, int]:
    gold = read_gold(root)
    daily, quality = gold["daily_sales"].to_pylist(), gold["data_quality"].to_pylist()
    return (sum((r["total_revenue"] for r in daily), Decimal(0)), sum(r["order_count"] for r in daily),
            sum(r["duplicates_dropped"] for r in quality))


def test_the_default_key_keeps_the_first_line_of_each_order(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_bronze(root, {"lines.csv": LINE_ITEMS})
    run_gold(root)
    assert _revenue_and_orders(root) == (Decimal("1010.00"), 2, 2)


def test_a_line_item_key_keeps_every_line_and_still_drops_a_repeated_line(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_bronze(root, {"lines.csv": LINE_ITEMS})
    run_gold(root, layered_config(tmp_path, LINE_KEY))
    assert _revenue_and_orders(root) == (Decimal("1110.00"), 3, 1)
    anomalies = read_gold(root)["anomaly_records"].to_pylist()
    assert [(r["order_id"], r["product_key"]) for r in anomalies] == [("ORD-1", "dyson_v15"), ("ORD-1", "filter"),
                                                                        ("ORD-2", "dyson_v15")]
    silver = pq.read_table(root / "silver" / "lines.csv" / "part-00001.parquet", columns=["order_id", "key_hash"]).to_pylist()
    assert len({r["key_hash"] for r in silver if r["order_id"] == "ORD-1"}) == 2  # hashed from the cleaned key


@pytest.mark.slow  # each silver setting alone is the slow tier's: test_change_safety refuses a changed one
def test_a_changed_key_is_refused_until_reprocess_all(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_bronze(root, {"lines.csv": LINE_ITEMS})
    run_gold(root)
    env = layered_config(tmp_path, LINE_KEY)
    refused = run_cli("--data-root", str(root), "--until", "gold", env=env)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "[gold] dedup_key" in refused.stdout + refused.stderr and "--reprocess-all" in refused.stdout + refused.stderr
    assert _revenue_and_orders(root) == (Decimal("1010.00"), 2, 2)  # gold untouched by the refused run
    run_gold(root, env, "--reprocess-all")
    assert _revenue_and_orders(root) == (Decimal("1110.00"), 3, 1)


@pytest.mark.parametrize("column", ["revenue", "customer_email"])
def test_a_key_column_gold_cannot_show_is_one_config_line(tmp_path: Path, column: str) -> None:
    root = tmp_path / "data"
    write_bronze(root, {"lines.csv": LINE_ITEMS})
    result = run_cli("--data-root", str(root), env=layered_config(tmp_path, f"[gold]\ndedup_key = order_id, {column}\n"))
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "[gold] dedup_key" in lines[0] and column in lines[0], result.stderr
    assert not (root / "silver").exists()
