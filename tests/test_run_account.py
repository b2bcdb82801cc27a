"""The command line as a program and a person read it: subcommands in --help, one JSON object with
--json (human lines on stderr), a live merge told from an interrupted one, and one live progress
line on a terminal instead of a line per chunk."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.storage.layout import DataLayout
from pipeline.storage.locking import exclusive_lock
from tests.conftest import REPO, run_cli
from tests.gold_helpers import copy_bronze, generated_bronze


@pytest.fixture(scope="module")
def bronze(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generated_bronze(tmp_path_factory, "account", rows=6_000, files=3, seed=8)


def test_help_lists_the_subcommands_and_each_has_its_own() -> None:
    top = run_cli("--help")
    assert top.returncode == 0
    for command in ("run", "generate", "status"):
        assert f"    {command} " in top.stdout, top.stdout
    assert "--workers" in run_cli("run", "--help").stdout
    assert "--rows" in run_cli("generate", "--help").stdout


def test_json_run_and_status_print_one_object_on_stdout_and_the_human_lines_on_stderr(tmp_path: Path, bronze: Path) -> None:
    root = tmp_path / "data"
    copy_bronze(bronze, root)
    run = run_cli("--data-root", str(root), "--workers", "2", "--pipeline-chunk-rows", "1000", "--json")
    assert run.returncode == 0, run.stderr
    account = json.loads(run.stdout)  # the whole of stdout is one object
    assert account["ok"] is True and account["exit_code"] == 0 and account["command"] == "run"
    assert account["silver"]["rows_read"] == 6_000 == account["this_run"]["rows_cleaned"]
    assert account["silver"]["rows_valid"] + sum(account["silver"]["rows_rejected"].values()) == 6_000
    assert account["gold"]["rows_merged"] == account["silver"]["rows_valid"]
    assert account["report"] and Path(account["report"]).exists()
    assert "gold: merged" in run.stderr and "this run:" in run.stderr

    again = json.loads(run_cli("--data-root", str(root), "--json").stdout)
    assert again["nothing_to_do"] is True and again["ok"] is True

    status = run_cli("status", "--data-root", str(root), "--json")
    assert status.returncode == 0
    state = json.loads(status.stdout)
    assert [f["state"] for f in state["files"]] == ["done"] * 3
    assert state["silver_parts_merged"] == state["silver_parts_total"] > 0 and state["merge"] == "idle"
    assert "bronze -> silver: 3 of 3 files done" in status.stderr


def test_json_errors_are_an_object_with_the_one_line_too(tmp_path: Path) -> None:
    result = run_cli("--data-root", str(tmp_path / "nowhere"), "--json")
    assert result.returncode == 2
    account = json.loads(result.stdout)
    assert account["ok"] is False and account["exit_code"] == 2 and "does not exist" in account["error"]
    assert result.stderr.strip() == f"ERROR {account['error']}"


def test_status_tells_a_live_gold_step_from_an_idle_one(tmp_path: Path, bronze: Path) -> None:
    root = tmp_path / "data"
    copy_bronze(bronze, root)
    assert run_cli("--data-root", str(root), "--until", "silver").returncode == 0
    layout = DataLayout(root)
    with exclusive_lock(layout.gold_lock_path, "a test standing in for a live run"):
        live = run_cli("status", "--data-root", str(root), "--json")
    assert json.loads(live.stdout)["merge"] == "running" and "running now" in live.stderr
    idle = run_cli("status", "--data-root", str(root), "--json")
    assert json.loads(idle.stdout)["merge"] == "idle" and "running now" not in idle.stderr


@pytest.mark.skipif(shutil.which("script") is None, reason="needs util-linux `script` to give the run a terminal")
def test_on_a_terminal_one_live_line_replaces_the_lines_per_chunk(tmp_path: Path, bronze: Path) -> None:
    root = tmp_path / "data"
    copy_bronze(bronze, root)
    command = f"{sys.executable} run.py --data-root {root} --workers 2 --pipeline-chunk-rows 500 --pipeline-small-file-bytes 0"
    shown = subprocess.run(["script", "-qec", command, "/dev/null"], cwd=REPO, capture_output=True, timeout=300,
                           env={**os.environ, "COLUMNS": "200"})
    screen = shown.stdout.decode()  # bytes: text mode would turn the carriage returns into new lines
    assert shown.returncode == 0, screen
    assert " chunk " not in screen  # no line per chunk
    assert "\rsilver: " in screen and "rows cleaned" in screen
    assert "this run: 6,000 rows cleaned" in screen

    other = tmp_path / "logged"
    copy_bronze(bronze, other)
    logged = run_cli("--data-root", str(other), "--workers", "2", "--pipeline-chunk-rows", "500", "--pipeline-small-file-bytes", "0")
    assert logged.returncode == 0
    assert sum(" chunk " in line for line in logged.stdout.splitlines()) == 12  # not a terminal: a line per chunk, as before
    assert "\r" not in logged.stdout
