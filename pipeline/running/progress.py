"""What a run has done so far, from its own journal: the live progress line and the summary's
"this run" figures. Pure: events in, numbers and one line out."""
from __future__ import annotations

from dataclasses import dataclass

from pipeline.storage import journal
from pipeline.storage.layout import DataLayout


@dataclass(frozen=True)
class RunWork:
    """This run's own work (never another run's on the same data root)."""

    rows_cleaned: int
    bytes_cleaned: int
    chunks_cleaned: int
    small_file_groups: int
    gold: dict | None  # the Silver -> Gold record when this run merged and published gold
    merging: bool  # this run's Silver -> Gold step has started and not finished
    failures: list[dict]


def run_work(events: list[dict]) -> RunWork:
    cleaned = [e for e in events if e["event"] in (journal.CHUNK, journal.SMALL_FILES)]
    golds = [e for e in events if e["event"] == journal.GOLD]
    return RunWork(
        rows_cleaned=sum(int(e["rows_read"]) for e in cleaned),
        bytes_cleaned=sum(int(e["bytes"]) for e in cleaned),
        chunks_cleaned=sum(e["event"] == journal.CHUNK for e in events),
        small_file_groups=sum(e["event"] == journal.SMALL_FILES for e in events),
        gold={k: v for k, v in golds[-1].items() if k != "event"} if golds else None,
        merging=any(e["event"] == journal.GOLD_STARTED for e in events) and not golds,
        failures=[e for e in events if e["event"] == journal.FAILED],
    )


def pending_bytes(layout: DataLayout, files: list[str]) -> int:
    """Bytes of bronze still to clean: files without a summary, less their chunks already done."""
    from pipeline.bronze.silver import read_manifest

    total = 0
    for name in files:
        if layout.store.exists(layout.file_summary_path(name)):
            continue
        manifest_path = layout.manifest_path(name)
        try:
            manifest = read_manifest(layout.store, manifest_path)
        except (OSError, ValueError, KeyError, TypeError):
            stat = layout.store.stat(layout.bronze_dir / name)
            total += stat.size if stat is not None else 0
            continue
        total += sum(c.end - c.start for c in manifest.chunks if not layout.store.exists(layout.silver_part_path(name, c.index)))
    return total


def progress_line(work: RunWork, pending: int, seconds: float) -> str:
    """One line per layer, rewritten in place on a terminal: rows done, share of the bytes, rate
    and time left while silver runs; then the gold step."""
    rate = work.rows_cleaned / seconds if seconds > 0 else 0.0
    if work.gold is not None:
        tables = len(work.gold["tables_written"])
        return f"gold: {work.gold['rows_merged']:,} rows merged, {tables} tables written; rendering the report ..."
    if work.merging:
        return f"gold: merging new silver into the state and writing gold tables ... ({_duration(seconds)} into the run)"
    share = min(work.bytes_cleaned / pending, 0.99) if pending else 0.0
    byte_rate = work.bytes_cleaned / seconds if seconds > 0 else 0.0
    left = (pending - work.bytes_cleaned) / byte_rate if byte_rate > 0 and pending > work.bytes_cleaned else None
    eta = f", about {_duration(left)} left" if left is not None and work.bytes_cleaned else ""
    # Records are counted as chunks finish; the total is estimated from the bytes still to clean.
    total = f" of about {round(work.rows_cleaned * pending / work.bytes_cleaned, -3):,.0f}" if work.bytes_cleaned and share < 0.99 else ""
    return (f"silver: {work.rows_cleaned:,}{total} rows cleaned ({share:.0%} of {_size(pending)}), "
            f"{rate:,.0f} rows/s{eta}")


def _size(count: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:,.0f} {unit}" if unit == "B" else f"{count:,.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"
