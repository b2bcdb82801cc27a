"""The single Silver -> Gold task: sqlitedict dedup and aggregation, then gold publication."""
from __future__ import annotations

import hashlib
import json
import logging
import time

import luigi

from pipeline.atomic import write_text_atomic
from pipeline.bronze import FileMetrics
from pipeline.locking import exclusive_lock
from pipeline.silver_to_gold import merge_silver, publish_gold, silver_parts
from tasks.base import PipelineTask
from tasks.bronze import BronzeFileToSilver

log = logging.getLogger("pipeline")
GOLD_LOCK_WAIT_SECONDS = 600.0


def inputs_digest(entries: list[tuple[str, int, int]]) -> str:
    """Digest of (relative path, size, mtime_ns) of the bronze files a gold publication covers."""
    digest = hashlib.blake2b(digest_size=12)
    for entry in entries:
        digest.update(json.dumps(entry).encode() + b"\n")
    return digest.hexdigest()


def _utc_now() -> str:
    """ISO time for run metadata, e.g. 2026-11-25T18:54:50.123Z (the report shows it)."""
    import datetime as dt

    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SilverToGold(PipelineTask):
    """Merge every silver part of `source_files` exactly once, then publish gold.

    Complete only when a publication for exactly these inputs exists: new or changed bronze
    files give a new `inputs` digest, so gold from an earlier run never counts as done.
    """

    source_files = luigi.ListParameter(description="bronze files, in natural order")
    inputs = luigi.Parameter(description="digest of the bronze inputs (see inputs_digest)")

    def requires(self) -> list[BronzeFileToSilver]:
        return [BronzeFileToSilver(data_root=self.data_root, source_file=f) for f in self.source_files]

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(str(self.layout.gold_dir / f"_published-{self.inputs}.json"))

    def run(self) -> None:
        layout, settings = self.layout, self.settings
        files = list(self.source_files)
        with exclusive_lock(layout.gold_lock_path, f"Silver -> Gold of {layout.root}", GOLD_LOCK_WAIT_SECONDS):
            started, started_at = time.monotonic(), _utc_now()
            self.report_progress(0, "merging new silver parts")
            merge = merge_silver(layout, settings, silver_parts(layout, files), progress=self.report_progress, source_files=files)
            merged_at = time.monotonic()
            metrics = [FileMetrics.from_json(layout.file_summary_path(f).read_text(encoding="utf-8")) for f in files]
            written = publish_gold(layout, settings, metrics)
            publish_seconds = time.monotonic() - merged_at
            for old in layout.gold_dir.glob("_published-*.json"):
                old.unlink()
            rate = merge.rows_merged / merge.seconds if merge.seconds > 0 else 0.0
            metadata = {
                "files": len(files), "parts_merged": merge.parts_merged, "rows_merged": merge.rows_merged,
                "new_unique_orders": merge.unique_orders, "merge_seconds": round(merge.seconds, 3),
                "merge_rows_per_second": round(rate), "publish_seconds": round(publish_seconds, 3),
                "tables_written": written, "gold_mode": settings.gold_mode,
                "seconds": round(time.monotonic() - started, 3),
                "started_at": started_at, "finished_at": _utc_now(),
            }
            write_text_atomic(layout.gold_dir / "_silver_to_gold_run.json", json.dumps(metadata, indent=1, sort_keys=True))
            write_text_atomic(self.output().path, json.dumps({"inputs": self.inputs, "files": files}, indent=1))
            message = f"merged {merge.rows_merged:,} rows ({merge.unique_orders:,} new orders) in {merge.seconds:.1f} s; wrote {len(written)} gold tables"
            self.report_progress(100, message)
            log.info("gold: %s", message)
