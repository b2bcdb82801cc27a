"""The run journal: one JSON line per event that a run's own tasks report (a chunk cleaned, a group
of small files cleaned, gold merged, a task failed, a file's work settled on its failure, the files
gold was built without).

Why: the summary, the live progress line and `--json` must speak only of this run's work, also when
another run or another host works on the same data root at the same time; files' modification
times cannot tell whose work they are. The run names its journal in the environment, which every
task process and warm worker inherits; an append of one short line is atomic (O_APPEND).
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from pipeline.storage.layout import JOURNAL_PREFIX, JOURNAL_SUFFIX

JOURNAL_ENV = "PIPELINE_RUN_JOURNAL"
CHUNK, SMALL_FILES, GOLD_STARTED, GOLD, FAILED = "chunk", "small_files", "gold_started", "gold", "failed"
# a piece of bronze work whose file(s) failed counts as complete for the rest of the run; gold was
# built without these files
SETTLED, LEFT_OUT = "settled", "left_out"


def start_journal(runs_dir: Path) -> Path:
    """A new, empty journal for one run, named in the environment for its tasks."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=JOURNAL_PREFIX, suffix=JOURNAL_SUFFIX, dir=runs_dir)
    os.close(fd)
    os.environ[JOURNAL_ENV] = name
    return Path(name)


def record(event: str, **fields: object) -> None:
    """Append one event to the current run's journal; nothing when no run keeps one (a plain
    `luigi` command, a test calling a task directly)."""
    target = os.environ.get(JOURNAL_ENV)
    if not target:
        return
    line = json.dumps({"event": event, **fields}, sort_keys=True) + "\n"
    with open(target, "a", encoding="utf-8") as handle:
        handle.write(line)


def read_journal(path: Path) -> list[dict]:
    """Every complete event so far (a line being appended right now is left for the next read)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.split("\n")[:-1] if line.strip()]
