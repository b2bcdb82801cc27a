"""The top of the task graph for one data root."""
from __future__ import annotations

import luigi

from pipeline.discovery import discover_bronze
from tasks.base import PipelineTask
from tasks.bronze import BronzeFileToSilver


class AllBronzeToSilver(PipelineTask, luigi.WrapperTask):
    """Every bronze file of the data root, cleaned into silver and quarantine."""

    def requires(self) -> list[BronzeFileToSilver]:
        files = discover_bronze(self.layout.bronze_dir, self.settings.bronze_glob)
        return [BronzeFileToSilver(data_root=self.data_root, source_file=f.relative_path) for f in files]
