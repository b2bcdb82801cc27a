"""The single Silver -> Gold task: sqlitedict dedup and aggregation, then gold publication."""
from __future__ import annotations

import logging

import luigi

from pipeline.errors import PipelineError
from pipeline.gold.owner import refuse_unless_gold_owner
from pipeline.gold.step import is_published, merge_and_publish
from pipeline.running.preflight import read_files_list
from tasks.base import STEP_LOG, PipelineTask
from tasks.bronze import silver_tasks
from tasks.targets import StoreTarget

log = logging.getLogger(STEP_LOG)


class SilverToGold(PipelineTask):
    """Merge every silver part of `source_files` exactly once, then publish gold.

    Complete only when a publication for exactly these inputs exists: new or changed bronze
    files give a new `inputs` digest, so gold from an earlier run never counts as done.
    """

    inputs = luigi.Parameter(description="digest of the inputs and gold settings (pipeline.running.preflight.gold_digest); "
                                         "the files are listed in runs/files-<digest>.json")

    @property
    def source_files(self) -> list[str]:
        return read_files_list(self.layout, str(self.inputs))

    def requires(self) -> list[luigi.Task]:
        return silver_tasks(self, self.source_files)

    def output(self) -> StoreTarget:
        return StoreTarget(self.layout.store, self.layout.published_marker_path(str(self.inputs)))

    def complete(self) -> bool:
        # Luigi calls complete() right after run() (check_complete_on_run), outside the gold lock: a
        # maintenance command that took the lock in between may already have unpublished gold on
        # purpose (it failed a soak under load with "complete() is still returning false"). That one
        # check, and only it, takes what run() just published; every later call looks at the disk.
        return self.__dict__.pop("published_here", False) or is_published(self.layout, str(self.inputs))

    def work(self) -> None:
        refuse_unless_gold_owner(self.layout)
        # A file whose bronze work settled on its failure counts as complete for Luigi; gold never
        # merges it (the root leaves it out; another worker's run may not have known of it).
        unfinished = [f for f in self.source_files if not self.layout.store.exists(self.layout.file_summary_path(f))]
        if unfinished:
            raise PipelineError(f"{unfinished[0]}: its silver is not complete (the file failed in this run, or another "
                                "command removed its silver meanwhile); gold is not built over it; run again")
        # In this task's own process, not a warm worker: it was no faster there (bench/README.md).
        message = merge_and_publish(self.layout, self.settings, list(self.source_files), str(self.inputs),
                                    progress=self.report_progress)
        self.published_here = True
        self.report_progress(100, message)
        log.info("gold: %s", message)
