"""Bronze -> Silver for one chunk and one file: read, clean, account for every record.

Pure functions over paths and Arrow tables; the Luigi tasks call these and nothing else.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePath

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.bronze.chunking import Manifest, scan_file
from pipeline.bronze.cleaning import clean_records
from pipeline.bronze.compressed import compression_of, read_range, stage_copy
from pipeline.bronze.header import ColumnAliases, layout_header
from pipeline.bronze.reader import RawChunk, parse_chunk, read_chunk_bytes
from pipeline.contract import REJECT_REASONS, SOFT_FIELDS, default_flag_column
from pipeline.errors import ChangedInputError, InputFileError
from pipeline.settings import Settings, silver_fingerprint
from pipeline.storage.atomic import atomic_path, remove_stale_temp_files
from pipeline.storage.fingerprint import Fingerprint, fingerprint_file, fingerprint_of, unchanged_since
from pipeline.storage.layout import DataLayout
from pipeline.storage.parquet_io import write_silver_part
from pipeline.storage.store import LOCAL_FILES, Store

Progress = Callable[[int, str], None]


@dataclass
class ChunkMetrics:
    """Counts of one chunk; deterministic (no timings), so re-runs write identical files."""

    source_file: str
    chunk: int
    first_row: int
    rows_read: int
    rows_valid: int
    rows_rejected: dict[str, int] = field(default_factory=dict)
    defaults_applied: dict[str, int] = field(default_factory=dict)
    extra_columns: list[str] = field(default_factory=list)
    missing_optional_columns: list[str] = field(default_factory=list)
    slow_path: bool = False
    silver_crc32: str = ""  # digest of the silver part's bytes, checked before it is merged
    settings_fingerprint: str = ""  # settings.silver_fingerprint it was cleaned with, checked before it is merged

    @property
    def rejected_total(self) -> int:
        return sum(self.rows_rejected.values())

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ChunkMetrics:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class ChunkResult:
    silver: pa.Table
    quarantine: pa.Table
    metrics: ChunkMetrics


def build_manifest(bronze_path: PurePath, source_file: str, settings: Settings, store: Store = LOCAL_FILES) -> Manifest:
    """Scan a bronze file and check its header, so a bad file fails before any chunk runs."""
    manifest = scan_file(bronze_path, source_file, settings.chunk_rows, store)
    layout_header(manifest.header_raw, source_file, settings.column_aliases)
    return manifest


def scan_to_manifest(layout: DataLayout, source_file: str, settings: Settings) -> Manifest:
    """Scan a bronze file and write its manifest (a scan task's whole job)."""
    if compression_of(source_file) is not None:
        manifest = _scan_compressed(layout, source_file, settings)
    elif layout.remote:
        manifest = _scan_object(layout, source_file, settings)
    else:
        manifest = build_manifest(layout.bronze_dir / source_file, source_file, settings, layout.store)
    write_manifest(layout.store, layout.manifest_path(source_file), manifest)
    return manifest


def _scan_compressed(layout: DataLayout, source_file: str, settings: Settings) -> Manifest:
    """Stage a plain copy of a compressed file and scan that: the chunks are byte ranges of the
    copy, the fingerprint is the compressed file's own (what the user owns is what "changed since
    ingest" checks). A file that fails the scan leaves no staged copy behind."""
    bronze_path = layout.bronze_dir / source_file
    remove_stale_temp_files(layout.staging_dir)  # of stagers killed earlier
    original = fingerprint_file(layout.store, bronze_path)
    staged = _staged_path(layout, source_file, original)
    for older in layout.staged_copies(source_file):  # of a version of the file that was replaced
        if older != staged:
            older.unlink(missing_ok=True)
    stage_copy(bronze_path, staged, original.size, original.crc32, layout.store)  # always: the manifest describes these very bytes
    try:
        manifest = build_manifest(staged, source_file, settings)
    except InputFileError as err:
        staged.unlink(missing_ok=True)
        raise InputFileError(str(err).replace(str(staged), str(bronze_path))) from None
    except BaseException:
        staged.unlink(missing_ok=True)
        raise
    return dataclasses.replace(manifest, fingerprint=original)


def _scan_object(layout: DataLayout, source_file: str, settings: Settings) -> Manifest:
    """On object storage: one GET of the whole object into this host's staging, then the scan of
    that copy. The chunks of this host read the copy (chunk_source), so bronze crosses the network
    once, not twice; the fingerprint is the object's (size, CRC-32 of the bytes fetched, ETag)."""
    bronze_path = layout.bronze_dir / source_file
    before = layout.store.stat(bronze_path)
    if before is None:
        raise FileNotFoundError(str(bronze_path))
    remove_stale_temp_files(layout.staging_dir)
    for older in layout.staged_copies(source_file):
        older.unlink(missing_ok=True)
    fetched = layout.staged_copy_path(source_file, "fetched")
    with atomic_path(fetched) as tmp:
        layout.store.download(bronze_path, tmp)
    try:
        manifest = build_manifest(fetched, source_file, settings)
        after = layout.store.stat(bronze_path)
        if after is None or (after.size, after.etag) != (before.size, before.etag) or manifest.fingerprint.size != before.size:
            raise ChangedInputError(f"{bronze_path}: the object changed while it was being read; run again")
        original = fingerprint_of(before.size, manifest.fingerprint.crc32, before)
        os.replace(fetched, _staged_path(layout, source_file, original))
    except InputFileError as err:
        fetched.unlink(missing_ok=True)
        raise InputFileError(str(err).replace(str(fetched), str(bronze_path))) from None
    except BaseException:
        fetched.unlink(missing_ok=True)
        raise
    return dataclasses.replace(manifest, fingerprint=original)


def _staged_path(layout: DataLayout, source_file: str, fingerprint: Fingerprint) -> Path:
    return layout.staged_copy_path(source_file, f"{fingerprint.size:x}-{fingerprint.crc32:08x}")


def chunk_source(layout: DataLayout, manifest: Manifest) -> tuple[Store, PurePath]:
    """The plain file the manifest's chunks are byte ranges of (and the store that holds it): the
    bronze file itself, or the staged copy of a compressed one on this host's disk, staged again
    (atomically) when it is missing or short (deleted, or the chunk runs on another machine).
    Call after ensure_unchanged."""
    bronze_path = layout.bronze_dir / manifest.source_file
    staged = _staged_path(layout, manifest.source_file, manifest.fingerprint)
    if compression_of(manifest.source_file) is None:
        # an object fetched by this host's scan is read here; else (another host's scan) by ranges
        if layout.remote and staged.exists() and staged.stat().st_size == manifest.fingerprint.size:
            return LOCAL_FILES, staged
        return layout.store, bronze_path
    needed = manifest.chunks[-1].end if manifest.chunks else 0
    try:
        present = staged.stat().st_size >= needed
    except FileNotFoundError:
        present = False
    if not present:
        stage_copy(bronze_path, staged, manifest.fingerprint.size, manifest.fingerprint.crc32, layout.store)
    return LOCAL_FILES, staged


def remove_staged_copies(layout: DataLayout, source_file: str) -> None:
    """Drop the staged copies of a file whose silver is complete (a compressed one, or an object):
    nothing reads them again."""
    if compression_of(source_file) is not None or layout.remote:
        for path in layout.staged_copies(source_file):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def write_manifest(store: Store, path: PurePath, manifest: Manifest) -> None:
    store.write_text(path, json.dumps(manifest.to_json_dict(), indent=1, sort_keys=True))


def read_manifest(store: Store, path: PurePath) -> Manifest:
    return Manifest.from_json_dict(json.loads(store.read_text(path)))


def ensure_unchanged(store: Store, bronze_path: PurePath, manifest: Manifest) -> None:
    """Refuse to go on with a bronze file that no longer matches its manifest."""
    if not store.exists(bronze_path):
        raise ChangedInputError(f"{manifest.source_file}: bronze file is gone since it was scanned; "
                                f"run with --reprocess {manifest.source_file} or restore it")
    if not unchanged_since(store, bronze_path, manifest.fingerprint):
        raise ChangedInputError(
            f"{manifest.source_file}: bronze file changed since it was ingested (size or content differs); "
            f"run `python run.py --reprocess {manifest.source_file}` to redo it and everything derived from it"
        )


def _silent(_percent: int, _message: str) -> None:
    return None


def clean_chunk(bronze_path: PurePath, manifest: Manifest, chunk_index: int, settings: Settings,
                progress: Progress = _silent, store: Store = LOCAL_FILES) -> ChunkResult:
    """Read and clean one chunk; every record read is either in silver or in quarantine."""
    chunk = manifest.chunks[chunk_index]
    progress(10, f"reading and parsing {chunk.records:,} records")
    parsed = parse_manifest_chunk(bronze_path, manifest, chunk_index, store, settings.column_aliases)
    progress(35, f"cleaning {parsed.records_read:,} records")
    cleaned = clean_records(parsed.raw, settings, manifest.source_file)
    return assemble_chunk(manifest, chunk_index, parsed, cleaned.silver, cleaned.quarantine, settings.column_aliases)


def parse_manifest_chunk(bronze_path: PurePath, manifest: Manifest, chunk_index: int, store: Store = LOCAL_FILES,
                         column_aliases: ColumnAliases | None = None) -> RawChunk:
    """Parse one chunk of `bronze_path`: a plain file, a staged copy (chunk_source), or a compressed
    file itself (then streamed from its start: correct, but only the staged copy keeps chunks cheap)."""
    chunk = manifest.chunks[chunk_index]
    header = layout_header(manifest.header_raw, manifest.source_file, column_aliases)
    if compression_of(bronze_path) is None:
        data = read_chunk_bytes(bronze_path, chunk, store)
    else:
        data = read_range(bronze_path, chunk.start, chunk.end, store)
    return parse_chunk(data, chunk, header, manifest.source_file)


def assemble_chunk(manifest: Manifest, chunk_index: int, parsed: RawChunk, silver: pa.Table, rejected_rows: pa.Table,
                   column_aliases: ColumnAliases | None = None) -> ChunkResult:
    """A chunk's outputs and counts from its parse and its cleaned rows (`rejected_rows`: the
    records cleaning quarantined), checking that every record read is accounted for once."""
    source_file = manifest.source_file
    header = layout_header(manifest.header_raw, source_file, column_aliases)
    quarantine = pa.concat_tables([parsed.malformed, rejected_rows]).sort_by("source_row")
    rejected = {reason: 0 for reason in REJECT_REASONS}
    for entry in pc.value_counts(quarantine.column("reason")).to_pylist():
        rejected[entry["values"]] = int(entry["counts"])
    metrics = ChunkMetrics(
        source_file=source_file,
        chunk=chunk_index,
        first_row=manifest.chunks[chunk_index].first_row,
        rows_read=parsed.records_read,
        rows_valid=silver.num_rows,
        rows_rejected=rejected,
        defaults_applied={f: int(pc.sum(silver.column(default_flag_column(f))).as_py() or 0) for f in SOFT_FIELDS},
        extra_columns=list(header.extra_columns),
        missing_optional_columns=list(header.missing_optional),
        slow_path=parsed.used_slow_path,
    )
    if metrics.rows_valid + metrics.rejected_total != metrics.rows_read or quarantine.num_rows != metrics.rejected_total:
        raise AssertionError(f"{source_file} chunk {chunk_index}: {metrics.rows_read} read but {metrics.rows_valid} valid "
                             f"+ {metrics.rejected_total} rejected")
    return ChunkResult(silver=silver, quarantine=quarantine, metrics=metrics)


def write_chunk_outputs(layout: DataLayout, result: ChunkResult) -> None:
    """Quarantine and metrics first, the silver part last: its existence is the checkpoint."""
    m = result.metrics
    layout.store.write_parquet(layout.quarantine_part_path(m.source_file, m.chunk), result.quarantine)

    def record_metrics(digest: str) -> None:
        m.silver_crc32 = digest
        layout.store.write_text(layout.chunk_metrics_path(m.source_file, m.chunk), m.to_json())

    write_silver_part(layout.store, layout.silver_part_path(m.source_file, m.chunk), result.silver, before_publish=record_metrics)


def process_chunk(layout: DataLayout, source_file: str, chunk_index: int, settings: Settings,
                  progress: Progress = _silent) -> ChunkMetrics:
    """One chunk from bronze to its written silver, quarantine and metrics (a chunk task's whole
    job); `progress(percent, message)` hears of each step while it runs."""
    manifest = read_manifest(layout.store, layout.manifest_path(source_file))
    bronze_path = layout.bronze_dir / source_file
    progress(3, "checking the bronze file is unchanged")
    ensure_unchanged(layout.store, bronze_path, manifest)
    store, source = chunk_source(layout, manifest)
    result = clean_chunk(source, manifest, chunk_index, settings, progress, store)
    result.metrics.settings_fingerprint = silver_fingerprint(settings)
    progress(70, f"writing {result.metrics.rows_valid:,} silver rows and {result.metrics.rejected_total:,} quarantined")
    write_chunk_outputs(layout, result)
    return result.metrics


@dataclass
class FileMetrics:
    """Per-file totals of its chunks: the bronze half of the data_quality table."""

    source_file: str
    chunks: int
    rows_read: int
    rows_valid: int
    rows_rejected: dict[str, int]
    defaults_applied: dict[str, int]
    extra_columns: list[str]
    missing_optional_columns: list[str]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> FileMetrics:
        return cls(**json.loads(text))


def summarise_file(layout: DataLayout, manifest: Manifest, column_aliases: ColumnAliases | None = None) -> FileMetrics:
    """Add up a file's chunk metrics and check that every record of the scan is accounted for;
    the file's silver is then complete, so a compressed file's staged copy is removed."""
    metrics_paths = [layout.chunk_metrics_path(manifest.source_file, c.index) for c in manifest.chunks]
    parts = [ChunkMetrics.from_json(layout.store.read_text(path)) for path in metrics_paths]
    rejected = {reason: sum(p.rows_rejected.get(reason, 0) for p in parts) for reason in REJECT_REASONS}
    defaults = {f: sum(p.defaults_applied.get(f, 0) for p in parts) for f in SOFT_FIELDS}
    header = layout_header(manifest.header_raw, manifest.source_file, column_aliases)  # schema drift is per file
    summary = FileMetrics(
        source_file=manifest.source_file,
        chunks=len(parts),
        rows_read=sum(p.rows_read for p in parts),
        rows_valid=sum(p.rows_valid for p in parts),
        rows_rejected=rejected,
        defaults_applied=defaults,
        extra_columns=list(header.extra_columns),
        missing_optional_columns=list(header.missing_optional),
    )
    if summary.rows_read != manifest.records:
        raise AssertionError(f"{manifest.source_file}: chunks read {summary.rows_read} records, the scan counted {manifest.records}")
    remove_staged_copies(layout, manifest.source_file)
    return summary
