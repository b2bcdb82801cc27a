"""Everyday operator events end in one line that says what and where, the documented exit code,
and nothing half-written: an unreachable scheduler, broken derived files, bronze entries that are
not read."""
from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from pipeline.generator import generate_bronze
from tests.conftest import run_cli
from tests.gold_helpers import assert_gold_equal, copy_bronze, read_gold, run_gold

NAMES = ["sales_data_part_0001.csv", "sales_data_part_0002.csv", "sales_data_part_0003.csv"]


@pytest.fixture(scope="module")
def bronze(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("operator") / "bronze"
    generate_bronze(folder, rows=3_000, files=3, seed=4)
    return folder


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_unreachable_scheduler_fails_in_about_ten_seconds_in_one_line(tmp_path: Path, bronze: Path) -> None:
    root = tmp_path / "data"
    copy_bronze(bronze, root)
    started = time.monotonic()
    result = run_cli("--data-root", str(root), "--scheduler-host", "127.0.0.1", "--scheduler-port", str(closed_port()))
    assert time.monotonic() - started < 20
    assert result.returncode == 2
    assert [line for line in result.stderr.splitlines() if line.strip()] == [result.stderr.strip()]
    assert result.stderr.startswith("ERROR scheduler 127.0.0.1:") and "cannot be reached" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize("derived, content", [("_file_metrics.json", ""), ("_manifest.json", "{not json")])
def test_a_broken_derived_file_names_itself_and_its_repair_and_the_others_run(tmp_path: Path, bronze: Path,
                                                                              derived: str, content: str) -> None:
    root = tmp_path / "data"
    copy_bronze(bronze, root)
    run_gold(root)
    broken = root / "silver" / NAMES[1] / derived
    broken.write_text(content)
    result = run_cli("--data-root", str(root), "--until", "gold")
    assert result.returncode == 1
    lines = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    assert lines == [f"FAILED {NAMES[1]}: {broken} is unreadable (JSONDecodeError); "
                     f"run `python run.py --reprocess {NAMES[1]}` to redo just this file"], result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    others = tmp_path / "others"
    copy_bronze(bronze, others, [NAMES[0], NAMES[2]])
    run_gold(others)
    assert_gold_equal(read_gold(root), read_gold(others), "gold without the file whose derived file broke")
    run_gold(root, None, "--reprocess", NAMES[1])  # the command the line names repairs it
    reference = tmp_path / "reference"
    copy_bronze(bronze, reference)
    run_gold(reference)
    assert_gold_equal(read_gold(root), read_gold(reference), "after the repair")


def test_bronze_entries_that_are_not_read_are_listed_once(tmp_path: Path, bronze: Path) -> None:
    root = tmp_path / "data"
    copy_bronze(bronze, root)
    os.mkfifo(root / "bronze" / "pipe.csv")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "more.csv").write_text("order_id,quantity,unit_price\nX1,1,1.00\n")
    (root / "bronze" / "linked").symlink_to(outside, target_is_directory=True)
    result = run_cli("--data-root", str(root), "--until", "gold")
    assert result.returncode == 1
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    assert failed == ["FAILED linked/: a symlinked folder; its files are not read (copy or bind-mount it instead)",
                      "FAILED pipe.csv: not a regular file (a FIFO, socket or device?); not read"], result.stdout
    status = run_cli("status", "--data-root", str(root))
    assert "NOT READ pipe.csv" in status.stdout and "NOT READ linked/" in status.stdout
    assert len(read_gold(root)["data_quality"]) == 3  # the regular files ran
