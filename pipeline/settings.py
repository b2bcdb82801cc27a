"""One validated settings object for the whole pipeline, each setting declared once.

Each field of `Settings` is declared with `setting(...)`: its section and key in luigi.cfg, its
default, how its text is parsed, its bounds or check, what a change to it reaches (`Reach`) and
its meaning. The config reader (tasks/config.py builds the Luigi config classes from it), the
validation, the fingerprints that keep old silver, state and gold from being mixed with new
settings, and README's table all come from those declarations (`SETTINGS`;
tests/test_settings_model.py checks luigi.cfg and README against them). Every check names the
section and key, so a bad value stops the run at start with one line.
"""
from __future__ import annotations

import datetime as _dt
import enum
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from pipeline.contract import DEDUP_KEY_COLUMNS, DEFAULT_DEDUP_KEY, column_key
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
# Header names are matched case-folded with white space, '-' and '_' removed (pipeline.bronze.header),
# so `Order ID`, `order-id` and `OrderID` need no alias; these are the real synonyms of shop exports.
DEFAULT_COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "order_id": ("order number", "order no"),
    "product_name": ("product", "product title", "item name"),
    "category": ("product category",),
    "quantity": ("qty", "quantity ordered", "units"),
    "unit_price": ("price", "price each", "item price"),
    "discount_percent": ("discount %", "discount pct", "discount percentage", "discount rate"),
    "region": ("sales region", "ship region"),
    "sale_date": ("date", "order date", "sales date", "purchase date"),
    "customer_email": ("email", "email address", "buyer email"),
}
DEFAULT_DATE_FORMATS: tuple[str, ...] = ("%Y-%m-%d", "%d/%m/%Y", "%m-%d-%Y", "%Y/%m/%d")
GOLD_MODES = ("upsert", "overwrite")
# Bounds that keep every sum exact: a bucket's quantities (fewer than 9e9 rows of at most 1e9)
# fit int64 before they are summed exactly (pipeline.gold.aggregates).
MAX_QUANTITY_BOUND = 1_000_000_000
MAX_ROWS_BOUND = 1_000_000_000  # rows per merge batch: far above what fits in memory, far below int64 / quantity
MAX_TOP_N = 1_000_000  # rows of a ranked gold table; the state keeps anomaly_top_n candidates per bucket


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


# --- parsers: config text -> value ------------------------------------------------------------

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


def _bool(value: str) -> bool:
    """configparser's spellings: true/false, yes/no, on/off, 1/0 (any case)."""
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise ValueError(f"{value!r} is not true or false")


# --- checks: value -> what is wrong with it, or None ------------------------------------------

Check = Callable[[Any], "str | None"]


def _in_range(low: float, high: float | None, kind: type = int) -> Check:
    """An int (or, with kind=float, a number) in low..high (no upper bound when high is None)."""
    def check(value: Any) -> str | None:
        numeric = (int, float) if kind is float else (int,)
        if isinstance(value, numeric) and not isinstance(value, bool) and low <= value and (high is None or value <= high):
            return None
        what = "a number" if kind is float else "an integer"
        return f"{value!r} must be {what} in {low}..{high}" if high is not None else f"{value!r} must be {what} >= {low}"
    return check


def _is_bool(value: Any) -> str | None:
    return None if isinstance(value, bool) else f"{value!r} must be true or false"


def _one_of(choices: Sequence[str]) -> Check:
    return lambda value: None if value in choices else f"{value!r} must be one of {', '.join(choices)}"


def _path(value: Any) -> str | None:
    return None if isinstance(value, str) and value.strip() else "must be a non-empty path"


def _data_root(value: Any) -> str | None:
    """A folder, or `s3://bucket[/prefix]` (pipeline.storage.store.parse_root says what else is wrong)."""
    problem = _path(value)
    if problem:
        return problem
    from pipeline.errors import ConfigError
    from pipeline.storage.store import parse_root

    try:
        parse_root(value)
    except ConfigError as error:
        return str(error).split(": ", 1)[-1]
    return None


def _optional_path(value: Any) -> str | None:
    return None if isinstance(value, str) else "must be a path or empty"


def _glob(value: Any) -> str | None:
    if isinstance(value, str) and value.lower().endswith(".csv") and ".." not in value and not value.startswith("/"):
        return None
    return f"{value!r} must be a relative glob ending in .csv (any case) without '..'"


def _text(value: Any) -> str | None:
    return None if isinstance(value, str) and value.strip() else f"{value!r} must be a non-empty text"


def _aliases(aliases: Any) -> str | None:
    if not (isinstance(aliases, Mapping) and len(aliases) > 0):
        return "must be a non-empty JSON object of canonical -> [aliases]"
    seen: dict[str, str] = {}
    for canonical, names in aliases.items():
        if not (isinstance(canonical, str) and canonical.strip() != ""):
            return f"canonical name {canonical!r} must be a non-empty string"
        if not (isinstance(names, (list, tuple)) and all(isinstance(n, str) for n in names)):
            return f"aliases of {canonical!r} must be a list of strings"
        for name in [canonical, *names]:
            key = normalised(name)
            if seen.get(key, canonical) != canonical:
                return f"alias {name!r} maps to both {seen.get(key)!r} and {canonical!r}"
            seen[key] = canonical
    return None


def _column_aliases(aliases: Any) -> str | None:
    """Contract column -> header names; no name may mean two columns (a contract name means itself)."""
    from pipeline.contract import INPUT_COLUMNS

    if not isinstance(aliases, Mapping):
        return "must be a JSON object of contract column -> [header names]"
    seen = {column_key(column): column for column in INPUT_COLUMNS}
    for canonical, names in aliases.items():
        if canonical not in INPUT_COLUMNS:
            return f"{canonical!r} is not a contract column ({', '.join(INPUT_COLUMNS)})"
        if not (isinstance(names, (list, tuple)) and all(isinstance(n, str) and column_key(n) for n in names)):
            return f"aliases of {canonical!r} must be a list of non-empty strings"
        for name in names:
            if seen.setdefault(column_key(name), canonical) != canonical:
                return f"alias {name!r} maps to both {seen[column_key(name)]!r} and {canonical!r}"
    return None


def _date_formats(formats: Any) -> str | None:
    if not (isinstance(formats, (list, tuple)) and len(formats) > 0):
        return "must be a non-empty list of strptime formats"
    for fmt in formats:
        ok = isinstance(fmt, str) and "%" in fmt
        if ok:
            try:
                _dt.datetime(2024, 3, 5).strftime(fmt)
            except ValueError:
                ok = False
        if not ok:
            return f"{fmt!r} is not a strptime date format"
    return None


def _dedup_key(key: Any) -> str | None:
    if (isinstance(key, (list, tuple)) and len(key) > 0 and len(set(key)) == len(key)
            and all(name in DEDUP_KEY_COLUMNS for name in key)):
        return None
    shown = list(key) if isinstance(key, (list, tuple)) else key
    return f"{shown!r} must be a non-empty list of distinct cleaned columns, from {', '.join(DEDUP_KEY_COLUMNS)}"


# --- the declarations -------------------------------------------------------------------------

@dataclass(frozen=True)
class SettingSpec:
    """Everything about one setting but its default (which is the Settings field's)."""

    section: str
    key: str
    reach: Reach
    parse: Callable[[str], Any]
    check: Check
    meaning: str
    field: str = ""  # the Settings attribute, filled in from the field that declares it

    @property
    def name(self) -> str:
        return f"[{self.section}] {self.key}"


def setting(section: str, key: str, default: Any, reach: Reach, parse: Callable[[str], Any], check: Check, meaning: str) -> Any:
    """A Settings field with its declaration (a mutable default is copied for every instance)."""
    spec = SettingSpec(section, key, reach, parse, check, meaning)
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata={"spec": spec})
    return field(default=default, metadata={"spec": spec})


@dataclass(frozen=True)
class Settings:
    """Every configurable value of CONTRACT.md: default, parser, check, reach and meaning."""

    data_root: str = setting("pipeline", "data_root", "data", Reach.WHERE, _str, _data_root,
                            "folder with `bronze/`, `silver/`, ... (or `s3://bucket/prefix` on object storage)")
    state_dir: str = setting("pipeline", "state_dir", "", Reach.WHERE, _str, _optional_path,
                             "folder of this host's Silver -> Gold state (empty: `<data_root>/state`, for an s3:// root "
                             "`$XDG_STATE_HOME/sales-pipeline/s3/<bucket>/<prefix>`); keep it on a local disk")
    bronze_glob: str = setting("pipeline", "bronze_glob", "**/*.csv", Reach.INPUT, _str, _glob,
                               "input files under `bronze/` (relative, no `..`)")
    chunk_rows: int = setting("pipeline", "chunk_rows", 500_000, Reach.PER_FILE, _int, _in_range(1, 50_000_000),
                              "records per chunk task, about; memory of a chunk task grows with it")
    small_file_bytes: int = setting("pipeline", "small_file_bytes", 4 * 1024 * 1024, Reach.TUNING, _int, _in_range(0, None),
                                    "bronze files at most this large are cleaned many to a task (same outputs per file); "
                                    "0 turns it off")
    # A file with a larger share of rejected rows is warned about (a Latin-1 export, a trailing comma
    # on every data row): it still runs, but "exit 0, no word" would hide a broken export.
    rejected_share_warning: float = setting(
        "pipeline", "rejected_share_warning", 0.5, Reach.WHERE, _float, _in_range(0, 1, float),
        "a file with a larger share of its rows rejected is warned about (summary, `--json`, status, report)")
    # Each run leaves a record and its log under runs/history/ (pipeline.running.history); without
    # a bound a nightly job would grow that folder forever.
    run_history_keep: int = setting("pipeline", "run_history_keep", 100, Reach.WHERE, _int, _in_range(1, 1_000_000),
                                    "run records (and their logs) kept under `runs/history/`; older ones are deleted")
    silver_buckets: int = setting("pipeline", "silver_buckets", 64, Reach.SILVER, _int, _in_range(1, 4096),
                                  "hash buckets of the dedup key (silver row groups, unit of dedup memory)")
    # Which header names mean which contract column: exports name them `Order ID`, `Qty`, `Price`...
    column_aliases: Mapping[str, Sequence[str]] = setting(
        "cleaning", "column_aliases", DEFAULT_COLUMN_ALIASES, Reach.SILVER, _json, _column_aliases,
        "JSON: contract column -> list of header names meaning it (names match case-folded, without spaces, `-`, `_`)")
    category_aliases: Mapping[str, Sequence[str]] = setting("cleaning", "category_aliases", DEFAULT_CATEGORY_ALIASES,
                                                            Reach.SILVER, _json, _aliases, "JSON: canonical -> list of aliases")
    region_aliases: Mapping[str, Sequence[str]] = setting("cleaning", "region_aliases", DEFAULT_REGION_ALIASES,
                                                          Reach.SILVER, _json, _aliases, "JSON: canonical -> list of aliases")
    default_region: str = setting("cleaning", "default_region", "north", Reach.SILVER, _str, _text,
                                  "region for missing or unknown values")
    date_formats: Sequence[str] = setting("cleaning", "date_formats", DEFAULT_DATE_FORMATS, Reach.SILVER, _json, _date_formats,
                                          "JSON list of `strptime` formats, tried in order")
    max_quantity: int = setting("cleaning", "max_quantity", 1_000_000, Reach.SILVER, _int, _in_range(1, MAX_QUANTITY_BOUND),
                                "largest valid quantity")
    max_unit_price: int = setting("cleaning", "max_unit_price", 1_000_000_000, Reach.SILVER, _int,
                                  _in_range(1, 1_000_000_000), "largest valid unit price")
    gold_mode: str = setting("gold", "mode", "upsert", Reach.TUNING, _str, _one_of(GOLD_MODES),
                             "`upsert` merges new orders into gold by key; `overwrite` rebuilds from the state (same tables)")
    dedup_key: Sequence[str] = setting("gold", "dedup_key", DEFAULT_DEDUP_KEY, Reach.SILVER, _names, _dedup_key,
                                       "cleaned columns that identify an order (comma separated): the first row of each "
                                       "key wins; e.g. `order_id, product_key` for one row per order line")
    merge_batch_rows: int = setting("gold", "merge_batch_rows", 10_000_000, Reach.TUNING, _int, _in_range(1, MAX_ROWS_BOUND),
                                    "valid rows per Silver -> Gold batch; bounds merge memory")
    # Batches with at least this many valid rows are merged bucket by bucket by one thread per core;
    # smaller ones in one pass by the task's own thread, where per-bucket calls and threads would
    # cost more than they save (pipeline.gold.merge.merge_whole_batch).
    merge_parallel_min_rows: int = setting("gold", "merge_parallel_min_rows", 1_000_000, Reach.TUNING, _int,
                                           _in_range(0, MAX_ROWS_BOUND),
                                           "batches at least this large are merged bucket by bucket, one thread per core; "
                                           "smaller ones in one pass")
    top_products_n: int = setting("gold", "top_products_n", 10, Reach.GOLD, _int, _in_range(1, MAX_TOP_N), "rows of `top_products`")
    anomaly_top_n: int = setting("gold", "anomaly_top_n", 20, Reach.STATE, _int, _in_range(1, MAX_TOP_N),
                                 "rows of `anomaly_records` (the state keeps only this many candidates)")
    orders_include_email: bool = setting("gold", "orders_include_email", False, Reach.STATE, _bool, _is_bool,
                                         "gold/orders/ holds customer_email (off: gold never holds an e-mail)")

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


SETTINGS: tuple[SettingSpec, ...] = tuple(replace(f.metadata["spec"], field=f.name) for f in fields(Settings))
SPEC_BY_FIELD: dict[str, SettingSpec] = {spec.field: spec for spec in SETTINGS}


def normalised(name: str) -> str:
    """How aliases are compared: lower case, white space runs as one space, trimmed."""
    return " ".join(str(name).lower().split())


def _invert(aliases: Mapping[str, Sequence[str]]) -> dict[str, str]:
    lookup: dict[str, str] = {}
    for canonical, names in aliases.items():
        for name in (canonical, *names):  # the canonical name matches itself, normalised like any alias
            lookup[normalised(name)] = canonical
    return lookup


def validate(settings: Settings) -> Settings:
    """Return `settings` if every value is usable, else raise ConfigError naming section and key."""
    for spec in SETTINGS:
        problem = spec.check(getattr(settings, spec.field))
        if problem:
            raise ConfigError(f"config {spec.name}: {problem}")
    # Relations between settings.
    if settings.default_region not in settings.region_aliases:
        raise ConfigError(f"config [cleaning] default_region: {settings.default_region!r} must be one of the canonical regions "
                          f"{sorted(settings.region_aliases)}")
    # gross_revenue = quantity * unit_price must fit the silver money type decimal(18, 2).
    if settings.max_quantity * settings.max_unit_price > 10**15:
        raise ConfigError("config [cleaning] max_quantity: max_quantity * max_unit_price must be <= 1e15 so that revenue fits "
                          "decimal(18, 2)")
    return settings


# Bump when a change to the bronze -> silver code (parsing, cleaning rules, hashing, the silver
# part layout) changes what silver holds for the same input: silver written by older code is then
# refused until `--reprocess-all`. tests/test_settings_model.py fails when those modules change
# without a look at this number.
# 2: a quote left open at the end of a file makes its last record malformed; 3: key_hash (XXH64 of [gold] dedup_key);
# 4: header names match without separators and through [cleaning] column_aliases (a `date` column that was
# an extra is now sale_date)
SILVER_CODE_VERSION = 4


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
    text = value if isinstance(value, str) else ", ".join(value) if spec.parse is _names else json.dumps(value)
    return f"`{text}`" if len(text) <= 48 else "see `luigi.cfg`"


def settings_table_markdown() -> str:
    """README's configuration table, generated from SETTINGS (`python -m pipeline.settings`)."""
    rows = ["| section | key | default | a change of it | meaning |", "|---|---|---|---|---|"]
    for spec in SETTINGS:
        rows.append(f"| `[{spec.section}]` | `{spec.key}` | {_default_text(spec)} | {spec.reach.value} | {spec.meaning} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(settings_table_markdown(), end="")
