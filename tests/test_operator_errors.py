"""Everyday operator events end in one line that says what and where, the documented exit code,
and nothing half-written: an unreachable scheduler, broken derived files, bronze entries that are
not read."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.generator import generate_bronze
from tests.conftest import REPO, run_cli
from tests.gold_helpers import assert_gold_equal, copy_bronze, generated_bronze, read_gold, run_gold

NAMES = ["sales_data_part_0001.csv", "sales_data_part_0002.csv", "sales_data_part_0003.csv"]


@pytest.fixture(scope="module")
def bronze(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generated_bronze(tmp_path_factory, "operator", rows=3_000, files=3, seed=4)


@pytest.fixture(scope="module")
def gold_of(bronze: Path, tmp_path_factory: pytest.TempPathFactory):
    """Gold of a from-scratch run on some of the files (all by default), each set run once per module."""
    made: dict[tuple[str, ...], dict] = {}

    def gold(names: list[str] = NAMES) -> dict:
        key = tuple(names)
        if key not in made:
            root = tmp_path_factory.mktemp("reference") / "data"
            copy_bronze(bronze, root, list(names))
            run_gold(root)
            made[key] = read_gold(root)
        return made[key]

    return gold


@pytest.fixture(scope="module")
def two_files_in_gold(bronze: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root whose gold covers the first two files (copied by each test that starts from it)."""
    root = tmp_path_factory.mktemp("two-in-gold") / "data"
    copy_bronze(bronze, root, NAMES[:2])
    run_gold(root)
    return root


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


@pytest.mark.parametrize("derived, content", [("_file_metrics.json", ""), pytest.param("_manifest.json", "{not json", marks=pytest.mark.slow)])
def test_a_broken_derived_file_names_itself_and_its_repair_and_the_others_run(tmp_path: Path, bronze: Path, gold_of,
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
    assert_gold_equal(read_gold(root), gold_of([NAMES[0], NAMES[2]]), "gold without the file whose derived file broke")
    run_gold(root, None, "--reprocess", NAMES[1])  # the command the line names repairs it
    assert_gold_equal(read_gold(root), gold_of(), "after the repair")


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


# --- the machine, not the data: permissions and a full disk --------------------------------------

def unprivileged(*args: str) -> list[str]:
    """`run.py args` as a user whom permissions bind: root drops the capabilities that bypass them."""
    command = [sys.executable, str(REPO / "run.py"), *args]
    if os.geteuid() != 0:
        return command
    return ["setpriv", "--inh-caps=-dac_override,-dac_read_search,-fowner", "--bounding-set=-dac_override,-dac_read_search,-fowner",
            "--", *command]


def run_unprivileged(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(unprivileged(*args), cwd=REPO, capture_output=True, text=True, timeout=300)


needs_setpriv = pytest.mark.skipif(os.geteuid() == 0 and shutil.which("setpriv") is None,
                                   reason="as root, needs setpriv to run without the capabilities that bypass permissions")


def gold_with_new_work(tmp_path: Path, bronze: Path, two_files_in_gold: Path) -> Path:
    """A data root whose gold covers two files, with a third waiting: the next run has work to write."""
    root = tmp_path / "data"
    shutil.copytree(two_files_in_gold, root)  # copy2: mtimes kept, so the ingested files stay unchanged
    shutil.copy(bronze / NAMES[2], root / "bronze" / NAMES[2])
    return root


def tree(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_size for p in sorted(root.rglob("*")) if p.is_file()}


@needs_setpriv
@pytest.mark.parametrize("read_only", ["", "gold", "state"], ids=["data root", "gold", "state"])
def test_a_folder_that_cannot_be_written_is_named_in_one_line_exit_2_and_nothing_changes(tmp_path: Path, bronze: Path,
                                                                                      two_files_in_gold: Path,
                                                                                      read_only: str) -> None:
    root = gold_with_new_work(tmp_path, bronze, two_files_in_gold)
    folder = root / read_only if read_only else root
    before = tree(root)
    folder.chmod(0o555)
    try:
        result = run_unprivileged("--data-root", str(root))
    finally:
        folder.chmod(0o755)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.strip() == result.stderr.strip().splitlines()[0], result.stderr  # one line
    assert result.stderr.startswith(f"ERROR cannot write in {folder} (Permission denied)"), result.stderr
    assert "Traceback" not in result.stdout + result.stderr and "corrupt" not in result.stderr
    assert tree(root) == before  # nothing written, nothing removed


@needs_setpriv
def test_a_state_file_that_cannot_be_written_is_not_called_corrupt(tmp_path: Path, bronze: Path, two_files_in_gold: Path,
                                                                   gold_of) -> None:
    root = gold_with_new_work(tmp_path, bronze, two_files_in_gold)
    gold_before = read_gold(root)
    state_file = root / "state" / "gold_state.sqlite"
    state_file.chmod(0o444)
    try:
        result = run_unprivileged("--data-root", str(root))
    finally:
        state_file.chmod(0o644)
    assert result.returncode == 2, result.stdout + result.stderr
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1 and f"state file {state_file} cannot be opened or written" in failed[0], result.stdout
    assert "--rebuild-gold" not in result.stdout and "corrupt" not in result.stdout and "Traceback" not in result.stdout
    assert_gold_equal(read_gold(root), gold_before, "gold untouched")
    run_gold(root)  # writable again: the same command finishes the work
    assert_gold_equal(read_gold(root), gold_of(), "after the fix")


def can_mount_tmpfs(where: Path) -> bool:
    where.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(where)], capture_output=True).returncode == 0


def test_a_disk_that_fills_up_ends_in_one_line_exit_2_and_the_same_command_resumes(tmp_path: Path) -> None:
    root = tmp_path / "small-disk"
    if os.geteuid() != 0 or not can_mount_tmpfs(root):
        pytest.skip("needs root and a tmpfs mount to give the data root a small disk")
    try:
        generate_bronze(root / "bronze", rows=12_000, files=3, seed=6)
        used = sum(p.stat().st_size for p in (root / "bronze").iterdir())
        subprocess.run(["mount", "-o", f"remount,size={used + 400_000}", str(root)], check=True)
        result = run_cli("--data-root", str(root), "--pipeline-chunk-rows", "2000")
        assert result.returncode == 2, result.stdout + result.stderr
        out = result.stdout + result.stderr
        assert "No space left on device" in out and "Traceback" not in out, out
        assert "environment problem" in out
        assert not list(root.rglob(".tmp-*"))  # nothing half-written left behind
        subprocess.run(["mount", "-o", "remount,size=64m", str(root)], check=True)
        assert run_cli("--data-root", str(root), "--pipeline-chunk-rows", "2000").returncode == 0
        reference = tmp_path / "reference"
        copy_bronze(root / "bronze", reference)
        run_gold(reference, None, "--pipeline-chunk-rows", "2000")
        assert_gold_equal(read_gold(root), read_gold(reference), "after space was freed")
    finally:
        subprocess.run(["umount", "-l", str(root)], capture_output=True)


@needs_setpriv
def test_a_bronze_folder_that_cannot_be_read_is_listed_not_skipped(tmp_path: Path, bronze: Path) -> None:
    root = tmp_path / "data"
    copy_bronze(bronze, root)
    hidden = root / "bronze" / "date=2026-11-01"
    hidden.mkdir()
    (hidden / "late.csv").write_bytes((bronze / NAMES[0]).read_bytes())
    hidden.chmod(0o000)
    try:
        result = run_unprivileged("--data-root", str(root), "--until", "silver")
        status = run_unprivileged("status", "--data-root", str(root))
    finally:
        hidden.chmod(0o755)
    assert result.returncode == 1, result.stdout + result.stderr
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    assert failed == ["FAILED date=2026-11-01/: a folder that cannot be read (Permission denied); its files are not read"], result.stdout
    assert "NOT READ date=2026-11-01/: a folder that cannot be read" in status.stdout


# --- failures by type, never by their text -------------------------------------------------------

def test_the_machine_is_told_from_the_data_by_the_error_type(tmp_path: Path) -> None:
    import errno
    import sqlite3

    from pipeline.errors import ConfigError, EnvironmentProblem, InputFileError, PipelineError, is_transient

    assert is_transient(EnvironmentProblem("a full disk")) and is_transient(OSError(errno.ENOSPC, "No space left on device"))
    assert is_transient(PermissionError(errno.EACCES, "Permission denied"))
    for terminal in (PipelineError("x"), ConfigError("x"), InputFileError("x"), FileNotFoundError(errno.ENOENT, "gone"),
                     OSError(errno.EFBIG, "File too large"), ValueError("a bug")):
        assert not is_transient(terminal), terminal
    damaged = tmp_path / "not-sqlite"
    damaged.write_bytes(b"x" * 4096)
    with pytest.raises(sqlite3.DatabaseError) as caught:
        sqlite3.connect(damaged).execute("SELECT * FROM sqlite_master").fetchall()
    assert caught.value.sqlite_errorname == "SQLITE_NOTADB" and not is_transient(caught.value)  # damage, not the machine
    read_only = tmp_path / "read-only.sqlite"
    sqlite3.connect(read_only).close()
    with pytest.raises(sqlite3.OperationalError) as caught:
        db = sqlite3.connect(f"file:{read_only}?mode=ro", uri=True)
        db.execute("CREATE TABLE t (x)")
    assert caught.value.sqlite_errorname == "SQLITE_READONLY" and is_transient(caught.value)


def test_a_bug_in_run_py_shows_its_traceback_and_is_no_user_error(tmp_path: Path) -> None:
    """Only the project's own errors are one `ERROR` line; a ValueError is a bug (it used to be a user error)."""
    program = ("import sys, run\n"
               "def bug(args):\n    raise ValueError('a bug, not the user')\n"
               "run.command_status = bug\n"
               f"sys.exit(run.main(['status', '--data-root', {str(tmp_path)!r}]))\n")
    result = subprocess.run([sys.executable, "-c", program], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "ValueError: a bug, not the user" in result.stderr
    assert "ERROR a bug" not in result.stderr
