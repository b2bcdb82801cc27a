"""A record of every run, through the command line: `runs/history/<start>-<host>-<pid>.json` and its
`.log`, listed by `python run.py history [--json]`, kept to `[pipeline] run_history_keep`, written
for a failing run too, never for a run refused before it started."""
from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq

from tests.conftest import HEADER, run_cli, write_bronze

GENERATED = ["sales_data_part_0001.csv", "sales_data_part_0002.csv"]
# three valid orders (discount 0: revenue = quantity x unit price = 21.00 + 99.99 + 3.03) and one invalid quantity
LATE_ROWS = [
    "HIST-1,Widget,electronics,2,10.50,0,north,2026-11-20,a@example.com",
    "HIST-2,Gadget,fashion,1,99.99,0,south,2026-11-21,b@example.com",
    "HIST-3,Thing,electronics,3,1.01,0,east,2026-11-22,c@example.com",
    "HIST-4,Broken,electronics,-1,5.00,0,west,2026-11-22,d@example.com",
]
LATE_REVENUE = Decimal("124.02")


def generated_root(tmp_path: Path, rows: int = 3000, files: int = 2) -> Path:
    root = tmp_path / "data"
    made = run_cli("generate", "--rows", str(rows), "--files", str(files), "--data-root", str(root))
    assert made.returncode == 0, made.stdout + made.stderr
    return root


def history(root: Path) -> list[dict]:
    listed = run_cli("history", "--json", "--data-root", str(root))
    assert listed.returncode == 0, listed.stdout + listed.stderr
    account = json.loads(listed.stdout)  # stdout is one JSON object
    assert account["command"] == "history" and account["ok"] is True
    return account["runs"]


def gold_revenue(root: Path) -> tuple[int, Decimal]:
    table = pq.read_table(root / "gold" / "region_wise_performance.parquet")
    return sum(table.column("order_count").to_pylist()), sum(table.column("total_revenue").to_pylist(), Decimal(0))


def test_each_run_leaves_a_record_with_its_counts_and_history_lists_them_newest_last(tmp_path: Path) -> None:
    root = generated_root(tmp_path)
    first = run_cli("--data-root", str(root), "--workers", "2")
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"new files: 2 ({', '.join(GENERATED)})" in first.stdout
    orders, revenue = gold_revenue(root)
    assert f"gold now holds {orders:,} orders, total revenue {revenue:,}" in first.stdout
    write_bronze(root, {"late/extra.csv": "\n".join([HEADER, *LATE_ROWS]) + "\n"})
    second = run_cli("--data-root", str(root), "--workers", "2")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "new files: 1 (late/extra.csv)" in second.stdout
    assert f"gold now holds {orders + 3:,} orders" in second.stdout

    one, two = history(root)
    assert one["command"] == ["run.py", "--data-root", str(root), "--workers", "2"]
    assert one["exit_code"] == 0 and one["ok"] is True and one["error"] is None
    assert one["started_at"] < one["ended_at"] <= two["started_at"] < two["ended_at"]
    assert one["files"] == {"new": GENERATED, "changed": [], "gone": [], "failed": [], "cleaned": GENERATED}
    assert one["rows"]["read"] == 3000 == one["rows"]["valid"] + sum(one["rows"]["rejected"].values())
    assert one["new_orders"] == orders and one["gold"] == {"orders": orders, "total_revenue": str(revenue)}

    assert two["files"]["new"] == ["late/extra.csv"] == two["files"]["cleaned"]
    assert two["rows"]["read"] == 4 and two["rows"]["valid"] == 3
    assert two["rows"]["rejected"] == {"malformed_row": 0, "missing_order_id": 0, "invalid_quantity": 1, "invalid_unit_price": 0}
    assert two["new_orders"] == 3
    assert two["gold"] == {"orders": orders + 3, "total_revenue": str(revenue + LATE_REVENUE)}  # exact decimal text

    # beside the data, never inside gold: one record and one log per run, the log holding the summary
    folder = root / "runs" / "history"
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{r['name']}{suffix}" for r in (one, two) for suffix in (".json", ".log"))
    assert not [p for p in (root / "gold").rglob("*") if "history" in p.name or p.name.endswith(".log")]
    log = (folder / two["log"]).read_text()
    assert "new files: 1 (late/extra.csv)" in log and "report: " in log

    table = run_cli("history", "--data-root", str(root))
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].startswith("started (UTC)") and "new orders" in lines[0] and "gold revenue" in lines[0]
    assert [line[:19] for line in lines[1:3]] == [r["started_at"].replace("T", " ")[:19] for r in (one, two)]  # newest last
    assert f"{revenue + LATE_REVENUE:,}" in lines[2] and lines[2].endswith(f"run.py --data-root {root} --workers 2")
    assert lines[3] == f"2 run(s) recorded under {folder} (the newest last; each with its .log beside it)"


def test_retention_keeps_only_the_newest_records_and_their_logs(tmp_path: Path) -> None:
    root = generated_root(tmp_path, rows=300, files=1)
    for _ in range(3):  # a run-only setting may be given on the command line
        result = run_cli("--data-root", str(root), "--until", "silver", "--pipeline-run-history-keep", "2")
        assert result.returncode == 0, result.stdout + result.stderr
    kept = history(root)
    assert len(kept) == 2 and kept[0]["files"]["new"] == [] and kept[1]["files"]["new"] == []  # the first run's is gone
    folder = root / "runs" / "history"
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{r['name']}{suffix}" for r in kept for suffix in (".json", ".log"))


def test_a_failing_run_is_recorded_with_its_exit_code_and_failed_file_a_refused_one_is_not(tmp_path: Path) -> None:
    root = generated_root(tmp_path, rows=300, files=1)
    refused = run_cli("--data-root", str(root), "--cleaning-max-quantity", "15")  # refused at start: nothing written
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert not (root / "runs").exists()
    write_bronze(root, {"no_quantity.csv": "order_id,product_name,unit_price\nX-1,Widget,10.00\n"})
    failed = run_cli("--data-root", str(root))
    assert failed.returncode == 1, failed.stdout + failed.stderr
    [record] = history(root)
    assert record["exit_code"] == 1 and record["ok"] is False
    assert record["files"]["failed"] == ["no_quantity.csv"] and record["files"]["new"] == ["sales_data_part_0001.csv"]
    assert any("no_quantity.csv" in line for line in record["failures"])
    log = (root / "runs" / "history" / record["log"]).read_text()
    assert "FAILED no_quantity.csv" in log


def test_history_of_a_data_root_without_runs_lists_none(tmp_path: Path) -> None:
    root = generated_root(tmp_path, rows=10, files=1)
    assert history(root) == []
    listed = run_cli("history", "--data-root", str(root))
    assert listed.returncode == 0 and listed.stdout.strip() == f"0 run(s) recorded under {root / 'runs' / 'history'} " \
                                                               "(the newest last; each with its .log beside it)"
    missing = run_cli("history", "--data-root", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and missing.stderr.strip() == f"ERROR data root {tmp_path / 'nowhere'} does not exist " \
                                                                 "(pass --data-root DIR)"


def test_a_reprocessed_file_counts_as_cleaned_not_new(tmp_path: Path) -> None:
    root = generated_root(tmp_path, rows=600, files=2)
    assert run_cli("--data-root", str(root), "--until", "gold").returncode == 0
    redo = run_cli("--data-root", str(root), "--until", "gold", "--reprocess", GENERATED[1])
    assert redo.returncode == 0, redo.stdout + redo.stderr
    assert "new files: none" in redo.stdout
    first, second = history(root)
    assert second["files"]["new"] == [] and second["files"]["cleaned"] == [GENERATED[1]]
    assert second["rows"]["read"] == 300 and second["new_orders"] == 0 and second["gold"] == first["gold"]


def test_a_run_with_nothing_to_do_totals_the_silver_its_plan_read_and_records_nothing_cleaned(tmp_path: Path) -> None:
    root = generated_root(tmp_path)
    first = run_cli("--data-root", str(root), "--workers", "2")
    assert first.returncode == 0, first.stdout + first.stderr
    again = run_cli("--data-root", str(root), "--workers", "2")
    assert again.returncode == 0, again.stdout + again.stderr
    one, two = history(root)
    assert (f"Nothing to do: all 2 files are already done up to report ({one['rows']['read']:,} rows read, "
            f"{one['rows']['valid']:,} valid)") in again.stdout
    assert two["files"] == {"new": [], "changed": [], "gone": [], "failed": [], "cleaned": []}
    assert two["rows"]["read"] == 0 and two["new_orders"] == 0 and two["gold"] == one["gold"]
