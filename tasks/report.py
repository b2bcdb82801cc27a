"""The Report task: render gold into data/report/index.html after Silver -> Gold."""
from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import luigi

from pipeline.gold.owner import refuse_unless_gold_owner
from pipeline.gold.step import GOLD_LOCK_WAIT_SECONDS
from pipeline.settings import Settings
from pipeline.storage.layout import DataLayout
from reports.gold_data import gold_fingerprint
from tasks import warm_workers
from tasks.base import PipelineTask
from tasks.gold import SilverToGold
from tasks.targets import StoreTarget

REPORT_WORKER_ENV = "PIPELINE_REPORT_WORKER"


@contextlib.contextmanager
def report_worker() -> Iterator[None]:
    """One warm worker for the report, which imports matplotlib and the charts as the run starts
    (0.25 s, on CPU the run leaves idle) instead of when the report is due, at the end of the run
    (bench/README.md, "The report's worker"). Not a daemon: it forks the drawing processes."""
    with warm_workers.worker_pool(REPORT_WORKER_ENV, 1, "report-worker", prepare="reports.render", daemon=False):
        yield


def render(layout: DataLayout, settings: Settings) -> None:
    """Render gold into the report page, in the report's warm worker when the run started one."""
    from reports.render import load_run_info, write_report  # matplotlib: only where the page is drawn

    write_report(layout.gold_dir, layout.report_path, load_run_info(layout.gold_dir, layout.store),
                 settings.rejected_share_warning, settings.dedup_key, layout.store, settings.default_region)


class Report(PipelineTask):
    """Render the report from gold only (never silver).

    The marker names the inputs digest and records which gold files it rendered, so a page from
    an earlier run, or from gold rebuilt since, never counts as done.
    """

    inputs = luigi.Parameter(description="digest of the inputs and gold settings (see tasks.gold.SilverToGold)")

    def requires(self) -> SilverToGold:
        return SilverToGold(data_root=self.data_root, inputs=self.inputs)

    def output(self) -> StoreTarget:
        return StoreTarget(self.layout.store, self.layout.rendered_marker_path(str(self.inputs)))

    def complete(self) -> bool:
        """Rendered from today's gold, and that gold is published for today's inputs (a --reprocess
        or --forget unpublishes it while the tables stay, so the page alone cannot tell)."""
        if self.__dict__.pop("rendered_here", False):  # the check right after run(): see SilverToGold.complete
            return True
        marker, store = self.output().path, self.layout.store
        if not (store.exists(marker) and store.exists(self.layout.report_path) and self.requires().complete()):
            return False
        try:
            rendered = json.loads(store.read_text(marker)).get("gold")
        except (ValueError, FileNotFoundError):
            return False
        return rendered == gold_fingerprint(self.layout.gold_dir, store)

    def work(self) -> None:
        layout = self.layout
        refuse_unless_gold_owner(layout)
        # The gold lock: a concurrent Silver -> Gold cannot swap tables while the page reads them.
        with layout.store.exclusive_lock(layout.gold_lock_path, f"report of {layout.root}", GOLD_LOCK_WAIT_SECONDS):
            self.report_progress(0, "rendering the report from gold")
            fingerprint = gold_fingerprint(layout.gold_dir, layout.store)
            warm_workers.call("the report", render, layout, self.settings, pool=REPORT_WORKER_ENV)
            for old in layout.rendered_markers():
                layout.store.delete(old)
            marker = {"inputs": self.inputs, "gold": fingerprint, "report": layout.report_path.name}
            layout.store.write_text(self.output().path, json.dumps(marker, indent=1, sort_keys=True))
            self.report_progress(100, f"report written to {layout.report_path}")
        self.rendered_here = True
