"""Faults a user meets: a full disk, a corrupt silver part, a corrupt or tampered state file."""
from __future__ import annotations

import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.contract import GOLD_TABLES
from pipeline.generator import generate_bronze
from tests import thread_probe
from tests.conftest import REPO, config_file, run_cli


def gold(root: Path) -> dict:
    return {n: pq.read_table(root / "gold" / f"{n}.parquet").replace_schema_metadata(None) for n in GOLD_TABLES}


def rerun_and_compare(root: Path, reference: Path, *extra: str) -> None:
    """A later run completes, and its gold equals the reference run's, table for table."""
    result = run_cli("--data-root", str(root), "--until", "gold", *extra)
    assert result.returncode == 0, result.stdout + result.stderr
    got, expected = gold(root), gold(reference)
    assert all(got[n].equals(expected[n]) for n in GOLD_TABLES)


def make_root(tmp_path: Path, name: str, source: Path) -> Path:
    root = tmp_path / name
    shutil.copytree(source, root / "bronze")
    return root


def test_full_disk_fails_clearly_and_a_later_run_completes(tmp_path: Path) -> None:
    source = tmp_path / "source"
    generate_bronze(source, rows=20_000, files=2, seed=4)
    root, reference = make_root(tmp_path, "data", source), make_root(tmp_path, "reference", source)
    assert run_cli("--data-root", str(reference), "--until", "gold").returncode == 0

    def small_disk() -> None:  # files cannot grow past 64 KB: writes fail with EFBIG, like ENOSPC
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    full = subprocess.run([sys.executable, str(REPO / "run.py"), "--data-root", str(root), "--until", "gold"],
                          cwd=REPO, capture_output=True, text=True, timeout=300, preexec_fn=small_disk)
    assert full.returncode == 1, full.stdout + full.stderr
    failed = [line for line in full.stdout.splitlines() if line.startswith("FAILED")]
    assert failed and all("File too large" in line for line in failed), full.stdout
    assert "Traceback" not in full.stdout
    assert not list(root.rglob(".tmp-*"))
    rerun_and_compare(root, reference)


# "one thread" is the default merge of small data; the merge in two threads is the slow tier here (it is
# checked against the one-thread merge in tests/test_gold_units.py and killed in tests/test_gold_crash.py).
@pytest.mark.parametrize("threads", ["one thread", pytest.param("two threads", marks=pytest.mark.slow)])
def test_corrupt_silver_part_is_detected_and_reprocess_recovers(tmp_path: Path, threads: str) -> None:
    # "two threads": the buckets are merged by two threads, as in a large merge; in both the parts'
    # checksums are checked two at a time (one thread per core: two cores, whatever this machine has)
    env = {"LUIGI_CONFIG_PATH": str(config_file(tmp_path, "[gold]\nmerge_parallel_min_rows = 0\n"))} if threads == "two threads" else {}
    merge_threads = 2 if threads == "two threads" else 0
    source = tmp_path / "source"
    generate_bronze(source, rows=6_000, files=3, seed=9)
    root, reference = make_root(tmp_path, "data", source), make_root(tmp_path, "reference", source)
    probe = tmp_path / "probe-reference"
    assert run_cli("--data-root", str(reference), "--until", "gold", env={**env, **thread_probe.probe_env(probe, cores=2)}).returncode == 0
    merged = thread_probe.threads_per_batch(thread_probe.read_log(probe))
    assert merged and all(b == (merge_threads, max(merge_threads, 1)) for b in merged), f"(threads decided, threads that merged): {merged}"
    assert run_cli("--data-root", str(root), "--until", "silver", env=env).returncode == 0
    for name in ("sales_data_part_0002.csv", "sales_data_part_0003.csv"):
        part = root / "silver" / name / "part-00001.parquet"
        data = bytearray(part.read_bytes())
        data[len(data) // 2] ^= 0xFF
        part.write_bytes(bytes(data))
    probe = tmp_path / "probe-refused"
    refused = run_cli("--data-root", str(root), "--until", "gold", env={**env, **thread_probe.probe_env(probe, cores=2)})
    assert refused.returncode == 1
    checked = thread_probe.threads_per_batch(thread_probe.read_log(probe), "checksums")
    assert checked == [(2, 2)], f"(threads decided, threads that checked parts): {checked}"
    # the first bad part in input order is the one reported
    assert "is corrupt or truncated" in refused.stdout and "--reprocess sales_data_part_0002.csv" in refused.stdout
    assert "sales_data_part_0003.csv" not in refused.stdout
    assert not (root / "gold" / "daily_sales.parquet").exists()
    rerun_and_compare(root, reference, "--reprocess", "sales_data_part_0002.csv", "--reprocess", "sales_data_part_0003.csv")


def damaged_state_run(tmp_path: Path, damage) -> tuple[subprocess.CompletedProcess, Path, Path]:
    """A gold run, `damage(state file)`, a new file, and the next run; with a reference data root
    that holds the same three files from scratch."""
    source = tmp_path / "source"
    generate_bronze(source, rows=4_000, files=2, seed=2)
    root = make_root(tmp_path, "data", source)
    assert run_cli("--data-root", str(root), "--until", "gold").returncode == 0
    (source / "sales_data_part_0003.csv").write_text((source / "sales_data_part_0001.csv").read_text().replace("ORD-", "NEW-"))
    shutil.copy(source / "sales_data_part_0003.csv", root / "bronze")
    damage(root / "state" / "gold_state.sqlite")
    reference = make_root(tmp_path, "reference", source)
    assert run_cli("--data-root", str(reference), "--until", "gold").returncode == 0
    return run_cli("--data-root", str(root), "--until", "gold"), root, reference


def test_a_corrupt_state_file_is_rebuilt_from_silver_in_one_line(tmp_path: Path) -> None:
    result, root, reference = damaged_state_run(tmp_path, lambda state: state.write_bytes(b"this is not a sqlite file" * 100))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "state rebuilt from all silver" in result.stdout and "not an SQLite database" in result.stdout
    got, expected = gold(root), gold(reference)
    assert all(got[n].equals(expected[n]) for n in GOLD_TABLES)


def test_tampered_state_value_cannot_run_code(tmp_path: Path) -> None:
    """Values are JSON or Arrow IPC: a pickle planted in the state is refused, never unpickled."""
    import pickle
    import sqlite3

    source = tmp_path / "source"
    generate_bronze(source, rows=2_000, files=1, seed=2)
    root = make_root(tmp_path, "data", source)
    assert run_cli("--data-root", str(root), "--until", "gold").returncode == 0
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (Path.touch, (marker,))

    with sqlite3.connect(root / "state" / "gold_state.sqlite") as db:
        db.execute("UPDATE state SET value = ? WHERE key = 'merged_parts'", (pickle.dumps(Exploit()),))
    shutil.copy(source / "sales_data_part_0001.csv", root / "bronze" / "copy.csv")
    result = run_cli("--data-root", str(root), "--until", "gold")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "state rebuilt from all silver" in result.stdout and "'merged_parts' is not of the type it was written with" in result.stdout
    assert not marker.exists()


def test_a_killed_writers_temporary_files_are_removed_by_the_next_run_that_redoes_the_file(tmp_path: Path) -> None:
    """Quarantine is not walked whole (20,000 folders at 20,000 files): a killed writer's temporary
    file can only sit beside a file whose summary is not written yet, and the next run cleans those."""
    import socket

    root = tmp_path / "data"
    generate_bronze(root / "bronze", rows=2_000, files=2, seed=5)
    assert run_cli("--data-root", str(root), "--until", "gold").returncode == 0
    name = "sales_data_part_0001.csv"
    dead = f"{socket.gethostname().replace('.', '_')}-{2 ** 22 + 7}"  # a pid above any the kernel gives out
    (root / "silver" / name / "_file_metrics.json").unlink()  # killed after the quarantine part, before the summary
    stale = [root / "quarantine" / name / f".tmp-part-00001.parquet.{dead}.x1", root / "gold" / f".tmp-daily_sales.parquet.{dead}.x2"]
    for path in stale:
        path.write_bytes(b"half")
    result = run_cli("--data-root", str(root), "--until", "gold")
    assert result.returncode == 0, result.stdout + result.stderr
    assert not list(root.rglob(".tmp-*"))
