"""Bronze -> Silver tasks: scan a file once, then one task per chunk, then a per-file summary."""
from __future__ import annotations

import logging
import time

import luigi

from pipeline.atomic import write_text_atomic
from pipeline.bronze import (
    build_manifest,
    clean_chunk,
    ensure_unchanged,
    read_manifest,
    summarise_file,
    write_chunk_outputs,
    write_manifest,
)
from tasks.base import PipelineTask

log = logging.getLogger("pipeline")


class ScanBronzeFile(PipelineTask):
    """Fingerprint, header check and chunk boundaries of one bronze file (its manifest)."""

    source_file = luigi.Parameter(description="path relative to the bronze folder")

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(str(self.layout.manifest_path(str(self.source_file))))

    def run(self) -> None:
        self.report_progress(0, "scanning for record boundaries")
        path = self.layout.bronze_dir / str(self.source_file)
        manifest = build_manifest(path, str(self.source_file), self.settings)
        write_manifest(self.layout.manifest_path(str(self.source_file)), manifest)
        self.report_progress(100, f"{manifest.records:,} records in {len(manifest.chunks)} chunks")


class BronzeChunkToSilver(PipelineTask):
    """Clean one chunk; its silver part is the checkpoint."""

    source_file = luigi.Parameter()
    chunk = luigi.IntParameter()

    def requires(self) -> ScanBronzeFile:
        return ScanBronzeFile(data_root=self.data_root, source_file=self.source_file)

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(str(self.layout.silver_part_path(str(self.source_file), int(self.chunk))))

    def run(self) -> None:
        started = time.monotonic()
        manifest = read_manifest(self.layout.manifest_path(str(self.source_file)))
        bronze_path = self.layout.bronze_dir / str(self.source_file)
        ensure_unchanged(bronze_path, manifest)
        total = len(manifest.chunks)
        self.report_progress(5, f"chunk {self.chunk + 1}/{total}: reading and cleaning")
        result = clean_chunk(bronze_path, manifest, int(self.chunk), self.settings)
        self.report_progress(70, f"chunk {self.chunk + 1}/{total}: writing {result.metrics.rows_valid:,} silver rows")
        write_chunk_outputs(self.layout, result)
        seconds = time.monotonic() - started
        rate = result.metrics.rows_read / seconds if seconds > 0 else 0.0
        message = f"{result.metrics.rows_read:,} rows in {seconds:.1f} s ({rate:,.0f} rows/s), {result.metrics.rejected_total:,} rejected"
        self.report_progress(100, message)
        log.info("silver %s chunk %d/%d: %s", self.source_file, self.chunk + 1, total, message)


class BronzeFileToSilver(PipelineTask):
    """All chunks of one file (added as dynamic dependencies) and the file's metrics."""

    source_file = luigi.Parameter()

    def requires(self) -> ScanBronzeFile:
        return ScanBronzeFile(data_root=self.data_root, source_file=self.source_file)

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(str(self.layout.file_summary_path(str(self.source_file))))

    def run(self):  # type: ignore[override]  # a generator: Luigi's dynamic dependencies
        manifest = read_manifest(self.layout.manifest_path(str(self.source_file)))
        yield [BronzeChunkToSilver(data_root=self.data_root, source_file=self.source_file, chunk=c.index) for c in manifest.chunks]
        summary = summarise_file(self.layout, manifest)
        write_text_atomic(self.layout.file_summary_path(str(self.source_file)), summary.to_json())
