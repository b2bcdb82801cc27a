"""The whole Silver -> Gold step of a run, under the gold lock: merge, publish, then the marker.

One pure function, so the SilverToGold task only wires it, and the lock is held by the process
doing the work for exactly as long as it works.
"""
from __future__ import annotations

import dataclasses
import json
import resource
import time
from collections.abc import Callable

from pipeline.bronze.silver import FileMetrics
from pipeline.contract import GOLD_TABLES
from pipeline.errors import StateDamaged
from pipeline.gold.merge import MergeReport, merge_silver, publish_gold, silver_parts
from pipeline.gold.orders import orders_listing
from pipeline.gold.state_store import delete_state
from pipeline.settings import Settings
from pipeline.storage import journal
from pipeline.storage.layout import DataLayout
from pipeline.storage.parquet_io import file_digest
from pipeline.storage.store import Held
from pipeline.timestamps import utc_iso

GOLD_LOCK_WAIT_SECONDS = 600.0
Progress = Callable[[int, str], None]


def is_published(layout: DataLayout, inputs: str) -> bool:
    """Gold is published for `inputs` and every gold file still has the bytes published: a gold
    file damaged or replaced since (a flipped bit) makes the step run again, which rewrites it."""
    try:
        marker = json.loads(layout.store.read_text(layout.published_marker_path(inputs)))
        checksums = dict(marker["gold_files"])
        return set(checksums) == set(GOLD_TABLES) and all(
            file_digest(layout.store, layout.gold_table_path(name)) == checksum for name, checksum in checksums.items()
        ) and marker["orders_files"] == orders_listing(layout)  # one listing: a file deleted or stray is noticed
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _merge_and_publish(layout: DataLayout, settings: Settings, files: list[str], metrics: list[FileMetrics],
                       progress: Progress | None, held: Held) -> tuple[MergeReport, list[str], dict[str, str], float]:
    merge = merge_silver(layout, settings, silver_parts(layout, files), progress=progress, source_files=files)
    merged_at = time.monotonic()
    held.check()  # on object storage: the lease is still ours (no other host took it meanwhile)
    written, checksums = publish_gold(layout, settings, metrics)
    return merge, written, checksums, time.monotonic() - merged_at


def merge_and_publish(layout: DataLayout, settings: Settings, files: list[str], inputs: str,
                      progress: Progress | None = None) -> str:
    """Merge the silver of `files` exactly once, publish gold, write the run metadata beside it
    and, last, the marker for `inputs`; return the summary line."""
    report = progress or (lambda _percent, _message: None)
    with layout.store.exclusive_lock(layout.gold_lock_path, f"Silver -> Gold of {layout.root}", GOLD_LOCK_WAIT_SECONDS) as held:
        if is_published(layout, inputs):  # another run published these inputs while we waited
            return "already published by another run on this data root"
        journal.record(journal.GOLD_STARTED)
        started, started_at = time.monotonic(), utc_iso()
        report(0, "merging new silver parts")
        metrics = [FileMetrics.from_json(layout.store.read_text(layout.file_summary_path(f))) for f in files]
        try:
            merge, written, checksums, publish_seconds = _merge_and_publish(layout, settings, files, metrics, progress, held)
        except StateDamaged as damage:
            # The state is derived from silver: a damaged one is rebuilt, never published from.
            report(0, f"{damage}; rebuilding the Silver -> Gold state from all silver")
            delete_state(layout)
            merge, written, checksums, publish_seconds = _merge_and_publish(layout, settings, files, metrics, progress, held)
            merge = dataclasses.replace(merge, rebuilt_because=str(damage))
        for old in layout.published_markers():
            layout.store.delete(old)
        rate = merge.rows_merged / merge.seconds if merge.seconds > 0 else 0.0
        metadata = {
            "files": len(files), "parts_merged": merge.parts_merged, "rows_merged": merge.rows_merged,
            "new_unique_orders": merge.unique_orders, "merge_seconds": round(merge.seconds, 3),
            "merge_rows_per_second": round(rate), "publish_seconds": round(publish_seconds, 3),
            "tables_written": written, "gold_mode": settings.gold_mode,
            "seconds": round(time.monotonic() - started, 3), "state_rebuilt_because": merge.rebuilt_because,
            "merge_serial_seconds": round(merge.serial_seconds, 3),
            "merge_parallel_cpu_seconds": round(merge.parallel_cpu_seconds, 3),
            # the largest this process has been (the task's own, so the merge's; its fork's parent's at the start)
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
            "started_at": started_at, "finished_at": utc_iso(),
        }
        layout.store.write_text(layout.gold_run_path, json.dumps(metadata, indent=1, sort_keys=True))
        marker = {"inputs": inputs, "files": files, "gold_files": checksums, "orders_files": orders_listing(layout)}
        held.check()
        layout.store.write_text(layout.published_marker_path(inputs), json.dumps(marker, indent=1))
        journal.record(journal.GOLD, **metadata)
    rebuilt = f"state rebuilt from all silver ({merge.rebuilt_because}); " if merge.rebuilt_because else ""
    return (f"{rebuilt}merged {merge.rows_merged:,} rows ({merge.unique_orders:,} new orders) in {merge.seconds:.1f} s; "
            f"wrote {len(written)} gold tables")
