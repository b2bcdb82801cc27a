"""luigi.cfg sections -> one validated `pipeline.settings.Settings`.

Every key is read through Luigi's own config, so `luigi.cfg`, LUIGI_CONFIG_PATH and
`--<section>-<key>` overrides all work; any bad value becomes one ConfigError line that names
the section and the key.
"""
from __future__ import annotations

import configparser
import json
from typing import Any

from luigi.configuration import get_config

from pipeline.errors import ConfigError
from pipeline.settings import Settings, validate

def _json(value: str) -> Any:
    return json.loads(value)


def _int(value: str) -> int:
    return int(str(value).replace("_", "").strip())


def _str(value: str) -> str:
    return str(value).strip()


# section -> key -> (Settings field, parser)
SECTIONS: dict[str, dict[str, tuple[str, Any]]] = {
    "pipeline": {
        "data_root": ("data_root", _str),
        "bronze_glob": ("bronze_glob", _str),
        "chunk_rows": ("chunk_rows", _int),
        "silver_buckets": ("silver_buckets", _int),
    },
    "cleaning": {
        "category_aliases": ("category_aliases", _json),
        "region_aliases": ("region_aliases", _json),
        "default_region": ("default_region", _str),
        "date_formats": ("date_formats", _json),
        "max_quantity": ("max_quantity", _int),
        "max_unit_price": ("max_unit_price", _int),
    },
    "gold": {
        "mode": ("gold_mode", _str),
        "merge_batch_rows": ("merge_batch_rows", _int),
        "merge_parallel_min_rows": ("merge_parallel_min_rows", _int),
        "top_products_n": ("top_products_n", _int),
        "anomaly_top_n": ("anomaly_top_n", _int),
    },
}


def load_settings(data_root: str | None = None) -> Settings:
    """Read our sections of the Luigi config, refuse unknown keys, validate every value."""
    config = get_config()
    values: dict[str, Any] = {}
    for section, keys in SECTIONS.items():
        if not config.has_section(section):
            continue
        for key in config.options(section):
            if key not in keys:
                known = ", ".join(sorted(keys))
                raise ConfigError(f"config [{section}] {key}: unknown key (known keys: {known})")
            field, parse = keys[key]
            try:
                raw = config.get(section, key, raw=True)  # raw: date formats hold '%'
                values[field] = parse(raw)
            except (ValueError, configparser.Error) as err:
                raise ConfigError(f"config [{section}] {key}: cannot read {raw!r} ({err})") from None
    if data_root is not None:
        values["data_root"] = data_root
    for listish in ("date_formats",):
        if listish in values and isinstance(values[listish], list):
            values[listish] = tuple(values[listish])
    try:
        return validate(Settings(**values))
    except TypeError as err:
        raise ConfigError(f"config: {err}") from None


class _Settings:
    """Per-process cache: settings are read once per data root in each worker process."""

    _cache: dict[str, Settings] = {}

    @classmethod
    def for_root(cls, data_root: str) -> Settings:
        if data_root not in cls._cache:
            cls._cache[data_root] = load_settings(data_root)
        return cls._cache[data_root]


settings_for_root = _Settings.for_root
