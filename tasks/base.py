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

    def report_progress(self, percent: int, message: str) -> None:
        """Progress for the luigid UI; harmless when no scheduler listens."""
        self.set_progress_percentage(percent)
        self.set_status_message(message)
