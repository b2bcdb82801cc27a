"""What a run does before the task graph: maintenance, the settings check, and which files can run.

Pure (no Luigi): run.py and the root task `tasks.Pipeline` call it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import PurePath

from pipeline.bronze.discovery import BronzeFile, scan_bronze
from pipeline.bronze.silver import FileMetrics, read_manifest, write_manifest
from pipeline.errors import PipelineError
from pipeline.running.inventory import files_in_gold, gold_inputs, gone_files, header_problem
from pipeline.running.maintenance import Maintenance, apply, validate
from pipeline.running.silver_settings import check_and_record
from pipeline.settings import Settings, gold_fingerprint
from pipeline.storage.atomic import TEMP_PREFIX, remove_stale_temps
from pipeline.storage.fingerprint import recheck
from pipeline.storage.layout import DataLayout
from pipeline.storage.store import Store


@dataclass(frozen=True)
class RunPlan:
    runnable: list[BronzeFile]  # bronze files whose silver tasks may run now
    gold_files: list[str]  # what gold covers: runnable files and files whose silver is complete
    errors: list[str]  # one line per file that cannot run (exit 1), in input order
    # the summaries read while checking the files: a run with nothing to do totals these, not 20,000 files again
    summaries: dict[str, FileMetrics] = field(default_factory=dict)


_DISCOVERED: dict[tuple[str, str], tuple[float, list[BronzeFile], list[str]]] = {}
DISCOVERY_REUSE_SECONDS = 30.0  # run.py and its root task plan within a second: one discovery serves both


def discover_inputs(layout: DataLayout, settings: Settings) -> tuple[list[BronzeFile], list[str]]:
    """The bronze files and the one-line reasons of refused paths; an error when there is nothing."""
    key = (str(layout.bronze_dir), settings.bronze_glob)
    cached = _DISCOVERED.get(key)
    if cached is not None and time.monotonic() - cached[0] < DISCOVERY_REUSE_SECONDS:
        files, refused = cached[1], cached[2]
    else:
        files, refused = scan_bronze(layout.bronze_dir, settings.bronze_glob, layout.store)
        _DISCOVERED[key] = (time.monotonic(), files, refused)
    if not files and not refused and not layout.ingested_files():
        raise PipelineError(f"no CSV files matching {settings.bronze_glob!r} under {layout.bronze_dir}")
    return files, refused


def apply_request(layout: DataLayout, settings: Settings, files: list[BronzeFile], request: Maintenance,
                  say: Callable[[str], None]) -> None:
    """Validate the maintenance request, check the settings silver was cleaned with, then carry the
    request out. Raises PipelineError, with nothing written, for the first two."""
    # --forget of a file whose silver an interrupted --forget already dropped still rebuilds gold without it
    validate(request, [f.relative_path for f in files], lambda: [*layout.ingested_files(), *files_in_gold(layout)],
             layout.bronze_dir)
    if not request.reprocess_all:
        check_and_record(layout, settings)
    apply(layout, settings, request, say)


def plan_run(layout: DataLayout, settings: Settings, files: list[BronzeFile], refused: list[str],
             leave_out: Iterable[str] = ()) -> RunPlan:
    """Check the settings, clean up after killed writers, and set aside files that cannot run."""
    check_and_record(layout, settings)
    ingested, silver_temps = layout.walk_silver(TEMP_PREFIX)
    remove_stale_temps(silver_temps)  # (only a local root has temporary files: an object is one PUT)
    for folder in (layout.gold_dir, layout.report_dir):
        layout.store.remove_stale_temps(folder)
    present = [f.relative_path for f in files]
    known = set(ingested)
    errors = list(refused)
    problems, summaries = check_files(layout, files)
    gone = gone_files(layout, present, ingested)
    complete_gone = {path for path in gone if layout.store.exists(layout.file_summary_path(path))}
    for path in [*present, *gone]:  # a quarantine part is written before its file's summary: only an incomplete file has temporaries
        if path not in summaries and path not in complete_gone:
            layout.store.remove_stale_temps(layout.quarantine_dir / path)
    errors.extend(problems.values())
    bad = set(problems)
    for bronze in files:  # an unchanged file that was ingested had its header checked then
        if bronze.relative_path not in bad and bronze.relative_path not in known:
            problem = header_problem(bronze, layout.store, settings.column_aliases)
            if problem:
                errors.append(problem)
                bad.add(bronze.relative_path)
    for path in gone:
        state = "its rows are still in gold" if path in complete_gone else "its partial silver is not in gold"
        errors.append(f"{path}: ingested earlier but no longer under {layout.bronze_dir} ({state}); restore it, "
                      f"or run `python run.py --forget {path}` to drop it")
    runnable = [f for f in files if f.relative_path not in bad]
    unusable = {p for p, line in problems.items() if "unreadable" in line} | set(leave_out)  # changed files' silver stays in gold
    return RunPlan(runnable, gold_inputs(layout, [f.relative_path for f in runnable], failed=unusable, ingested=ingested), errors,
                   {name: summary for name, summary in summaries.items() if name not in bad})


def check_files(layout: DataLayout, files: list[BronzeFile]) -> tuple[dict[str, str], dict[str, FileMetrics]]:
    """One line per bronze file that cannot run as it is: changed since it was ingested, or a
    derived file of it (manifest, summary) that cannot be read, named with the command that
    repairs just that file; and the summaries read on the way (the files with complete silver)."""
    problems: dict[str, str] = {}
    summaries: dict[str, FileMetrics] = {}
    store = layout.store
    for bronze in files:
        name = bronze.relative_path
        manifest_path, summary_path = layout.manifest_path(name), layout.file_summary_path(name)
        reading = manifest_path
        try:
            if store.exists(manifest_path) and not _unchanged(store, bronze.absolute_path, manifest_path):
                problems[name] = f"{name}: bronze file changed since it was ingested; run `python run.py --reprocess {name}` to redo it"
                continue
            reading = summary_path
            if store.exists(summary_path):
                summaries[name] = FileMetrics.from_json(store.read_text(summary_path))
        except (ValueError, KeyError, TypeError) as err:
            problems[name] = (f"{name}: {reading} is unreadable ({type(err).__name__}); "
                              f"run `python run.py --reprocess {name}` to redo just this file")
    return problems, summaries


def _unchanged(store: Store, bronze_path: PurePath, manifest_path: PurePath) -> bool:
    """Whether the bronze file still has the bytes its manifest records; a file whose bytes are the
    same under a new stat gets the new stat recorded (the same manifest otherwise, written
    atomically: a reader sees one or the other, and both say the same content)."""
    manifest = read_manifest(store, manifest_path)
    now = recheck(store, bronze_path, manifest.fingerprint)
    if now is not None and now != manifest.fingerprint:
        write_manifest(store, manifest_path, dataclasses.replace(manifest, fingerprint=now))
    return now is not None


def inputs_digest(entries: list) -> str:
    """Digest of what a gold publication covers (one JSON-able entry per input)."""
    digest = hashlib.blake2b(digest_size=12)
    for entry in entries:
        digest.update(json.dumps(entry).encode() + b"\n")
    return digest.hexdigest()


def gold_digest(layout: DataLayout, gold_files: list[str], runnable: list[BronzeFile], settings: Settings) -> str:
    """The identity of one gold publication: each file's bytes as seen now (size, mtime, ctime,
    inode: what an edit cannot keep) or, for a
    file that does not run, its complete silver, plus the settings gold is derived with."""
    stats = {f.relative_path: f.stat or layout.store.stat(f.absolute_path) for f in runnable}
    entries: list = [["settings", gold_fingerprint(settings)]]
    for path in gold_files:
        stat = stats.get(path)
        if stat is not None:
            entries.append([path, stat.size, stat.mtime_ns, stat.ctime_ns, stat.inode, *([stat.etag] if stat.etag else [])])
        else:
            summary = layout.store.stat(layout.file_summary_path(path))
            entries.append([path, "silver", summary.mtime_ns if summary is not None else 0])
    return inputs_digest(entries)


def write_files_list(layout: DataLayout, files: list[str], digest: str | None = None) -> str:
    """Store a list of bronze files under its digest (runs/files-<digest>.json) for a task to read:
    a task parameter, a luigid message and its UI then carry 24 characters, not every file name."""
    digest = digest or inputs_digest(files)
    path = layout.files_list_path(digest)
    if not layout.store.exists(path):
        layout.store.write_text(path, json.dumps(files))
    return digest


def read_files_list(layout: DataLayout, digest: str) -> list[str]:
    path = layout.files_list_path(digest)
    try:
        return list(json.loads(layout.store.read_text(path)))
    except FileNotFoundError:
        raise PipelineError(f"{path} is missing (a run's list of files; was runs/ cleaned while it ran?); run again") from None
    except ValueError:
        raise PipelineError(f"{path} is corrupt; delete it and run again") from None


def ensure_writable(layout: DataLayout, until: str) -> None:
    """Every folder the run will write can be written, checked by writing there, before anything
    starts: a read-only data root, gold or state folder is the machine's problem, told in one line
    (exit 2), not a traceback half-way or a misleading "corrupt" later."""
    import tempfile

    from pipeline.errors import EnvironmentProblem

    if layout.remote:
        folders = [layout.scratch_dir, *([layout.state_dir] if until != "silver" else [])]
        _probe_store(layout)
    else:
        folders = [layout.root, layout.silver_dir, layout.quarantine_dir, layout.runs_dir]
        if until != "silver":
            folders += [layout.state_dir, layout.gold_dir]
        if until == "report":
            folders.append(layout.report_dir)
    for folder in folders:
        existing = folder
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent  # a folder to be created: its nearest existing parent must be writable
        try:
            with tempfile.TemporaryFile(dir=existing, prefix=".tmp-probe-"):
                pass
        except OSError as err:
            raise EnvironmentProblem(f"cannot write in {existing} ({err.strerror}): make it writable for this user "
                                     "(or point --data-root elsewhere) and run again; nothing was changed") from None


def _probe_store(layout: DataLayout) -> None:
    """The bucket exists, these credentials may list and write it, the endpoint answers: said in
    one line (exit 2) before any work, by a listing and one small object written and deleted."""
    import os
    import socket

    from pipeline.storage import object_client

    object_client.check_bucket(layout.root)
    probe = layout.runs_dir / f"_probe-{socket.gethostname()}-{os.getpid()}"
    layout.store.write_text(probe, "")
    layout.store.delete(probe)
