"""How a task's failure is told and what it does to the run, by the failure's type
(pipeline.errors explains terminal and transient):

- in a piece of bronze -> silver work, anything but a transient failure (a bug too, with its
  traceback): the file(s) fail alone. The task *settles*: its one line is journaled, it counts as
  complete for the rest of this run (never for the next), and the root task builds gold without
  the file, then fails the run (exit 1). One file must not withhold gold for the others.
- terminal anywhere else (gold, the report, the root): the task fails, as Luigi means it (exit 1).
- transient (the machine): the task stays pending behind a `MachineProblem`, a dependency whose
  scheduling fails, so Luigi ends the run with a scheduling error: `[retcode] scheduling_error`,
  exit 2, as for settings or a folder it cannot start with. Nothing waiting on it runs; the others do.
- a bug outside bronze work: the task fails with its traceback (in the log and in luigid), and
  nothing waiting on it runs.

Each failure leaves one line: in the luigid UI, on the console, and in the run's journal.
"""
from __future__ import annotations

import enum
import logging
import os
import traceback
from pathlib import Path

import luigi

from pipeline.errors import EnvironmentProblem, PipelineError, environment_line, is_transient
from pipeline.storage import journal
from tasks import luigi_private

log = logging.getLogger("pipeline")


class Kind(enum.Enum):
    TERMINAL = "terminal"
    TRANSIENT = "transient"
    BUG = "bug"


def kind_of(task: luigi.Task, exception: BaseException) -> Kind:
    if is_transient(exception):
        return Kind.TRANSIENT
    # an OSError that is not the machine's (a file that vanished, a file size limit) is the file's
    if isinstance(exception, (PipelineError, OSError)) or luigi_private.dependency_vanished(task, exception):
        return Kind.TERMINAL
    return Kind.BUG


def failure_line(task: luigi.Task, exception: BaseException) -> str:
    where = getattr(task, "source_file", None) or task.get_task_family()
    if isinstance(exception, PipelineError):
        return str(exception)
    if luigi_private.dependency_vanished(task, exception):
        return (f"{where}: an input it was waiting for was removed (another command on this data root, such as "
                "--rebuild-gold or --reprocess, ran meanwhile); run again")
    if isinstance(exception, OSError) and is_transient(exception):  # permissions, a full disk: the machine, not the data
        return f"{where}: {environment_line(exception)}"
    if isinstance(exception, OSError):  # a vanished file: the environment, not a bug
        return f"{where}: {exception.strerror or exception}" + (f": {exception.filename}" if exception.filename else "")
    return f"{where}: {type(exception).__name__}: {exception}"


def report_failure(task: luigi.Task, exception: BaseException) -> None:
    """Tell the UI, the console (a bug's traceback) and the run's journal, in the task's process."""
    line = failure_line(task, exception)
    kind = kind_of(task, exception)
    try:
        task.set_status_message(f"FAILED: {line}")
    except Exception:  # noqa: BLE001 - the scheduler may be gone (or no worker runs it); the console still gets the line
        pass
    # The run's summary prints each failure once; only a bug's traceback is shown as it happens.
    if kind is Kind.BUG:
        log.error("FAILED %s\n%s", line, "".join(traceback.format_exception(exception)))
    # A group of small files reports each file that failed in it, as its own line.
    for source_file, error in getattr(exception, "failures", None) or [(getattr(task, "source_file", None), line)]:
        journal.record(journal.FAILED, task=task.task_id, error=error, source_file=source_file,
                       environment=kind is Kind.TRANSIENT)


@luigi.Task.event_handler(luigi.Event.FAILURE)
def _record_failure(task: luigi.Task, exception: BaseException) -> None:
    """A task that failed as Luigi means it (terminal outside bronze work, a bug)."""
    report_failure(task, exception)


class MachineProblem(luigi.Task):
    """What a task that met a transient problem waits on: its scheduling fails (requires()
    raises), which Luigi counts as a scheduling error, and luigi.cfg maps to exit 2. It is never
    complete, so the task that met the problem, and all that waits on it, stays pending."""

    met_by = luigi.Parameter(description="the task that met the problem")
    line = luigi.Parameter(description="the problem, in one line")

    def complete(self) -> bool:
        return False

    def requires(self) -> list[luigi.Task]:
        raise EnvironmentProblem(str(self.line))


class _Settled:
    """Task ids that settled in this run, read from its journal again only when it grew."""

    seen: tuple[str, int] | None = None
    ids: frozenset[str] = frozenset()

    @classmethod
    def has(cls, task_id: str) -> bool:
        path = os.environ.get(journal.JOURNAL_ENV)
        if not path:
            return False
        try:
            size = os.stat(path).st_size
        except FileNotFoundError:
            return False
        if cls.seen != (path, size):
            events = journal.read_journal(Path(path))
            cls.ids = frozenset(e["task"] for e in events if e["event"] == journal.SETTLED)
            cls.seen = (path, size)
        return task_id in cls.ids


def settled(task_id: str) -> bool:
    """The task settled on its file's failure in this run (see the module's docstring)."""
    return _Settled.has(task_id)


def settle(task: luigi.Task, exception: BaseException | None = None) -> None:
    """The task's file(s) failed in this run (told already, by `report_failure` here or by the
    piece of work that failed): the task counts as complete, and gold is built without them."""
    journal.record(journal.SETTLED, task=task.task_id, files=_files_of(task, exception))


def _files_of(task: luigi.Task, exception: BaseException | None) -> list[str]:
    named = getattr(exception, "source_files", None)  # the files of a group that failed (the others are done)
    if named:
        return list(named)
    if getattr(task, "source_file", None):
        return [str(task.source_file)]
    # a group that failed as a whole: those of its files not done (by it or by another run)
    return [name for name in getattr(task, "source_files", []) if not task.layout.store.exists(task.layout.file_summary_path(name))]


def settled_files(events: list[dict]) -> list[str]:
    """The files whose bronze work settled on their failure in a run (its journal's events)."""
    return sorted({name for e in events if e["event"] == journal.SETTLED for name in e["files"]})


def failure_lines(failures: list[dict]) -> list[str]:
    """Each failure of a run once (its journaled FAILED events): a file's first failing task, with
    how many more of its tasks failed."""
    firsts: dict[str, list] = {}
    for failure in failures:
        key = failure.get("source_file") or failure["error"]
        firsts.setdefault(key, [failure["error"], -1])[1] += 1
    return [line + (f" (and {more} more task(s) of this file)" if more else "") for line, more in firsts.values()]
