"""Bronze -> Silver tasks: for a large file, a scan, then one task per chunk, then a per-file
summary; for a run of small files, one task for all of them (`silver_tasks` chooses)."""
from __future__ import annotations

import contextlib
import logging
import time

import luigi

from pipeline.bronze.silver import (
    process_chunk,
    read_manifest,
    scan_to_manifest,
    summarise_file,
)
from pipeline.bronze.small_files import file_sizes, process_small_files, silver_units
from pipeline.errors import PipelineError
from pipeline.running.preflight import read_files_list, write_files_list
from pipeline.storage import journal
from pipeline.storage.locking import claim_work
from tasks import warm_workers
from tasks.base import STEP_LOG, PipelineTask
from tasks.failures import settle, settled
from tasks.targets import StoreTarget

log = logging.getLogger("pipeline")
step_log = logging.getLogger(STEP_LOG)


class BronzeWork(PipelineTask):
    """A piece of bronze -> silver work: a failure that is not the machine's fails its file(s) alone
    (tasks.failures)."""

    settles_on_file_failure = True


class ScanBronzeFile(BronzeWork):
    """Fingerprint, header check and chunk boundaries of one bronze file (its manifest)."""

    source_file = luigi.Parameter(description="path relative to the bronze folder")

    def output(self) -> StoreTarget:
        return StoreTarget(self.layout.store, self.layout.manifest_path(str(self.source_file)))

    def work(self) -> None:
        source_file = str(self.source_file)
        with claim_work(self.layout.work_lock_path(source_file), 0):
            if self.output().exists():  # scanned by another run on this data root meanwhile
                return
            self.scan(source_file)

    def scan(self, source_file: str) -> None:
        self.report_progress(0, "scanning for record boundaries")
        manifest = warm_workers.call(f"{source_file}: scan", scan_to_manifest, self.layout, source_file, self.settings)
        self.report_progress(100, f"{manifest.records:,} records in {len(manifest.chunks)} chunks")


class BronzeChunkToSilver(BronzeWork):
    """Clean one chunk; its silver part is the checkpoint."""

    source_file = luigi.Parameter()
    chunk = luigi.IntParameter()

    def requires(self) -> ScanBronzeFile:
        return ScanBronzeFile(data_root=self.data_root, source_file=self.source_file)

    def output(self) -> StoreTarget:
        return StoreTarget(self.layout.store, self.layout.silver_part_path(str(self.source_file), int(self.chunk)))

    def work(self) -> None:
        with claim_work(self.layout.work_lock_path(str(self.source_file)), int(self.chunk) + 1):
            if self.output().exists():  # another run on this data root cleaned it meanwhile: not redone
                self.report_progress(100, "done by another run")
                return
            self.clean()

    def clean(self) -> None:
        started = time.monotonic()
        manifest = read_manifest(self.layout.store, self.layout.manifest_path(str(self.source_file)))
        total = len(manifest.chunks)
        where = f"{self.source_file} chunk {self.chunk + 1}/{total}"

        def progress(percent: int, step: str) -> None:
            self.report_progress(percent, f"chunk {self.chunk + 1}/{total}: {step}")

        progress(1, "starting")
        metrics = warm_workers.call(where, process_chunk, self.layout, str(self.source_file), int(self.chunk), self.settings,
                                    progress=progress)
        seconds = time.monotonic() - started
        rate = metrics.rows_read / seconds if seconds > 0 else 0.0
        message = f"{metrics.rows_read:,} rows in {seconds:.1f} s ({rate:,.0f} rows/s), {metrics.rejected_total:,} rejected"
        self.report_progress(100, message)
        self.report_file_progress(total)
        span = manifest.chunks[int(self.chunk)]
        journal.record(journal.CHUNK, source_file=str(self.source_file), chunk=int(self.chunk), rows_read=metrics.rows_read,
                       rows_valid=metrics.rows_valid, bytes=span.end - span.start, seconds=round(seconds, 3))
        step_log.info("silver %s chunk %d/%d: %s", self.source_file, self.chunk + 1, total, message)

    def report_file_progress(self, total: int) -> None:
        """The file task waits while its chunks run: tell the UI how many of them are done."""
        done = sum(self.layout.store.exists(self.layout.silver_part_path(str(self.source_file), c)) for c in range(total))
        file_task = BronzeFileToSilver(data_root=self.data_root, source_file=self.source_file)
        self.report_progress_of(file_task, int(100 * done / total) if total else 100, f"{done}/{total} chunks done")


class BronzeFileToSilver(BronzeWork):
    """All chunks of one file (added as dynamic dependencies) and the file's metrics."""

    source_file = luigi.Parameter()

    def requires(self) -> ScanBronzeFile:
        return ScanBronzeFile(data_root=self.data_root, source_file=self.source_file)

    def output(self) -> StoreTarget:
        return StoreTarget(self.layout.store, self.layout.file_summary_path(str(self.source_file)))

    def work(self):  # a generator: Luigi's dynamic dependencies
        if settled(self.requires().task_id):  # the scan failed: the file fails, told once, by the scan
            settle(self)
            return
        manifest = read_manifest(self.layout.store, self.layout.manifest_path(str(self.source_file)))
        done = sum(self.layout.store.exists(self.layout.silver_part_path(str(self.source_file), c.index)) for c in manifest.chunks)
        total = len(manifest.chunks)
        self.report_progress(int(100 * done / total) if total else 100, f"{done}/{total} chunks done")
        chunks = [BronzeChunkToSilver(data_root=self.data_root, source_file=self.source_file, chunk=c.index) for c in manifest.chunks]
        yield chunks
        if any(settled(chunk.task_id) for chunk in chunks):  # a chunk failed: the file fails, told once, by the chunk
            settle(self)
            return
        summary = summarise_file(self.layout, manifest, self.settings.column_aliases)
        self.layout.store.write_text(self.layout.file_summary_path(str(self.source_file)), summary.to_json())


class SmallFilesToSilver(BronzeWork):
    """A run of small bronze files cleaned in one task (pipeline.bronze.small_files): per file the same
    outputs, checkpoint and failure line as the file and chunk tasks give."""

    files = luigi.Parameter(description="digest of the list of small bronze files (runs/files-<digest>.json)")

    @property
    def source_files(self) -> list[str]:
        return read_files_list(self.layout, str(self.files))

    def complete(self) -> bool:
        return all(self.layout.store.exists(self.layout.file_summary_path(f)) for f in self.source_files) or settled(self.task_id)

    def work(self) -> None:
        files = self.source_files
        with contextlib.ExitStack() as held:
            for name in files:  # in input order, as every group takes them: no two runs wait in a circle
                held.enter_context(claim_work(self.layout.work_lock_path(name), None))
            self.clean(files)  # files another run finished meanwhile are skipped in there

    def clean(self, files: list[str]) -> None:
        started = time.monotonic()
        self.report_progress(0, f"0/{len(files)} files cleaned")
        outcome = warm_workers.call(f"{len(files)} small files from {files[0]}", process_small_files, self.layout, files,
                                    self.settings, progress=self.report_progress)
        seconds = time.monotonic() - started
        rate = outcome.rows_read / seconds if seconds > 0 else 0.0
        message = f"{len(outcome.done)} files, {outcome.rows_read:,} rows in {seconds:.1f} s ({rate:,.0f} rows/s)"
        self.report_progress(100, message)
        journal.record(journal.SMALL_FILES, files=len(outcome.done), rows_read=outcome.rows_read,
                       bytes=sum(size for _, size in file_sizes(self.layout, outcome.done)), seconds=round(seconds, 3))
        step_log.info("silver %d small files %s .. %s: %s", len(files), files[0], files[-1], message)
        if outcome.failures:
            raise FilesFailed(outcome.failures)


class FilesFailed(PipelineError):
    """Some files of a group failed; the others are done. Carries each failure's one line."""

    def __init__(self, failures: list[tuple[str, str]]) -> None:
        more = f" (and {len(failures) - 1} more file(s) of this group)" if len(failures) > 1 else ""
        super().__init__(f"{failures[0][1]}{more}")
        self.failures = failures
        self.source_files = [name for name, _ in failures]


def silver_tasks(task: PipelineTask, files: list[str]) -> list[luigi.Task]:
    """The silver tasks that cover `files` (input order): one per large file, one per run of small files.

    Planned once per requiring task: Luigi asks for its requirements several times a run, and each
    plan reads every file's manifest or size (0.3 s at 2,000 files)."""
    planned = task.__dict__.get("_silver_tasks")
    if planned is None or planned[0] != files:
        planned = task.__dict__["_silver_tasks"] = (list(files), _plan_silver_tasks(task, files))
    return list(planned[1])


def _plan_silver_tasks(task: PipelineTask, files: list[str]) -> list[luigi.Task]:
    data_root, layout = str(task.data_root), task.layout
    tasks: list[luigi.Task] = []
    for unit in silver_units(file_sizes(layout, files), task.settings.small_file_bytes):
        if unit.grouped:
            tasks.append(SmallFilesToSilver(data_root=data_root, files=write_files_list(layout, list(unit.files))))
        else:
            tasks.append(BronzeFileToSilver(data_root=data_root, source_file=unit.files[0]))
    return tasks
