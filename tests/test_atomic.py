"""Temp files of atomic writes: a cleanup removes a dead writer's leftovers, never a live one's."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pipeline.storage.atomic import TEMP_PREFIX, atomic_path, remove_stale_temp_files


def test_a_live_writers_temp_file_survives_cleanup(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "part.parquet") as tmp:
        tmp.write_bytes(b"half written")
        assert remove_stale_temp_files(tmp_path) == 0 and tmp.exists()
    assert (tmp_path / "part.parquet").read_bytes() == b"half written"
    assert not list(tmp_path.glob(f"{TEMP_PREFIX}*"))


def test_a_killed_writers_temp_file_is_removed(tmp_path: Path) -> None:
    # A real process writes a temp file and exits without publishing it (as a SIGKILL would leave it).
    script = ("import os, sys; sys.path.insert(0, sys.argv[2]); from pipeline.storage.atomic import atomic_path; "
              "cm = atomic_path(sys.argv[1]); tmp = cm.__enter__(); tmp.write_bytes(b'x'); os._exit(0)")
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "gold.parquet"), str(Path(__file__).resolve().parents[1])], check=True)
    left = list(tmp_path.glob(f"{TEMP_PREFIX}*"))
    assert len(left) == 1
    assert remove_stale_temp_files(tmp_path) == 1 and not list(tmp_path.glob(f"{TEMP_PREFIX}*"))


def test_a_killed_writer_that_is_still_a_zombie_counts_as_gone(tmp_path: Path) -> None:
    # Killed but never reaped (its parent died too, and the container's first process reaps no one).
    script = ("import os, sys, time; sys.path.insert(0, sys.argv[2]); from pipeline.storage.atomic import atomic_path; "
              "cm = atomic_path(sys.argv[1]); tmp = cm.__enter__(); tmp.write_bytes(b'x'); print(flush=True); time.sleep(60)")
    writer = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "q.parquet"), str(Path(__file__).resolve().parents[1])],
                              stdout=subprocess.PIPE)
    try:
        writer.stdout.readline()
        assert remove_stale_temp_files(tmp_path) == 0  # still writing
        os.kill(writer.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while Path(f"/proc/{writer.pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z":
            assert time.monotonic() < deadline, f"the killed writer (pid {writer.pid}) was not a zombie 10 s after SIGKILL"
            time.sleep(0.01)
        assert remove_stale_temp_files(tmp_path) == 1 and not list(tmp_path.glob(f"{TEMP_PREFIX}*"))
    finally:
        writer.kill()
        writer.wait()


def test_temp_files_without_a_writer_tag_are_removed(tmp_path: Path) -> None:
    (tmp_path / f"{TEMP_PREFIX}old.json.k3j4h").write_text("{}")
    assert remove_stale_temp_files(tmp_path) == 1
