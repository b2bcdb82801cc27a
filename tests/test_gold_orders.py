"""gold/orders/: one row per unique order, its first occurrence in input order, through the CLI.

The oracle is written here from silver alone (pandas: every silver row in file order, then
drop_duplicates keeping the first), so the merge's own dedup is not what checks it. The dataset is
read the way its users read it: pandas, DuckDB and Polars, each as one table.
"""
from __future__ import annotations

import hashlib
import shutil
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow.parquet as pq
import pytest

from pipeline.generator import generate_bronze
from tests.gold_helpers import layered_config, read_gold, read_orders, run_gold

CONFIG = "[pipeline]\nchunk_rows = 4000\nsilver_buckets = 8\n"
INTERNAL = ["key_hash", "bucket"]  # silver's machinery, not an order's fields


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("orders-source")
    generate_bronze(folder / "bronze", rows=12_000, files=3, seed=5)
    generate_bronze(folder / "next", rows=3_000, files=1, seed=6)  # the same ids again, mostly: duplicates across days
    return folder


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, str]:
    return layered_config(tmp_path / "config", CONFIG)


def copy_root(source: Path, tmp_path: Path) -> Path:
    root = tmp_path / "data"
    shutil.copytree(source / "bronze", root / "bronze")
    return root


def expected_orders(root: Path) -> pd.DataFrame:
    """Every valid silver row in input order (file path, then row), the first of each order_id kept."""
    frames = [pq.read_table(part).to_pandas() for part in sorted((root / "silver").rglob("part-*.parquet"))]
    silver = pd.concat(frames, ignore_index=True)
    silver = silver.sort_values(["source_file", "source_row"], kind="stable")  # the generated names sort naturally
    first = silver.drop_duplicates("order_id", keep="first")
    return first.drop(columns=[*INTERNAL, "customer_email"]).reset_index(drop=True)


def actual_orders(root: Path) -> pd.DataFrame:
    table = read_orders(root / "gold" / "orders")
    frame = table.to_pandas()
    return frame[list(expected_orders(root).columns)].reset_index(drop=True)


def assert_orders_exact(root: Path) -> None:
    expected, actual = expected_orders(root), actual_orders(root)
    assert len(actual) == actual["order_id"].nunique(), "an order appears twice"
    pd.testing.assert_frame_equal(actual.astype(str), expected.astype(str))
    monthly = pq.read_table(root / "gold" / "monthly_sales_summary.parquet").column("order_count").to_pylist()
    assert len(actual) == sum(monthly), "orders and the aggregate tables disagree on the number of orders"


def file_digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root / "gold" / "orders").as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((root / "gold" / "orders").rglob("*.parquet"))}


def test_orders_hold_each_unique_order_once_and_are_one_table_for_pandas_duckdb_and_polars(
        source: Path, tmp_path: Path, env: dict[str, str]) -> None:
    root = copy_root(source, tmp_path)
    run_gold(root, env)
    assert_orders_exact(root)
    folder = root / "gold" / "orders"
    assert all(p.parent.name.startswith("sale_month=") for p in folder.rglob("*.parquet"))
    unique = len(expected_orders(root))

    frame = pd.read_parquet(folder, dtype_backend="pyarrow")
    assert len(frame) == unique and frame["order_id"].is_unique and "customer_email" not in frame.columns
    assert "sale_month" in frame.columns and str(frame["unit_price"].dtype).startswith("decimal128")

    count, distinct, months = duckdb.connect().execute(
        f"SELECT count(*), count(DISTINCT order_id), count(DISTINCT sale_month) "
        f"FROM read_parquet('{folder}/**/*.parquet', hive_partitioning = true)").fetchone()
    assert (count, distinct) == (unique, unique) and months == frame["sale_month"].nunique()

    polars = pl.scan_parquet(f"{folder}/**/*.parquet", hive_partitioning=True).collect()
    assert polars.height == unique and polars["order_id"].n_unique() == unique
    assert "sale_month" in polars.columns and "customer_email" not in polars.columns


def test_a_next_day_adds_only_its_new_orders_and_leaves_earlier_files_alone(
        source: Path, tmp_path: Path, env: dict[str, str]) -> None:
    root = copy_root(source, tmp_path)
    run_gold(root, env)
    before = file_digests(root)
    (root / "bronze" / "zz").mkdir()
    shutil.copy(next((source / "next").rglob("*.csv")), root / "bronze" / "zz" / "next.csv")
    run_gold(root, env)
    after = file_digests(root)
    assert {name: after[name] for name in before} == before, "an earlier day's orders file was rewritten"
    added = set(after) - set(before)
    assert added and all(name.endswith("batch-000001.parquet") for name in added)
    assert_orders_exact(root)


@pytest.mark.slow  # test_change_safety's late arrival compares read_gold (gold/orders included) to a fresh run
def test_a_late_file_that_sorts_first_gives_the_orders_of_a_fresh_run(
        source: Path, tmp_path: Path, env: dict[str, str]) -> None:
    root = copy_root(source, tmp_path)
    run_gold(root, env)
    (root / "bronze" / "aa").mkdir()
    shutil.copy(next((source / "next").rglob("*.csv")), root / "bronze" / "aa" / "early.csv")
    run_gold(root, env)
    assert_orders_exact(root)
    fresh = tmp_path / "fresh"
    shutil.copytree(root / "bronze", fresh / "bronze")
    run_gold(fresh, env)
    assert read_gold(root)["orders"].equals(read_gold(fresh)["orders"])


# The default run proves one kind of damage; the others (same check, the file listing) are the slow tier's.
@pytest.mark.parametrize("damage", ["deleted", pytest.param("truncated", marks=pytest.mark.slow),
                                    pytest.param("stray", marks=pytest.mark.slow)])
def test_an_orders_file_deleted_truncated_or_added_is_noticed_and_the_dataset_rebuilt(
        source: Path, tmp_path: Path, env: dict[str, str], damage: str) -> None:
    root = copy_root(source, tmp_path)
    run_gold(root, env)
    victim = sorted((root / "gold" / "orders").rglob("*.parquet"))[0]
    if damage == "deleted":
        victim.unlink()
    elif damage == "truncated":
        victim.write_bytes(victim.read_bytes()[:-100])
    else:
        shutil.copy(victim, victim.with_name("batch-000099.parquet"))
    again = run_gold(root, env)
    assert "state rebuilt from all silver" in again.stdout and "gold/orders/" in again.stdout, again.stdout
    assert_orders_exact(root)
    assert "Nothing to do" in run_gold(root, env).stdout


def test_customer_email_only_when_a_setting_asks_and_a_change_rewrites_the_dataset(
        source: Path, tmp_path: Path) -> None:
    root = copy_root(source, tmp_path)
    with_email = layered_config(tmp_path / "with", CONFIG + "[gold]\norders_include_email = true\n")
    run_gold(root, with_email)
    table = read_orders(root / "gold" / "orders")
    assert "customer_email" in table.column_names
    assert table.num_rows == len(expected_orders(root))
    run_gold(root, layered_config(tmp_path / "without", CONFIG))
    assert "customer_email" not in pq.read_schema(next((root / "gold" / "orders").rglob("*.parquet"))).names
    assert_orders_exact(root)


def test_a_bad_value_of_the_setting_is_one_line(source: Path, tmp_path: Path) -> None:
    from tests.conftest import run_cli

    root = copy_root(source, tmp_path)
    bad = layered_config(tmp_path / "bad", CONFIG + "[gold]\norders_include_email = maybe\n")
    result = run_cli("--data-root", str(root), env=bad)
    assert result.returncode == 2 and "[gold] orders_include_email" in result.stdout + result.stderr
    assert not (root / "gold").exists()


def test_orders_schema_is_silver_less_its_machinery() -> None:
    from pipeline.contract import SILVER_SCHEMA
    from pipeline.gold.orders import orders_columns

    assert orders_columns(False) == [f.name for f in SILVER_SCHEMA
                                     if f.name not in (*INTERNAL, "sale_month", "customer_email")]
    assert "customer_email" in orders_columns(True)


def test_defaults_by_region_category_is_what_the_orders_owe_to_soft_defaults(
        source: Path, tmp_path: Path, env: dict[str, str]) -> None:
    """The report's "how much of north is defaulted" table, against the same independent oracle."""
    root = copy_root(source, tmp_path)
    run_gold(root, env)
    orders = expected_orders(root)
    for field in ("region", "category"):
        orders[f"{field}_defaulted_orders"] = orders[f"default_{field}"].astype("int64")
        orders[f"{field}_defaulted_revenue"] = orders["revenue"].where(orders[f"default_{field}"], Decimal("0.00"))
    orders["order_count"] = 1
    measures = ["order_count", "revenue", "region_defaulted_orders", "region_defaulted_revenue",
                "category_defaulted_orders", "category_defaulted_revenue"]
    expected = orders.groupby(["region", "category"])[measures].sum().reset_index().rename(columns={"revenue": "total_revenue"})
    actual = pq.read_table(root / "gold" / "defaults_by_region_category.parquet").to_pandas()
    assert expected["region_defaulted_orders"].sum() > 0 and expected["category_defaulted_orders"].sum() > 0
    pd.testing.assert_frame_equal(actual[list(expected.columns)].astype(str), expected.astype(str))


def test_orders_of_many_small_files_spanning_months_are_exact(tmp_path: Path, env: dict[str, str]) -> None:
    """Small files go through one group task and give tiny parts of many months each: the path
    where the orders of consecutive parts are split by month together."""
    root = tmp_path / "data"
    generate_bronze(root / "bronze", rows=3_000, files=60, seed=8, date_folders=True)
    run_gold(root, env)
    assert_orders_exact(root)
    assert len({p.parent.name for p in (root / "gold" / "orders").rglob("*.parquet")}) > 12


def test_how_parts_are_blocked_and_flushed_never_changes_the_orders(
        source: Path, tmp_path: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """write_batch_orders at its sizes and at sizes that cut a segment after every part or two and
    flush every few rows, with the small parts in a pool (as the merge has them) or read from their
    files: the same rows, in the same order, less exactly the dropped ones."""
    import pyarrow as pa

    from pipeline.gold import orders
    from pipeline.gold.merge import pool_schema
    from pipeline.storage.layout import DataLayout
    from pipeline.storage.parquet_io import SmallPartPool

    root = copy_root(source, tmp_path)
    run_gold(root, env)
    parts = sorted((root / "silver").rglob("part-*.parquet"))
    rows_of = [pq.read_table(p, columns=["source_row"]).column("source_row").to_pylist() for p in parts]
    dropped = pa.table({"part": pa.array([0, 0, 1, len(parts) - 1], pa.int32()),
                        "source_row": pa.array([rows_of[0][2], rows_of[0][5], rows_of[1][7], rows_of[-1][11]], pa.int64())})

    def write(folder: str, pooled: bool = True) -> dict[str, pa.Table]:
        layout = DataLayout.of(tmp_path / folder)
        pool = SmallPartPool(layout.store, parts, pool_schema(("order_id",), False), threads=2) if pooled else None
        assert pool is None or pool.parts == set(range(len(parts)))
        written, files = orders.write_batch_orders(layout, layout.store, parts, dropped, 0, include_email=False, pool=pool)
        written_files = sorted((tmp_path / folder / "gold" / "orders").rglob("*.parquet"))
        assert len(files) == len(written_files) > 1
        tables = {p.parent.name: pq.read_table(p).replace_schema_metadata(None) for p in written_files}
        assert written == sum(t.num_rows for t in tables.values())
        return tables

    as_shipped = write("shipped")
    read = write("read", pooled=False)
    assert read.keys() == as_shipped.keys() and all(read[m].equals(as_shipped[m]) for m in read)
    monkeypatch.setattr(orders, "BLOCK_ROWS", 3)
    monkeypatch.setattr(orders, "BLOCK_PARTS", 2)
    monkeypatch.setattr(orders, "FLUSH_ROWS", 50)
    tiny = write("tiny")
    assert tiny.keys() == as_shipped.keys() and all(tiny[m].equals(as_shipped[m]) for m in tiny)
    assert sum(t.num_rows for t in as_shipped.values()) == sum(map(len, rows_of)) - dropped.num_rows
    kept = pa.concat_tables(as_shipped.values())
    file_of = [pq.read_table(p, columns=["source_file"]).column("source_file")[0].as_py() for p in parts]
    pairs = set(zip(kept.column("source_file").to_pylist(), kept.column("source_row").to_pylist()))
    gone = {(file_of[part], row) for part, row in zip(dropped.column("part").to_pylist(), dropped.column("source_row").to_pylist())}
    assert not pairs & gone and len(pairs) == kept.num_rows
