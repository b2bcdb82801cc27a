"""What every pipeline task shares: the data root parameter, settings and the layout."""
from __future__ import annotations

import luigi

from pipeline.layout import DataLayout
from pipeline.settings import Settings
from tasks.config import settings_for_root


class PipelineTask(luigi.Task):
    """A task of one data root; the root is part of the task id, so roots never collide."""

    data_root = luigi.Parameter(description="folder holding bronze/, silver/, gold/ ...")

    @property
    def settings(self) -> Settings:
        return settings_for_root(str(self.data_root))

    @property
    def layout(self) -> DataLayout:
        from pathlib import Path

        return DataLayout(Path(str(self.data_root)))

    def on_failure(self, exception: BaseException) -> str:
        """What luigid shows as the task's error: our one line for errors a user can cause."""
        from pipeline.errors import PipelineError
        from tasks.failures import failure_line

        if isinstance(exception, (PipelineError, OSError)):
            return failure_line(self, exception)
        return f"{failure_line(self, exception)}\n\n{super().on_failure(exception)}"

    def report_progress(self, percent: int, message: str) -> None:
        """Progress for the luigid UI; harmless when no scheduler listens."""
        self.set_progress_percentage(percent)
        self.set_status_message(message)
