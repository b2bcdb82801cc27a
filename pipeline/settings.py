"""One validated settings object for the whole pipeline, and the one table that describes it.

Built once from luigi.cfg (tasks/config.py) or directly in tests; every check names the
section and key so a bad value stops the run at start with one line.

`SETTINGS` is the single home of every key: its section, the Settings field, how its text is
parsed, and what a change to it reaches (`Reach`). The config reader, the fingerprints that keep
old silver, state and gold from being mixed with new settings, and the README table all come
from it (tests/test_settings_model.py checks luigi.cfg and README against it).
"""
from __future__ import annotations

import datetime as _dt
import enum
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from pipeline.contract import DEDUP_KEY_COLUMNS, DEFAULT_DEDUP_KEY
from pipeline.errors import ConfigError

DEFAULT_CATEGORY_ALIASES: dict[str, tuple[str, ...]] = {
    "electronics": ("electronics", "electronic"),
    "home_appliance": ("home appliance", "homeappliance", "home-appl", "home_appliance"),
    "fashion": ("fashion", "cloths", "clothes", "clothing"),
}
DEFAULT_REGION_ALIASES: dict[str, tuple[str, ...]] = {
    "north": ("north", "nort"),
    "south": ("south",),
    "east": ("east",),
    "west": ("west",),
}
DEFAULT_DATE_FORMATS: tuple[str, ...] = ("%Y-%m-%d", "%d/%m/%Y", "%m-%d-%Y", "%Y/%m/%d")
GOLD_MODES = ("upsert", "overwrite")
MAX_QUANTITY_BOUND = 1_000_000_000
MAX_ROWS_BOUND = 1_000_000_000  # rows per merge batch: far above what fits in memory, far below int64 / quantity
MAX_TOP_N = 1_000_000  # rows of a ranked gold table; the state keeps anomaly_top_n candidates per bucket


@dataclass(frozen=True)
class Settings:
    """Every configurable value of CONTRACT.md, with its default."""

    data_root: str = "data"
    state_dir: str = ""  # "" is <data_root>/state
    bronze_glob: str = "**/*.csv"
    chunk_rows: int = 500_000
    small_file_bytes: int = 4 * 1024 * 1024  # files this small are cleaned many to a task (0: never)
    # A file with a larger share of rejected rows is warned about (a Latin-1 export, a trailing comma
    # on every data row): it still runs, but "exit 0, no word" would hide a broken export.
    rejected_share_warning: float = 0.5
    silver_buckets: int = 64
    category_aliases: Mapping[str, Sequence[str]] = field(default_factory=lambda: dict(DEFAULT_CATEGORY_ALIASES))
    region_aliases: Mapping[str, Sequence[str]] = field(default_factory=lambda: dict(DEFAULT_REGION_ALIASES))
    default_region: str = "north"
    date_formats: Sequence[str] = DEFAULT_DATE_FORMATS
    max_quantity: int = 1_000_000
    max_unit_price: int = 1_000_000_000
    gold_mode: str = "upsert"
    dedup_key: Sequence[str] = DEFAULT_DEDUP_KEY  # cleaned columns; rows with equal values are one order
    merge_batch_rows: int = 10_000_000
    # Batches with at least this many valid rows are merged by one thread per core; smaller ones by
    # the task's own thread, where more threads would cost more than they save.
    merge_parallel_min_rows: int = 1_000_000
    top_products_n: int = 10
    anomaly_top_n: int = 20

    def with_changes(self, **changes: object) -> Settings:
        """A validated copy with some values changed (tests use this)."""
        return validate(replace(self, **changes))

    @property
    def category_lookup(self) -> dict[str, str]:
        """alias (normalised) -> canonical category."""
        return _invert(self.category_aliases)

    @property
    def region_lookup(self) -> dict[str, str]:
        """alias (normalised) -> canonical region."""
        return _invert(self.region_aliases)


def _invert(aliases: Mapping[str, Sequence[str]]) -> dict[str, str]:
    lookup: dict[str, str] = {}
    for canonical, names in aliases.items():
        for name in (canonical, *names):  # the canonical name matches itself, normalised like any alias
            lookup[" ".join(str(name).lower().split())] = canonical
    return lookup


def _require(condition: bool, where: str, message: str) -> None:
    if not condition:
        raise ConfigError(f"config {where}: {message}")


def _check_aliases(where: str, aliases: object) -> None:
    _require(isinstance(aliases, Mapping) and len(aliases) > 0, where, "must be a non-empty JSON object of canonical -> [aliases]")
    seen: dict[str, str] = {}
    for canonical, names in aliases.items():  # type: ignore[union-attr]
        _require(isinstance(canonical, str) and canonical.strip() != "", where, f"canonical name {canonical!r} must be a non-empty string")
        _require(isinstance(names, (list, tuple)) and all(isinstance(n, str) for n in names), where,
                 f"aliases of {canonical!r} must be a list of strings")
        for name in [canonical, *names]:
            key = " ".join(name.lower().split())
            _require(seen.get(key, canonical) == canonical, where, f"alias {name!r} maps to both {seen.get(key)!r} and {canonical!r}")
            seen[key] = canonical


def validate(settings: Settings) -> Settings:
    """Return `settings` if every value is usable, else raise ConfigError naming section and key."""
    s = settings
    _require(isinstance(s.data_root, str) and s.data_root.strip() != "", "[pipeline] data_root", "must be a non-empty path")
    _require(isinstance(s.state_dir, str), "[pipeline] state_dir", "must be a path or empty")
    _require(isinstance(s.bronze_glob, str) and s.bronze_glob.lower().endswith(".csv") and ".." not in s.bronze_glob
             and not s.bronze_glob.startswith("/"),
             "[pipeline] bronze_glob", f"{s.bronze_glob!r} must be a relative glob ending in .csv (any case) without '..'")
    _require(isinstance(s.chunk_rows, int) and 1 <= s.chunk_rows <= 50_000_000, "[pipeline] chunk_rows",
             f"{s.chunk_rows!r} must be an integer in 1..50000000")
    _require(isinstance(s.small_file_bytes, int) and s.small_file_bytes >= 0, "[pipeline] small_file_bytes",
             f"{s.small_file_bytes!r} must be an integer >= 0")
    _require(isinstance(s.rejected_share_warning, (int, float)) and 0 <= s.rejected_share_warning <= 1,
             "[pipeline] rejected_share_warning", f"{s.rejected_share_warning!r} must be a number in 0..1")
    _require(isinstance(s.silver_buckets, int) and 1 <= s.silver_buckets <= 4096, "[pipeline] silver_buckets",
             f"{s.silver_buckets!r} must be an integer in 1..4096")
    _check_aliases("[cleaning] category_aliases", s.category_aliases)
    _check_aliases("[cleaning] region_aliases", s.region_aliases)
    _require(isinstance(s.default_region, str) and s.default_region in s.region_aliases, "[cleaning] default_region",
             f"{s.default_region!r} must be one of the canonical regions {sorted(s.region_aliases)}")
    _require(isinstance(s.date_formats, (list, tuple)) and len(s.date_formats) > 0, "[cleaning] date_formats",
             "must be a non-empty list of strptime formats")
    for fmt in s.date_formats:
        ok = isinstance(fmt, str) and "%" in fmt
        if ok:
            try:
                _dt.datetime(2024, 3, 5).strftime(fmt)
            except ValueError:
                ok = False
        _require(ok, "[cleaning] date_formats", f"{fmt!r} is not a strptime date format")
    # Bounds that keep every sum exact: a bucket's quantities (fewer than 9e9 rows of at most 1e9)
    # fit int64 before they are summed exactly (pipeline.gold.aggregates).
    _require(isinstance(s.max_quantity, int) and 1 <= s.max_quantity <= MAX_QUANTITY_BOUND, "[cleaning] max_quantity",
             f"{s.max_quantity!r} must be an integer in 1..{MAX_QUANTITY_BOUND}")
    _require(isinstance(s.max_unit_price, int) and 1 <= s.max_unit_price <= 1_000_000_000, "[cleaning] max_unit_price",
             f"{s.max_unit_price!r} must be an integer in 1..1000000000")
    # gross_revenue = quantity * unit_price must fit the silver money type decimal(18, 2).
    _require(s.max_quantity * s.max_unit_price <= 10**15, "[cleaning] max_quantity",
             "max_quantity * max_unit_price must be <= 1e15 so that revenue fits decimal(18, 2)")
    _require(isinstance(s.dedup_key, (list, tuple)) and len(s.dedup_key) > 0 and len(set(s.dedup_key)) == len(s.dedup_key)
             and all(name in DEDUP_KEY_COLUMNS for name in s.dedup_key), "[gold] dedup_key",
             f"{list(s.dedup_key) if isinstance(s.dedup_key, (list, tuple)) else s.dedup_key!r} must be a non-empty list of "
             f"distinct cleaned columns, from {', '.join(DEDUP_KEY_COLUMNS)}")
    _require(s.gold_mode in GOLD_MODES, "[gold] mode", f"{s.gold_mode!r} must be one of {', '.join(GOLD_MODES)}")
    _require(isinstance(s.merge_batch_rows, int) and 1 <= s.merge_batch_rows <= MAX_ROWS_BOUND, "[gold] merge_batch_rows",
             f"{s.merge_batch_rows!r} must be an integer in 1..{MAX_ROWS_BOUND}")
    _require(isinstance(s.merge_parallel_min_rows, int) and 0 <= s.merge_parallel_min_rows <= MAX_ROWS_BOUND,
             "[gold] merge_parallel_min_rows", f"{s.merge_parallel_min_rows!r} must be an integer in 0..{MAX_ROWS_BOUND}")
    _require(isinstance(s.top_products_n, int) and 1 <= s.top_products_n <= MAX_TOP_N, "[gold] top_products_n",
             f"{s.top_products_n!r} must be an integer in 1..{MAX_TOP_N}")
    _require(isinstance(s.anomaly_top_n, int) and 1 <= s.anomaly_top_n <= MAX_TOP_N, "[gold] anomaly_top_n",
             f"{s.anomaly_top_n!r} must be an integer in 1..{MAX_TOP_N}")
    return s


# Bump when a change to the bronze -> silver code (parsing, cleaning rules, hashing, the silver
# part layout) changes what silver holds for the same input: silver written by older code is then
# refused until `--reprocess-all`. tests/test_settings_model.py fails when those modules change
# without a look at this number.
# 2: a quote left open at the end of a file makes its last record malformed; 3: key_hash (XXH64 of [gold] dedup_key)
SILVER_CODE_VERSION = 3


class Reach(enum.Enum):
    """How far a change of a setting reaches into what is already on disk (the value is what the
    README's configuration table says happens)."""

    WHERE = "nothing on disk changes meaning"
    INPUT = "files no longer matched are reported as gone until `--forget`"
    PER_FILE = "applies to files scanned from then on (chunk bounds never change a number)"
    SILVER = "the run is refused until `--reprocess-all` (silver must be cleaned again)"
    STATE = "the next run rebuilds the Silver -> Gold state from silver"
    GOLD = "the next run republishes gold from the state"
    TUNING = "nothing: the numbers are the same, only speed and memory change"


def _json(value: str) -> Any:
    return json.loads(value)


def _int(value: str) -> int:
    return int(str(value).replace("_", "").strip())


def _names(value: str) -> tuple[str, ...]:
    """`order_id, product_name` or a JSON list of names."""
    text = str(value).strip()
    names = json.loads(text) if text.startswith("[") else [name.strip() for name in text.split(",")]
    return tuple(names) if isinstance(names, list) else (names,)


def _float(value: str) -> float:
    return float(str(value).strip())


def _str(value: str) -> str:
    return str(value).strip()


@dataclass(frozen=True)
class SettingSpec:
    section: str
    key: str
    field: str  # the Settings attribute
    reach: Reach
    parse: Callable[[str], Any]
    meaning: str

    @property
    def name(self) -> str:
        return f"[{self.section}] {self.key}"


SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec("pipeline", "data_root", "data_root", Reach.WHERE, _str, "folder with `bronze/`, `silver/`, ..."),
    SettingSpec("pipeline", "state_dir", "state_dir", Reach.WHERE, _str,
                "folder of this host's Silver -> Gold state (empty: `<data_root>/state`); keep it on a local disk"),
    SettingSpec("pipeline", "bronze_glob", "bronze_glob", Reach.INPUT, _str,
                "input files under `bronze/` (relative, no `..`)"),
    SettingSpec("pipeline", "chunk_rows", "chunk_rows", Reach.PER_FILE, _int,
                "records per chunk task, about; memory of a chunk task grows with it"),
    SettingSpec("pipeline", "small_file_bytes", "small_file_bytes", Reach.TUNING, _int,
                "bronze files at most this large are cleaned many to a task (same outputs per file); 0 turns it off"),
    SettingSpec("pipeline", "rejected_share_warning", "rejected_share_warning", Reach.WHERE, _float,
                "a file with a larger share of its rows rejected is warned about (summary, `--json`, status, report)"),
    SettingSpec("pipeline", "silver_buckets", "silver_buckets", Reach.SILVER, _int,
                "hash buckets of the dedup key (silver row groups, unit of dedup memory)"),
    SettingSpec("cleaning", "category_aliases", "category_aliases", Reach.SILVER, _json, "JSON: canonical -> list of aliases"),
    SettingSpec("cleaning", "region_aliases", "region_aliases", Reach.SILVER, _json, "JSON: canonical -> list of aliases"),
    SettingSpec("cleaning", "default_region", "default_region", Reach.SILVER, _str, "region for missing or unknown values"),
    SettingSpec("cleaning", "date_formats", "date_formats", Reach.SILVER, _json, "JSON list of `strptime` formats, tried in order"),
    SettingSpec("cleaning", "max_quantity", "max_quantity", Reach.SILVER, _int, "largest valid quantity"),
    SettingSpec("cleaning", "max_unit_price", "max_unit_price", Reach.SILVER, _int, "largest valid unit price"),
    SettingSpec("gold", "mode", "gold_mode", Reach.TUNING, _str,
                "`upsert` merges new orders into gold by key; `overwrite` rebuilds from the state (same tables)"),
    SettingSpec("gold", "dedup_key", "dedup_key", Reach.SILVER, _names,
                "cleaned columns that identify an order (comma separated): the first row of each key wins; "
                "e.g. `order_id, product_key` for one row per order line"),
    SettingSpec("gold", "merge_batch_rows", "merge_batch_rows", Reach.TUNING, _int,
                "valid rows per Silver -> Gold batch; bounds merge memory"),
    SettingSpec("gold", "merge_parallel_min_rows", "merge_parallel_min_rows", Reach.TUNING, _int,
                "batches at least this large are merged by one thread per core"),
    SettingSpec("gold", "top_products_n", "top_products_n", Reach.GOLD, _int, "rows of `top_products`"),
    SettingSpec("gold", "anomaly_top_n", "anomaly_top_n", Reach.STATE, _int,
                "rows of `anomaly_records` (the state keeps only this many candidates)"),
)
SPEC_BY_FIELD: dict[str, SettingSpec] = {spec.field: spec for spec in SETTINGS}


def _canonical(value: Any) -> Any:
    """JSON-ready form in which equal settings compare equal (tuples as lists, keys sorted by json)."""
    if isinstance(value, Mapping):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


def values_of(settings: Settings, *reaches: Reach) -> dict[str, Any]:
    """`[section] key` -> canonical value, for the settings of the given reaches."""
    return {spec.name: _canonical(getattr(settings, spec.field)) for spec in SETTINGS if spec.reach in reaches}


def silver_values(settings: Settings) -> dict[str, Any]:
    """Everything that shapes what a silver part holds, the cleaning code's version included."""
    return {"silver code version": SILVER_CODE_VERSION, **values_of(settings, Reach.SILVER)}


def digest_of(values: Mapping[str, Any]) -> str:
    text = json.dumps(_canonical(values), sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(text.encode("utf-8"), digest_size=10).hexdigest()


def silver_fingerprint(settings: Settings) -> str:
    return digest_of(silver_values(settings))


def state_values(settings: Settings) -> dict[str, Any]:
    """What the Silver -> Gold state depends on: the silver it merged and what it chose to keep."""
    return {"silver": silver_fingerprint(settings), **values_of(settings, Reach.STATE)}


def gold_fingerprint(settings: Settings) -> str:
    """What gold depends on beyond the state: settings applied when the tables are derived."""
    return digest_of({"state": digest_of(state_values(settings)), **values_of(settings, Reach.GOLD)})


def changed_keys(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """The keys whose values differ (present in either), in a stable order."""
    return sorted(k for k in set(recorded) | set(current) if _canonical(recorded.get(k)) != _canonical(current.get(k)))


def describe_changes(recorded: Mapping[str, Any], current: Mapping[str, Any], limit: int = 60) -> str:
    """`[cleaning] max_quantity 1000000 -> 15, [cleaning] region_aliases` (long values named only)."""
    described = []
    for key in changed_keys(recorded, current):
        old, new = (json.dumps(_canonical(v)) if v is not None else "unset" for v in (recorded.get(key), current.get(key)))
        described.append(f"{key} {old} -> {new}" if len(old) + len(new) <= limit else f"{key} (changed)")
    return ", ".join(described)


def settings_fields() -> list[str]:
    return [f.name for f in fields(Settings)]


def _default_text(spec: SettingSpec) -> str:
    value = _canonical(getattr(Settings(), spec.field))
    text = value if isinstance(value, str) else json.dumps(value)
    return f"`{text}`" if len(text) <= 48 else "see `luigi.cfg`"


def settings_table_markdown() -> str:
    """README's configuration table, generated from SETTINGS (`python -m pipeline.settings`)."""
    rows = ["| section | key | default | a change of it | meaning |", "|---|---|---|---|---|"]
    for spec in SETTINGS:
        rows.append(f"| `[{spec.section}]` | `{spec.key}` | {_default_text(spec)} | {spec.reach.value} | {spec.meaning} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(settings_table_markdown(), end="")
