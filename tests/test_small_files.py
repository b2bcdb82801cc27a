"""Many small files: cleaned many to a task, with the same outputs per file, the same failure line
per file and the same restart safety as the per-file path; merged from a shared pool per batch."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.bronze.small_files import GROUP_MAX_FILES, silver_units
from pipeline.contract import SILVER_SCHEMA
from pipeline.generator import generate_bronze
from pipeline.storage import parquet_io
from pipeline.storage.atomic import deferred_publication, write_text_atomic
from pipeline.storage.store import LOCAL_FILES
from tests.conftest import REPO, run_cli
from tests.gold_helpers import assert_gold_equal, copy_bronze, read_gold, run_gold, temp_files

PER_FILE = ("--pipeline-small-file-bytes", "0")


@pytest.fixture(scope="module")
def small_bronze(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 dirty files of 40 rows, duplicates across files included."""
    folder = tmp_path_factory.mktemp("small") / "bronze"
    generate_bronze(folder, rows=2_400, files=60, seed=21)
    return folder


def _outputs(root: Path) -> dict[str, object]:
    """Every file's silver and quarantine rows and its counts, as a reader sees them."""
    found: dict[str, object] = {}
    for path in sorted((root / "silver").rglob("*")):
        name = path.relative_to(root).as_posix()
        if path.suffix == ".parquet":
            found[name] = pq.read_table(path).replace_schema_metadata(None).to_pylist()
        elif path.name.endswith("metrics.json") or path.name == "_manifest.json":
            data = json.loads(path.read_text())
            data.pop("silver_crc32", None)  # Parquet bytes may differ (dictionary pages); values may not
            for stat_field in ("mtime_ns", "ctime_ns", "inode"):  # of the bronze copy each root has
                data.get("fingerprint", {}).pop(stat_field, None)
            found[name] = data
    for path in sorted((root / "quarantine").rglob("*.parquet")):
        found[path.relative_to(root).as_posix()] = pq.read_table(path).to_pylist()
    return found


def test_grouped_small_files_give_the_outputs_and_gold_of_the_per_file_path(tmp_path: Path, small_bronze: Path) -> None:
    # 24 of the files (one group, duplicates across files included): the per-file path starts
    # several tasks per file, so more files would only take longer
    names = [p.name for p in sorted(small_bronze.glob("*.csv"))][:24]
    grouped, per_file = tmp_path / "grouped", tmp_path / "per-file"
    copy_bronze(small_bronze, grouped, names)
    copy_bronze(small_bronze, per_file, names)
    result = run_gold(grouped, None, "--workers", "2")
    assert "silver 24 small files" in result.stdout
    run_gold(per_file, None, "--workers", "2", *PER_FILE)
    assert _outputs(grouped) == _outputs(per_file)
    assert_gold_equal(read_gold(grouped), read_gold(per_file), "grouped vs per file")


def test_a_file_failing_inside_a_group_fails_alone(tmp_path: Path, small_bronze: Path) -> None:
    root = tmp_path / "data"
    copy_bronze(small_bronze, root)
    assert run_cli("--data-root", str(root), "--until", "silver").returncode == 0
    bad = "sales_data_part_0005.csv"
    manifest = root / "silver" / bad / "_manifest.json"
    manifest.write_text(manifest.read_text().replace('"records": 40', '"records": 41', 1))
    for derived in (root / "silver" / bad).glob("part-*"):
        derived.unlink()
    (root / "silver" / bad / "_file_metrics.json").unlink()
    result = run_cli("--data-root", str(root), "--until", "gold", "--workers", "2")
    assert result.returncode == 1, result.stdout
    lines = [line for line in result.stdout.splitlines() if bad in line and line.startswith("FAILED")]
    assert len(lines) == 1, result.stdout
    assert f"gold does not include {bad}" in result.stdout
    others = tmp_path / "others"
    copy_bronze(small_bronze, others, [p.name for p in sorted(small_bronze.glob("*.csv")) if p.name != bad])
    run_gold(others)
    assert_gold_equal(read_gold(root), read_gold(others), "the group's other files")


def _kill_during_silver(tmp_path: Path, small_bronze: Path, tries: int) -> None:
    reference = tmp_path / "reference"
    copy_bronze(small_bronze, reference)
    run_gold(reference)
    expected = read_gold(reference)
    rng = random.Random(12)
    for attempt in range(tries):
        root = tmp_path / f"try-{attempt}"
        copy_bronze(small_bronze, root)
        command = [sys.executable, str(REPO / "run.py"), "--data-root", str(root), "--until", "gold", "--workers", "2",
                   "--pipeline-chunk-rows", "15"]  # several chunks a file: kills land between chunks of one file too
        run = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(rng.uniform(0.8, 3.0))
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
        final = run_cli("--data-root", str(root), "--until", "gold", "--workers", "2", "--pipeline-chunk-rows", "15")
        assert final.returncode == 0, f"try {attempt}\n{final.stdout}\n{final.stderr}"
        assert_gold_equal(read_gold(root), expected, f"try {attempt}")
        assert not temp_files(root), f"try {attempt}"
        for bronze in small_bronze.glob("*.csv"):
            summary = json.loads((root / "silver" / bronze.name / "_file_metrics.json").read_text())
            assert summary["rows_read"] == 40, bronze.name


def test_a_run_killed_inside_a_group_of_small_files_is_finished_exactly_by_the_next(tmp_path: Path, small_bronze: Path) -> None:
    _kill_during_silver(tmp_path, small_bronze, tries=int(os.environ.get("SMALL_FILES_KILL_TRIES", "1")))


@pytest.mark.slow
def test_a_run_killed_inside_a_group_of_small_files_soak(tmp_path: Path, small_bronze: Path) -> None:
    _kill_during_silver(tmp_path, small_bronze, tries=int(os.environ.get("SMALL_FILES_KILL_SOAK_TRIES", "6")))


# --- pure pieces ---------------------------------------------------------------------------------

def test_silver_units_group_consecutive_small_files_only() -> None:
    sizes = [("a", 10), ("b", 10), ("big", 10_000), ("c", 10), ("d", 10)]
    units = silver_units(sizes, small_file_bytes=100)
    assert [(u.files, u.grouped) for u in units] == [(("a", "b"), True), (("big",), False), (("c", "d"), True)]
    assert all(not u.grouped for u in silver_units(sizes, small_file_bytes=0))
    many = [(f"f{i}", 1) for i in range(GROUP_MAX_FILES + 1)]
    assert [len(u.files) for u in silver_units(many, small_file_bytes=100)] == [GROUP_MAX_FILES, 1]


def test_deferred_publication_publishes_in_order_and_nothing_on_error(tmp_path: Path) -> None:
    with deferred_publication():
        write_text_atomic(tmp_path / "first", "1")
        write_text_atomic(tmp_path / "sub" / "second", "2")
        assert not (tmp_path / "first").exists(), "published before the end of the block"
    assert (tmp_path / "first").read_text() == "1" and (tmp_path / "sub" / "second").read_text() == "2"
    with pytest.raises(RuntimeError), deferred_publication():
        write_text_atomic(tmp_path / "third", "3")
        raise RuntimeError("stop")
    assert not (tmp_path / "third").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["first", "sub"], "temporary files left behind"


def _silver_rows(rows: int, buckets: int, part: int) -> pa.Table:
    rng = np.random.default_rng(part)
    bucket = np.sort(rng.integers(0, buckets, rows)).astype(np.int32)
    table = SILVER_SCHEMA.empty_table()
    columns = {f.name: pa.nulls(rows, f.type) for f in SILVER_SCHEMA}
    columns["bucket"] = pa.array(bucket, pa.int32())
    columns["source_row"] = pa.array(np.arange(1, rows + 1), pa.int64())
    columns["order_id"] = pa.array([f"p{part}-{i}" for i in range(rows)], pa.string())
    return pa.table([columns[f.name] for f in table.schema], schema=table.schema)


def test_a_bucket_reads_the_same_from_row_groups_and_from_the_pool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Parts written whole (small) and by bucket (large) mixed in one batch: every bucket gives the
    rows of every part, parts in input order, rows in part order, whichever way they were read."""
    monkeypatch.setattr(parquet_io, "SINGLE_ROW_GROUP_ROWS", 30)
    sizes = [10, 50, 20, 80, 5]  # small, large, small, large, small
    paths, tables = [], []
    for part, rows in enumerate(sizes):
        table = _silver_rows(rows, buckets=8, part=part)
        path = tmp_path / f"part-{part}.parquet"
        parquet_io.write_silver_part(LOCAL_FILES, path, table)
        paths.append(path)
        tables.append(table)
    assert [len(parquet_io.silver_bucket_row_groups(LOCAL_FILES, p)) > len(set(parquet_io.silver_bucket_row_groups(LOCAL_FILES, p).values()))
            for p in paths] == [True, False, True, False, True]
    columns = ["order_id", "source_row"]
    schema = pa.schema([SILVER_SCHEMA.field(c) for c in columns])
    pool = parquet_io.SmallPartPool(LOCAL_FILES, paths, schema, threads=2)
    assert pool.parts == {0, 2, 4}
    with_pool = parquet_io.SilverPartReader(LOCAL_FILES, paths, columns, schema, pool)
    without = parquet_io.SilverPartReader(LOCAL_FILES, paths, columns, schema)
    for bucket in range(8):
        expected = [(part, row["order_id"]) for part, table in enumerate(tables)
                    for row in table.filter(pa.compute.equal(table.column("bucket"), bucket)).select(["order_id"]).to_pylist()]
        for reader in (with_pool, without):
            got = reader.read_bucket(bucket, schema, part_column="part")
            assert list(zip(got.column("part").to_pylist(), got.column("order_id").to_pylist())) == expected, bucket
    with_pool.close()
    without.close()
