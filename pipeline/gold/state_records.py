"""The Silver -> Gold state's keys and records, typed: this module alone names and reads each of them.

The state is one key-value table (pipeline.gold.state_store). What lives in it:

| key | record | written when |
|---|---|---|
| `format` | STATE_FORMAT, the layout of everything below | the state is created or emptied |
| `settings` | the settings the state depends on (settings.state_values) | the same |
| `batch` | Batch: the merge in progress | a batch starts, every few buckets, deleted at its end |
| `batches_merged` | how many batches finished (numbers the seen segments) | a batch ends |
| `merged_parts` | part name -> silver checksum, for every part merged | a batch ends |
| `covers` | Covers: what gold must cover now and covered before | a batch ends, a file with no rows arrives |
| `gold_files` | gold table -> CRC-32 of the file published from this state | gold is published |
| `orders_files` | gold/orders/ file -> size, every file the merge wrote (pipeline.gold.orders) | a batch ends |
| `seen/<bucket>/runs` | the bucket's runs of seen keys, [batch, rows] each (seen_runs) | emptied; the bucket commits |
| `seen/<bucket>/<batch>/hashes`, `/keys` | one run: its keys sorted by hash, hashes (raw) and texts | the bucket commits |
| `bucket/<bucket>/<grain>` | a bucket's aggregates and anomaly candidates in this batch | the same; folded at the batch's end |
| `agg/<grain>`, `delta/<grain>` | the totals, and the last batch's part of them (for upsert) | a batch ends |
| `anomalies` | the current top anomaly rows | a batch ends |

Every record but `batch` and the buckets of a batch exists from the moment the state is emptied
(`reset`), and every run a bucket's `runs` names exists, so a record that is missing is damage
(state_store.StateDamaged), never "nothing yet". A state written in another format is damaged in
the same sense: the state is derived data, so it is rebuilt from silver and there are no
compatibility branches to keep.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import pyarrow as pa

from pipeline.errors import StateDamaged
from pipeline.gold.state_store import StateStore

STATE_FORMAT = 6  # 1: before the format was recorded; 2: values without checksums; 3: keys were order_ids, daily had no sale_month;
# 4: buckets kept no duplicates' positions, so gold/orders/ was not written; 5: a seen segment was one record of hashes and texts
BUCKET_PREFIX = "bucket/"


SEEN_PARTS = ("hashes", "keys")


def seen_key(bucket: int, batch_number: int, part: str) -> str:
    """The run written by batch `batch_number`; `part`: "hashes" (probed for every new key) or
    "keys" (read only to confirm a hash match)."""
    return f"seen/{bucket}/{batch_number}/{part}"


def seen_runs_key(bucket: int) -> str:
    return f"seen/{bucket}/runs"


def bucket_key(bucket: int, name: str) -> str:
    """`name`: a grain's (pipeline.gold.aggregates.GRAINS), or "anomalies" (the bucket's candidates)."""
    return f"{BUCKET_PREFIX}{bucket}/{name}"


def aggregate_key(prefix: str, grain: str) -> str:
    """`prefix`: "agg" (totals), "delta" (the last batch's share) or a bucket's own prefix."""
    return f"{prefix}/{grain}"


def bucket_prefix(bucket: int) -> str:
    return f"{BUCKET_PREFIX}{bucket}"


@dataclass(frozen=True)
class Batch:
    """The merge in progress: its parts (input order), their valid rows, its number, and how far it got."""

    parts: tuple[str, ...]
    valid_rows: int
    number: int
    done_buckets: tuple[int, ...] = ()
    rows: int = 0
    unique: int = 0

    def with_bucket(self, bucket: int, rows: int, unique: int) -> Batch:
        return replace(self, done_buckets=tuple(sorted({*self.done_buckets, bucket})), rows=self.rows + rows,
                       unique=self.unique + unique)


@dataclass(frozen=True)
class Covers:
    """Digests of what gold must cover now, and what it covered before the last batch (upsert)."""

    current: str | None = None
    previous: str | None = None


def is_new(state: StateStore) -> bool:
    return not state.keys_with_prefix("")


def check_format(state: StateStore) -> None:
    """A state of another format is damaged (it is rebuilt from silver); an empty one is new."""
    if is_new(state):
        return
    try:
        found = state.get_json("format")
    except StateDamaged:
        found = 1  # a record of the first format has no checksum: fails the same way
    if found != STATE_FORMAT:
        raise StateDamaged(f"it is of format {found}, this version writes format {STATE_FORMAT}")


def reset(state: StateStore, settings_values: dict, initial_tables: dict[str, pa.Table], buckets: int) -> None:
    """Empty the state (committed by the caller): its format, the settings it depends on, and every
    record that must always exist (`initial_tables`: key -> the empty table it starts as; no runs
    of seen keys in any of the `buckets`)."""
    state.delete_prefix("")
    state.put_json("format", STATE_FORMAT)
    state.put_json("settings", settings_values)
    write_merged_parts(state, {})
    write_batches_merged(state, 0)
    write_covers(state, Covers())
    write_gold_files(state, {})
    write_orders_files(state, {})
    for key, table in initial_tables.items():
        state.put_table(key, table)
    for bucket in range(buckets):
        state.put_json(seen_runs_key(bucket), [])


def read_settings(state: StateStore) -> dict | None:
    """None only for a new state; a state with records but no settings is damaged."""
    return None if is_new(state) else state.get_json("settings")


def read_batch(state: StateStore) -> Batch | None:
    raw = state.get_json("batch", None)
    if raw is None:
        return None
    return Batch(parts=tuple(raw["parts"]), valid_rows=int(raw["valid_rows"]), number=int(raw["number"]),
                 done_buckets=tuple(raw["done_buckets"]), rows=int(raw["rows"]), unique=int(raw["unique"]))


def write_batch(state: StateStore, batch: Batch) -> None:
    state.put_json("batch", {**asdict(batch), "parts": list(batch.parts), "done_buckets": list(batch.done_buckets)})


def clear_batch(state: StateStore) -> None:
    state.delete("batch")


def read_merged_parts(state: StateStore) -> dict[str, str]:
    return dict(state.get_json("merged_parts"))


def write_merged_parts(state: StateStore, merged: dict[str, str]) -> None:
    state.put_json("merged_parts", merged)


def read_batches_merged(state: StateStore) -> int:
    return int(state.get_json("batches_merged"))


def write_batches_merged(state: StateStore, count: int) -> None:
    state.put_json("batches_merged", count)


def read_covers(state: StateStore) -> Covers:
    raw = state.get_json("covers")
    return Covers(raw["current"], raw["previous"])


def write_covers(state: StateStore, covers: Covers) -> None:
    state.put_json("covers", asdict(covers))


def read_gold_files(state: StateStore) -> dict[str, str]:
    """gold table -> CRC-32 of the file last published from this state: a gold file whose bytes
    differ (damaged, or written by another state) is never upserted, nor left as it is."""
    return dict(state.get_json("gold_files"))


def write_gold_files(state: StateStore, checksums: dict[str, str]) -> None:
    state.put_json("gold_files", checksums)


def read_orders_files(state: StateStore) -> dict[str, int]:
    """gold/orders/ file (relative name) -> size, for every file the merged batches wrote: a
    listing that differs (a file deleted, truncated or added) is damage, and gold is rebuilt."""
    return {str(name): int(size) for name, size in state.get_json("orders_files").items()}


def write_orders_files(state: StateStore, files: dict[str, int]) -> None:
    state.put_json("orders_files", dict(sorted(files.items())))
