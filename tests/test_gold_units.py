"""Gold, aggregation, dedup and the merge, in process on tiny inputs whose gold is computed by hand.

No Luigi, no subprocess: the silver comes from the pipeline's own bronze functions on a few rows,
then the pure functions are called directly. The end-to-end tests (test_gold.py) check the same
rules through run.py.
"""
from __future__ import annotations

import datetime as dt
import os
import time
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.bronze.hashing import xxh64
from pipeline.bronze.silver import FileMetrics, process_chunk, scan_to_manifest, summarise_file
from pipeline.gold.aggregates import aggregate_orders, sum_aggregates
from pipeline.gold.dedup import SeenSegment, first_wins
from pipeline.gold.merge import merge_silver, publish_gold, silver_parts
from pipeline.gold.tables import build_gold_tables, top_products
from pipeline.settings import Settings
from pipeline.storage.atomic import write_text_atomic
from pipeline.storage.layout import DataLayout
from tests import thread_probe
from tests.conftest import HEADER, write_bronze

A_CSV = "\n".join([HEADER,
                   "A1,Widget,electronics,2,10.00,0.1,north,2024-03-05,a@x.com",   # 20.00 gross, 18.00 net
                   "A2,Gadget,fashion,1,5.50,0,south,2024-03-06,b@x.com",          # 5.50
                   "A1,Widget,electronics,9,99.00,0,north,2024-03-05,",            # duplicate of A1: dropped
                   "A3,Widget,electronics,1,0.01,0.5,north,2024-04-01,",           # 0.005 rounds half up to 0.01
                   ",Nothing,electronics,1,1,0,north,2024-03-05,",                 # missing_order_id
                   "A4,Gizmo,toys,3,2.00,0.25,east,05/03/2024,"]) + "\n"           # unknown category; 6.00 gross, 4.50 net
B_CSV = "\n".join([HEADER,
                   "A2,Gadget,fashion,7,1.00,0,west,2024-05-01,",                  # duplicate across files: dropped
                   "A5,Gadget,fashion,4,5.50,0,south,2024-03-06,"]) + "\n"         # 22.00
FILES = ["a.csv", "b.csv"]
D = Decimal


def build_silver(root: Path, settings: Settings) -> tuple[DataLayout, list[FileMetrics]]:
    """Silver of A_CSV and B_CSV by the pipeline's own bronze functions (two records a chunk)."""
    write_bronze(root, {"a.csv": A_CSV, "b.csv": B_CSV})
    layout = DataLayout(root)
    metrics = []
    for name in FILES:
        manifest = scan_to_manifest(layout, name, settings)
        for chunk in manifest.chunks:
            process_chunk(layout, name, chunk.index, settings)
        summary = summarise_file(layout, manifest)
        write_text_atomic(layout.file_summary_path(name), summary.to_json())
        metrics.append(summary)
    return layout, metrics


def gold_of(root: Path, **changes: object) -> dict[str, list[dict]]:
    settings = Settings(data_root=str(root), chunk_rows=2).with_changes(**changes)
    layout, metrics = build_silver(root, settings)
    report = merge_silver(layout, settings, silver_parts(layout, FILES), source_files=FILES)
    assert (report.rows_merged, report.unique_orders) == (7, 5)
    publish_gold(layout, settings, metrics)
    return {path.stem: pq.read_table(path).to_pylist() for path in sorted(layout.gold_dir.glob("*.parquet"))}


@pytest.fixture(scope="module")
def gold(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict]]:
    return gold_of(tmp_path_factory.mktemp("gold-units"))


def test_monthly_sales_summary_by_hand(gold: dict[str, list[dict]]) -> None:
    assert gold["monthly_sales_summary"] == [
        {"sale_month": "2024-03", "order_count": 4, "total_quantity": 10, "gross_revenue": D("53.50"),
         "total_revenue": D("50.00"), "avg_discount": D("0.0875")},
        {"sale_month": "2024-04", "order_count": 1, "total_quantity": 1, "gross_revenue": D("0.01"),
         "total_revenue": D("0.01"), "avg_discount": D("0.5000")},
    ]


def test_daily_region_and_category_tables_by_hand(gold: dict[str, list[dict]]) -> None:
    day = dt.date
    assert [(r["sale_date"], r["region"], r["category"], r["order_count"], r["total_quantity"], r["total_revenue"])
            for r in gold["daily_sales"]] == [
        (day(2024, 3, 5), "east", "unknown", 1, 3, D("4.50")),
        (day(2024, 3, 5), "north", "electronics", 1, 2, D("18.00")),
        (day(2024, 3, 6), "south", "fashion", 2, 5, D("27.50")),
        (day(2024, 4, 1), "north", "electronics", 1, 1, D("0.01")),
    ]
    assert [(r["region"], r["order_count"], r["total_quantity"], r["total_revenue"]) for r in gold["region_wise_performance"]] == [
        ("east", 1, 3, D("4.50")), ("north", 2, 3, D("18.01")), ("south", 2, 5, D("27.50"))]
    assert [(r["category"], r["order_count"], r["avg_discount"], r["total_revenue"]) for r in gold["category_discount_map"]] == [
        ("electronics", 2, D("0.3000"), D("18.01")), ("fashion", 2, D("0.0000"), D("27.50")), ("unknown", 1, D("0.2500"), D("4.50"))]


def test_top_products_anomalies_and_data_quality_by_hand(gold: dict[str, list[dict]]) -> None:
    assert [(r["rank"], r["product_key"], r["total_quantity"], r["total_revenue"], r["order_count"]) for r in gold["top_products"]] == [
        (1, "gadget", 5, D("27.50"), 2), (2, "widget", 3, D("18.01"), 2), (3, "gizmo", 3, D("4.50"), 1)]
    assert [(r["rank"], r["order_id"], r["revenue"], r["source_file"], r["source_row"]) for r in gold["anomaly_records"]] == [
        (1, "A5", D("22.00"), "b.csv", 2), (2, "A1", D("18.00"), "a.csv", 1), (3, "A2", D("5.50"), "a.csv", 2),
        (4, "A4", D("4.50"), "a.csv", 6), (5, "A3", D("0.01"), "a.csv", 4)]
    quality = {r["source_file"]: r for r in gold["data_quality"]}
    assert {k: quality["a.csv"][k] for k in ("rows_read", "rows_valid", "rows_rejected", "rejected_missing_order_id",
                                              "duplicates_dropped", "rows_in_gold", "default_category")} == {
        "rows_read": 6, "rows_valid": 5, "rows_rejected": 1, "rejected_missing_order_id": 1,
        "duplicates_dropped": 1, "rows_in_gold": 4, "default_category": 1}
    assert (quality["b.csv"]["rows_read"], quality["b.csv"]["duplicates_dropped"], quality["b.csv"]["rows_in_gold"]) == (2, 1, 1)


@pytest.mark.parametrize("changes", [{"merge_batch_rows": 1}, {"merge_parallel_min_rows": 0}, {"gold_mode": "overwrite"},
                                     {"silver_buckets": 1}],
                         ids=["a batch per part", "two merge threads", "overwrite", "one bucket"])
def test_batches_threads_mode_and_buckets_never_change_a_number(tmp_path: Path, gold: dict[str, list[dict]],
                                                                changes: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pipeline.gold.merge.usable_cores", lambda: 2)
    merges = thread_probe.probe(monkeypatch)
    assert gold_of(tmp_path, **changes) == gold
    # The threads each merge batch ran with: two merge threads where asked (both ran bucket jobs),
    # elsewhere none (every bucket merged on the task's own thread).
    threads = 2 if changes.get("merge_parallel_min_rows") == 0 else 0
    ran = thread_probe.threads_per_batch(merges)
    assert ran and all(batch == (threads, max(threads, 1)) for batch in ran), f"(threads decided, threads that merged): {ran}"


def test_a_second_merge_of_the_same_parts_adds_nothing(tmp_path: Path) -> None:
    settings = Settings(data_root=str(tmp_path), chunk_rows=2)
    layout, _metrics = build_silver(tmp_path, settings)
    parts = silver_parts(layout, FILES)
    assert merge_silver(layout, settings, parts, source_files=FILES).parts_merged == len(parts)
    again = merge_silver(layout, settings, parts, source_files=FILES)
    assert (again.parts_merged, again.rows_merged, again.unique_orders) == (0, 0, 0)


def test_first_wins_inside_a_batch_and_against_earlier_batches() -> None:
    first = pa.array(["X", "Y"])
    earlier = first_wins(first, xxh64(first), [])
    assert earlier.keep.to_pylist() == [True, True] and earlier.unique_count == 2
    then = pa.array(["Z", "X", "Z", "W"])
    later = first_wins(then, xxh64(then), [SeenSegment.from_table(earlier.new_keys)])
    assert later.keep.to_pylist() == [True, False, False, True]
    assert sorted(later.new_keys.column("key").to_pylist()) == ["W", "Z"]


def test_duplicates_are_counted_per_file_and_only_unique_orders_are_summed() -> None:
    rows = pa.table({"sale_date": pa.array([dt.date(2024, 1, 1)] * 4), "sale_month": ["2024-01"] * 4, "region": ["north"] * 4,
                     "category": ["fashion"] * 4, "product_key": ["p"] * 4, "source_file": ["f2", "f2", "f2", "f3"],
                     "quantity": [1, 2, 4, 8], "gross_revenue": pa.array([D("1.00")] * 4, pa.decimal128(18, 2)),
                     "revenue": pa.array([D("1.00")] * 4, pa.decimal128(18, 2)),
                     "discount_percent": pa.array([D("0")] * 4, pa.decimal128(7, 6)),
                     "default_region": [True, True, False, False], "default_category": [False, False, False, True]})
    aggregates = aggregate_orders(rows, pa.array([True, False, False, True]))
    assert aggregates["files"].to_pylist() == [{"source_file": "f2", "rows_in_gold": 1, "duplicates_dropped": 2},
                                               {"source_file": "f3", "rows_in_gold": 1, "duplicates_dropped": 0}]
    assert aggregates["daily"].column("total_quantity").to_pylist() == [9]
    assert aggregates["products"].column("order_count").to_pylist() == [2]
    # only unique orders whose flag is set count towards what rests on a default
    assert aggregates["daily"].select(["region_defaulted_orders", "category_defaulted_orders"]).to_pylist() == [
        {"region_defaulted_orders": 1, "category_defaulted_orders": 1}]
    assert aggregates["daily"].column("region_defaulted_revenue").to_pylist() == [D("1.00")]


def test_aggregates_of_halves_add_up_to_the_aggregates_of_the_whole(tmp_path: Path) -> None:
    settings = Settings(data_root=str(tmp_path), chunk_rows=2)
    layout, _metrics = build_silver(tmp_path, settings)
    rows = pa.concat_tables([pq.read_table(p.path) for p in silver_parts(layout, FILES)])
    def all_kept(table: pa.Table) -> pa.Array:
        return pa.array([True] * table.num_rows)

    whole = aggregate_orders(rows, all_kept(rows))
    halves = sum_aggregates([aggregate_orders(rows.slice(0, 3), all_kept(rows.slice(0, 3))),
                             aggregate_orders(rows.slice(3), all_kept(rows.slice(3)))])
    for grain in ("daily", "products", "files"):
        assert halves[grain].equals(whole[grain]), grain


def test_top_products_breaks_revenue_ties_by_product_key() -> None:
    products = pa.table({"product_key": ["b", "a", "c"], "order_count": [1, 1, 1], "total_quantity": [1, 1, 1],
                         "total_revenue": pa.array([D("5.00"), D("5.00"), D("9.00")], pa.decimal128(38, 2))})
    assert [r["product_key"] for r in top_products(products, 2).to_pylist()] == ["c", "a"]


def test_gold_from_empty_aggregates_is_every_table_with_no_rows() -> None:
    from pipeline.contract import GOLD_TABLES
    from pipeline.gold.aggregates import Aggregates
    from pipeline.gold.merge import ANOMALY_SCHEMA

    tables = build_gold_tables(Aggregates.empty(), ANOMALY_SCHEMA.empty_table(), [], 10, 20, ("order_id",))
    assert set(tables) == set(GOLD_TABLES) and all(t.num_rows == 0 for t in tables.values())


def test_a_state_of_another_format_is_rebuilt_from_silver(tmp_path: Path) -> None:
    from pipeline.gold.state_store import open_state
    from pipeline.gold.step import merge_and_publish

    settings = Settings(data_root=str(tmp_path), chunk_rows=2)
    layout, metrics = build_silver(tmp_path, settings)
    with open_state(layout.state_dir) as state:  # a state as an earlier version wrote it: keys, no format
        state._db["merged_parts"] = b'J{"x.csv#00001": ""}'  # format 1: no checksum
        state._db.commit()
    message = merge_and_publish(layout, settings, FILES, "digest")
    assert message.startswith("state rebuilt from all silver (state file") and "is of format 1" in message, message
    published = {path.stem: pq.read_table(path).to_pylist() for path in sorted(layout.gold_dir.glob("*.parquet"))}
    assert published == gold_of(tmp_path / "fresh")


def test_ordered_map_returns_every_result_in_order_and_holds_at_most_the_window() -> None:
    """The merge's and the orders writer's thread map: nothing dropped (zip once swallowed an item
    at the window's edge), order kept, at most `window` items submitted ahead of the one consumed."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from pipeline.cores import ordered_map

    running, most = 0, 0
    lock = threading.Lock()

    def work(item: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.002)
        with lock:
            running -= 1
        return item * item

    for count, window in ((0, 3), (1, 3), (3, 3), (4, 3), (50, 3), (7, 1)):
        with ThreadPoolExecutor(4) as pool:
            assert list(ordered_map(pool, work, range(count), window=window)) == [i * i for i in range(count)], (count, window)
    assert most <= 3 + 1  # `window` ahead of the one being waited for


def _pid_and_square(item: int) -> tuple[int, int]:
    return os.getpid(), item * item


def test_forked_map_returns_every_result_in_order_from_other_processes_and_raises_their_errors() -> None:
    """The report's section pool: results in call order, drawn in forked children (not this process)
    when more than one core is allowed, in this process when one is; a child's error reaches the caller."""
    from pipeline.cores import forked_map

    calls = [lambda i=i: _pid_and_square(i) for i in range(9)]
    forked = forked_map(calls, processes=3)
    assert [square for _, square in forked] == [i * i for i in range(9)]
    assert os.getpid() not in {pid for pid, _ in forked}
    assert forked_map(calls, processes=1) == [(os.getpid(), i * i) for i in range(9)]
    assert forked_map([], processes=4) == []

    def fails() -> int:
        raise ValueError("bad section")

    with pytest.raises(ValueError, match="bad section"):
        forked_map([lambda: 1, fails], processes=2)


def test_delete_prefix_removes_exactly_the_keys_under_it_and_commits_with_the_rest(tmp_path: Path) -> None:
    """The merge's bucket records go in one statement: a neighbour of the prefix ("bucket/" against
    "bucketx") stays, and the deletion lands only with the commit."""
    from pipeline.gold.state_store import open_state

    keys = ["bucket/0/agg", "bucket/10/dropped", "bucket/", "bucketx", "batch", "z"]
    with open_state(tmp_path / "state") as state:
        for key in keys:
            state.put_json(key, key)
        state.commit()
        state.delete_prefix("bucket/")
        assert sorted(state.keys_with_prefix("")) == ["batch", "bucketx", "z"]
        state.delete_prefix("nothing/")  # matches nothing: the commit still succeeds
        state.commit()
    with open_state(tmp_path / "state") as state:
        assert sorted(state.keys_with_prefix("")) == ["batch", "bucketx", "z"]
        state.delete_prefix("")
        state.commit()
        assert state.keys_with_prefix("") == []
