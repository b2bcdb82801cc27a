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
| `seen/<bucket>/<batch>` | the keys a batch added to a bucket (Arrow, sorted by hash) | the bucket commits |
| `bucket/<bucket>/<grain>` | a bucket's aggregates and anomaly candidates in this batch | the same; folded at the batch's end |
| `agg/<grain>`, `delta/<grain>` | the totals, and the last batch's part of them (for upsert) | a batch ends |
| `anomalies` | the current top anomaly rows | a batch ends |

A state written in another format is refused with the command that rebuilds it: the state is
derived data, so there are no compatibility branches to keep.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

from pipeline.errors import PipelineError
from pipeline.gold.state_store import StateStore

STATE_FORMAT = 2  # 1: before the format was recorded (refused)
BUCKET_PREFIX = "bucket/"
GRAINS = ("daily", "products", "files")


def seen_key(bucket: int, batch_number: int) -> str:
    return f"seen/{bucket}/{batch_number}"


def bucket_key(bucket: int, name: str) -> str:
    """`name`: one of GRAINS, or "anomalies" (the bucket's candidates)."""
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


def check_format(state: StateStore, path: Path) -> None:
    """Refuse a state of another format (an empty one is simply new)."""
    found = state.get_json("format")
    if found == STATE_FORMAT or (found is None and not state.keys_with_prefix("")):
        return
    raise PipelineError(f"state file {path} is of format {found or 1}, this version reads format {STATE_FORMAT}; "
                        "run `python run.py --rebuild-gold` to rebuild it from silver (silver is kept)")


def reset(state: StateStore, settings_values: dict) -> None:
    """Empty the state (committed by the caller) and record its format and the settings it depends on."""
    for key in state.keys_with_prefix(""):
        state.delete(key)
    state.put_json("format", STATE_FORMAT)
    state.put_json("settings", settings_values)


def read_settings(state: StateStore) -> dict | None:
    return state.get_json("settings")


def read_batch(state: StateStore) -> Batch | None:
    raw = state.get_json("batch")
    if raw is None:
        return None
    return Batch(parts=tuple(raw["parts"]), valid_rows=int(raw["valid_rows"]), number=int(raw["number"]),
                 done_buckets=tuple(raw["done_buckets"]), rows=int(raw["rows"]), unique=int(raw["unique"]))


def write_batch(state: StateStore, batch: Batch) -> None:
    state.put_json("batch", {**asdict(batch), "parts": list(batch.parts), "done_buckets": list(batch.done_buckets)})


def clear_batch(state: StateStore) -> None:
    state.delete("batch")


def read_merged_parts(state: StateStore) -> dict[str, str]:
    return dict(state.get_json("merged_parts") or {})


def write_merged_parts(state: StateStore, merged: dict[str, str]) -> None:
    state.put_json("merged_parts", merged)


def read_batches_merged(state: StateStore) -> int:
    return int(state.get_json("batches_merged", 0))


def write_batches_merged(state: StateStore, count: int) -> None:
    state.put_json("batches_merged", count)


def read_covers(state: StateStore) -> Covers:
    raw = state.get_json("covers")
    return Covers(raw["current"], raw["previous"]) if raw else Covers()


def write_covers(state: StateStore, covers: Covers) -> None:
    state.put_json("covers", asdict(covers))
