"""The top of the task graph for one data root: which layer a run goes up to.

File lists travel as digests of lists stored under `runs/` (pipeline.running.preflight.write_files_list),
never as task parameters: a luigid message and its UI stay small however many files there are.
"""
from __future__ import annotations

import luigi

from pipeline.running.preflight import read_files_list
from tasks.base import PipelineTask
from tasks.bronze import silver_tasks
from tasks.gold import SilverToGold
from tasks.report import Report


class AllBronzeToSilver(PipelineTask, luigi.WrapperTask):
    """The listed bronze files, cleaned into silver and quarantine (a run up to silver)."""

    files = luigi.Parameter(description="digest of the list of bronze files (runs/files-<digest>.json)")

    def requires(self) -> list[luigi.Task]:
        return silver_tasks(self, read_files_list(self.layout, str(self.files)))


def top_task(layer: str, data_root: str, files: str, inputs: str) -> luigi.Task:
    """The one task whose completion means the run reached `layer`: `files` lists what silver runs,
    `inputs` what gold covers (both digests of stored lists)."""
    if layer == "silver":
        return AllBronzeToSilver(data_root=data_root, files=files)
    if layer == "gold":
        return SilverToGold(data_root=data_root, inputs=inputs)
    return Report(data_root=data_root, inputs=inputs)
