"""The root task: everything pending under one data root, up to a layer.

`run.py` builds it, and so can Luigi's own command:
`luigi --module tasks Pipeline --data-root D --workers 4 --local-scheduler`. It finds the bronze
files itself and runs the same checks as run.py before anything is scheduled (the settings silver
was cleaned with, temp files of killed writers, changed, gone and unreadable files).
"""
from __future__ import annotations

from dataclasses import dataclass

import luigi

from pipeline.errors import PipelineError
from pipeline.gold.owner import claim, not_owner_note
from pipeline.running.preflight import RunPlan, discover_inputs, gold_digest, plan_run, write_files_list
from tasks.base import PipelineTask
from tasks.graph import top_task

LAYERS = ("silver", "gold", "report")


@dataclass(frozen=True)
class RootPlan:
    run: RunPlan
    top: luigi.Task
    notes: list[str]  # lines for the person running it (e.g. who builds gold)


class Pipeline(PipelineTask):
    """Bronze -> silver -> gold -> report for every pending file of `data_root`.

    Fails (exit 1 through [retcode]) when a file cannot run, after the others have run.
    """

    until = luigi.ChoiceParameter(choices=LAYERS, default="report", description="the last layer to build")
    without = luigi.ListParameter(default=(), description="files to leave out of gold (they failed in this run)")

    def plan(self) -> RootPlan:
        cached = getattr(self, "_plan", None)
        if cached is None:
            cached = self._plan = self._make_plan()
        return cached

    def _make_plan(self) -> RootPlan:
        layout, settings = self.layout, self.settings
        files, refused = discover_inputs(layout, settings)
        plan = plan_run(layout, settings, files, refused, leave_out=self.without)
        layer, notes = str(self.until), []
        if layer != "silver" and plan.gold_files:
            ownership = claim(layout)
            if not ownership.ours:
                notes.append(not_owner_note(layout, ownership))
                layer = "silver"
        silver_files = write_files_list(layout, [f.relative_path for f in plan.runnable])
        inputs = write_files_list(layout, plan.gold_files, gold_digest(layout, plan.gold_files, plan.runnable, settings))
        return RootPlan(plan, top_task(layer, str(self.data_root), silver_files, inputs), notes)

    def requires(self) -> luigi.Task:
        return self.plan().top

    def complete(self) -> bool:
        plan = self.plan()
        return not plan.run.errors and plan.top.complete()

    def run(self) -> None:
        errors = self.plan().run.errors
        if errors:
            more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
            raise PipelineError(f"{len(errors)} bronze file(s) could not run: {errors[0]}{more}")
