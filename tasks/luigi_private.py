"""Every use of Luigi's private internals, in one place, checked with the Luigi versions below.

Luigi documents none of these; each is small, and `tests/test_luigi_native.py` exercises each one
and refuses a Luigi version not listed in CHECKED_WITH, so an upgrade that breaks one fails there
rather than somewhere in a run. Nothing else in the project reaches past Luigi's public API.
"""
from __future__ import annotations

import contextlib
import multiprocessing
import warnings
from collections.abc import Iterator

import luigi
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


def quiet_rpc_retry_warnings() -> None:
    """`[core] rpc_retry_attempts` / `rpc_retry_wait` are read by Luigi's RemoteScheduler, not by
    its `core` config class, which warns about them as unconsumed."""
    warnings.filterwarnings("ignore", message="The configuration contains the parameter 'rpc_retry_",
                            category=UnconsumedParameterWarning)
