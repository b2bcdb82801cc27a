"""Tiny Luigi tasks that exercise each reach of tasks/luigi_private.py (tests/test_luigi_native.py),
run in the test's process or by `luigi --module tests.luigi_probe ...` in another one."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import luigi

from tasks import luigi_private

PROBE_ENV = "PIPELINE_LUIGI_PROBE"  # a folder the probe tasks write what they saw into


def _seen(name: str, value: object) -> None:
    Path(os.environ[PROBE_ENV], f"{name}.json").write_text(json.dumps(value))


class ProbeTarget(luigi.Task):
    """Done when its file exists; `seconds` of work first (another worker waits for it meanwhile)."""

    name = luigi.Parameter()
    seconds = luigi.FloatParameter(default=0.0)

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(str(Path(os.environ[PROBE_ENV], f"{self.name}.done")))

    def run(self) -> None:
        _seen(f"{self.name}-process", {"task_process": luigi_private.in_task_process(),
                                       "has_scheduler": luigi_private.scheduler_of(self) is not None})
        time.sleep(float(self.seconds))
        Path(self.output().path).write_text("done")


class ProbeRoot(luigi.Task):
    """Requires one ProbeTarget; done when that one is."""

    name = luigi.Parameter(default="target")
    seconds = luigi.FloatParameter(default=0.0)

    def requires(self) -> ProbeTarget:
        return ProbeTarget(name=self.name, seconds=self.seconds)

    def complete(self) -> bool:
        return self.requires().complete()


class ProbeFails(luigi.Task):
    def complete(self) -> bool:
        return False

    def run(self) -> None:
        raise RuntimeError("a probe that fails")


class ProbeCannotSchedule(luigi.Task):
    def complete(self) -> bool:
        return False

    def requires(self) -> list[luigi.Task]:
        raise RuntimeError("a probe whose requires() fails")


class ProbeVanishing(luigi.Task):
    """Complete when it is first asked (while scheduling), then no longer (when its dependent runs)."""

    def complete(self) -> bool:
        path = Path(os.environ[PROBE_ENV], "vanishing-asked")
        asked = path.exists()
        path.write_text("asked")
        return not asked


class ProbeNeedsVanishing(luigi.Task):
    def requires(self) -> ProbeVanishing:
        return ProbeVanishing()

    def complete(self) -> bool:
        return False

    def on_failure(self, exception: BaseException) -> str:
        _seen("vanished", luigi_private.dependency_vanished(self, exception))
        return super().on_failure(exception)
