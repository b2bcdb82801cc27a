"""What every pipeline task shares: the data root parameter, settings, the layout, and what a
failure does to the run (tasks.failures)."""
from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Generator, Iterator
from typing import ClassVar

import luigi

from pipeline.settings import Settings
from pipeline.storage.layout import DataLayout
from tasks import luigi_private
from tasks.config import settings_for_root
from tasks.failures import Kind, MachineProblem, failure_line, kind_of, report_failure, settle, settled
from tasks.warm_workers import die_with_parent

STEP_LOG = "pipeline.steps"  # a line per piece of work done: quiet under the live progress line of a terminal


class PipelineTask(luigi.Task):
    """A task of one data root; the root is part of the task id, so roots never collide.

    Subclasses do their work in `work()` (a generator where it yields dynamic dependencies);
    `run()` decides what a failure of it does to the run (tasks.failures).
    """

    data_root = luigi.Parameter(description="folder holding bronze/, silver/, gold/ ...")
    # bronze -> silver work: a failure that is not the machine's fails its file(s) alone, and the task settles
    settles_on_file_failure: ClassVar[bool] = False

    @property
    def settings(self) -> Settings:
        return settings_for_root(str(self.data_root))

    @property
    def layout(self) -> DataLayout:
        return DataLayout.of(str(self.data_root), self.settings.state_dir)

    def work(self) -> Iterator[luigi.Task | list[luigi.Task]] | None:
        """The task's work; nothing by default (a wrapper task)."""
        return None

    def run(self) -> Iterator[luigi.Task | list[luigi.Task]]:
        try:
            steps = self.work()
            if isinstance(steps, Generator):
                yield from steps
        except Exception as error:
            kind = kind_of(self, error)
            if kind is not Kind.TRANSIENT and not self.settles_on_file_failure:
                raise  # Luigi's FAILURE: reported by tasks.failures' event handler
            report_failure(self, error)
            if kind is Kind.TRANSIENT:
                yield MachineProblem(met_by=self.task_id, line=failure_line(self, error))
            else:
                settle(self, error)

    def complete(self) -> bool:
        return super().complete() or (self.settles_on_file_failure and settled(self.task_id))

    def on_failure(self, exception: BaseException) -> str:
        """What luigid shows as the task's error: our one line for errors a user can cause."""
        if kind_of(self, exception) is not Kind.BUG:
            return failure_line(self, exception)
        return f"{failure_line(self, exception)}\n\n{super().on_failure(exception)}"

    def report_progress(self, percent: int, message: str) -> None:
        """Progress for the luigid UI; harmless when no scheduler listens."""
        self.set_progress_percentage(percent)
        self.set_status_message(message)

    def report_progress_of(self, other: luigi.Task, percent: int, message: str) -> None:
        """Progress of another task (a file task waiting for its chunks), through the scheduler
        this task reports to. Best effort: the UI, never the run, depends on it."""
        scheduler = luigi_private.scheduler_of(self)
        if scheduler is None:
            return
        try:
            scheduler.set_task_progress_percentage(other.task_id, percent)
            scheduler.set_task_status_message(other.task_id, message)
        except Exception:  # noqa: BLE001 - a scheduler that went away must not fail the chunk
            pass


@luigi.Task.event_handler(luigi.Event.START)
def _stop_with_the_run(task: luigi.Task) -> None:
    """A task process that Luigi forked (--workers > 1) dies with its run, like the warm workers:
    after a SIGKILL of run.py nothing of that run is left writing. A task run in the run's own
    process (one worker) is left alone."""
    if luigi_private.in_task_process():
        # Ctrl-C reaches the whole process group: the run alone answers it (one line, exit 130),
        # and its task processes die with it rather than each printing a traceback.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        die_with_parent(multiprocessing.parent_process().pid)
