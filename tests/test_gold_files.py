"""data_quality covers every ingested file, even one that adds no order to gold."""
from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq

from pipeline.contract import GOLD_TABLES
from pipeline.generator import generate_bronze
from tests.conftest import HEADER, config_file, run_cli, write_bronze


def test_a_later_file_without_valid_rows_still_appears_in_data_quality(tmp_path) -> None:
    root = tmp_path / "data"
    write_bronze(root, {"a.csv": HEADER + "\n1,x,electronics,1,2.00,0,north,2024-01-01,a@b.co\n"})
    assert run_cli("--data-root", str(root), "--until", "gold").returncode == 0
    write_bronze(root, {"b.csv": HEADER + "\n", "c.csv": HEADER + "\n,x,electronics,1,2.00,0,north,2024-01-01,\n"})
    result = run_cli("--data-root", str(root), "--until", "gold")
    assert result.returncode == 0, result.stdout + result.stderr
    quality = pq.read_table(root / "gold" / "data_quality.parquet").to_pylist()
    assert [(q["source_file"], q["rows_read"], q["rows_rejected"], q["rows_in_gold"]) for q in quality] == [
        ("a.csv", 1, 0, 1), ("b.csv", 0, 0, 0), ("c.csv", 1, 1, 0)]


def assert_same_gold_under_configs(tmp_path: Path, rows: int, files: int, seed: int, configs: dict[str, str], *extra: str) -> None:
    """The same generated bronze, run once per config (layered over luigi.cfg): every gold table equal."""
    source = tmp_path / "source"
    generate_bronze(source, rows=rows, files=files, seed=seed)
    tables = []
    for name, config in configs.items():
        root = tmp_path / name
        shutil.copytree(source, root / "bronze")
        cfg = config_file(tmp_path / name, config)
        result = run_cli("--data-root", str(root), "--until", "gold", *extra, env={"LUIGI_CONFIG_PATH": str(cfg)})
        assert result.returncode == 0, result.stdout + result.stderr
        tables.append({n: pq.read_table(root / "gold" / f"{n}.parquet").replace_schema_metadata(None) for n in GOLD_TABLES})
    for name in GOLD_TABLES:
        assert all(t[name].equals(tables[0][name]) for t in tables[1:]), name


def test_small_merge_batches_give_the_same_gold(tmp_path: Path) -> None:
    """Bounded batches (several per run, append-only seen segments) change nothing in gold."""
    base = "[pipeline]\nchunk_rows = 1000\nsilver_buckets = 4\n"
    assert_same_gold_under_configs(tmp_path, 12_000, 3, 8, {"one_batch": base, "many_batches": base + "[gold]\nmerge_batch_rows = 1500\n"})


def test_merge_in_threads_gives_the_same_gold(tmp_path: Path) -> None:
    """The parallel merge (two threads, the task's thread commits in bucket order) equals the one-thread one."""
    configs = {name: f"[pipeline]\nsilver_buckets = 8\n[gold]\nmerge_parallel_min_rows = {minimum}\n"
               for name, minimum in (("in_process", 10**9), ("workers", 0))}
    assert_same_gold_under_configs(tmp_path, 10_000, 2, 12, configs, "--workers", "2")


def test_status_reports_each_layer(tmp_path) -> None:
    root = tmp_path / "data"
    write_bronze(root, {"a.csv": HEADER + "\n1,x,electronics,1,2.00,0,north,2024-01-01,a@b.co\n",
                        "b.csv": HEADER + "\n2,y,fashion,1,3.00,0,south,2024-01-02,c@d.co\n"})
    before = run_cli("status", "--data-root", str(root))
    assert before.returncode == 0
    assert "a.csv: pending: not scanned yet" in before.stdout and "0 of 2 files done, 2 pending" in before.stdout
    assert "gold: not written yet" in before.stdout
    assert run_cli("--data-root", str(root)).returncode == 0
    after = run_cli("status", "--data-root", str(root))
    assert "2 of 2 files done, 0 pending" in after.stdout
    assert "silver -> gold: 2 of 2 silver parts merged, 0 pending" in after.stdout
    assert "gold: 7 tables" in after.stdout and "report: " + str(root / "report" / "index.html") in after.stdout


def test_whole_row_anomaly_candidates_of_an_older_interrupted_merge_still_count(tmp_path: Path) -> None:
    """A merge interrupted before candidates became narrow left whole silver rows in the state."""
    from decimal import Decimal

    import pyarrow as pa

    from pipeline.settings import Settings
    from pipeline.silver_to_gold import ANOMALY_SCHEMA, _fold_buckets
    from pipeline.state_store import open_state

    legacy = pa.Table.from_pylist([{"order_id": f"O{i}", "revenue": Decimal(f"{i}.50"), "product_name": f"p{i}"} for i in range(3)],
                                  schema=ANOMALY_SCHEMA)
    with open_state(tmp_path / "state") as state:
        state.put_table("bucket/1/anomalies", legacy)
        _fold_buckets(state, Settings(silver_buckets=2, anomaly_top_n=2), [])
        kept = state.get_table("anomalies")
        assert state.keys_with_prefix("bucket/") == []
    assert kept.column("order_id").to_pylist() == ["O2", "O1"]
    assert kept.column("product_name").to_pylist() == ["p2", "p1"]
