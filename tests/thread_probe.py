"""Which threads really merged: wrappers around pipeline.gold.merge that record, per merge
batch, the thread count the merge decided on and every thread that ran one of its jobs.

The run records no thread count of its own, so a "two-thread merge" test could pass with every
bucket merged on one thread. The wrappers make the count observable, in this process (`probe`,
through monkeypatch) or in a `run.py` subprocess and the processes it forks (`probe_env`: a
sitecustomize that instruments the module when the run imports it). On its first job, each pool
thread waits (MEET_SECONDS at most) until as many pool threads as were decided have each taken a
job, so "two threads ran" is certain rather than likely; a pool of fewer threads fails the run.
"""
from __future__ import annotations

import importlib.abc
import importlib.util
import json
import os
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MODULE = "pipeline.gold.merge"
LOG_ENV = "MERGE_THREAD_PROBE_LOG"
CORES_ENV = "MERGE_THREAD_PROBE_CORES"
MEET_SECONDS = 60.0


@dataclass
class _Meeting:
    """The pool threads of one batch, each waiting on its first job for the others to arrive."""

    batch: str
    barrier: threading.Barrier | None
    first_job: threading.local = field(default_factory=threading.local)

    def arrive(self) -> None:
        if self.barrier is None or getattr(self.first_job, "done", False):
            return
        self.first_job.done = True
        try:
            self.barrier.wait(MEET_SECONDS)
        except threading.BrokenBarrierError:
            raise AssertionError(f"thread probe: {self.barrier.parties} threads were to run jobs, but fewer than that "
                                 f"arrived within {MEET_SECONDS:.0f} s") from None


def instrument(module, log: Callable[[dict], None], cores: int | None = None,
               set_attribute: Callable[[object, str, object], None] = setattr) -> None:
    """Wrap `module` (pipeline.gold.merge): every `_bucket_results` or `merge_whole_batch` call (a batch's merge)
    and `_batch_pool` call that checks the parts (its checksum check) logs {"event", "batch", "threads", "jobs"}, every job
    {"event", "batch", "thread"}; with `cores`, the module's usable_cores() returns it."""
    meeting: list[_Meeting] = []
    counter = iter(range(1 << 30))

    def start(event: str, threads: int, jobs: int) -> _Meeting:
        batch = f"{os.getpid()}-{next(counter)}"
        log({"event": event, "batch": batch, "threads": threads, "jobs": jobs})
        parties = min(threads, jobs)
        current = _Meeting(batch, threading.Barrier(parties) if parties > 1 else None)
        meeting[:] = [current]
        return current

    def job(event: str) -> None:
        if not meeting:
            raise AssertionError(f"thread probe: a {event} ran outside the batch calls the probe wraps")
        current = meeting[0]
        log({"event": event, "batch": current.batch, "thread": f"{os.getpid()}/{threading.get_ident()}"})
        current.arrive()

    bucket_results, merge_bucket = module._bucket_results, module.merge_bucket
    batch_pool, verify_silver_part = module._batch_pool, module.verify_silver_part

    def logged_bucket_results(store, part_paths, jobs, workers, key, pool):
        start("merge", workers, len(jobs))
        return bucket_results(store, part_paths, jobs, workers, key, pool)

    def logged_merge_bucket(reader, job_):
        job("merge job")
        return merge_bucket(reader, job_)

    def logged_batch_pool(store, parts, metrics, settings, check):
        if check:
            start("checksums", module.usable_cores(), len(parts))
        return batch_pool(store, parts, metrics, settings, check)

    def logged_verify_silver_part(*args, **kwargs):
        job("checksums job")
        return verify_silver_part(*args, **kwargs)

    merge_whole_batch = module.merge_whole_batch

    def logged_merge_whole_batch(reader, jobs):  # a small batch: no thread but the task's, one job
        start("merge", 0, 1)
        job("merge job")
        return merge_whole_batch(reader, jobs)

    set_attribute(module, "merge_whole_batch", logged_merge_whole_batch)
    set_attribute(module, "_bucket_results", logged_bucket_results)
    set_attribute(module, "merge_bucket", logged_merge_bucket)
    set_attribute(module, "_batch_pool", logged_batch_pool)
    set_attribute(module, "verify_silver_part", logged_verify_silver_part)
    if cores is not None:
        set_attribute(module, "usable_cores", lambda: cores)


def threads_per_batch(records: list[dict], event: str = "merge") -> list[tuple[int, int]]:
    """Per batch, in order: (threads the code decided on, distinct threads that ran its jobs)."""
    batches = [r for r in records if r["event"] == event]
    ran = {b["batch"]: {r["thread"] for r in records if r["event"] == f"{event} job" and r["batch"] == b["batch"]}
           for b in batches}
    return [(b["threads"], len(ran[b["batch"]])) for b in batches]


# --- in this process -------------------------------------------------------------------------------

def probe(monkeypatch, cores: int | None = None) -> list[dict]:
    """Instrument pipeline.gold.merge for this test (undone by monkeypatch); the records."""
    import importlib

    records: list[dict] = []
    instrument(importlib.import_module(MODULE), records.append, cores, monkeypatch.setattr)
    return records


# --- in a run.py subprocess ------------------------------------------------------------------------

def probe_env(folder: Path, cores: int | None = None) -> dict[str, str]:
    """Environment for a `run.py` subprocess whose merges are recorded into `folder` (read them with
    `read_log(folder)`); `folder` also holds the sitecustomize that installs the probe."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text("from tests.thread_probe import install_from_env\ninstall_from_env()\n")
    path = os.pathsep.join(p for p in (str(folder), str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    env = {"PYTHONPATH": path, LOG_ENV: str(folder / "log.jsonl")}
    if cores is not None:
        env[CORES_ENV] = str(cores)
    return env


def read_log(folder: Path) -> list[dict]:
    log = folder / "log.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _append_line(path: str, record: dict) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(record) + "\n").encode())  # one write per line: lines never interleave
    finally:
        os.close(fd)


class _InstrumentOnImport(importlib.abc.MetaPathFinder):
    """Instruments pipeline.gold.merge right after the run imports it (not earlier: importing it
    at start-up would change the run's import order)."""

    def __init__(self, log_path: str, cores: int | None) -> None:
        self.log_path, self.cores = log_path, cores

    def find_spec(self, name, path, target=None):
        if name != MODULE:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        exec_module = spec.loader.exec_module

        def exec_and_instrument(module) -> None:
            exec_module(module)
            instrument(module, lambda record: _append_line(self.log_path, record), self.cores)

        spec.loader.exec_module = exec_and_instrument
        return spec


def install_from_env() -> None:
    """Called by the sitecustomize of `probe_env`: a no-op unless the probe's log is set."""
    log_path = os.environ.get(LOG_ENV)
    if not log_path:
        return
    cores = int(os.environ[CORES_ENV]) if os.environ.get(CORES_ENV) else None
    if MODULE in sys.modules:
        instrument(sys.modules[MODULE], lambda record: _append_line(log_path, record), cores)
    else:
        sys.meta_path.insert(0, _InstrumentOnImport(log_path, cores))
