"""The root task: one whole run on one data root, up to a layer.

Both entry points are this task: `luigi --module tasks Pipeline --data-root D [--workers N]
--local-scheduler` and `python run.py --data-root D [--workers N]` (which runs that same command
line in its own process, then prints a summary) write the same outputs and exit with the same code.
The whole run's policy is here, in Luigi's terms:

1. **Plan** (the first time Luigi asks whether the root is complete, before anything is
   scheduled): every folder the run writes can be written, the settings silver was cleaned with,
   temp files of killed writers, changed, gone and unreadable files set aside, who builds gold,
   the run's journal. A plan that refuses (settings, input, the machine) makes `complete()` raise:
   Luigi's scheduling error, exit 2 through luigi.cfg's [retcode]. Nothing to do: complete, exit 0.
2. **Silver** of every file that can run, as the root's requirement. A file that fails fails
   alone (its work settles: tasks.failures), so the requirement is met with the others' silver.
3. **Gold or the report**, as a dynamic dependency, without the files that failed in step 2:
   what a run over the other files alone gives (a fixed file is merged in input order later).
4. **The verdict**: the root fails (exit 1) while a file could not run or failed, each said once
   as a FAILED line; else a `--reprocess-all` is finished.

A machine problem in a task stops the run with exit 2 instead (tasks.failures). Against a shared
luigid, tasks that other workers hold are waited for (luigi_private.wait_for_other_workers).
"""
from __future__ import annotations

import atexit
import json
import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import luigi
import luigi.interface

from pipeline.errors import PipelineError
from pipeline.gold.owner import claim, not_owner_note
from pipeline.running.maintenance import finish_reprocess_all
from pipeline.running.preflight import RunPlan, discover_inputs, ensure_writable, gold_digest, plan_run, write_files_list
from pipeline.storage import journal
from pipeline.timestamps import utc_iso
from tasks import luigi_private
from tasks.base import PipelineTask
from tasks.failures import failure_lines, settled_files
from tasks.graph import AllBronzeToSilver, top_task

LAYERS = ("silver", "gold", "report")
REMOTE_POLL_SECONDS = 3.0
# The root is this invocation's own task: its plan (who builds gold, which files failed here) is this
# host's, so two runs sharing a luigid must never be handed each other's root. The work below it
# (chunks, Silver -> Gold, the report) keeps ids shared by every run, so it is done once.
THIS_RUN = f"{socket.gethostname()}-{os.getpid()}-{int(time.time())}"

log = logging.getLogger("pipeline")


@dataclass(frozen=True)
class RootPlan:
    run: RunPlan
    layer: str  # the layer this run builds up to: `until`, or silver where another host builds gold
    silver: AllBronzeToSilver  # the silver of every file that can run
    top: luigi.Task  # the task whose completion means the run reached `layer`
    notes: list[str]  # lines for the person running it (e.g. who builds gold)
    journal: Path  # this run's journal (pipeline.storage.journal)
    started_at: float


class Pipeline(PipelineTask):
    """Bronze -> silver -> gold -> report for every pending file of `data_root` (see the module)."""

    until = luigi.ChoiceParameter(choices=LAYERS, default="report", description="the last layer to build")
    invocation = luigi.Parameter(default=THIS_RUN, description="this invocation (host-pid-start): each run has its own root")

    def plan(self) -> RootPlan:
        cached = getattr(self, "_plan", None)
        if cached is None:
            cached = self._plan = self._make_plan()
        return cached

    def _make_plan(self) -> RootPlan:
        layout, settings, data_root = self.layout, self.settings, str(self.data_root)
        ensure_writable(layout, str(self.until))
        files, refused = discover_inputs(layout, settings)
        plan = plan_run(layout, settings, files, refused)
        layer, notes = str(self.until), []
        if layer != "silver" and plan.gold_files:
            ownership = claim(layout)
            if not ownership.ours:
                notes.append(not_owner_note(layout, ownership))
                layer = "silver"
        for note in notes:
            log.info(note)
        silver_files = write_files_list(layout, [f.relative_path for f in plan.runnable])
        inputs = write_files_list(layout, plan.gold_files, gold_digest(layout, plan.gold_files, plan.runnable, settings))
        silver = AllBronzeToSilver(data_root=data_root, files=silver_files)
        top = top_task(layer, data_root, silver_files, inputs)
        if not plan.errors and top.complete():
            finish_reprocess_all(layout)  # the run after a --reprocess-all found it all done
        return RootPlan(plan, layer, silver, top, notes, _start_journal(layout), time.time())

    def requires(self) -> AllBronzeToSilver:
        return self.plan().silver

    def complete(self) -> bool:
        # Luigi checks complete() right after run(): a maintenance command or another host may have
        # changed gold in between, which is no failure of this run's tasks (run.py's summary says
        # so, exit 1), never "complete() is still returning false" with a traceback. That one check,
        # and only it, takes what run() just finished (as SilverToGold and Report do).
        if self.__dict__.pop("finished_here", False):
            return True
        plan = self.plan()
        return not plan.run.errors and plan.top.complete()

    def work(self):  # a generator: gold (or the report) is a dynamic dependency
        plan = self.plan()
        top = self._gold_top(plan)
        if top is not None:
            if not top.complete():
                self._record_run(plan)
            yield top
        lines = plan.run.errors + failure_lines(self.failures())
        if lines:
            more = f" (and {len(lines) - 1} more)" if len(lines) > 1 else ""
            raise PipelineError(f"the run has {len(lines)} problem(s): {lines[0]}{more}")
        finish_reprocess_all(self.layout)
        self.finished_here = True

    def failures(self) -> list[dict]:
        """This run's failures, each as journaled; the root's own failure repeats them and is not one."""
        events = journal.read_journal(self.plan().journal)
        return [e for e in events if e["event"] == journal.FAILED and not e["task"].startswith(self.get_task_family())]

    def _gold_top(self, plan: RootPlan) -> luigi.Task | None:
        """Gold (or the report) of the files that did not fail; None when this run builds no gold."""
        if plan.layer == "silver" or not plan.run.gold_files:
            return None
        failed = settled_files(journal.read_journal(plan.journal))
        if not failed:
            return plan.top
        # One failing file must not withhold gold for the others: gold without it is what a run on
        # the other files alone gives, and the file is merged in input order once fixed.
        layout, settings = self.layout, self.settings
        gold_files = [f for f in plan.run.gold_files if f not in failed]
        if not gold_files:
            return None
        inputs = write_files_list(layout, gold_files, gold_digest(layout, gold_files, plan.run.runnable, settings))
        top = top_task(plan.layer, str(self.data_root), str(plan.silver.files), inputs)
        if not top.complete():
            log.info(f"building gold without the {len(failed)} file(s) that failed: {', '.join(failed)}")
            journal.record(journal.LEFT_OUT, files=failed)
        return top

    def _record_run(self, plan: RootPlan) -> None:
        """gold/_run.json: what the report's run section says about this run (the report is
        rendered before the run ends), and the FAILED lines known by now, for the report's files
        needing attention: files that could not run (changed, gone, unreadable, refused) and
        files whose silver failed in this run (gold is built without them)."""
        core = luigi.interface.core()
        scheduler = "local" if core.local_scheduler else (core.scheduler_url or f"{core.scheduler_host}:{core.scheduler_port}")
        record = {"started_at": utc_iso(plan.started_at), "workers": core.workers, "scheduler": scheduler,
                  "bronze_files": len(plan.run.runnable), "files_not_run": list(plan.run.errors),
                  "files_failed": failure_lines(self.failures())}
        self.layout.store.write_text(self.layout.run_record_path, json.dumps(record, indent=1, sort_keys=True))


_JOURNALS: list[tuple[int, Path]] = []  # (process, journal) of the runs this process started


def _start_journal(layout) -> Path:
    """A journal for the run, named in the environment that its task processes inherit; removed
    when this process ends (after run.py's summary has read it), also when interrupted."""
    path = journal.start_journal(layout.journal_dir)
    _JOURNALS.append((os.getpid(), path))
    return path


@atexit.register
def _remove_journals() -> None:
    for pid, path in _JOURNALS:
        if pid == os.getpid():  # never a process forked from the run
            path.unlink(missing_ok=True)


luigi_private.wait_for_other_workers(REMOTE_POLL_SECONDS, log.info)
