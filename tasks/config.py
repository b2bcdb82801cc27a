"""luigi.cfg sections -> one validated `pipeline.settings.Settings`.

Every key is read through Luigi's own config, so `luigi.cfg`, LUIGI_CONFIG_PATH and
`--<section>-<key>` overrides all work; any bad value becomes one ConfigError line that names
the section and the key.
"""
from __future__ import annotations

import configparser
from typing import Any

from luigi.configuration import get_config

from pipeline.errors import ConfigError
from pipeline.settings import SETTINGS, Settings, validate

# section -> key -> spec: the one settings table of pipeline/settings.py
SECTIONS = {section: {spec.key: spec for spec in SETTINGS if spec.section == section}
            for section in dict.fromkeys(spec.section for spec in SETTINGS)}


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
            spec = keys[key]
            raw = None
            try:
                raw = config.get(section, key, raw=True)  # raw: date formats hold '%'
                values[spec.field] = spec.parse(raw)
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
