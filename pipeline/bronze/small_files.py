"""Bronze -> Silver for many small files in one task: the same outputs per file as the file and
chunk tasks write (manifest, silver and quarantine parts, metrics, the file's summary), with the
per-task costs paid once per group instead of once per file.

Why: a backfill is often thousands of daily exports of a few hundred rows. Three Luigi tasks per
file meant thousands of forked processes and a scheduler whose cost grows faster than the number
of tasks (bench/README.md, "Many small files"). Here one task cleans a run of
consecutive small files: each is scanned and parsed alone (its own header, record numbers and
malformed rows), then the records of many files are cleaned together (every rule works record by
record, so the rows are the ones the per-file path gives) and split back into per-file outputs.
Each file is still its own checkpoint (its summary, written last), so a killed group resumes at
the first file not done, and a file that fails is reported alone while the others go on.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.bronze.chunking import Manifest
from pipeline.bronze.cleaning import clean_records
from pipeline.bronze.compressed import compression_of
from pipeline.bronze.reader import RawChunk
from pipeline.bronze.silver import (
    ChunkResult,
    assemble_chunk,
    chunk_source,
    ensure_unchanged,
    parse_manifest_chunk,
    process_chunk,
    read_manifest,
    scan_to_manifest,
    summarise_file,
    write_chunk_outputs,
)
from pipeline.errors import PipelineError
from pipeline.settings import Settings, silver_fingerprint
from pipeline.storage.layout import DataLayout

GROUP_MAX_FILES = 250  # enough groups for every core at 2,000 files, few enough tasks at 20,000
GROUP_MAX_BYTES = 64 * 1024 * 1024
CLEAN_BATCH_ROWS = 200_000  # records cleaned together: bounds a group's memory like a chunk's

Progress = Callable[[int, str], None]


@dataclass(frozen=True)
class SilverUnit:
    """The bronze files one silver task covers: a large file alone, or a run of small files."""

    files: tuple[str, ...]
    grouped: bool


def silver_units(sizes: list[tuple[str, int]], small_file_bytes: int) -> list[SilverUnit]:
    """Files (in input order, with their sizes) into silver tasks: every file larger than
    `small_file_bytes` alone, consecutive small files together, at most GROUP_MAX_FILES and
    GROUP_MAX_BYTES a group. Deterministic, so every host of a shared scheduler plans the same tasks.

    A compressed file (`x.csv.gz`) always goes alone: its size says nothing of how many bytes it
    decompresses to, and a group reads whole files, so only the per-file path (a staged copy read
    chunk by chunk) keeps its memory bounded."""
    units: list[SilverUnit] = []
    group: list[str] = []
    group_bytes = 0

    def close_group() -> None:
        nonlocal group, group_bytes
        if group:
            units.append(SilverUnit(tuple(group), True))
        group, group_bytes = [], 0

    for name, size in sizes:
        if size > small_file_bytes or compression_of(name) is not None:
            close_group()
            units.append(SilverUnit((name,), False))
            continue
        if len(group) >= GROUP_MAX_FILES or group_bytes + size > GROUP_MAX_BYTES:
            close_group()
        group.append(name)
        group_bytes += size
    close_group()
    return units


def file_sizes(layout: DataLayout, files: list[str]) -> list[tuple[str, int]]:
    """Each file's size: as scanned when it has a manifest (also when it is gone since), else now."""
    sizes = []
    for name in files:
        manifest = layout.manifest_path(name)
        if layout.store.exists(manifest):
            size = read_manifest(layout.store, manifest).fingerprint.size
        else:
            stat = layout.store.stat(layout.bronze_dir / name)
            size = stat.size if stat is not None else 0
        sizes.append((name, size))
    return sizes


@dataclass
class GroupOutcome:
    done: list[str] = field(default_factory=list)
    rows_read: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (file, one-line reason)


@dataclass
class _Pending:
    manifest: Manifest
    chunk: int
    parsed: RawChunk


def process_small_files(layout: DataLayout, files: list[str], settings: Settings, progress: Progress | None = None) -> GroupOutcome:
    """Clean every file of `files` whose silver is not complete; a file that fails is recorded
    with its one-line reason and the others go on.

    Files are taken in batches of about CLEAN_BATCH_ROWS records: scanned and parsed one by one,
    cleaned together, their outputs published together (deferred_publication), then their
    summaries, the per-file checkpoints, published after them. A compressed file (never grouped by
    silver_units, but given one anyway) is cleaned alone, chunk by chunk (_clean_alone)."""
    report = progress or (lambda _p, _m: None)
    outcome = GroupOutcome()
    store = layout.store
    pending_files = [f for f in files if not store.exists(layout.file_summary_path(f))]
    for name in [f for f in pending_files if compression_of(f) is not None]:
        try:
            _clean_alone(layout, name, settings, outcome)
        except Exception as err:  # noqa: BLE001 - one file's failure, whatever it is, is that file's alone
            outcome.failures.append((name, _one_line(layout, name, err)))
    pending_files = [f for f in pending_files if compression_of(f) is None]
    position = 0
    while position < len(pending_files):
        batch: list[_Pending] = []
        manifests: list[Manifest] = []
        rows = 0
        with store.deferred_publication():
            while position < len(pending_files) and rows < CLEAN_BATCH_ROWS:
                name = pending_files[position]
                position += 1
                try:
                    manifest = _manifest(layout, name, settings)
                    source_store, source = chunk_source(layout, manifest)
                    parsed = [_Pending(manifest, c.index, parse_manifest_chunk(source, manifest, c.index, source_store,
                                                                               settings.column_aliases))
                              for c in manifest.chunks if not store.exists(layout.silver_part_path(name, c.index))]
                except Exception as err:  # noqa: BLE001 - one file's failure, whatever it is, is that file's alone
                    outcome.failures.append((name, _one_line(layout, name, err)))
                    continue
                batch.extend(parsed)
                manifests.append(manifest)
                rows += manifest.records
            _clean_and_write(layout, batch, settings, outcome)
        with store.deferred_publication():
            for manifest in manifests:
                summary = summarise_file(layout, manifest, settings.column_aliases)
                store.write_text(layout.file_summary_path(manifest.source_file), summary.to_json())
                outcome.done.append(manifest.source_file)
        report(int(100 * position / len(pending_files)), f"{position}/{len(pending_files)} files cleaned")
    return outcome


def _clean_alone(layout: DataLayout, name: str, settings: Settings, outcome: GroupOutcome) -> None:
    """One file through the per-file functions (scan, each chunk not done, summary), outside any
    deferred publication: a compressed file's staged copy must be on disk before its chunks read
    it, and its memory stays bounded by a chunk, not by the file."""
    manifest = _manifest(layout, name, settings)
    for chunk in manifest.chunks:
        if not layout.store.exists(layout.silver_part_path(name, chunk.index)):
            outcome.rows_read += process_chunk(layout, name, chunk.index, settings).rows_read
    layout.store.write_text(layout.file_summary_path(name), summarise_file(layout, manifest, settings.column_aliases).to_json())
    outcome.done.append(name)


def _manifest(layout: DataLayout, name: str, settings: Settings) -> Manifest:
    path = layout.manifest_path(name)
    if layout.store.exists(path):
        manifest = read_manifest(layout.store, path)
        ensure_unchanged(layout.store, layout.bronze_dir / name, manifest)
        return manifest
    return scan_to_manifest(layout, name, settings)


def _one_line(layout: DataLayout, name: str, err: Exception) -> str:
    """The file's failure as the per-file tasks would report it, named by its relative path."""
    if isinstance(err, PipelineError):
        return str(err).replace(str(layout.bronze_dir / name), name)
    if isinstance(err, OSError):
        return f"{name}: {err.strerror or err}" + (f": {err.filename}" if err.filename else "")
    return f"{name}: {type(err).__name__}: {err}"


def _clean_and_write(layout: DataLayout, batch: list[_Pending], settings: Settings, outcome: GroupOutcome) -> None:
    """Clean the records of a batch of chunks together, then write each chunk's own outputs."""
    if not batch:
        return
    counts = np.array([p.parsed.raw.num_rows for p in batch], dtype=np.int64)
    items = pa.DictionaryArray.from_arrays(pa.array(np.repeat(np.arange(len(batch), dtype=np.int32), counts)),
                                           pa.array([str(i) for i in range(len(batch))], pa.string()))
    raw = pa.concat_tables([p.parsed.raw for p in batch])
    cleaned = clean_records(raw, settings, items)
    silver_item = np.asarray(cleaned.silver.column("source_file").combine_chunks().indices, dtype=np.int64) \
        if cleaned.silver.num_rows else np.empty(0, np.int64)
    rejected_item = np.asarray(pc.cast(cleaned.quarantine.column("source_file"), pa.int64()), dtype=np.int64) \
        if cleaned.quarantine.num_rows else np.empty(0, np.int64)
    silver_slices = _split(cleaned.silver, silver_item, len(batch))
    rejected_slices = _split(cleaned.quarantine, rejected_item, len(batch))
    fingerprint = silver_fingerprint(settings)
    for index, pending in enumerate(batch):
        name = pending.manifest.source_file
        silver = _with_source_file(silver_slices[index], name)
        rejected = _with_source_file(rejected_slices[index], name)
        result: ChunkResult = assemble_chunk(pending.manifest, pending.chunk, pending.parsed, silver, rejected,
                                             settings.column_aliases)
        result.metrics.settings_fingerprint = fingerprint
        write_chunk_outputs(layout, result)
        outcome.rows_read += result.metrics.rows_read


def _split(table: pa.Table, item: np.ndarray, items: int) -> list[pa.Table]:
    """`table`'s rows per item, each in the table's own order (a stable sort, then slices)."""
    order = np.argsort(item, kind="stable")
    ordered = table.take(pa.array(order)) if len(order) else table
    bounds = np.searchsorted(item[order], np.arange(items + 1), side="left")
    return [ordered.slice(int(bounds[i]), int(bounds[i + 1] - bounds[i])) for i in range(items)]


def _with_source_file(table: pa.Table, name: str) -> pa.Table:
    """The slice's source_file column as the file's name (silver: a one-entry dictionary, as the
    per-file path writes it; quarantine: plain text)."""
    position = table.schema.get_field_index("source_file")
    column_type = table.schema.field(position).type
    if pa.types.is_dictionary(column_type):
        values = pa.DictionaryArray.from_arrays(np.zeros(table.num_rows, np.int32), pa.array([name], pa.string()))
    else:
        values = pa.repeat(pa.scalar(name, pa.string()), table.num_rows)
    return table.set_column(position, table.schema.field(position), values)
