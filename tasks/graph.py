"""The top of the task graph for one data root: which layer a run goes up to."""
from __future__ import annotations

import luigi

from tasks.base import PipelineTask
from tasks.bronze import BronzeFileToSilver
from tasks.gold import SilverToGold
from tasks.report import Report

LAYERS = ("silver", "gold", "report")


class AllBronzeToSilver(PipelineTask, luigi.WrapperTask):
    """The given bronze files, cleaned into silver and quarantine (a run with --until silver)."""

    source_files = luigi.ListParameter()

    def requires(self) -> list[BronzeFileToSilver]:
        return [BronzeFileToSilver(data_root=self.data_root, source_file=f) for f in self.source_files]


def top_task(layer: str, data_root: str, source_files: list[str], inputs: str) -> luigi.Task:
    """The one task whose completion means the run reached `layer`."""
    if layer == "silver":
        return AllBronzeToSilver(data_root=data_root, source_files=source_files)
    if layer == "gold":
        return SilverToGold(data_root=data_root, source_files=source_files, inputs=inputs)
    return Report(data_root=data_root, source_files=source_files, inputs=inputs)
