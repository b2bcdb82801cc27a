"""Silver -> Gold exactly once: merge new silver parts bucket by bucket into the state, then publish.

Crash safety comes from the order of commits. A batch (the next silver parts not yet merged, up
to `merge_batch_rows` valid rows) is recorded first; then every COMMIT_EVERY_BUCKETS (8) buckets
commit, in one SQLite transaction, the keys each newly saw, its aggregates and its own "done"
mark; the last commit folds the buckets into the totals and marks the batch's parts as merged. A
re-run resumes the same batch at the first bucket not done. A batch smaller than
`merge_parallel_min_rows` is merged in one pass instead (`merge_whole_batch`) and committed once,
with its end: a crash redoes it whole. Gold is published afterwards from the state alone,
idempotently (see pipeline.gold.tables).
"""
from __future__ import annotations

import contextlib
import json
import os
import queue
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePath

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.bronze.hashing import key_text
from pipeline.bronze.silver import FileMetrics, read_manifest
from pipeline.contract import GOLD_TABLES, SILVER_DICTIONARY_COLUMNS, SILVER_MEMORY_SCHEMA, SILVER_SCHEMA
from pipeline.cores import ordered_map, usable_cores
from pipeline.errors import PipelineError, StateDamaged
from pipeline.gold import state_records as records
from pipeline.gold.aggregates import AGGREGATE_INPUT_COLUMNS, GRAINS, Aggregates, aggregate_orders, sum_aggregates, top_revenue_orders
from pipeline.gold.dedup import SEEN_SCHEMA, SeenSegment, first_wins
from pipeline.gold.orders import (
    DROPPED_SCHEMA,
    PARTITION_COLUMN,
    dropped_rows,
    orders_columns,
    orders_listing,
    remove_orders,
    write_batch_orders,
)
from pipeline.gold.seen_runs import Run, merge_runs, runs_from_json, runs_to_absorb, runs_to_json
from pipeline.gold.state_records import Batch, Covers
from pipeline.gold.state_store import StateReader, StateStore, encode_hashes, encode_json, encode_table, open_state, state_path
from pipeline.gold.tables import ANOMALY_COLUMNS, build_gold_tables, covers_digest, publish, touched_keys
from pipeline.settings import Settings, gold_fingerprint, silver_fingerprint, state_values
from pipeline.storage.layout import DataLayout
from pipeline.storage.parquet_io import SINGLE_ROW_GROUP_ROWS, SilverPartReader, SmallPartPool, bytes_digest, file_digest
from pipeline.storage.store import LOCAL_FILES, Store

Progress = Callable[[int, str], None]
# Buckets committed together: each commit is a SQLite transaction with an fsync, and one per
# bucket was half of the merge's serial time (bench/README.md). A commit still holds its buckets'
# keys, aggregates and "done" marks together; a crash redoes at most this many.
COMMIT_EVERY_BUCKETS = 8
POOL_MAX_ROWS = 1_000_000  # rows of small parts held whole by one batch: bounds its memory
ANOMALY_SCHEMA = pa.schema([SILVER_SCHEMA.field(c) for c in ANOMALY_COLUMNS])


def merge_columns(key: tuple[str, ...]) -> list[str]:
    """Only what dedup, aggregation and the anomaly ranking need: the whole rows of the few anomaly
    winners are read at the end of the batch (`_anomaly_rows`), not for every order."""
    return list(dict.fromkeys([*key, "key_hash", "source_row", "revenue", *AGGREGATE_INPUT_COLUMNS]))


def merge_schema(key: tuple[str, ...]) -> pa.Schema:
    """Low-cardinality text is read as dictionaries: grouped and filtered as integers, never decoded."""
    return pa.schema([SILVER_SCHEMA.field(c).with_type(pa.dictionary(pa.int32(), pa.string())) if c in SILVER_DICTIONARY_COLUMNS
                      else SILVER_SCHEMA.field(c) for c in merge_columns(key)])


def pool_schema(key: tuple[str, ...], include_email: bool) -> pa.Schema:
    """What a batch's small parts are read as (SmallPartPool): the merge's columns and the order
    rows' (gold/orders), so each small part is read once for both."""
    merge = merge_schema(key)
    rows = [c for c in (*orders_columns(include_email), PARTITION_COLUMN) if c not in merge.names]
    return pa.schema([*merge, *(SILVER_MEMORY_SCHEMA.field(c) for c in rows)])


def candidate_schema(key: tuple[str, ...]) -> pa.Schema:
    """A bucket's anomaly candidates: enough to rank them and to find their rows again."""
    return pa.schema([SILVER_SCHEMA.field("revenue"), *(SILVER_SCHEMA.field(k) for k in key), ("part", pa.int32()),
                      ("bucket", pa.int32()), SILVER_SCHEMA.field("source_row")])


@dataclass(frozen=True)
class SilverPart:
    source_file: str
    chunk: int
    path: PurePath
    store: Store = field(compare=False, repr=False, default=LOCAL_FILES)  # the data root's, holding `path`
    copy_of: str = ""  # a local copy of this part of the data root (_batch_copies): what messages name

    @property
    def name(self) -> str:
        return f"{self.source_file}#{self.chunk + 1:05d}"


@dataclass(frozen=True)
class MergeReport:
    parts_merged: int
    rows_merged: int
    unique_orders: int
    seconds: float
    rebuilt_because: str | None = None  # why the state was rebuilt from all silver first, if it was
    # Where the merge's time goes: what only the task's own thread can do (state commits in bucket
    # order, batch set-up, folding), and the CPU seconds of the per-bucket work any core can do.
    serial_seconds: float = 0.0
    parallel_cpu_seconds: float = 0.0


def silver_parts(layout: DataLayout, source_files: list[str]) -> list[SilverPart]:
    """Every silver part of the given files (already in natural file order), chunk by chunk."""
    parts = []
    for source_file in source_files:
        path = layout.manifest_path(source_file)
        if not layout.store.exists(path):
            raise PipelineError(f"{source_file}: its silver is gone (reprocessed or forgotten by another command while this "
                                "run was going on?); run the pipeline again")
        manifest = read_manifest(layout.store, path)
        parts.extend(SilverPart(source_file, c.index, layout.silver_part_path(source_file, c.index), layout.store)
                     for c in manifest.chunks)
    return parts


def _load_aggregates(state: StateStore, prefix: str) -> Aggregates:
    return Aggregates({g.name: state.get_table(records.aggregate_key(prefix, g.name)) for g in GRAINS})


def _initial_records() -> dict[str, pa.Table]:
    """The tables a state holds from the moment it is emptied: empty totals, delta and anomalies."""
    initial: dict[str, pa.Table] = {"anomalies": ANOMALY_SCHEMA.empty_table()}
    for prefix in ("agg", "delta"):
        initial.update({records.aggregate_key(prefix, g.name): g.schema.empty_table() for g in GRAINS})
    return initial


def _store_aggregates(state: StateStore, prefix: str, aggregates: Aggregates) -> None:
    for grain in GRAINS:
        state.put_table(records.aggregate_key(prefix, grain.name), aggregates[grain.name].cast(grain.schema))


def merge_silver(layout: DataLayout, settings: Settings, parts: list[SilverPart], progress: Progress | None = None,
                 source_files: list[str] | None = None) -> MergeReport:
    """Merge every part not yet in the state, batch after batch; safe to kill and re-run at any instant.

    An interrupted batch is finished first; parts that became pending since (new files) form
    the next batch of the same run.
    """
    started = time.monotonic()
    metrics = part_metrics(layout, parts)
    checksums = {name: str(m.get("silver_crc32") or "") for name, m in metrics.items()}
    rebuilt_because = reset_stale_state(layout, settings, parts, checksums)
    if rebuilt_because and progress:
        progress(0, f"rebuilding the Silver -> Gold state from all silver: {rebuilt_because}")
    parts_merged = rows = unique = 0
    serial, parallel = time.monotonic() - started, 0.0
    while True:
        batch = _merge_one_batch(layout, settings, parts, metrics, checksums, progress, source_files)
        parts_merged, rows, unique = parts_merged + batch.parts_merged, rows + batch.rows_merged, unique + batch.unique_orders
        serial, parallel = serial + batch.serial_seconds, parallel + batch.parallel_cpu_seconds
        if batch.parts_merged == 0:
            return MergeReport(parts_merged, rows, unique, time.monotonic() - started, rebuilt_because, serial, parallel)


def part_metrics(layout: DataLayout, parts: list[SilverPart]) -> dict[str, dict]:
    """name -> the metrics recorded when the part was written ({} for a part not written yet), read
    once per merge: the state check, the batch sizes and the checksum check all use them."""
    metrics = {}
    for part in parts:
        path = layout.chunk_metrics_path(part.source_file, part.chunk)
        try:
            metrics[part.name] = json.loads(layout.store.read_text(path))
        except FileNotFoundError:
            metrics[part.name] = {}
        except ValueError:
            raise PipelineError(f"{path} is corrupt; run `python run.py --reprocess {part.source_file}`") from None
    return metrics


def stale_state_reason(merged: dict[str, str], batch: list[str] | None, recorded: object, expected: dict,
                       parts: list[SilverPart], checksums: dict[str, str]) -> str | None:
    """Why a state cannot be continued (so it must be rebuilt from all silver), or None.

    The state is only ever extended in input order, so it is valid exactly when the parts it
    merged are the first parts of today's input order with the same bytes, the settings it
    depends on are today's, and an interrupted batch holds the parts that come next. Anything
    else (a file that sorts before merged ones arrived late, merged silver was redone or removed,
    `anomaly_top_n` changed) would give gold that a from-scratch run would not: rebuilding is
    what makes "first" mean input order whatever the order of arrival.
    """
    if recorded is None:
        return None if not merged and not batch else "the state has no record of its settings"
    if recorded != expected:
        from pipeline.settings import describe_changes

        return f"settings it depends on changed ({describe_changes(recorded, expected)})"  # type: ignore[arg-type]
    names = [p.name for p in parts]
    head = names[: len(merged)]
    for name in head:
        if name not in merged:
            late = next(p for p in parts if p.name == name)
            return f"{late.source_file} sorts before files already merged (first wins in input order)"
        if merged[name] and merged[name] != checksums.get(name):
            return f"silver part {name} changed since it was merged"
    gone = sorted(set(merged) - set(head))
    if gone:
        return f"silver part {gone[0]} was merged but is no longer an input"
    if batch is not None and batch != names[len(merged): len(merged) + len(batch)]:
        return "the interrupted merge was of other parts than those now next in input order"
    return None


def reset_stale_state(layout: DataLayout, settings: Settings, parts: list[SilverPart], checksums: dict[str, str]) -> str | None:
    """Empty the state (one transaction) when it cannot be continued; return the reason, or None."""
    expected = state_values(settings)
    with open_state(layout.state_dir) as state:
        records.check_format(state)
        reason = None
        if not records.is_new(state):
            batch = records.read_batch(state)
            reason = stale_state_reason(records.read_merged_parts(state), list(batch.parts) if batch else None,
                                        records.read_settings(state), expected, parts, checksums)
            if reason is None:
                return None
        remove_orders(layout)  # the order rows of the emptied state go with it, before it is emptied
        records.reset(state, expected, _initial_records(), settings.silver_buckets)
        state.commit()
    return reason


def _merge_one_batch(layout: DataLayout, settings: Settings, parts: list[SilverPart], metrics: dict[str, dict],
                     checksums: dict[str, str], progress: Progress | None, source_files: list[str] | None) -> MergeReport:
    """Merge one batch: the interrupted one, else the next parts not yet merged (up to
    `merge_batch_rows` valid rows, so a bucket's rows in memory stay bounded whatever the input).

    Each bucket writes the keys it newly saw (a run `seen/<b>/<batch>/...` sorted by key_hash, so
    later batches binary-search it, which may absorb the bucket's newest small runs:
    pipeline.gold.seen_runs) and its own small aggregates (`bucket/<b>/...`) together; the final
    commit folds the buckets' aggregates into the totals and marks the parts merged.
    """
    started = time.monotonic()
    report = progress or (lambda _p, _m: None)
    by_name = {p.name: p for p in parts}
    with open_state(layout.state_dir) as state, contextlib.ExitStack() as stack:
        merged = records.read_merged_parts(state)
        batch = records.read_batch(state)
        if batch is None:
            pending = [p.name for p in parts if p.name not in merged]
            if not pending:
                if _advance_covers(state, merged, source_files):  # e.g. a new file with no rows
                    _store_aggregates(state, "delta", Aggregates.empty())
                    state.commit()
                return MergeReport(0, 0, 0, time.monotonic() - started)
            names, valid_rows = _next_batch([by_name[n] for n in pending], metrics, settings.merge_batch_rows)
            batch = Batch(parts=tuple(names), valid_rows=valid_rows, number=records.read_batches_merged(state))
            state.delete_prefix(records.BUCKET_PREFIX)
            records.write_batch(state, batch)
            state.commit()
        missing = [name for name in batch.parts if name not in by_name or not layout.store.exists(by_name[name].path)]
        if missing:
            raise PipelineError(f"silver part {missing[0]} of an unfinished merge is gone; run with --reprocess on its bronze file")
        one_pass = not batch.done_buckets and batch.valid_rows < settings.merge_parallel_min_rows
        workers = _parallel_workers(batch.valid_rows, settings.merge_parallel_min_rows)
        copies = stack.enter_context(_batch_copies(layout, [by_name[name] for name in batch.parts]))
        store, by_name = copies.store, {**by_name, **copies.parts}
        # `waited`: the task's thread waits for work any core can do (whose CPU seconds are `parallel`).
        waited = parallel = 0.0
        done = set(batch.done_buckets)
        run_cap = max(1, settings.merge_batch_rows // settings.silver_buckets)  # a full batch's keys per bucket
        jobs = [BucketJob(bucket, str(state_path(layout.state_dir)), batch.number, settings.anomaly_top_n, tuple(settings.dedup_key),
                          run_cap) for bucket in range(settings.silver_buckets) if bucket not in done]
        part_paths = [by_name[n].path for n in batch.parts]
        asked = time.monotonic()
        pool = _batch_pool(store, [by_name[name] for name in batch.parts], metrics, settings, check=not batch.done_buckets)
        parallel, waited = parallel + pool.read_cpu_seconds, waited + time.monotonic() - asked  # read on every core
        if one_pass:  # on this thread: the work of a small batch is mostly per-call overhead
            with _part_readers(pool, store, part_paths, tuple(settings.dedup_key), 1) as readers:
                whole = merge_whole_batch(readers[0], jobs)
            for key, value in whole.seen_records.items():
                state.put_encoded(key, value)
            for key in whole.seen_gone:
                state.delete(key)
            batch = replace(batch, rows=whole.rows, unique=whole.unique_count)
            report(100, f"merged {settings.silver_buckets} buckets in one pass: {batch.rows:,} rows, {batch.unique:,} new orders")
            dropped, delta, candidates = whole.dropped, whole.aggregates, whole.candidates
        else:
            batch, bucket_cpu, bucket_wait = _merge_by_bucket(state, settings, store, part_paths, jobs, workers, batch, report, pool)
            parallel, waited = parallel + bucket_cpu, waited + bucket_wait
            dropped, delta, candidates = _stored_buckets(state, settings)
        _write_orders(layout, settings, state, store, part_paths, batch, dropped, pool)
        del pool  # the batch's small parts: no longer needed by the fold
        _fold(state, settings, store, part_paths, delta, candidates)
        merged.update({name: checksums[name] for name in batch.parts})
        records.write_merged_parts(state, merged)
        records.write_batches_merged(state, batch.number + 1)
        _advance_covers(state, merged, source_files)
        records.clear_batch(state)
        state.commit()
    seconds = time.monotonic() - started
    return MergeReport(len(batch.parts), batch.rows, batch.unique, seconds, None, seconds - waited, parallel)


def _merge_by_bucket(state: StateStore, settings: Settings, store: Store, part_paths: list[PurePath], jobs: list[BucketJob],
                     workers: int, batch: Batch, report: Progress, pool: SmallPartPool) -> tuple[Batch, float, float]:
    """The buckets not yet done, in bucket order, committed with their results every
    COMMIT_EVERY_BUCKETS; returns the batch as it now stands, the CPU seconds of the work any core
    can do, and the seconds this thread waited for it."""
    done = set(batch.done_buckets)
    uncommitted = 0
    parallel = waited = 0.0
    with _bucket_results(store, part_paths, jobs, workers, tuple(settings.dedup_key), pool) as results:
        while True:
            asked = time.monotonic()
            result = next(results, None)
            waited += time.monotonic() - asked
            if result is None:
                break
            parallel += result.cpu_seconds
            # The bucket's runs of seen keys as its list now names them: the new run, the runs it absorbed gone.
            for key, value in result.seen_records.items():
                state.put_encoded(key, value)
            for key in result.seen_gone:
                state.delete(key)
            for name in (*(g.name for g in GRAINS), "anomalies", "dropped"):
                state.put_encoded(records.bucket_key(result.bucket, name), result.encoded[name])
            done.add(result.bucket)
            uncommitted += 1
            batch = batch.with_bucket(result.bucket, result.rows, result.unique_count)
            if uncommitted >= COMMIT_EVERY_BUCKETS or len(done) == settings.silver_buckets:
                records.write_batch(state, batch)
                state.commit(wait=False)  # the writer thread persists it while the next buckets are merged
                uncommitted = 0
            percent = int(100 * len(done) / settings.silver_buckets)
            report(percent, f"merged bucket {len(done)}/{settings.silver_buckets}: {batch.rows:,} rows, {batch.unique:,} new orders")
    return batch, parallel, waited


@dataclass
class _Copies:
    store: Store
    parts: dict[str, SilverPart]


@contextmanager
def _batch_copies(layout: DataLayout, parts: list[SilverPart]) -> Iterator[_Copies]:
    """Where the batch's parts are read from. On object storage: a copy of each on this host's disk,
    each fetched with one GET (threads at once), removed after the batch; the checksum check then
    reads what the store returned, and the per-bucket reads of row groups cost no round trips (they
    made the merge several times slower than on a local root). A local root is read in place."""
    if not layout.remote:
        yield _Copies(layout.store, {})
        return
    import shutil

    folder = layout.scratch_dir / "merge" / f"{os.getpid()}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    copies = {part.name: SilverPart(part.source_file, part.chunk, folder / f"{i:05d}.parquet", LOCAL_FILES, str(part.path))
              for i, part in enumerate(parts)}
    try:
        with ThreadPoolExecutor(COPY_THREADS) as fetchers:
            list(fetchers.map(lambda part: layout.store.download(part.path, Path(copies[part.name].path)), parts))
        yield _Copies(LOCAL_FILES, copies)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


COPY_THREADS = 8


def _next_batch(pending: list[SilverPart], metrics: dict[str, dict], max_rows: int) -> tuple[list[str], int]:
    """The first pending parts (input order) whose valid rows add up to at most `max_rows` (at least
    one part), and those rows; small parts, which the batch holds in memory whole (SmallPartPool),
    add up to at most POOL_MAX_ROWS."""
    names, rows, pooled = [], 0, 0
    for part in pending:
        part_rows = int(metrics[part.name]["rows_valid"])
        small = part_rows < SINGLE_ROW_GROUP_ROWS
        if names and (rows + part_rows > max_rows or (small and pooled + part_rows > POOL_MAX_ROWS)):
            break
        names.append(part.name)
        rows += part_rows
        pooled += part_rows if small else 0
    return names, rows


@dataclass(frozen=True)
class BucketJob:
    """What a merge thread needs to dedup and aggregate one bucket of one batch."""

    bucket: int
    state_file: str
    batch_number: int
    anomaly_top_n: int
    key: tuple[str, ...]  # [gold] dedup_key
    run_cap: int  # the most keys a run of seen keys grows to by absorbing others (seen_runs)


@dataclass(frozen=True)
class BucketResult:
    bucket: int
    rows: int
    unique_count: int
    new_keys: pa.Table  # dedup.SEEN_SCHEMA, sorted by hash
    aggregates: Aggregates
    anomalies: pa.Table
    encoded: dict[str, bytes] = field(default_factory=dict)  # the state values above, encoded (state_store.encode_table)
    seen_records: dict[str, bytes] = field(default_factory=dict)  # the bucket's new run and run list, encoded
    seen_gone: tuple[str, ...] = ()  # the records of the runs the new one absorbed
    cpu_seconds: float = 0.0  # of the thread that computed it


def merge_bucket(reader: SilverPartReader, job: BucketJob) -> BucketResult:
    """Dedup and aggregate one bucket: reads silver and committed seen segments, writes nothing."""
    cpu = time.thread_time()
    rows = reader.read_bucket(job.bucket, merge_schema(job.key), part_column="part")
    state = StateReader(Path(job.state_file))
    try:
        runs = runs_from_json(state.get_json(records.seen_runs_key(job.bucket)))
        keys = key_text(rows, job.key)
        result = first_wins(keys, rows.column("key_hash").to_numpy(), [_seen_run(state, job.bucket, run) for run in runs])
        seen_records, seen_gone = _next_runs(state, job, runs, result.new_keys)
    finally:
        state.close()
    aggregates = aggregate_orders(rows.select(list(AGGREGATE_INPUT_COLUMNS)), result.keep)
    anomalies = _anomaly_candidates(rows, result.keep, job.key, job.anomaly_top_n, job.bucket)
    # Encoded here, on the merge thread: the thread that commits the state only writes.
    values = {**{g.name: aggregates[g.name].cast(g.schema) for g in GRAINS}, "anomalies": anomalies,
              "dropped": dropped_rows(rows, result.keep)}
    encoded = {name: encode_table(records.bucket_key(job.bucket, name), table) for name, table in values.items()}
    return BucketResult(
        bucket=job.bucket, rows=rows.num_rows, unique_count=result.unique_count, new_keys=result.new_keys,
        aggregates=aggregates, anomalies=anomalies, encoded=encoded, seen_records=seen_records, seen_gone=seen_gone,
        cpu_seconds=time.thread_time() - cpu,
    )


@dataclass(frozen=True)
class WholeBatch:
    """What `merge_whole_batch` gives: every bucket's seen-key records, and the batch's aggregates,
    anomaly candidates and dropped rows as one table each (what the buckets would store, summed)."""

    rows: int
    unique_count: int
    seen_records: dict[str, bytes]
    seen_gone: tuple[str, ...]
    aggregates: Aggregates
    candidates: pa.Table  # candidate_schema
    dropped: pa.Table  # orders.DROPPED_SCHEMA


def merge_whole_batch(reader: SilverPartReader, jobs: list[BucketJob]) -> WholeBatch:
    """Dedup and aggregate a small batch in one pass, on this thread; reads, writes nothing.

    The keys are decided bucket by bucket against each bucket's own seen runs, writing the records
    the bucket path writes (a key's hash fixes its bucket, so this is the same decision); the
    aggregates, anomaly candidates and dropped rows are one call each over the whole batch. On a
    few thousand rows, 64 buckets of per-call overhead were most of the merge (bench/README.md).
    """
    key, top_n = jobs[0].key, jobs[0].anomaly_top_n  # every bucket of the batch: its jobs differ only in their bucket
    rows = reader.read_all(merge_schema(key), part_column="part")
    buckets = rows.column("bucket").to_numpy()
    keys, hashes = key_text(rows, key), rows.column("key_hash").to_numpy()
    keep = np.zeros(rows.num_rows, dtype=bool)
    unique, seen_records, seen_gone = 0, {}, []
    state = StateReader(Path(jobs[0].state_file))
    try:
        for job in jobs:
            start, stop = (int(np.searchsorted(buckets, job.bucket, side)) for side in ("left", "right"))
            runs = runs_from_json(state.get_json(records.seen_runs_key(job.bucket)))
            result = first_wins(keys.slice(start, stop - start), hashes[start:stop], [_seen_run(state, job.bucket, r) for r in runs])
            keep[start:stop] = result.keep.to_numpy(zero_copy_only=False)
            unique += result.unique_count
            written, gone = _next_runs(state, job, runs, result.new_keys)
            seen_records.update(written)
            seen_gone.extend(gone)
    finally:
        state.close()
    kept = pa.array(keep)
    return WholeBatch(
        rows=rows.num_rows, unique_count=unique, seen_records=seen_records, seen_gone=tuple(seen_gone),
        aggregates=aggregate_orders(rows.select(list(AGGREGATE_INPUT_COLUMNS)), kept),
        candidates=_anomaly_candidates(rows, kept, key, top_n, rows.column("bucket")),
        dropped=dropped_rows(rows, kept),
    )


def _next_runs(state: StateReader, job: BucketJob, runs: list[Run], new_keys: pa.Table) -> tuple[dict[str, bytes], tuple[str, ...]]:
    """The records that make the bucket's runs those after this batch (encoded), and the records
    to delete: the new keys, with the newest runs they absorb, become the run of this batch."""
    taken = runs_to_absorb(runs, new_keys.num_rows, job.run_cap)
    absorbed = runs[len(runs) - taken:]
    run = merge_runs([*(_read_run(state, job.bucket, r) for r in absorbed), new_keys]) if absorbed else new_keys
    after = runs[: len(runs) - taken] + ([Run(job.batch_number, run.num_rows)] if run.num_rows else [])
    written = {records.seen_runs_key(job.bucket): encode_json(records.seen_runs_key(job.bucket), runs_to_json(after))}
    if run.num_rows:
        hashes_key, keys_key = (records.seen_key(job.bucket, job.batch_number, part) for part in records.SEEN_PARTS)
        written[hashes_key] = encode_hashes(hashes_key, run.column("key_hash").to_numpy())
        written[keys_key] = encode_table(keys_key, run.select(["key"]))
    gone = tuple(records.seen_key(job.bucket, r.batch, part) for r in absorbed for part in records.SEEN_PARTS)
    return written, gone


def _parallel_workers(rows: int, min_rows: int) -> int:
    """Merge threads for a batch of `rows` valid rows: one per core the run was given, none for
    small batches (a thread would cost more than it saves). Only the state commits stay serial."""
    cores = usable_cores()
    return cores if rows >= min_rows and cores > 1 else 0


@contextmanager
def _bucket_results(store: Store, part_paths: list[PurePath], jobs: list[BucketJob], workers: int,
                    key: tuple[str, ...], pool: SmallPartPool) -> Iterator[Iterator[BucketResult]]:
    """Results in bucket order, computed by `workers` threads (or here when 0).

    Threads, not processes: the work is Arrow and numpy kernels that release the GIL, so two
    threads use both cores with nothing pickled between processes (faster and cheaper than spawned
    processes: bench/README.md). The caller alone
    writes and commits the state, bucket by bucket, in order, so crash safety is the same either
    way. At most `workers + 1` buckets are in flight, so memory stays bounded by a few buckets.
    """
    readers: queue.SimpleQueue[SilverPartReader] = queue.SimpleQueue()
    with _part_readers(pool, store, part_paths, key, max(workers, 1)) as opened:
        for reader in opened:
            readers.put(reader)

        def run(job: BucketJob) -> BucketResult:
            reader = readers.get()
            try:
                return merge_bucket(reader, job)
            finally:
                readers.put(reader)

        if workers == 0:
            yield map(run, jobs)
        else:
            with ThreadPoolExecutor(workers, thread_name_prefix="merge") as threads:
                yield ordered_map(threads, run, jobs, window=workers + 1)


@contextmanager
def _part_readers(pool: SmallPartPool, store: Store, part_paths: list[PurePath], key: tuple[str, ...],
                  count: int) -> Iterator[list[SilverPartReader]]:
    """`count` readers of the batch's parts, sharing the batch's pool of its small parts."""
    opened = [SilverPartReader(store, part_paths, merge_columns(key), merge_schema(key), pool) for _ in range(count)]
    try:
        yield opened
    finally:
        for reader in opened:
            reader.close()


def _seen_run(state: StateReader, bucket: int, run: Run) -> SeenSegment:
    """One run of the keys merged into `bucket` before, read from the state only when the dedup probes it."""
    return SeenSegment(lambda: state.get_hashes(records.seen_key(bucket, run.batch, "hashes")),
                       lambda: state.get_table(records.seen_key(bucket, run.batch, "keys")).column("key").combine_chunks())


def _read_run(state: StateReader, bucket: int, run: Run) -> pa.Table:
    hashes = state.get_hashes(records.seen_key(bucket, run.batch, "hashes"))
    keys = state.get_table(records.seen_key(bucket, run.batch, "keys")).column("key")
    if len(hashes) != len(keys) or len(hashes) != run.rows:
        raise StateDamaged(f"seen keys of bucket {bucket}, batch {run.batch}: {len(hashes)} hashes, {len(keys)} keys, "
                           f"{run.rows} recorded")
    return pa.table({"key_hash": hashes, "key": keys}, schema=SEEN_SCHEMA)


def _anomaly_candidates(rows: pa.Table, keep: pa.Array, key: tuple[str, ...], top_n: int,
                        bucket: int | pa.ChunkedArray) -> pa.Table:
    """The top-n unique orders of `rows` by revenue, as candidate_schema rows (a top-k, not a
    sort); `bucket`: the rows' bucket, or each row's (a whole batch's rows)."""
    schema = candidate_schema(key)
    positions = pc.indices_nonzero(keep)
    key_columns = {k: rows.column(k).take(positions).cast(schema.field(k).type) for k in key}
    ranking = pa.table({"revenue": rows.column("revenue").take(positions), **key_columns, "position": positions})
    top = top_revenue_orders(ranking, top_n, key)
    at = top.column("position")
    buckets = pa.repeat(pa.scalar(bucket, pa.int32()), len(top)) if isinstance(bucket, int) else bucket.take(at)
    return pa.table({"revenue": top.column("revenue"), **{k: top.column(k) for k in key},
                     "part": rows.column("part").take(at), "bucket": buckets,
                     "source_row": rows.column("source_row").take(at)}, schema=schema)


def _advance_covers(state: StateStore, merged: dict[str, str], source_files: list[str] | None) -> bool:
    """Record what gold must now cover (merged parts with their checksums, and the files of
    data_quality); True if it moved."""
    names = {f"{name}={checksum}" for name, checksum in merged.items()} | {f"file:{f}" for f in (source_files or [])}
    stored = records.read_covers(state)
    current = covers_digest(names)
    if stored.current == current:
        return False
    records.write_covers(state, Covers(current=current, previous=stored.current))
    return True


def _batch_pool(store: Store, parts: list[SilverPart], metrics: dict[str, dict], settings: Settings, check: bool) -> SmallPartPool:
    """The batch's pool of small parts, read on every core. With `check` (a batch not yet begun),
    every part's checksum is checked on the way, before the batch's first commit, a small part's
    bytes read once for both (parsing a small part from memory costs two thirds of reading its
    file: bench/README.md); the first bad part in input order is the one reported."""
    fingerprint = silver_fingerprint(settings)

    def fetch(index: int) -> bytes | None:
        part = parts[index]
        small = int(metrics[part.name].get("rows_valid", SINGLE_ROW_GROUP_ROWS)) < SINGLE_ROW_GROUP_ROWS
        data = part.store.read_bytes(part.path) if small else None
        if check:
            verify_silver_part(part, metrics[part.name], fingerprint, data)
        return data

    return SmallPartPool(store, [p.path for p in parts], pool_schema(tuple(settings.dedup_key), settings.orders_include_email),
                         usable_cores(), fetch)


def verify_silver_part(part: SilverPart, metrics: dict, fingerprint: str, data: bytes | None = None) -> None:
    """Refuse a silver part whose bytes (`data` when read already) differ from those recorded
    (`metrics`) when it was written, or that was cleaned under other settings than `fingerprint`
    (settings.silver_fingerprint)."""
    recorded = metrics.get("silver_crc32")
    if metrics and metrics.get("settings_fingerprint") != fingerprint:
        raise PipelineError(f"silver part {part.copy_of or part.path} was cleaned under other settings than the current ones; "
                            "run `python run.py --reprocess-all`")
    if not recorded or (bytes_digest(data) if data is not None else file_digest(part.store, part.path)) != recorded:
        raise PipelineError(f"silver part {part.copy_of or part.path} is corrupt or truncated (its checksum does not match the "
                            "one recorded "
                            f"when it was written); run `python run.py --reprocess {part.source_file}`")


def _stored_buckets(state: StateStore, settings: Settings) -> tuple[pa.Table, Aggregates, pa.Table]:
    """What the buckets of a batch merged bucket by bucket stored: their dropped rows, the sum of
    their aggregates, and their anomaly candidates (as merge_whole_batch gives them)."""
    buckets = range(settings.silver_buckets)
    dropped = pa.concat_tables([DROPPED_SCHEMA.empty_table(), *(state.get_table(records.bucket_key(b, "dropped")) for b in buckets)])
    delta = sum_aggregates([Aggregates.empty(), *(_load_aggregates(state, records.bucket_prefix(b)) for b in buckets)])
    schema = candidate_schema(tuple(settings.dedup_key))
    candidates = pa.concat_tables([schema.empty_table(), *(state.get_table(records.bucket_key(b, "anomalies")).cast(schema)
                                                           for b in buckets)])
    return dropped, delta, candidates


def _write_orders(layout: DataLayout, settings: Settings, state: StateStore, store: Store, part_paths: list[PurePath],
                  batch: Batch, dropped: pa.Table, pool: SmallPartPool) -> None:
    """The batch's gold/orders files, before the commit that marks it merged (a kill in between
    rewrites the same files). Their row count must be the merge's count of new orders."""
    written, files = write_batch_orders(layout, store, part_paths, dropped, batch.number, settings.orders_include_email,
                                        pool)
    if written != batch.unique:
        raise PipelineError(f"gold/orders of merge batch {batch.number}: {written:,} rows written where the merge found "
                            f"{batch.unique:,} new orders; run `python run.py --rebuild-gold`")
    records.write_orders_files(state, {**records.read_orders_files(state), **files})  # committed with the batch's end


def _fold(state: StateStore, settings: Settings, store: Store, part_paths: list[PurePath], delta: Aggregates,
          candidates: pa.Table) -> None:
    """Totals += the batch's aggregates (`delta`, kept beside them for upsert); the anomalies
    become the top of theirs and the batch's `candidates`; the buckets' records go."""
    _store_aggregates(state, "agg", _load_aggregates(state, "agg").plus(delta))
    _store_aggregates(state, "delta", delta)
    key = tuple(settings.dedup_key)
    fresh = top_revenue_orders(candidates, settings.anomaly_top_n, key)
    current = state.get_table("anomalies")
    anomalies = pa.concat_tables([current.cast(ANOMALY_SCHEMA), _anomaly_rows(fresh, store, part_paths)])
    state.put_table("anomalies", top_revenue_orders(anomalies, settings.anomaly_top_n, key))
    state.delete_prefix(records.BUCKET_PREFIX)


def _anomaly_rows(candidates: pa.Table, store: Store, part_paths: list[PurePath]) -> pa.Table:
    """The whole silver rows of the candidates: one row group read per (part, bucket) they come from."""
    pieces = [ANOMALY_SCHEMA.empty_table()]
    wanted = candidates.group_by(["part", "bucket"], use_threads=False).aggregate([("source_row", "list")])
    for part, bucket, source_rows in zip(*(wanted.column(c).to_pylist() for c in ("part", "bucket", "source_row_list"))):
        reader = SilverPartReader(store, [part_paths[part]], list(ANOMALY_COLUMNS))
        try:
            rows = reader.read_bucket(bucket, ANOMALY_SCHEMA)
        finally:
            reader.close()
        pieces.append(rows.filter(pc.is_in(rows.column("source_row"), value_set=pa.array(source_rows, pa.int64()))))
    return pa.concat_tables(pieces)


def publish_gold(layout: DataLayout, settings: Settings, file_metrics: list[FileMetrics]) -> tuple[list[str], dict[str, str]]:
    """Write the gold tables that are not yet at the state's current digest; returns the names
    written and the CRC-32 of every gold file as published."""
    with open_state(layout.state_dir) as state:
        records.check_format(state)
        if records.read_batch(state) is not None:
            raise PipelineError("the Silver -> Gold merge is unfinished; run the pipeline again to finish it before publishing gold")
        covers = records.read_covers(state)
        totals = _load_aggregates(state, "agg")
        delta = _load_aggregates(state, "delta")
        anomalies = state.get_table("anomalies")
        checksums = records.read_gold_files(state)
        orders = records.read_orders_files(state)
    listing = orders_listing(layout)
    if listing != orders:
        differs = sorted(set(listing.items()) ^ set(orders.items()))[0][0]
        raise StateDamaged(f"gold/orders/{differs} is not as the merge wrote it (deleted, changed or added since)")
    # A gold file's stamp is what it covers plus the settings it was derived with: a change of
    # `top_products_n` rebuilds the tables from the state; an unchanged one upserts.
    stamp = gold_fingerprint(settings)
    current = f"{covers.current or covers_digest([])}+{stamp}"
    previous = f"{covers.previous}+{stamp}" if covers.previous else None
    fresh = build_gold_tables(totals, anomalies, file_metrics, settings.top_products_n, settings.anomaly_top_n,
                              tuple(settings.dedup_key))
    paths = {name: layout.gold_table_path(name) for name in GOLD_TABLES}
    written = publish(layout.store, paths, fresh, current, previous, settings.gold_mode, touched_keys(delta), checksums)
    if written:
        with open_state(layout.state_dir) as state:
            records.write_gold_files(state, checksums)
            state.commit()
    return written, checksums
