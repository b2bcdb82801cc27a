"""What is on disk, layer by layer: done, pending, changed, gone. Read-only."""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pipeline.bronze.discovery import BronzeFile
from pipeline.bronze.header import ColumnAliases
from pipeline.bronze.silver import FileMetrics, read_manifest
from pipeline.contract import REJECT_REASONS
from pipeline.storage.fingerprint import unchanged_since
from pipeline.storage.layout import DataLayout
from pipeline.storage.store import LOCAL_FILES, Store


@dataclass(frozen=True)
class FileStatus:
    source_file: str
    scanned: bool
    chunks_total: int | None
    chunks_done: int
    silver_done: bool
    changed: bool


def file_status(layout: DataLayout, bronze: BronzeFile) -> FileStatus:
    manifest_path = layout.manifest_path(bronze.relative_path)
    store = layout.store
    if not store.exists(manifest_path):
        return FileStatus(bronze.relative_path, False, None, 0, False, False)
    manifest = read_manifest(store, manifest_path)
    done = sum(layout.store.exists(layout.silver_part_path(bronze.relative_path, c.index)) for c in manifest.chunks)
    changed = not unchanged_since(store, bronze.absolute_path, manifest.fingerprint)
    return FileStatus(
        source_file=bronze.relative_path,
        scanned=True,
        chunks_total=len(manifest.chunks),
        chunks_done=done,
        silver_done=layout.store.exists(layout.file_summary_path(bronze.relative_path)),
        changed=changed,
    )


def files_in_gold(layout: DataLayout) -> list[str]:
    """The files gold's data_quality names (none when there is no readable gold)."""
    try:
        return layout.store.read_parquet(layout.gold_table_path("data_quality"), columns=["source_file"]).column(0).to_pylist()
    except (OSError, ValueError, KeyError):
        return []


def gone_files(layout: DataLayout, present: list[str], ingested: list[str] | None = None) -> list[str]:
    """Files with silver on disk that are no longer bronze inputs (deleted, renamed, or no longer
    matched by the glob), in input order."""
    from pipeline.bronze.discovery import natural_key

    now = set(present)
    return sorted((f for f in (layout.ingested_files() if ingested is None else ingested) if f not in now), key=natural_key)


def gold_inputs(layout: DataLayout, runnable: list[str], failed: Iterable[str] = (), ingested: list[str] | None = None) -> list[str]:
    """The files gold covers, in input order: those that run now, and every other file whose silver
    is complete (gone or changed since): what is merged stays accounted for in data_quality until
    the user says otherwise (`--forget`, `--reprocess`). Files that failed this run are left out."""
    from pipeline.bronze.discovery import natural_key

    skip = set(failed)
    ingested = layout.ingested_files() if ingested is None else ingested
    done_elsewhere = [f for f in ingested if layout.store.exists(layout.file_summary_path(f))]
    files = {f for f in [*runnable, *done_elsewhere] if f not in skip}
    return sorted(files, key=natural_key)


def header_problem(bronze: BronzeFile, store: Store = LOCAL_FILES, column_aliases: ColumnAliases | None = None) -> str | None:
    """The one-line reason a file cannot be ingested at all (bad header), or None."""
    from pipeline.bronze.chunking import read_header
    from pipeline.bronze.header import layout_header
    from pipeline.errors import InputFileError

    try:
        with store.open_input(bronze.absolute_path) as handle:
            names, _end, _head = read_header(handle, bronze.absolute_path)
        layout_header(names, bronze.relative_path, column_aliases)
    except InputFileError as err:
        return str(err).replace(str(bronze.absolute_path), bronze.relative_path)
    except OSError as err:
        return f"{bronze.relative_path}: cannot read ({err.strerror})"
    return None


@dataclass
class Totals:
    files: int = 0
    chunks: int = 0
    rows_read: int = 0
    rows_valid: int = 0

    def __post_init__(self) -> None:
        self.rows_rejected: dict[str, int] = {r: 0 for r in REJECT_REASONS}
        self.summaries: list[FileMetrics] = []  # each file's, as added

    def add(self, metrics: FileMetrics) -> None:
        self.summaries.append(metrics)
        self.files += 1
        self.chunks += metrics.chunks
        self.rows_read += metrics.rows_read
        self.rows_valid += metrics.rows_valid
        for reason, count in metrics.rows_rejected.items():
            self.rows_rejected[reason] = self.rows_rejected.get(reason, 0) + count


def mostly_rejected_of(summaries: list[FileMetrics], threshold: float) -> list[dict]:
    """The files whose rejected share is above `threshold`, with their main reason."""
    from pipeline.contract import mostly_rejected

    found = []
    for metrics in summaries:
        rejected = sum(metrics.rows_rejected.values())
        if mostly_rejected(metrics.rows_read, rejected, threshold):
            reason = max(metrics.rows_rejected, key=lambda r: metrics.rows_rejected[r])
            found.append({"source_file": metrics.source_file, "rows_read": metrics.rows_read, "rows_rejected": rejected,
                          "share": round(rejected / metrics.rows_read, 4), "main_reason": reason})
    return found


def mostly_rejected_line(entry: dict) -> str:
    return (f"{entry['source_file']}: {entry['rows_rejected']:,} of its {entry['rows_read']:,} rows rejected "
            f"({entry['share']:.0%}, mostly {entry['main_reason']}): check its encoding (UTF-8), delimiter and columns")


def silver_totals(layout: DataLayout, files: list[BronzeFile], read: Mapping[str, FileMetrics] | None = None) -> Totals:
    """The totals of the files' complete silver: their summaries as `read` holds them (those a
    plan read while nothing has run since), else read now."""
    totals = Totals()
    for bronze in files:
        if read is not None:
            if bronze.relative_path in read:
                totals.add(read[bronze.relative_path])
            continue
        path = layout.file_summary_path(bronze.relative_path)
        if layout.store.exists(path):
            totals.add(FileMetrics.from_json(layout.store.read_text(path)))
    return totals


@dataclass(frozen=True)
class GoldStatus:
    parts_total: int
    parts_merged: int
    unfinished_batch: int  # parts of a merge that was interrupted (0 when none)
    gold_tables: list[str]
    gold_written_at: float | None  # epoch seconds of the newest gold table
    merge_running: bool  # a live run holds the gold lock now (an unfinished batch is then not interrupted)


def gold_status(layout: DataLayout, part_names: list[str]) -> GoldStatus:
    """What the Silver -> Gold state says is merged, and when gold was last written."""
    from pipeline.contract import GOLD_TABLES
    from pipeline.gold import state_records as records
    from pipeline.gold.state_store import open_state, state_path

    merged: set[str] = set()
    batch_parts = 0
    if state_path(layout.state_dir).exists():
        with open_state(layout.state_dir) as state:
            if not records.is_new(state):  # a state created but not yet reset holds no record to read
                merged = set(records.read_merged_parts(state))
                batch = records.read_batch(state)
                batch_parts = len(batch.parts) if batch else 0
    tables = [name for name in GOLD_TABLES if layout.store.exists(layout.gold_table_path(name))]
    stats = [layout.store.stat(layout.gold_table_path(n)) for n in tables]
    written = max((s.mtime_ns / 1e9 for s in stats if s is not None), default=None)
    return GoldStatus(len(part_names), sum(n in merged for n in part_names), batch_parts, tables, written,
                      layout.store.is_locked(layout.gold_lock_path))
