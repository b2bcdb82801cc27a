"""Failed tasks leave one line each: in the luigid UI, on the console, and in the run's folder."""
from __future__ import annotations

import logging
import traceback

import luigi

from pipeline import journal
from pipeline.errors import PipelineError, environment_line, is_transient
from tasks import luigi_private

log = logging.getLogger("pipeline")


def outputs_vanished(task: luigi.Task, exception: BaseException) -> bool:
    """Luigi's check before a task runs found a finished input gone: another command on the data
    root (a --rebuild-gold, a --reprocess) removed it after it was scheduled. Not a bug."""
    return luigi_private.dependency_vanished(task, exception)


def expected_failure(task: luigi.Task, exception: BaseException) -> bool:
    """A failure a user or the environment causes: told in one line, without a traceback."""
    return isinstance(exception, (PipelineError, OSError)) or outputs_vanished(task, exception)


def failure_line(task: luigi.Task, exception: BaseException) -> str:
    where = getattr(task, "source_file", None) or task.get_task_family()
    if isinstance(exception, PipelineError):
        return str(exception)
    if outputs_vanished(task, exception):
        return (f"{where}: an input it was waiting for was removed (another command on this data root, such as "
                "--rebuild-gold or --reprocess, ran meanwhile); run again")
    if isinstance(exception, OSError) and is_transient(exception):  # permissions, a full disk: the machine, not the data
        return f"{where}: {environment_line(exception)}"
    if isinstance(exception, OSError):  # a vanished file: the environment, not a bug
        return f"{where}: {exception.strerror or exception}" + (f": {exception.filename}" if exception.filename else "")
    return f"{where}: {type(exception).__name__}: {exception}"


@luigi.Task.event_handler(luigi.Event.FAILURE)
def _record_failure(task: luigi.Task, exception: BaseException) -> None:
    """Runs in the worker (child) process: tell the UI, the console and the run log."""
    line = failure_line(task, exception)
    try:
        task.set_status_message(f"FAILED: {line}")
    except Exception:  # noqa: BLE001 - the scheduler may be gone; the console still gets the line
        pass
    # The run's summary prints each failure once; only a bug's traceback is shown as it happens.
    if not expected_failure(task, exception):
        log.error("FAILED %s\n%s", line, "".join(traceback.format_exception(exception)))
    # A group of small files reports each file that failed in it, as its own line.
    for source_file, error in getattr(exception, "failures", None) or [(getattr(task, "source_file", None), line)]:
        journal.record(journal.FAILED, task=task.task_id, error=error, source_file=source_file,
                       environment=is_transient(exception))
