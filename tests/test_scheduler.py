"""A real luigid on 127.0.0.1: several workers, each task DONE once, gold equal to one process's."""
from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.contract import GOLD_TABLES
from pipeline.generator import generate_bronze
from tests.conftest import REPO, config_file, run_cli

LUIGID = Path(sys.executable).parent / "luigid"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def api(port: int, method: str, payload: dict) -> dict:
    query = urllib.parse.urlencode({"data": json.dumps(payload)})
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/{method}?{query}", timeout=10) as response:
        return json.loads(response.read())["response"]


def start_luigid(tmp_path: Path, config: Path | None = None):
    """A real luigid on 127.0.0.1 for the duration of the generator (its port); with `config`, the
    Luigi config it reads (e.g. task history)."""
    import os

    port = free_port()
    (tmp_path / "luigid-logs").mkdir(exist_ok=True)
    env = {**os.environ, **({"LUIGI_CONFIG_PATH": str(config)} if config else {})}
    process = subprocess.Popen([str(LUIGID), "--address", "127.0.0.1", "--port", str(port),
                                "--state-path", str(tmp_path / "luigid-state.pickle"), "--logdir", str(tmp_path / "luigid-logs")],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tmp_path, env=env)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                api(port, "task_list", {"status": "DONE", "upstream_status": "", "search": ""})
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail(f"luigid did not start: {process.stderr.read().decode()[-2000:] if process.poll() is not None else ''}")
                time.sleep(0.2)
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=2)
        except subprocess.TimeoutExpired:  # a luigid with a worker still connected took 10 s to stop: its state is a temp file
            process.kill()
            process.wait()


@pytest.fixture
def luigid(tmp_path: Path):
    yield from start_luigid(tmp_path)


def gold_tables(root: Path) -> dict:
    return {name: pq.read_table(root / "gold" / f"{name}.parquet").replace_schema_metadata(None) for name in GOLD_TABLES}


def test_two_workers_share_one_scheduler_and_run_each_task_once(tmp_path: Path, luigid: int) -> None:
    source = tmp_path / "source"
    generate_bronze(source / "bronze", rows=24_000, files=4, seed=11)
    shared, alone = tmp_path / "shared", tmp_path / "alone"
    for root in (shared, alone):
        shutil.copytree(source / "bronze", root / "bronze")
    env = {"LUIGI_CONFIG_PATH": str(config_file(tmp_path, "[pipeline]\nchunk_rows = 2000\nsilver_buckets = 8\nsmall_file_bytes = 0\n"))}
    command = [sys.executable, str(REPO / "run.py"), "--data-root", str(shared), "--workers", "2",
               "--scheduler-host", "127.0.0.1", "--scheduler-port", str(luigid)]
    import os

    workers = [subprocess.Popen(command, cwd=REPO, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for _ in range(2)]
    outputs = [w.communicate(timeout=300)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    done = api(luigid, "task_list", {"status": "DONE", "upstream_status": "", "search": ""})
    families = [task["name"] for task in done.values()]
    assert families.count("SilverToGold") == 1
    assert families.count("ScanBronzeFile") == 4
    assert families.count("BronzeFileToSilver") == 4
    chunk_ids = [tid for tid, task in done.items() if task["name"] == "BronzeChunkToSilver"]
    assert len(chunk_ids) == len(set(chunk_ids)) == len(list((shared / "silver").rglob("part-*.parquet")))
    failed = api(luigid, "task_list", {"status": "FAILED", "upstream_status": "", "search": ""})
    assert failed == {}
    # Each chunk ran once: one "silver ... chunk" progress line per chunk across both workers.
    lines = [line for out in outputs for line in out.splitlines() if " silver " in line and " chunk " in line]
    assert len(lines) == len(chunk_ids)
    single = run_cli("--data-root", str(alone), "--workers", "1", env=env)
    assert single.returncode == 0, single.stdout + single.stderr
    shared_gold, alone_gold = gold_tables(shared), gold_tables(alone)
    for name in GOLD_TABLES:
        assert shared_gold[name].equals(alone_gold[name]), name


# Grouped small files (the second variant) are the slow tier's: test_small_files proves them equal to per-file tasks.
@pytest.mark.parametrize("small_file_bytes", ["0", pytest.param("100000000", marks=pytest.mark.slow)],
                         ids=["a task per file and chunk", "small files grouped"])
def test_two_local_runs_at_once_on_one_data_root_agree(tmp_path: Path, small_file_bytes: str) -> None:
    """Each piece of work is done once (the other run waits for it), each run's account speaks only
    of its own work, and gold equals one run's."""
    import json
    import os

    root, alone = tmp_path / "data", tmp_path / "alone"
    generate_bronze(root / "bronze", rows=20_000, files=3, seed=5)
    shutil.copytree(root / "bronze", alone / "bronze")
    env = {"LUIGI_CONFIG_PATH": str(config_file(tmp_path, "[pipeline]\nchunk_rows = 2500\nsilver_buckets = 8\n"
                                                           f"small_file_bytes = {small_file_bytes}\n"))}
    command = [sys.executable, str(REPO / "run.py"), "--data-root", str(root), "--workers", "2", "--json"]
    runs = [subprocess.Popen(command, cwd=REPO, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    outputs = [r.communicate(timeout=300) for r in runs]
    assert [r.returncode for r in runs] == [0, 0], outputs
    accounts = [json.loads(out) for out, _err in outputs]
    assert sum(a["this_run"]["rows_cleaned"] for a in accounts) == 20_000, accounts  # no record cleaned twice
    assert sum(a["gold"] is not None for a in accounts) == 1, accounts  # one merge; the other run says nothing of it
    assert sum("gold: merged" in err for _out, err in outputs) == 1
    assert run_cli("--data-root", str(alone), env=env).returncode == 0
    got, expected = gold_tables(root), gold_tables(alone)
    for name in GOLD_TABLES:
        assert got[name].equals(expected[name]), name
    assert not list(root.rglob(".tmp-*"))


def test_a_failed_task_shows_its_one_line_reason_in_luigid(tmp_path: Path, luigid: int) -> None:
    root = tmp_path / "data"
    generate_bronze(root / "bronze", rows=3_000, files=2, seed=1)
    assert run_cli("--data-root", str(root), "--until", "silver").returncode == 0
    part = root / "silver" / "sales_data_part_0001.csv" / "part-00001.parquet"
    part.write_bytes(part.read_bytes()[:-100])  # truncated
    result = run_cli("--data-root", str(root), "--until", "gold", "--scheduler-host", "127.0.0.1", "--scheduler-port", str(luigid))
    assert result.returncode == 1
    assert "FAILED silver part" in result.stdout and "corrupt or truncated" in result.stdout
    failed = api(luigid, "task_list", {"status": "FAILED", "upstream_status": "", "search": ""})
    assert [task["name"] for task in failed.values()] == ["SilverToGold"]
    error = api(luigid, "fetch_error", {"task_id": next(iter(failed))})["error"]
    error = json.loads(error) if error.startswith('"') else error  # luigid keeps the explanation JSON-encoded
    assert error.startswith("silver part ") and "corrupt or truncated" in error and "--reprocess sales_data_part_0001.csv" in error
    assert "\n" not in error.strip()
