"""Commands that change what is on disk on purpose: --reprocess, --forget, --rebuild-gold,
--reprocess-all, --take-gold.

Each validates every argument before it touches anything, then does its deletions under the same
lock as Silver -> Gold, so two commands on one data root are serialised, never interleaved. Each
only deletes derived data and in an order that a crash leaves safe: gold is unpublished and the
state goes before the silver it was built from, and the settings record of `--reprocess-all` is
written last, so an interrupted command is finished by running it again: a `--forget` whose
silver is already gone still rebuilds gold without the file, and a `--reprocess-all` whose
deletions were done keeps the silver cleaned since (runs/reprocess-all.json says one is under way).
"""
from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePath

from pipeline.bronze.silver import remove_staged_copies
from pipeline.errors import PipelineError
from pipeline.gold.owner import take_over, this_host
from pipeline.gold.state_store import delete_state
from pipeline.running.silver_settings import settings_problem, write_record
from pipeline.settings import Settings, silver_fingerprint
from pipeline.storage.layout import DataLayout

LOCK_WAIT_SECONDS = 600.0


@dataclass(frozen=True)
class Maintenance:
    reprocess: tuple[str, ...] = ()
    forget: tuple[str, ...] = ()
    rebuild_gold: bool = False
    reprocess_all: bool = False
    take_gold: bool = False

    @property
    def requested(self) -> bool:
        return bool(self.reprocess or self.forget or self.rebuild_gold or self.reprocess_all or self.take_gold)


def validate(request: Maintenance, in_bronze: Iterable[str], ingested: Callable[[], Iterable[str]], bronze_dir: PurePath) -> None:
    """Check every argument before anything is touched; the first bad one stops the command.
    `ingested` is asked only when --forget needs it (the files with silver, or still in gold)."""
    present = set(in_bronze)
    known = set(ingested()) if request.forget else set()
    for path in request.reprocess:
        if path not in present:
            raise PipelineError(f"--reprocess {path}: no such bronze file under {bronze_dir}; nothing was changed")
    for path in request.forget:
        if path in present:
            raise PipelineError(f"--forget {path}: the file is still under {bronze_dir}; move it out first "
                                f"(or use --reprocess {path} to redo it); nothing was changed")
        if path not in known:
            raise PipelineError(f"--forget {path}: no silver of such a file in the data root; nothing was changed")
    both = set(request.reprocess) & set(request.forget)
    if both:
        raise PipelineError(f"--reprocess and --forget both name {sorted(both)[0]}; nothing was changed")


def apply(layout: DataLayout, settings: Settings, request: Maintenance, say: Callable[[str], None]) -> None:
    """Carry out a validated request under the gold lock."""
    if not request.requested:
        return
    with layout.store.exclusive_lock(layout.gold_lock_path, f"data root {layout.root}", LOCK_WAIT_SECONDS):
        if request.reprocess_all:
            _reprocess_all(layout, settings, say)
        if request.reprocess or request.forget:
            unpublish_gold(layout)  # first: before any silver it was built from goes
        for path in request.forget:
            forget_file(layout, path)
            say(f"forget: dropped the silver of {path}; gold will be rebuilt without it")
        for path in request.reprocess:
            forget_file(layout, path)
            say(f"reprocess: dropped everything derived from {path}; gold will be rebuilt from all silver")
        if request.rebuild_gold and not request.reprocess_all:
            unpublish_gold(layout)
            say("rebuild-gold: dropped the Silver -> Gold state; it and gold are rebuilt from all silver "
                "(the gold tables stay readable until each is replaced)")
        if request.take_gold:
            previous = take_over(layout)
            say(f"take-gold: gold of {layout.root} is now built on this host ({this_host()})"
                + (f", no longer on {previous}" if previous and previous != this_host() else ""))


def _reprocess_all(layout: DataLayout, settings: Settings, say: Callable[[str], None]) -> None:
    fingerprint = silver_fingerprint(settings)
    under_way = _read_marker(layout, layout.reprocess_all_marker_path)
    if under_way == fingerprint and settings_problem(layout, settings) is None:
        say("reprocess-all: resuming the one interrupted earlier (its deletions were done); silver cleaned since is kept")
        return
    layout.store.write_text(layout.reprocess_all_marker_path, json.dumps({"fingerprint": fingerprint}))
    unpublish_gold(layout)
    for folder in (layout.silver_dir, layout.quarantine_dir):
        layout.store.delete_tree(folder)
    if layout.staging_dir.exists():  # this host's staged copies
        shutil.rmtree(layout.staging_dir)
    write_record(layout, settings)
    say("reprocess-all: dropped silver, quarantine and the Silver -> Gold state; every file is cleaned again under "
        "the current settings (the gold tables stay readable until each is replaced)")


def _read_marker(layout: DataLayout, path: PurePath) -> str | None:
    try:
        return str(json.loads(layout.store.read_text(path))["fingerprint"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def finish_reprocess_all(layout: DataLayout) -> None:
    """The run after a --reprocess-all built everything: the next --reprocess-all starts afresh."""
    layout.store.delete(layout.reprocess_all_marker_path)


def forget_file(layout: DataLayout, source_file: str) -> None:
    """Delete everything derived from one bronze file in silver and quarantine."""
    if ".." in source_file.split("/") or source_file.startswith("/") or not source_file.strip("/"):
        raise PipelineError(f"{source_file}: refusing to delete what it names, outside the data root")
    for folder, within in ((layout.silver_file_dir(source_file), layout.silver_dir),
                           (layout.quarantine_dir / source_file, layout.quarantine_dir)):
        if not layout.remote:
            resolved = Path(folder).resolve()
            if not resolved.is_relative_to(Path(within).resolve()):
                raise PipelineError(f"{source_file}: refusing to delete {resolved}, outside the data root")
        layout.store.delete_tree(folder)
    remove_staged_copies(layout, source_file)


def unpublish_gold(layout: DataLayout) -> None:
    """Gold no longer counts as done for any inputs and the state is dropped, so the next run
    rebuilds both from all silver. The gold tables are not deleted: readers keep the old ones until
    the rebuild replaces each atomically (a state with no record of them never upserts or keeps one),
    and a rebuild that fails (a corrupt silver part) leaves them as they were."""
    for marker in layout.published_markers():
        layout.store.delete(marker)
    delete_state(layout)
