"""Commands that change what is on disk on purpose: --reprocess, --forget, --rebuild-gold,
--reprocess-all, --take-gold.

Each validates every argument before it touches anything, then does its deletions under the same
lock as Silver -> Gold, so two commands on one data root are serialised, never interleaved. Each
only deletes derived data and in an order that a crash leaves safe: the state goes before the
silver it was built from, and the settings record of `--reprocess-all` is written last, so an
interrupted command is finished by running it again.
"""
from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from pipeline.bronze.silver import remove_staged_copies
from pipeline.errors import PipelineError
from pipeline.gold.owner import take_over, this_host
from pipeline.gold.state_store import delete_state
from pipeline.layout import DataLayout
from pipeline.locking import exclusive_lock
from pipeline.settings import Settings
from pipeline.silver_settings import write_record

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


def validate(request: Maintenance, in_bronze: Iterable[str], ingested: Callable[[], Iterable[str]], bronze_dir: Path) -> None:
    """Check every argument before anything is touched; the first bad one stops the command.
    `ingested` is asked only when --forget needs it (it walks the silver folder)."""
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
    with exclusive_lock(layout.gold_lock_path, f"data root {layout.root}", LOCK_WAIT_SECONDS):
        if request.reprocess_all:
            forget_gold(layout)
            for folder in (layout.silver_dir, layout.quarantine_dir, layout.staging_dir):
                if folder.exists():
                    shutil.rmtree(folder)
            write_record(layout, settings)
            say("reprocess-all: dropped silver, quarantine, the Silver -> Gold state and gold; "
                "every file is cleaned again under the current settings")
        for path in request.forget:
            forget_file(layout, path)
            say(f"forget: dropped the silver of {path}; gold will be rebuilt without it")
        for path in request.reprocess:
            forget_file(layout, path)
            say(f"reprocess: dropped everything derived from {path}; gold will be rebuilt from all silver")
        if request.reprocess or request.forget:
            delete_state(layout)
            for marker in layout.published_markers():  # gold no longer counts as done for today's inputs
                marker.unlink()
        if request.rebuild_gold and not request.reprocess_all:
            forget_gold(layout)
            say("rebuild-gold: dropped the Silver -> Gold state and gold; both are rebuilt from all silver")
        if request.take_gold:
            previous = take_over(layout)
            say(f"take-gold: gold of {layout.root} is now built on this host ({this_host()})"
                + (f", no longer on {previous}" if previous and previous != this_host() else ""))


def forget_file(layout: DataLayout, source_file: str) -> None:
    """Delete everything derived from one bronze file in silver and quarantine."""
    for folder in (layout.silver_file_dir(source_file), layout.quarantine_dir / source_file):
        resolved = folder.resolve()
        if not (resolved.is_relative_to(layout.silver_dir.resolve()) or resolved.is_relative_to(layout.quarantine_dir.resolve())):
            raise PipelineError(f"{source_file}: refusing to delete {resolved}, outside the data root")
        if folder.exists():
            shutil.rmtree(folder)
    remove_staged_copies(layout, source_file)


def forget_gold(layout: DataLayout) -> None:
    """Delete the state and gold, so the next run rebuilds both from all silver."""
    delete_state(layout)
    if layout.gold_dir.exists():
        shutil.rmtree(layout.gold_dir)
