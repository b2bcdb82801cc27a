"""Warm worker processes: calls run in long-lived processes, errors come back whole, a killed
worker fails only its own call, the workers die with the run, and a run killed with SIGKILL while
they clean chunks is finished by the next run with the gold of a run never interrupted."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pipeline.errors import PipelineError
from pipeline.generator import generate_bronze
from tasks import warm_workers
from tasks.report import REPORT_WORKER_ENV, report_worker
from tasks.warm_workers import WarmWorkerDied, call
from tests.conftest import REPO
from tests.gold_helpers import (
    assert_gold_equal,
    copy_bronze,
    layered_config,
    read_gold,
    run_ok,
    temp_files,
)

pytestmark = pytest.mark.skipif(not warm_workers.supported(), reason="warm workers are Linux only")


def whose_pid() -> int:
    return os.getpid()


def fail_as_user_error(where: str) -> None:
    raise PipelineError(f"{where}: bronze file changed since it was ingested")


def fail_as_bug() -> None:
    return {}["missing"]  # type: ignore[return-value]


def die_unless_in(pid: int) -> int:
    """SIGKILL the calling process unless it is `pid`: a worker killed in the middle of a call."""
    if os.getpid() != pid:
        os.kill(os.getpid(), signal.SIGKILL)
    return os.getpid()


def rss_mb(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 2**20


def use_memory_then_free(megabytes: int) -> tuple[int, int]:
    """Build `megabytes` of 2 MB Arrow arrays (a chunk's kind of memory), free them; (pid, RSS in MB
    after freeing)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    arrays = [pc.add(pa.array(np.arange(250_000, dtype=np.float64)), 1.0) for _ in range(megabytes // 2)]
    del arrays
    return os.getpid(), rss_mb(os.getpid())


def alive(pid: int) -> bool:
    """Running (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def imported_within(module: str, seconds: float) -> bool:
    """Whether `module` appears in this process's modules within `seconds`, without importing it."""
    deadline = time.monotonic() + seconds
    while module not in sys.modules and time.monotonic() < deadline:
        time.sleep(0.02)
    return module in sys.modules


def pids_of_forked_children() -> tuple[int, list[int]]:
    from pipeline.cores import forked_map

    return os.getpid(), forked_map([os.getpid, os.getpid], 2)


def test_a_prepared_worker_imports_its_module_before_any_call_needs_it() -> None:
    assert "tests.prepared_probe" not in sys.modules
    with warm_workers.worker_pool("PIPELINE_TEST_POOL", 1, "test-worker", prepare="tests.prepared_probe"):
        assert call("probe", imported_within, "tests.prepared_probe", 20.0, pool="PIPELINE_TEST_POOL")
    assert "tests.prepared_probe" not in sys.modules and "PIPELINE_TEST_POOL" not in os.environ


@pytest.mark.skipif(not warm_workers._can_leave_idle(), reason="this process may not leave SCHED_IDLE: imports are prepared at normal priority")
def test_a_call_puts_a_preparation_still_at_idle_priority_back_to_normal(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a machine busy with other work an import under SCHED_IDLE gets a few per cent of a core;
    a call that needs it must not wait on that."""
    idle, release = threading.Event(), threading.Event()
    monkeypatch.setattr(warm_workers._Preparing, "done", threading.Event())

    def preparing() -> None:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        monkeypatch.setattr(warm_workers._Preparing, "thread_id", threading.get_native_id())
        idle.set()
        release.wait(10)

    thread = threading.Thread(target=preparing)
    thread.start()
    try:
        assert idle.wait(10)
        tid = warm_workers._Preparing.thread_id
        assert os.sched_getscheduler(tid) == os.SCHED_IDLE
        warm_workers._hurry_preparation()
        assert os.sched_getscheduler(tid) == os.SCHED_OTHER
    finally:
        release.set()
        thread.join()


def test_the_report_worker_runs_report_calls_and_may_fork_the_drawing_processes() -> None:
    with report_worker():
        worker, children = call("report", pids_of_forked_children, pool=REPORT_WORKER_ENV)
        assert call("scan", whose_pid) == os.getpid()  # the other calls do not go to it
    assert worker != os.getpid() and len(children) == 2 and worker not in children and os.getpid() not in children
    assert REPORT_WORKER_ENV not in os.environ and not alive(worker)
    assert call("report", whose_pid, pool=REPORT_WORKER_ENV) == os.getpid()


def test_without_warm_workers_a_call_runs_in_the_callers_process() -> None:
    assert warm_workers.WARM_WORKERS_ENV not in os.environ
    assert call("pid", whose_pid) == os.getpid()


def test_one_worker_starts_no_warm_worker() -> None:
    with warm_workers.warm_workers(1):
        assert warm_workers.WARM_WORKERS_ENV not in os.environ
        assert call("pid", whose_pid) == os.getpid()


def test_calls_run_in_the_same_long_lived_workers_which_stop_with_the_block() -> None:
    with warm_workers.warm_workers(2):
        pids = {call("pid", whose_pid) for _ in range(12)}
    assert os.getpid() not in pids
    assert 1 <= len(pids) <= 2, pids  # reused, not a process per call
    assert warm_workers.WARM_WORKERS_ENV not in os.environ
    assert not any(alive(pid) for pid in pids)
    assert call("pid", whose_pid) == os.getpid()


def test_an_idle_warm_worker_gives_its_freed_memory_back() -> None:
    with warm_workers.warm_workers(2):
        pid, held = call("memory", use_memory_then_free, 400)
        deadline = time.monotonic() + 10
        while rss_mb(pid) > held - 100 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert rss_mb(pid) <= held - 100, f"still {rss_mb(pid)} MB after {held} MB right after the call"


def test_errors_come_back_with_their_type_and_message() -> None:
    with warm_workers.warm_workers(2):
        with pytest.raises(PipelineError, match=r"^part_1\.csv: bronze file changed since it was ingested$"):
            call("user error", fail_as_user_error, "part_1.csv")
        with pytest.raises(KeyError) as raised:
            call("bug", fail_as_bug)
    notes = "\n".join(getattr(raised.value, "__notes__", []))
    assert "in warm worker" in notes and "fail_as_bug" in notes  # where the bug happened


def test_a_worker_killed_mid_call_fails_that_call_in_one_line_and_then_calls_run_here() -> None:
    with warm_workers.warm_workers(2):
        outcomes = []
        for _ in range(6):
            try:
                outcomes.append(call("part_7.csv chunk 3", die_unless_in, os.getpid()))
            except WarmWorkerDied as error:
                assert str(error) == ("part_7.csv chunk 3: the warm worker process doing it died (killed, or out of memory); "
                                      "run again to redo it")
                outcomes.append("died")
    # both workers die on their first call; once none is left, the call runs in this process
    assert outcomes[:2] == ["died", "died"]
    assert outcomes[2:] == [os.getpid()] * 4


def test_the_workers_die_with_the_run_even_when_it_is_killed() -> None:
    script = ("import sys, time\nsys.path.insert(0, sys.argv[1])\nfrom tasks import warm_workers\n"
              "with warm_workers.warm_workers(2):\n"
              "    print(*sorted({warm_workers.call('pid', __import__('os').getpid) for _ in range(20)}), flush=True)\n"
              "    time.sleep(600)\n")
    run = subprocess.Popen([sys.executable, "-c", script, str(REPO)], stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(p) for p in run.stdout.readline().split()]
        assert pids and all(alive(p) for p in pids)
    finally:
        run.kill()  # SIGKILL: no finally block of the run gets to stop them
        run.wait()
    deadline = time.monotonic() + 10
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(p) for p in pids), "a warm worker outlived its run"


def test_run_killed_while_warm_workers_clean_chunks_is_finished_by_the_next_run(tmp_path: Path) -> None:
    bronze = tmp_path / "bronze-source"
    generate_bronze(bronze, rows=60_000, files=3, seed=5)
    env = layered_config(tmp_path, "[pipeline]\nchunk_rows = 2000\nsilver_buckets = 8\nsmall_file_bytes = 0\n")
    reference = tmp_path / "reference" / "data"
    copy_bronze(bronze, reference)
    run_ok(reference, env, "--workers", "1", "--until", "gold")

    root = tmp_path / "killed" / "data"
    copy_bronze(bronze, root)
    with open(tmp_path / "killed.log", "wb") as log:
        run = subprocess.Popen([sys.executable, str(REPO / "run.py"), "--data-root", str(root), "--workers", "2", "--until", "gold"],
                               cwd=REPO, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while len(list((root / "silver").rglob("*.parquet"))) < 4 and run.poll() is None:
        if time.monotonic() > deadline:
            run.kill()
            run.wait()
            raise AssertionError(f"fewer than 4 silver parts 120 s into the run: {(tmp_path / 'killed.log').read_text()[-3000:]}")
        time.sleep(0.002)
    run.kill()  # only run.py: its warm workers must not go on writing
    run.wait()
    parts = len(list((root / "silver").rglob("*.parquet")))
    assert 4 <= parts < 30, f"the kill did not land mid-silver ({parts} parts)"
    # The warm workers die with run.py (PR_SET_PDEATHSIG): once none is left, nothing more can be written.
    deadline = time.monotonic() + 10
    while left := subprocess.run(["pgrep", "-f", f"run.py --data-root {root}"], capture_output=True, text=True).stdout:
        assert time.monotonic() < deadline, f"processes of the killed run still alive 10 s after it: {left}"
        time.sleep(0.05)
    assert len(list((root / "silver").rglob("*.parquet"))) <= parts + 2  # at most the chunks in flight finish

    run_ok(root, env, "--workers", "2", "--until", "gold")
    assert_gold_equal(read_gold(root), read_gold(reference), "killed --workers 2 run, then finished")
    assert temp_files(root) == []
