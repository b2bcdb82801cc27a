"""Bronze -> Silver through real Luigi runs: nothing lost, deterministic, restartable, refusing changed input.

Runs stop after silver (`--until silver`) where silver, quarantine and the file summaries are all a
test looks at; the rerun that must find nothing to do runs the whole pipeline."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.contract import SILVER_SCHEMA
from pipeline.generator import generate_bronze
from pipeline.storage.parquet_io import SINGLE_ROW_GROUP_ROWS, file_digest, silver_bucket_row_groups
from pipeline.storage.store import LOCAL_FILES
from tests.conftest import HEADER, config_file, run_cli, write_bronze


def silver_table(root: Path) -> pa.Table:
    parts = sorted((root / "silver").rglob("part-*.parquet"))
    return pa.concat_tables([pq.read_table(p) for p in parts]).sort_by([("source_file", "ascending"), ("source_row", "ascending")])


def quarantine_table(root: Path) -> pa.Table:
    parts = sorted((root / "quarantine").rglob("part-*.parquet"))
    return pa.concat_tables([pq.read_table(p) for p in parts]).sort_by([("source_file", "ascending"), ("source_row", "ascending")])


def file_metrics(root: Path) -> dict[str, dict]:
    return {json.loads(p.read_text())["source_file"]: json.loads(p.read_text()) for p in (root / "silver").rglob("_file_metrics.json")}


@pytest.fixture(scope="module")
def generated_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gen") / "data"
    generate_bronze(root / "bronze", rows=30_000, files=4, seed=7, date_folders=True)
    return root


def run_pipeline(root: Path, *extra: str, chunk_rows: int | None = None, tmp_path: Path | None = None) -> subprocess.CompletedProcess:
    env = {}
    if chunk_rows is not None:
        assert tmp_path is not None
        env["LUIGI_CONFIG_PATH"] = str(config_file(tmp_path, f"[pipeline]\nchunk_rows = {chunk_rows}\n"))
    return run_cli("--data-root", str(root), *extra, env=env)


def test_every_record_is_in_silver_or_quarantine(tmp_path: Path, generated_root: Path) -> None:
    root = tmp_path / "data"
    import shutil

    shutil.copytree(generated_root / "bronze", root / "bronze")
    result = run_pipeline(root, "--until", "silver", "--workers", "2", chunk_rows=3000, tmp_path=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    silver, quarantine = silver_table(root), quarantine_table(root)
    metrics = file_metrics(root)
    assert len(metrics) == 4
    for source_file, m in metrics.items():
        in_silver = pa.compute.sum(pa.compute.equal(silver["source_file"], source_file)).as_py() or 0
        in_quarantine = pa.compute.sum(pa.compute.equal(quarantine["source_file"], source_file)).as_py() or 0
        assert m["rows_read"] == in_silver + in_quarantine == m["rows_valid"] + sum(m["rows_rejected"].values())
        assert m["chunks"] > 1
    assert sum(m["rows_read"] for m in metrics.values()) == 30_000
    # every record number of every file appears exactly once
    rows = pa.concat_tables([silver.select(["source_file", "source_row"]), quarantine.select(["source_file", "source_row"])])
    assert rows.group_by(["source_file", "source_row"]).aggregate([]).num_rows == 30_000
    assert "30,000 rows read" in result.stdout
    # written from dictionary arrays, every part still reads back as the contract's plain schema,
    # rows in bucket order; a part of SINGLE_ROW_GROUP_ROWS or more has one row group per bucket
    # present, a smaller one a single row group that the map gives for each of its buckets
    for part in (root / "silver").rglob("part-*.parquet"):
        assert pq.read_schema(part).remove_metadata().equals(SILVER_SCHEMA), part
        groups = silver_bucket_row_groups(LOCAL_FILES, part)
        buckets = pq.read_table(part, columns=["bucket"]).column("bucket").to_pylist()
        assert sorted(groups) == sorted(set(buckets)) and buckets == sorted(buckets)
        if len(buckets) < SINGLE_ROW_GROUP_ROWS:
            assert set(groups.values()) == {0} and pq.ParquetFile(part).num_row_groups == 1
        else:
            assert list(groups.values()) == list(range(len(groups)))
            assert all(pq.ParquetFile(part).read_row_group(g, columns=["bucket"]).column(0).unique().to_pylist() == [b]
                       for b, g in groups.items())
        # the checksum recorded from the bytes in memory is the file's
        recorded = json.loads(part.with_name(part.name.replace(".parquet", ".metrics.json")).read_text())["silver_crc32"]
        assert recorded == file_digest(LOCAL_FILES, part)


def test_silver_is_identical_for_chunk_sizes_and_worker_counts(tmp_path: Path, generated_root: Path) -> None:
    import shutil

    tables = []
    for name, chunk_rows, workers in (("a", 1_000_000, "1"), ("b", 997, "4"), ("c", 4000, "2")):
        root = tmp_path / name / "data"
        shutil.copytree(generated_root / "bronze", root / "bronze")
        cfg_dir = tmp_path / name
        result = run_pipeline(root, "--until", "silver", "--workers", workers, chunk_rows=chunk_rows, tmp_path=cfg_dir)
        assert result.returncode == 0, result.stdout + result.stderr
        tables.append((silver_table(root), quarantine_table(root)))
    for silver, quarantine in tables[1:]:
        assert silver.equals(tables[0][0])
        assert quarantine.equals(tables[0][1])


def test_rerun_with_nothing_new_does_no_work(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_bronze(root, {"a.csv": HEADER + "\n1,x,electronics,1,2.00,0,north,2024-01-01,a@b.co\n"})
    first = run_cli("--data-root", str(root))
    assert first.returncode == 0, first.stdout + first.stderr
    before = {p: p.stat().st_mtime_ns for p in (root / "silver").rglob("*")}
    second = run_cli("--data-root", str(root))
    assert second.returncode == 0
    assert "Nothing to do" in second.stdout
    assert {p: p.stat().st_mtime_ns for p in (root / "silver").rglob("*")} == before


def test_changed_bronze_file_is_refused_until_reprocessed(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_bronze(root, {"a.csv": HEADER + "\n1,x,electronics,1,2.00,0,north,2024-01-01,a@b.co\n",
                        "b.csv": HEADER + "\n2,y,fashion,1,3.00,0,south,2024-01-02,c@d.co\n"})
    assert run_cli("--data-root", str(root), "--until", "silver").returncode == 0
    (root / "bronze" / "a.csv").write_text(HEADER + "\n1,x,electronics,5,2.00,0,north,2024-01-01,a@b.co\n")
    refused = run_cli("--data-root", str(root), "--until", "silver")
    assert refused.returncode != 0
    assert "a.csv: bronze file changed since it was ingested" in refused.stdout + refused.stderr
    assert "--reprocess a.csv" in refused.stdout + refused.stderr
    redone = run_cli("--data-root", str(root), "--until", "silver", "--reprocess", "a.csv")
    assert redone.returncode == 0, redone.stdout + redone.stderr
    silver = silver_table(root)
    assert silver.filter(pa.compute.equal(silver["source_file"], "a.csv"))["quantity"].to_pylist() == [5]


def test_missing_required_column_fails_that_file_only(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_bronze(root, {"good.csv": HEADER + "\n1,x,electronics,1,2.00,0,north,2024-01-01,a@b.co\n",
                        "bad.csv": "order_id,product_name\n1,x\n"})
    result = run_cli("--data-root", str(root), "--until", "silver", "--workers", "2")
    assert result.returncode != 0
    assert "bad.csv: missing required column(s) quantity, unit_price" in result.stdout
    assert set(file_metrics(root)) == {"good.csv"}


def test_missing_optional_column_gets_defaults_and_extra_column_is_reported(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_bronze(root, {"a.csv": "order_id,quantity,unit_price,coupon\n1,2,3.50,X\n"})
    assert run_cli("--data-root", str(root), "--until", "silver").returncode == 0
    row = silver_table(root).to_pylist()[0]
    assert (row["region"], row["category"], row["product_key"], str(row["sale_date"])) == ("north", "unknown", "unknown_product", "1970-01-01")
    m = file_metrics(root)["a.csv"]
    assert m["extra_columns"] == ["coupon"]
    assert m["defaults_applied"]["region"] == 1 and m["defaults_applied"]["customer_email"] == 1


def test_header_only_file_gives_zero_rows_and_no_error(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_bronze(root, {"a.csv": HEADER + "\n", "b.csv": HEADER + "\r\n1,x,electronics,1,2.00,0,north,2024-01-01,a@b.co\r\n"})
    result = run_cli("--data-root", str(root), "--until", "silver")
    assert result.returncode == 0, result.stdout + result.stderr
    assert file_metrics(root)["a.csv"]["rows_read"] == 0
    assert file_metrics(root)["b.csv"]["rows_valid"] == 1
