"""Crash safety of the whole pipeline under SIGKILL: kill `run.py` at many instants, run it again to
completion, and gold must equal, table for table and value for value, the gold of a run that was
never interrupted.

Each run is a real `python run.py` in its own process group (start_new_session), killed with
`os.killpg(pid, SIGKILL)` so Luigi's worker processes die with it. A small chunk_rows and 16 silver
buckets give many commit points (silver parts, one state commit per bucket, eight gold files).

Kill points:
- deterministic: found by watching the file system and the state database from outside (a
  read-only SQLite connection), then killing at once: after k silver parts, after k buckets
  merged, once a batch's gold/orders files are written but before the commit that ends it, between the merge's final state commit and the first gold write, in the middle of the
  gold writes (some tables replaced, not all), after every gold table but before the run marker;
  for a first run, and for a second run that upserts new files into existing gold; several
  kills stacked on one root; and new bronze files arriving between a crash and the re-run.
  The default run kills once at each kind of window (FIRST_RUN_POINTS, UPSERT_POINTS below); every
  point for both runs is in the slow tier too;
- random (slow tier): delays from a seeded random.Random (GOLD_CRASH_SEED), several kills per iteration,
  GOLD_CRASH_ITERATIONS iterations (default 6; set it to thousands for a soak run).

After the final run: gold equals the reference, no `.tmp-` file is left in silver, quarantine or
gold, the merge batch is closed, and one more run finds nothing to do.
"""
from __future__ import annotations

import dataclasses
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline.generator import generate_bronze
from tests import thread_probe
from tests.conftest import REPO
from tests.gold_helpers import (
    GOLD_NAMES,
    assert_gold_equal,
    copy_bronze,
    generated_names,
    layered_config,
    read_gold,
    run_ok,
    temp_files,
)

ROWS, FILES, SEED = 40_000, 4, 11
BUCKETS = 16
# The 10k-row files are small files (cleaned in groups, several chunks each) and every merge batch is
# merged by one thread per core (two: the setup forces it, and checks it), so kills land inside a
# group and inside the parallel merge too.
CONFIG = f"[pipeline]\nchunk_rows = 3000\nsilver_buckets = {BUCKETS}\n[gold]\nmerge_parallel_min_rows = 0\n"
ITERATIONS = int(os.environ.get("GOLD_CRASH_ITERATIONS", "6"))
ATTEMPTS = 25  # tries to land on a narrow deterministic window before the test gives up
POLL_SECONDS = 0.0003
# Every run stops at gold: each kill point is at or before the gold publication, and the report
# (written after it, by the store's atomic write: tests/test_atomic.py) is not what this module is about.
RUN_ARGS = ("--workers", "1", "--until", "gold")
STATE_FILE = Path("state") / "gold_state.sqlite"


@dataclass(frozen=True)
class Setup:
    bronze: Path  # the generated bronze files (copied into every test root)
    env: dict[str, str]
    reference: dict  # gold of one uninterrupted run
    seconds: float  # how long that run took, wall clock
    startup_seconds: float  # how long a run that finds nothing to do takes


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    base = tmp_path_factory.mktemp("crash")
    bronze = base / "bronze-source"
    generate_bronze(bronze, rows=ROWS, files=FILES, seed=SEED)
    # Two cores for every run, whatever this machine has, and a record of the threads that merge.
    probe = base / "thread-probe"
    env = {**layered_config(base, CONFIG), **thread_probe.probe_env(probe, cores=2)}
    root = base / "reference" / "data"
    copy_bronze(bronze, root)
    started = time.monotonic()
    run_ok(root, env, *RUN_ARGS)
    seconds = time.monotonic() - started
    merged = thread_probe.threads_per_batch(thread_probe.read_log(probe))
    assert merged and all(b == (2, 2) for b in merged), f"(threads decided, threads that merged) per batch: {merged}"
    # the reference is itself reproducible (so a mismatch below is the crash's fault)
    again = base / "reference-2" / "data"
    copy_bronze(bronze, again)
    run_ok(again, env, *RUN_ARGS)
    reference = read_gold(root)
    assert_gold_equal(read_gold(again), reference, "two uninterrupted runs")
    started = time.monotonic()
    assert "Nothing to do" in run_ok(root, env, *RUN_ARGS).stdout
    return Setup(bronze=bronze, env=env, reference=reference, seconds=seconds, startup_seconds=time.monotonic() - started)


# --- running and killing ---------------------------------------------------------------------------

def start(root: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, str(REPO / "run.py"), "--data-root", str(root), *RUN_ARGS],
                                cwd=REPO, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL the whole process group (run.py and any Luigi worker children)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=60)


def wait_for(proc: subprocess.Popen, condition: Callable[[], bool], timeout: float = 120.0) -> bool:
    """Poll until `condition()` holds (True) or the run ends first (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(POLL_SECONDS)
    kill(proc)
    raise AssertionError(f"no kill point reached in {timeout} s")


def finish_and_check(root: Path, setup: Setup, label: str, idle_check: bool = True) -> None:
    """Re-run to completion; gold must be the uninterrupted run's, and nothing half-done is left.
    With `idle_check`, one more run must find nothing to do (the recovery recorded its work)."""
    run_ok(root, setup.env, *RUN_ARGS)
    assert_gold_equal(read_gold(root), setup.reference, label)
    assert temp_files(root) == [], f"{label}: temporary files left: {temp_files(root)}"
    assert len(list((root / "gold").glob("_published-*.json"))) == 1, label
    assert state_json(root, "batch") is None, f"{label}: the merge batch is still open after a successful run"
    if not idle_check:
        return
    again = run_ok(root, setup.env, *RUN_ARGS)
    assert "Nothing to do" in again.stdout, f"{label}: a run after the recovery still found work:\n{again.stdout}"


# --- what the run has done so far, seen from outside ------------------------------------------------

def state_values(root: Path, *keys: str) -> list:
    """JSON values of the Silver -> Gold state (None when absent), read in one read-only SQLite
    transaction, so the values are from one commit."""
    path = root / STATE_FILE
    if not path.exists():
        return [None] * len(keys)
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.05)
        try:
            found = dict(conn.execute(f"SELECT key, value FROM state WHERE key IN ({','.join('?' * len(keys))})", keys).fetchall())
        finally:
            conn.close()
    except sqlite3.OperationalError:  # not created yet, or busy for an instant
        return [None] * len(keys)
    values = []
    for key in keys:
        raw = found.get(key)
        if raw is not None:
            raw = bytes(raw)
            assert raw[:1] == b"J", f"state key {key} is not JSON"
        values.append(None if raw is None else json.loads(raw[5:].decode()))  # type byte, CRC-32, JSON
    return values


def state_json(root: Path, key: str):
    return state_values(root, key)[0]


def silver_parts(root: Path) -> int:
    return sum(1 for _ in (root / "silver").rglob("part-*.parquet")) if (root / "silver").exists() else 0


def gold_inodes(root: Path) -> dict[str, int | None]:
    out = {}
    for name in GOLD_NAMES:
        try:
            out[name] = (root / "gold" / f"{name}.parquet").stat().st_ino
        except FileNotFoundError:
            out[name] = None
    return out


def gold_replaced(root: Path, before: dict[str, int | None]) -> int:
    """How many gold tables were (re)written since `before` (an atomic rename gives a new inode)."""
    now = gold_inodes(root)
    return sum(1 for name in GOLD_NAMES if now[name] is not None and now[name] != before[name])


def published_markers(root: Path) -> set[str]:
    return {p.name for p in (root / "gold").glob("_published-*.json")} if (root / "gold").exists() else set()


def merged_parts(root: Path) -> int:
    return len(state_json(root, "merged_parts") or [])


def stage(root: Path, markers_before: set[str]) -> str:
    """Where a killed run stopped: bronze, merge (batch open), publish (merged, not marked), done."""
    batch, merged = state_values(root, "batch", "merged_parts")
    if batch is not None:
        return "merge"
    if published_markers(root) != markers_before:
        return "done"
    if (root / STATE_FILE).exists() and merged and len(merged) == silver_parts(root):
        return "publish"
    return "bronze"


# --- kill points ------------------------------------------------------------------------------------

def kill_point(name: str, root: Path) -> tuple[Callable[[], bool], Callable[[], bool]]:
    """(condition to kill at, check that the kill really landed in the intended window).

    Snapshots are taken now, before the run starts, so a second run's points are relative to it.
    """
    inodes = gold_inodes(root)
    markers = published_markers(root)
    parts_before = merged_parts(root)

    def merge_committed() -> bool:  # the batch is closed and more parts are marked merged
        batch, merged = state_values(root, "batch", "merged_parts")
        return batch is None and len(merged or []) > parts_before

    if name == "silver_parts":
        target = silver_parts(root) + 5
        return (lambda: silver_parts(root) >= target), (lambda: True)
    if name.startswith("bucket_"):
        k = int(name.split("_")[1])

        def buckets_done() -> bool:
            batch = state_json(root, "batch")
            return batch is not None and len(batch["done_buckets"]) >= k

        return buckets_done, (lambda: state_json(root, "batch") is not None)
    if name == "batch_open":  # a batch is recorded and not ended (in a one-pass merge, nothing else is committed)
        return (lambda: state_json(root, "batch") is not None), (lambda: state_json(root, "batch") is not None)
    if name == "orders_written":  # the batch's gold/orders files are out, the commit that ends the batch is not
        def orders_out() -> bool:
            batch = state_json(root, "batch")  # every bucket done, or none (a one-pass merge commits them at its end)
            return (batch is not None and len(batch["done_buckets"]) in (0, BUCKETS)
                    and any((root / "gold" / "orders").glob(f"*/batch-{batch['number']:06d}.parquet")))

        return orders_out, (lambda: state_json(root, "batch") is not None)
    if name == "after_merge_commit":
        return merge_committed, (lambda: gold_replaced(root, inodes) == 0)
    if name == "mid_gold_write":
        def mid() -> bool:
            return 1 <= gold_replaced(root, inodes) < len(GOLD_NAMES)

        return mid, (lambda: gold_replaced(root, inodes) < len(GOLD_NAMES))
    if name == "before_marker":
        def all_written() -> bool:
            return gold_replaced(root, inodes) == len(GOLD_NAMES) and published_markers(root) == markers

        return all_written, (lambda: published_markers(root) == markers)
    raise ValueError(name)


def kill_once_at(name: str, root: Path, setup: Setup, log: Path) -> bool:
    """Start a run on `root`, kill it at `name`; True when the kill landed inside the window."""
    condition, landed = kill_point(name, root)
    proc = start(root, setup.env, log)
    try:
        reached = wait_for(proc, condition)
    finally:
        kill(proc)  # also when the polling itself failed: never leave a run behind
    return reached and landed()


def crash_at(points: list[str], make_root: Callable[[Path], Path], setup: Setup, tmp_path: Path) -> Path:
    """On a fresh root from `make_root(folder)`, kill one run at each of `points` in turn (crashes
    stack: each run resumes what the killed one left). A narrow window can be missed (the run
    outpaces the polling); then everything starts again on a new root, up to ATTEMPTS times."""
    for attempt in range(ATTEMPTS):
        folder = tmp_path / f"attempt-{attempt}"
        root = make_root(folder)
        log = folder / "run.log"
        if all(kill_once_at(point, root, setup, log) for point in points):
            print(f"killed at {points} on attempt {attempt + 1}")
            return root
    pytest.fail(f"could not kill at {points} in {ATTEMPTS} attempts (the window was missed every time)")


def fresh_root(setup: Setup, files: list[str] | None = None) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        root = folder / "data"
        copy_bronze(setup.bronze, root, files)
        return root

    return make


@pytest.fixture(scope="module")
def half_done(setup: Setup, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root whose first two files went through a complete run: gold exists."""
    root = tmp_path_factory.mktemp("half-done") / "data"
    copy_bronze(setup.bronze, root, generated_names(setup.bronze)[:2])
    run_ok(root, setup.env, *RUN_ARGS)
    return root


def with_new_files(setup: Setup, half_done: Path) -> Callable[[Path], Path]:
    """A copy of `half_done` in which the other two files have just arrived."""
    def make(folder: Path) -> Path:
        root = folder / "data"
        shutil.copytree(half_done, root)  # copy2: mtimes kept, so the ingested files stay unchanged
        copy_bronze(setup.bronze, root, generated_names(setup.bronze)[2:])
        return root

    return make


def tiered(points: list[str], default: set[str]) -> list:
    """Every point as a parameter; those outside `default` only in the slow tier (`-m slow`)."""
    return [point if point in default else pytest.param(point, marks=pytest.mark.slow) for point in points]


# The default run kills at each kind of window once: silver parts here; once the orders files are
# written and mid gold in the upsert run below (where old gold and an old marker make each window a
# chance to count twice); inside the merge (twice, resumed) and mid gold in the stacked test, inside
# the merge in the late-arrival test. The other combinations (after the merge's commit, before the
# marker, ...) are the slow tier.
FIRST_RUN_POINTS = ["silver_parts", "bucket_1", f"bucket_{BUCKETS - 1}", "orders_written", "after_merge_commit", "mid_gold_write",
                    "before_marker"]


@pytest.mark.parametrize("point", tiered(FIRST_RUN_POINTS, {"silver_parts"}))
def test_kill_first_run_at_deterministic_point(tmp_path: Path, setup: Setup, point: str) -> None:
    root = crash_at([point], fresh_root(setup), setup, tmp_path)
    finish_and_check(root, setup, f"first run killed at {point}")


UPSERT_POINTS = ["bucket_1", f"bucket_{BUCKETS - 1}", "orders_written", "after_merge_commit", "mid_gold_write", "before_marker"]


@pytest.mark.parametrize("point", tiered(UPSERT_POINTS, {"orders_written", "mid_gold_write"}))
def test_kill_second_run_while_it_upserts_new_files(tmp_path: Path, setup: Setup, half_done: Path, point: str) -> None:
    """Two files went through a complete run; the other two arrive and the second run is killed."""
    root = crash_at([point], with_new_files(setup, half_done), setup, tmp_path)
    finish_and_check(root, setup, f"second (upsert) run killed at {point}")


def test_kills_stack_resumed_merge_killed_again_then_mid_gold(tmp_path: Path, setup: Setup) -> None:
    """Resume a half-merged batch, kill it again further on, then kill the gold publication."""
    root = crash_at(["bucket_3", "bucket_9", "mid_gold_write"], fresh_root(setup), setup, tmp_path)
    finish_and_check(root, setup, "killed at bucket 3, at bucket 9, then mid gold")


def test_files_that_arrive_after_a_crash_mid_merge_still_reach_gold(tmp_path: Path, setup: Setup) -> None:
    """Kill a first run (two files) in the middle of its merge; two more files arrive before the
    re-run. The re-run must finish the interrupted batch AND merge the new files' parts."""
    names = generated_names(setup.bronze)
    root = crash_at([f"bucket_{BUCKETS // 2}"], fresh_root(setup, names[:2]), setup, tmp_path)
    copy_bronze(setup.bronze, root, names[2:])
    finish_and_check(root, setup, "new files after a crash mid-merge")


# A batch under merge_parallel_min_rows is merged in one pass and committed once, with its end.
ONE_PASS_CONFIG = f"[pipeline]\nchunk_rows = 3000\nsilver_buckets = {BUCKETS}\n[gold]\nmerge_parallel_min_rows = 1000000000\n"


@pytest.mark.parametrize("point", ["batch_open", "orders_written"])
def test_kill_a_one_pass_merge(tmp_path: Path, setup: Setup, point: str) -> None:
    """The one-pass merge killed while its batch is open, or once its orders files are written: the
    re-run redoes the batch whole and gold is the reference's (the threshold is a tuning setting)."""
    one_pass = dataclasses.replace(setup, env={**setup.env, **layered_config(tmp_path / "config", ONE_PASS_CONFIG)})
    root = crash_at([point], fresh_root(one_pass), one_pass, tmp_path)
    finish_and_check(root, one_pass, f"one-pass merge killed at {point}")


@pytest.mark.slow
def test_kill_at_random_instants(tmp_path: Path, setup: Setup, half_done: Path) -> None:
    """GOLD_CRASH_ITERATIONS iterations of: 1-4 kills at seeded random delays, then a clean run.

    About a third of the iterations crash a second run that upserts two new files into the gold
    of a complete first run; the others crash a first run. The seeded draws are fractions of the
    expected run time, which adapts to the machine's speed: when an iteration's first run
    finishes before its kill, later delays are drawn below the time it took (a loaded CI machine
    and an idle laptop both get kills spread over the whole run)."""
    seed = int(os.environ.get("GOLD_CRASH_SEED", "20261125"))
    rng = random.Random(seed)
    # a kill before Python and Luigi are even loaded tests little: start at half the start-up time
    earliest, horizon = setup.startup_seconds / 2, setup.seconds * 1.1
    kills = 0
    stages: Counter[str] = Counter()
    for iteration in range(ITERATIONS):
        folder = tmp_path / f"it{iteration:05d}"
        incremental = rng.random() < 0.35
        root = (with_new_files(setup, half_done) if incremental else fresh_root(setup))(folder)
        fractions = [rng.random() for _ in range(rng.randint(1, 4))]
        delays = []
        for index, fraction in enumerate(fractions):
            delay = earliest + fraction * max(horizon - earliest, 0.05)
            delays.append(round(delay, 3))
            markers = published_markers(root)
            started = time.monotonic()
            proc = start(root, setup.env, folder / "run.log")
            try:
                proc.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                kill(proc)
                kills += 1
                stages[stage(root, markers)] += 1
                if index == 0:
                    horizon *= 1.03  # let the estimate grow back when the machine gets faster... or slower
                continue
            stages["finished before its kill"] += 1
            if index == 0:
                horizon = max(time.monotonic() - started, earliest * 1.5)
            break  # the work is done: further runs would only find nothing to do
        finish_and_check(root, setup, f"seed {seed} iteration {iteration} (incremental={incremental}, kill delays {delays} s)",
                         idle_check=iteration % 5 == 0)
        shutil.rmtree(folder)  # thousands of iterations must not fill the disk
    print(f"{ITERATIONS} iterations, {kills} kills; state left by each kill: {dict(stages)}")
    assert ITERATIONS == 0 or kills > 0, "no run was ever killed: the delays are too long for this machine"
