"""What a run does before the task graph: maintenance, the settings check, and which files can run.

Pure (no Luigi): run.py calls it, and prints what it returns.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Callable

from pipeline.atomic import remove_stale_temp_files
from pipeline.discovery import BronzeFile
from pipeline.inventory import changed_files, gold_inputs, gone_files, header_problem
from pipeline.layout import DataLayout
from pipeline.maintenance import Maintenance, apply, validate
from pipeline.settings import Settings, gold_fingerprint
from pipeline.silver_settings import check_and_record


@dataclass(frozen=True)
class RunPlan:
    runnable: list[BronzeFile]  # bronze files whose silver tasks may run now
    gold_files: list[str]  # what gold covers: runnable files and files whose silver is complete
    errors: list[str]  # one line per file that cannot run (exit 1), in input order


def prepare_run(layout: DataLayout, settings: Settings, files: list[BronzeFile], refused: list[str],
                request: Maintenance, say: Callable[[str], None]) -> RunPlan:
    """Validate the request, check the settings silver was cleaned with, apply the request, then
    set aside files that cannot run. Raises PipelineError (nothing written) for the first two."""
    present = [f.relative_path for f in files]
    validate(request, present, layout.ingested_files(), layout.bronze_dir)
    if not request.reprocess_all:
        check_and_record(layout, settings)
    apply(layout, settings, request, say)
    for folder in (layout.silver_dir, layout.quarantine_dir, layout.gold_dir, layout.report_dir):
        remove_stale_temp_files(folder)
    errors = list(refused)
    bad = set()
    for path in changed_files(layout, files):
        errors.append(f"{path}: bronze file changed since it was ingested; run `python run.py --reprocess {path}` to redo it")
        bad.add(path)
    for bronze in files:
        if bronze.relative_path not in bad:
            problem = header_problem(bronze)
            if problem:
                errors.append(problem)
                bad.add(bronze.relative_path)
    for path in gone_files(layout, present):
        state = "its rows are still in gold" if layout.file_summary_path(path).exists() else "its partial silver is not in gold"
        errors.append(f"{path}: ingested earlier but no longer under {layout.bronze_dir} ({state}); restore it, "
                      f"or run `python run.py --forget {path}` to drop it")
    runnable = [f for f in files if f.relative_path not in bad]
    return RunPlan(runnable, gold_inputs(layout, [f.relative_path for f in runnable]), errors)


def inputs_digest(entries: list) -> str:
    """Digest of what a gold publication covers (one JSON-able entry per input)."""
    digest = hashlib.blake2b(digest_size=12)
    for entry in entries:
        digest.update(json.dumps(entry).encode() + b"\n")
    return digest.hexdigest()


def gold_digest(layout: DataLayout, gold_files: list[str], runnable: list[BronzeFile], settings: Settings) -> str:
    """The identity of one gold publication: each file's bytes as seen now (size, mtime) or, for a
    file that does not run, its complete silver, plus the settings gold is derived with."""
    stats = {f.relative_path: f.absolute_path.stat() for f in runnable}
    entries: list = [["settings", gold_fingerprint(settings)]]
    for path in gold_files:
        if path in stats:
            entries.append([path, stats[path].st_size, stats[path].st_mtime_ns])
        else:
            entries.append([path, "silver", layout.file_summary_path(path).stat().st_mtime_ns])
    return inputs_digest(entries)
