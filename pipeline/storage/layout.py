"""Where every layer lives under the data root: the one place that names files."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePath

from pipeline.storage.store import Store, open_store

STATE_FILE = "gold_state.sqlite"  # the Silver -> Gold state (SQLite; -wal and -shm beside it)
JOURNAL_PREFIX, JOURNAL_SUFFIX = "journal-", ".jsonl"  # a live run's own journal under runs/
GOLD_RUN_FILE = "_silver_to_gold_run.json"  # beside gold: the last Silver -> Gold's record
RUN_RECORD_FILE = "_run.json"  # beside gold: what the root task records of the run the report belongs to


@dataclass(frozen=True)
class DataLayout:
    """Paths of bronze, silver, quarantine, state, gold and report under one data root.

    Silver and quarantine mirror the bronze path (hive folders such as `date=...` included), one
    folder per bronze file, one part per chunk: `silver/<bronze path>/part-00001.parquet`.
    """

    root: PurePath  # a local folder (Path), or an object root (store.ObjectPath, `s3://bucket/prefix`)
    state: Path | None = None  # the Silver -> Gold state's folder, when not the default (`[pipeline] state_dir`)
    store: Store = field(default=None, compare=False, repr=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.store is None:
            object.__setattr__(self, "store", open_store(self.root))
            object.__setattr__(self, "root", self.store.root)

    @classmethod
    def of(cls, data_root: str | PurePath, state_dir: str = "") -> DataLayout:
        return cls(open_store(data_root).root, Path(state_dir) if state_dir else None)

    @property
    def uri(self) -> str:
        """The data root as a user writes it (`/data/x`, `s3://bucket/prefix`): task parameters, messages."""
        return str(self.root)

    @property
    def remote(self) -> bool:
        return self.store.remote

    @property
    def bronze_dir(self) -> PurePath:
        return self.root / "bronze"

    @property
    def silver_dir(self) -> PurePath:
        return self.root / "silver"

    @property
    def quarantine_dir(self) -> PurePath:
        return self.root / "quarantine"

    @property
    def state_dir(self) -> Path:
        """Always on this host's disk (SQLite must not live on a network file system or object
        storage): `<root>/state` for a local root; for an object root `$XDG_STATE_HOME` (default
        `~/.local/state`) `/sales-pipeline/s3/<bucket>/<prefix>`, unless `[pipeline] state_dir` says."""
        if self.state is not None:
            return self.state
        if not self.remote:
            return Path(self.root) / "state"
        base = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
        return base / "sales-pipeline" / "s3" / self.root.as_posix()

    @property
    def scratch_dir(self) -> Path:
        """This host's own working files (a run's journal, the work locks, staged copies of
        compressed bronze): in the data root when it is a local folder, beside the state otherwise."""
        return Path(self.root) if not self.remote else self.state_dir / "scratch"

    @property
    def gold_dir(self) -> PurePath:
        return self.root / "gold"

    @property
    def orders_dir(self) -> PurePath:
        """gold/orders/: the order-level dataset, partitioned by month (pipeline.gold.orders)."""
        return self.gold_dir / "orders"

    @property
    def report_dir(self) -> PurePath:
        return self.root / "report"

    @property
    def runs_dir(self) -> PurePath:
        return self.root / "runs"

    @property
    def run_history_dir(self) -> PurePath:
        """One record (`<start>-<host>-<pid>.json`) and log (`.log`) per run (pipeline.running.history):
        run metadata beside the data, never inside gold."""
        return self.runs_dir / "history"

    def silver_file_dir(self, source_file: str) -> PurePath:
        return self.silver_dir / source_file

    def manifest_path(self, source_file: str) -> PurePath:
        return self.silver_file_dir(source_file) / "_manifest.json"

    def file_summary_path(self, source_file: str) -> PurePath:
        return self.silver_file_dir(source_file) / "_file_metrics.json"

    def silver_part_path(self, source_file: str, chunk: int) -> PurePath:
        return self.silver_file_dir(source_file) / f"part-{chunk + 1:05d}.parquet"

    def chunk_metrics_path(self, source_file: str, chunk: int) -> PurePath:
        return self.silver_file_dir(source_file) / f"part-{chunk + 1:05d}.metrics.json"

    def quarantine_part_path(self, source_file: str, chunk: int) -> PurePath:
        return self.quarantine_dir / source_file / f"part-{chunk + 1:05d}.parquet"

    def gold_table_path(self, table: str) -> PurePath:
        return self.gold_dir / f"{table}.parquet"

    def published_marker_path(self, inputs: str) -> PurePath:
        """The marker of a gold publication for exactly the inputs with digest `inputs`."""
        return self.gold_dir / f"_published-{inputs}.json"

    def published_markers(self) -> list[PurePath]:
        return self._named(self.gold_dir, "_published-", ".json")

    @property
    def gold_lock_path(self) -> PurePath:
        """Held by whoever writes state or gold, reads gold for the report, or runs a maintenance
        command. In the data root itself, never inside a folder a command deletes (a lock file
        deleted while held would let a second holder in)."""
        return self.root / "_gold.lock"

    def work_lock_path(self, source_file: str) -> Path:
        """One lock file per bronze file, a byte of it per piece of work (scan, chunk): two runs on
        one data root wait for each other's pieces instead of doing them twice (locking.claim_work)."""
        import hashlib

        return self.scratch_dir / "runs" / "locks" / f"{hashlib.sha1(source_file.encode()).hexdigest()[:20]}.lock"

    @property
    def gold_owner_path(self) -> PurePath:
        """Which Silver -> Gold state (and host) owns gold; in the data root, seen by every host."""
        return self.root / "_gold_owner.json"

    @property
    def state_file_path(self) -> Path:
        return self.state_dir / STATE_FILE

    def state_files(self) -> list[Path]:
        """The state and SQLite's write-ahead log and shared memory beside it."""
        return [self.state_dir / f"{STATE_FILE}{suffix}" for suffix in ("", "-wal", "-shm")]

    @property
    def run_record_path(self) -> PurePath:
        """What run.py records about the run for the report's run section (beside gold, never in it)."""
        return self.gold_dir / RUN_RECORD_FILE

    def rendered_marker_path(self, inputs: str) -> PurePath:
        """The marker of a report rendered for the gold of the inputs with digest `inputs`."""
        return self.report_dir / f"_rendered-{inputs}.json"

    def rendered_markers(self) -> list[PurePath]:
        return self._named(self.report_dir, "_rendered-", ".json")

    def _named(self, folder: PurePath, prefix: str, suffix: str) -> list[PurePath]:
        """The files directly in `folder` named `<prefix>...<suffix>`, sorted."""
        return sorted(f.path for f in self.store.list_files(folder, recursive=False)
                      if f.path.name.startswith(prefix) and f.path.name.endswith(suffix))

    @property
    def journal_dir(self) -> Path:
        """Where this host's runs keep their journals (pipeline.storage.journal)."""
        return self.scratch_dir / "runs"

    def journals(self) -> list[Path]:
        folder = self.journal_dir
        return sorted(folder.glob(f"{JOURNAL_PREFIX}*{JOURNAL_SUFFIX}")) if folder.is_dir() else []

    @property
    def state_id_path(self) -> Path:
        return self.state_dir / "state_id"

    @property
    def reprocess_all_marker_path(self) -> PurePath:
        """A --reprocess-all whose run has not finished yet: the same command again resumes it."""
        return self.runs_dir / "reprocess-all.json"

    def files_list_path(self, digest: str) -> PurePath:
        """A list of bronze files a task works on, named by its digest: task parameters stay small."""
        return self.runs_dir / f"files-{digest}.json"

    @property
    def silver_settings_path(self) -> PurePath:
        """The settings every silver part under `silver/` was cleaned with (pipeline.running.silver_settings)."""
        return self.silver_dir / "_settings.json"

    @property
    def gold_run_path(self) -> PurePath:
        """Metadata of the last Silver -> Gold (beside gold, never inside a table)."""
        return self.gold_dir / GOLD_RUN_FILE

    def ingested_files(self) -> list[str]:
        """Relative paths of bronze files with silver on disk (a manifest), whatever bronze holds now."""
        return self.walk_silver()[0]

    def walk_silver(self, temp_prefix: str = ".tmp-") -> tuple[list[str], list[PurePath]]:
        """One walk of silver/ (20,000 folders at 20,000 files): the ingested files, and the
        temporary files of atomic writes found on the way."""
        ingested, temps = [], []
        for relative in self.store.walk(self.silver_dir):
            folder, _, name = relative.rpartition("/")
            if name == "_manifest.json":
                ingested.append(folder)
            elif name.startswith(temp_prefix):
                temps.append(self.silver_dir / relative)
        return ingested, temps

    @property
    def report_path(self) -> PurePath:
        return self.report_dir / "index.html"

    @property
    def staging_dir(self) -> Path:
        """Plain copies of compressed bronze files while they are ingested (pipeline.bronze.compressed),
        always on this host's disk: outside bronze/, so a staged copy is never discovered as input."""
        return self.scratch_dir / "staging"

    def staged_copy_path(self, source_file: str, version: str) -> Path:
        """The staged plain copy of the compressed bronze file `source_file` as it was when its
        compressed bytes had `version` (their size and CRC-32): a copy of another version of the
        file is never read as this one. One flat folder: removing a copy leaves no empty folders."""
        return self.staging_dir / f"{self._staged_prefix(source_file)}{version}.csv"

    def staged_copies(self, source_file: str) -> list[Path]:
        """Every staged copy of `source_file`, whatever its version (temporary files left out)."""
        prefix = self._staged_prefix(source_file)
        if not self.staging_dir.is_dir():
            return []
        return [path for path in self.staging_dir.iterdir() if path.name.startswith(prefix) and path.name.endswith(".csv")]

    @staticmethod
    def _staged_prefix(source_file: str) -> str:
        """`<file name>.<digest of the relative path>.`: readable, unique per bronze path, and short
        enough for a file name whatever the depth of the bronze path."""
        import hashlib

        digest = hashlib.blake2b(source_file.encode("utf-8"), digest_size=5).hexdigest()
        return f"{source_file.rsplit('/', 1)[-1][:120]}.{digest}."
