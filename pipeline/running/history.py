"""One record per run under `runs/history/`: what a data engineer compares from one night to the next.

`gold/_run.json` only ever says what the last run did, and a run's console output is gone once the
terminal closes. Each run of `run.py` leaves `<start>-<host>-<pid>.json` (the command, start and end,
the exit code, the files new / changed / gone / failed, the rows this run cleaned, the new orders and
gold's totals after it) and `<same>.log` (what it printed) beside the data, never inside gold; the
oldest beyond `[pipeline] run_history_keep` are deleted after each new one. Every file goes through
the data root's store, so a local folder and an s3:// root keep the same history. Pure: no Luigi.
"""
from __future__ import annotations

import json
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import PurePath

from pipeline.bronze.silver import FileMetrics
from pipeline.contract import REJECT_REASONS
from pipeline.storage.layout import DataLayout
from pipeline.timestamps import utc_iso

RECORD_FORMAT = 1
RECORD_SUFFIX, LOG_SUFFIX = ".json", ".log"
GOLD_TOTALS_TABLE = "region_wise_performance"  # a few rows that sum to every order and all revenue in gold


@dataclass(frozen=True)
class SilverSnapshot:
    """Which files had silver at one instant: scanned (a manifest) and complete (a summary, with
    what changes at each write of it: a file redone by `--reprocess` is told from one left alone);
    and what gold held then."""

    scanned: frozenset[str]
    complete: dict[str, tuple]
    gold: dict | None


def silver_snapshot(layout: DataLayout) -> SilverSnapshot:
    """One listing of silver/ (on a local root a stat of each summary; no file is read) and gold's totals."""
    store, silver = layout.store, layout.silver_dir
    scanned, summaries = set(), {}
    if store.remote:  # one listing holds each object's ETag
        prefix = str(silver).rstrip("/") + "/"
        entries = {str(f.path).removeprefix(prefix): (f.size, f.etag, f.mtime_ns) for f in store.list_files(silver)}
    else:
        entries = dict.fromkeys(store.walk(silver))
    for relative, version in entries.items():
        folder, _, name = relative.rpartition("/")
        if name == "_manifest.json":
            scanned.add(folder)
        elif name == "_file_metrics.json":
            if version is None:
                stat = store.stat(silver / relative)
                version = None if stat is None else (stat.size, stat.mtime_ns, stat.ctime_ns, stat.inode)
            if version is not None:
                summaries[folder] = version
    return SilverSnapshot(frozenset(scanned), summaries, gold_totals(layout))


@dataclass(frozen=True)
class Outcome:
    """What one run changed, from silver before and after it and what it was told."""

    new: list[str]  # first ingested by this run (no silver before, complete silver now)
    cleaned: list[str]  # silver completed by this run: the new files, and any redone or resumed
    changed: list[str]  # changed since ingested: refused until `--reprocess`
    gone: list[str]  # ingested earlier, no longer under bronze/
    failed: list[str]  # could not be read or cleaned by this run
    rows_read: int
    rows_valid: int
    rows_rejected: dict[str, int]
    new_orders: int  # gold's orders after the run less those before it (a rebuilt state merges all again)
    gold: dict | None  # gold's totals after the run: `orders`, `total_revenue` (exact decimal text)


def outcome_of(layout: DataLayout, before: SilverSnapshot, present: Sequence[str], changed: Iterable[str],
               failed: Iterable[str], after: SilverSnapshot | None = None) -> Outcome:
    """Compare silver now (`after`, when the caller knows it: `before` for a run that changed
    nothing) with `before`; read the summaries of the files this run completed."""
    from pipeline.bronze.discovery import natural_key

    after = after or silver_snapshot(layout)
    cleaned = sorted((name for name, version in after.complete.items() if before.complete.get(name) != version), key=natural_key)
    rows_read = rows_valid = 0
    rejected = {reason: 0 for reason in REJECT_REASONS}
    for name in cleaned:
        metrics = FileMetrics.from_json(layout.store.read_text(layout.file_summary_path(name)))
        rows_read += metrics.rows_read
        rows_valid += metrics.rows_valid
        for reason, count in metrics.rows_rejected.items():
            rejected[reason] = rejected.get(reason, 0) + count
    now = set(present)
    changed_set = set(changed)
    gold = gold_totals(layout)
    orders_before = before.gold["orders"] if before.gold else 0
    return Outcome(
        new=[name for name in cleaned if name not in before.scanned],
        cleaned=cleaned,
        changed=sorted(changed_set, key=natural_key),
        gone=sorted(after.scanned - now, key=natural_key),
        failed=sorted(set(failed) - changed_set, key=natural_key),
        rows_read=rows_read, rows_valid=rows_valid, rows_rejected=rejected,
        new_orders=max((gold["orders"] if gold else 0) - orders_before, 0), gold=gold,
    )


def changed_files(layout: DataLayout, names: Iterable[str]) -> list[str]:
    """Of `names` (the few files a run set aside), those whose bytes changed since they were ingested."""
    from pipeline.bronze.silver import read_manifest
    from pipeline.storage.fingerprint import unchanged_since

    changed = []
    for name in names:
        manifest = layout.manifest_path(name)
        try:
            if layout.store.exists(manifest) and not unchanged_since(layout.store, layout.bronze_dir / name,
                                                                     read_manifest(layout.store, manifest).fingerprint):
                changed.append(name)
        except (OSError, ValueError, KeyError, TypeError):
            continue  # an unreadable manifest: the file failed, it is not known to have changed
    return changed


def gold_totals(layout: DataLayout) -> dict | None:
    """Orders and total revenue that gold holds now (exact), or None when there is no readable gold."""
    path = layout.gold_table_path(GOLD_TOTALS_TABLE)
    try:
        table = layout.store.read_parquet(path, columns=["order_count", "total_revenue"])
    except (OSError, ValueError, KeyError):
        return None
    orders = sum(int(v) for v in table.column("order_count").to_pylist() if v is not None)
    revenue = sum((Decimal(v) for v in table.column("total_revenue").to_pylist() if v is not None), Decimal(0))
    return {"orders": orders, "total_revenue": str(revenue)}


@dataclass(frozen=True)
class RunId:
    """Who ran and when: the record's name."""

    started_at: float
    host: str
    pid: int

    @property
    def name(self) -> str:
        """`20261125T031500.123Z-host-4242`: sorts by start, unique per process."""
        stamp = utc_iso(self.started_at).replace("-", "").replace(":", "")
        host = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.host)
        return f"{stamp}-{host}-{self.pid}"


def this_run(started_at: float) -> RunId:
    import os

    return RunId(started_at, socket.gethostname(), os.getpid())


def build_record(run: RunId, command: Sequence[str], data_root: str, ended_at: float, exit_code: int,
                 outcome: Outcome | None, failures: Sequence[str], not_read: Sequence[str], error: str | None) -> dict:
    name, started_at = run.name, run.started_at
    record: dict = {
        "format": RECORD_FORMAT, "name": name, "command": list(command), "data_root": data_root,
        "host": run.host, "pid": run.pid,
        "started_at": utc_iso(started_at), "ended_at": utc_iso(ended_at), "seconds": round(ended_at - started_at, 3),
        "exit_code": exit_code, "ok": exit_code == 0, "error": error,
        "failures": list(failures), "not_read": list(not_read), "log": name + LOG_SUFFIX,
    }
    if outcome is None:  # stopped before its outcome could be read (e.g. the data root went away)
        record.update(files=None, rows=None, new_orders=None, gold=None)
        return record
    record.update(
        files={"new": outcome.new, "changed": outcome.changed, "gone": outcome.gone, "failed": outcome.failed,
               "cleaned": outcome.cleaned},
        rows={"read": outcome.rows_read, "valid": outcome.rows_valid, "rejected": outcome.rows_rejected},
        new_orders=outcome.new_orders, gold=outcome.gold)
    return record


def write_record(layout: DataLayout, record: dict, log_text: str, keep: int) -> PurePath:
    """The log first, then the record (a record always has its log), then the oldest beyond `keep` go."""
    folder = layout.run_history_dir
    layout.store.write_text(folder / record["log"], log_text)
    path = folder / (record["name"] + RECORD_SUFFIX)
    layout.store.write_text(path, json.dumps(record, indent=1, sort_keys=True) + "\n")
    names = record_names(layout)
    for old in names[:max(len(names) - keep, 0)]:
        layout.store.delete(folder / (old + RECORD_SUFFIX))
        layout.store.delete(folder / (old + LOG_SUFFIX))
    return path


def record_names(layout: DataLayout) -> list[str]:
    """Names of the records kept, oldest first."""
    files = layout.store.list_files(layout.run_history_dir, recursive=False)
    return sorted(f.path.name.removesuffix(RECORD_SUFFIX) for f in files if f.path.name.endswith(RECORD_SUFFIX))


def read_records(layout: DataLayout) -> tuple[list[dict], list[str]]:
    """Every record, oldest first, and one line per record that cannot be read."""
    records, unreadable = [], []
    for name in record_names(layout):
        path = layout.run_history_dir / (name + RECORD_SUFFIX)
        try:
            record = json.loads(layout.store.read_text(path))
            record["started_at"], record["exit_code"]  # noqa: B018 - both must be there
        except FileNotFoundError:
            continue  # deleted by another run's retention since the listing
        except (ValueError, KeyError, TypeError) as err:
            unreadable.append(f"{path}: unreadable run record ({type(err).__name__}); delete it")
            continue
        records.append(record)
    records.sort(key=lambda r: (r["started_at"], r.get("name", "")))
    return records, unreadable


def _count(record: dict, kind: str) -> str:
    files = record.get("files")
    return "-" if files is None else str(len(files.get(kind, [])))


def _number(value: object) -> str:
    return "-" if value is None else f"{value:,}" if isinstance(value, int) else str(value)


def history_table(records: Sequence[dict]) -> list[str]:
    """One line per run, newest last: when, how it ended, files, rows, orders, gold after it, command."""
    header = ("started (UTC)", "exit", "seconds", "new", "changed", "gone", "failed", "rows read", "valid", "rejected",
              "new orders", "gold orders", "gold revenue", "command")
    rows = [header]
    for r in records:
        rows_of = r.get("rows") or {}
        rejected = sum((rows_of.get("rejected") or {}).values()) if rows_of else None
        gold = r.get("gold") or {}
        rows.append((
            str(r["started_at"]).replace("T", " ")[:19], str(r["exit_code"]), f"{float(r.get('seconds') or 0):.1f}",
            _count(r, "new"), _count(r, "changed"), _count(r, "gone"), _count(r, "failed"),
            _number(rows_of.get("read")), _number(rows_of.get("valid")), _number(rejected), _number(r.get("new_orders")),
            _number(gold.get("orders")), f"{Decimal(gold['total_revenue']):,}" if gold.get("total_revenue") else "-",
            " ".join(r.get("command") or []),
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) if i in (0, len(widths)) else cell.rjust(width) for i, (cell, width) in enumerate(zip(row, widths))]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return lines


def summary_lines(outcome: Outcome, limit: int = 10) -> list[str]:
    """What the end of a run's summary adds: the files new to silver, and what gold holds now."""
    lines = []
    if outcome.new:
        shown = ", ".join(outcome.new[:limit]) + (f" and {len(outcome.new) - limit} more" if len(outcome.new) > limit else "")
        lines.append(f"new files: {len(outcome.new)} ({shown})")
    else:
        lines.append("new files: none")
    if outcome.gold is None:
        lines.append("gold: none yet")
    else:
        lines.append(f"gold now holds {outcome.gold['orders']:,} orders, total revenue {Decimal(outcome.gold['total_revenue']):,}"
                     f" ({outcome.new_orders:,} new from this run)")
    return lines
