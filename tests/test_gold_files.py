"""data_quality covers every ingested file, even one that adds no order to gold."""
from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.contract import GOLD_TABLES
from pipeline.generator import generate_bronze
from tests import thread_probe
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


def assert_same_gold_under_configs(tmp_path: Path, rows: int, files: int, seed: int, configs: dict[str, str], *extra: str,
                                   envs: dict[str, dict[str, str]] | None = None) -> None:
    """The same generated bronze, run once per config (layered over luigi.cfg): every gold table equal.
    `envs`: more environment for the run of a config, by the config's name."""
    source = tmp_path / "source"
    generate_bronze(source, rows=rows, files=files, seed=seed)
    tables = []
    for name, config in configs.items():
        root = tmp_path / name
        shutil.copytree(source, root / "bronze")
        cfg = config_file(tmp_path / name, config)
        result = run_cli("--data-root", str(root), "--until", "gold", *extra,
                         env={"LUIGI_CONFIG_PATH": str(cfg), **(envs or {}).get(name, {})})
        assert result.returncode == 0, result.stdout + result.stderr
        tables.append({n: pq.read_table(root / "gold" / f"{n}.parquet").replace_schema_metadata(None) for n in GOLD_TABLES})
    for name in GOLD_TABLES:
        assert all(t[name].equals(tables[0][name]) for t in tables[1:]), name


@pytest.mark.slow  # test_gold_units' real merge with a batch per part gives the same gold
def test_small_merge_batches_give_the_same_gold(tmp_path: Path) -> None:
    """Bounded batches (several per run, append-only seen segments) change nothing in gold."""
    base = "[pipeline]\nchunk_rows = 1000\nsilver_buckets = 4\n"
    assert_same_gold_under_configs(tmp_path, 12_000, 3, 8, {"one_batch": base, "many_batches": base + "[gold]\nmerge_batch_rows = 1500\n"})


@pytest.mark.slow  # test_gold_units' two merge threads (with the thread probe) give the same gold
def test_merge_in_threads_gives_the_same_gold(tmp_path: Path) -> None:
    """The parallel merge (two threads, the task's thread commits in bucket order) equals the one-thread one."""
    configs = {name: f"[pipeline]\nsilver_buckets = 8\n[gold]\nmerge_parallel_min_rows = {minimum}\n"
               for name, minimum in (("in_process", 10**9), ("workers", 0))}
    # Two cores whatever this machine has, and a record of the threads that merged each batch.
    probes = {name: tmp_path / f"probe-{name}" for name in configs}
    envs = {name: thread_probe.probe_env(folder, cores=2) for name, folder in probes.items()}
    assert_same_gold_under_configs(tmp_path, 10_000, 2, 12, configs, "--workers", "2", envs=envs)
    ran = {name: thread_probe.threads_per_batch(thread_probe.read_log(folder)) for name, folder in probes.items()}
    assert ran["in_process"] and all(b == (0, 1) for b in ran["in_process"]), f"(threads decided, threads that merged): {ran}"
    assert ran["workers"] and all(b == (2, 2) for b in ran["workers"]), f"(threads decided, threads that merged): {ran}"


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
    assert f"gold: {len(GOLD_TABLES)} tables" in after.stdout and "report: " + str(root / "report" / "index.html") in after.stdout
