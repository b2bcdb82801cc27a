"""Every use of Luigi's private internals, in one place, checked with the Luigi versions below.

Luigi documents none of these; each is small, and `tests/test_luigi_native.py` exercises each one
and refuses a Luigi version not listed in CHECKED_WITH, so an upgrade that breaks one fails there
rather than somewhere in a run. Nothing else in the project reaches past Luigi's public API.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import time
import warnings
from collections.abc import Callable, Iterator

import luigi
import luigi.retcodes
import luigi.rpc
import luigi.worker
from luigi.cmdline_parser import CmdlineParser
from luigi.configuration import LuigiConfigParser
from luigi.parameter import UnconsumedParameterWarning

CHECKED_WITH = ("3.8.1",)


def layer_config_first(path: str) -> None:
    """Read `path` before every other config file (so theirs win): Luigi's public
    `add_config_path` only appends, which would make it win instead."""
    paths = LuigiConfigParser._config_paths
    if path not in paths:
        paths.insert(0, path)
        LuigiConfigParser._instance = None  # read again, in this order, at the next get_config()


@contextlib.contextmanager
def command_line(args: list[str]) -> Iterator[None]:
    """Luigi's command line for the block, as the `luigi` command sets it: config classes and task
    parameters read `--<section>-<key> VALUE` from it (argparse's SystemExit for a bad one)."""
    with CmdlineParser.global_instance(args):
        yield


def command_line_value(section: str, key: str) -> str | None:
    """The text given for `[section] key` on the current Luigi command line (`--section-key VALUE`,
    or an abbreviation argparse accepted), or None when it was not given there."""
    parsed = CmdlineParser.get_instance()
    return None if parsed is None else getattr(parsed.known_args, f"{section}_{key}", None)


def run_command(argv: list[str]) -> int:
    """What `luigi ARGV` does, in this process, and its exit code: the same parsing, scheduling and
    [retcode] mapping (luigi.retcodes.run_with_retcodes), so both entry points exit alike. An
    outer `command_line` block is set aside while it runs (Luigi allows one at a time)."""
    outer, CmdlineParser._instance = CmdlineParser._instance, None
    try:
        luigi.retcodes.run_with_retcodes(argv)
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else 1
    finally:
        CmdlineParser._instance = outer
    return 0


def in_task_process() -> bool:
    """This process is one that Luigi's worker forked for a task (--workers > 1)."""
    return isinstance(multiprocessing.current_process(), luigi.worker.TaskProcess)


def scheduler_of(task: luigi.Task):
    """The scheduler a running task reports its progress to, or None (no worker runs it)."""
    reporter = getattr(task.set_status_message, "__self__", None)
    return getattr(reporter, "_scheduler", None)


def dependency_vanished(task: luigi.Task, exception: BaseException) -> bool:
    """Luigi's check just before a task runs found a dependency no longer complete (another command
    removed its output after it was scheduled). Luigi raises a bare RuntimeError for it, and only
    its text says so; the dependencies themselves tell, without reading the text."""
    return type(exception) is RuntimeError and any(not dependency.complete() for dependency in task.deps())


_original_keep_alive = luigi.worker.Worker._keep_alive


def wait_for_other_workers(poll_seconds: float, say: Callable[[str], None]) -> None:
    """A worker of a shared luigid that has nothing it may run while its root task is incomplete
    (other workers hold the tasks it waits for) waits for them instead of ending, as long as none
    of its own tasks failed or could not be scheduled: every `poll_seconds` it schedules its root
    again (what another worker left undone becomes its own to run). Once the root is complete it
    records what the others did as done here too, so Luigi's summary and exit code say success.
    Luigi's own `[worker] keep_alive` waits after a failure too (a failed task counts as pending)."""

    def _keep_alive(worker: luigi.worker.Worker, get_work_response) -> bool:
        if _original_keep_alive(worker, get_work_response):
            return True
        if not isinstance(worker._scheduler, luigi.rpc.RemoteScheduler) or not worker.run_succeeded:
            return False
        if any(status in (luigi.worker.FAILED, luigi.worker.UNKNOWN) for _task, status, _ext in worker._add_task_history):
            return False
        root = worker._scheduled_tasks.get(worker._first_task)
        if root is None:
            return False
        if root.complete():
            for task in list(worker._scheduled_tasks.values()):
                worker.add(task)
            return False
        if get_work_response.n_pending_tasks == 0:
            return False
        say("waiting for tasks that other workers are running ...")
        time.sleep(poll_seconds)
        worker.add(root)
        return True

    luigi.worker.Worker._keep_alive = _keep_alive


def quiet_rpc_retry_warnings() -> None:
    """`[core] rpc_retry_attempts` / `rpc_retry_wait` are read by Luigi's RemoteScheduler, not by
    its `core` config class, which warns about them as unconsumed."""
    warnings.filterwarnings("ignore", message="The configuration contains the parameter 'rpc_retry_",
                            category=UnconsumedParameterWarning)
