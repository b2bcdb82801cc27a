"""luigi.cfg sections -> one validated `pipeline.settings.Settings`.

Each section of the settings table (`pipeline.settings.SETTINGS`) is a `luigi.Config` class named
after it, so Luigi's own habits work with both entry points: keys in `luigi.cfg`, a file layered
over it with LUIGI_CONFIG_PATH, and command-line overrides such as `--pipeline-chunk-rows 100000` (a
setting that shapes silver is refused there: pipeline.running.overrides says why).
Values are read the way Luigi reads them (so a literal `%` is written `%%` in a config file, as in
every Luigi config), then parsed and validated here, in one place: an unknown key or a bad value becomes one
ConfigError line that names the section and the key.
"""
from __future__ import annotations

import configparser
import difflib
import os
from pathlib import Path
from typing import Any

import luigi
from luigi.configuration import get_config

from pipeline.errors import ConfigError
from pipeline.running import overrides
from pipeline.settings import SETTINGS, Settings, validate
from tasks import luigi_private

REPO_CONFIG = Path(__file__).resolve().parent.parent / "luigi.cfg"
# section -> key -> spec: the one settings table of pipeline/settings.py
SECTIONS = {section: {spec.key: spec for spec in SETTINGS if spec.section == section}
            for section in dict.fromkeys(spec.section for spec in SETTINGS)}


def _section_class(section: str) -> type[luigi.Config]:
    params = {spec.key: luigi.Parameter(default=None, description=f"{spec.meaning} (a change: {spec.reach.value})")
              for spec in SECTIONS[section].values()}
    return type(section, (luigi.Config,), {"__module__": __name__, "__doc__": f"[{section}] of luigi.cfg", **params})


SECTION_CLASSES: dict[str, type[luigi.Config]] = {section: _section_class(section) for section in SECTIONS}


def layer_repo_config() -> None:
    """Read the repo's luigi.cfg first wherever the command runs from; /etc/luigi, a luigi.cfg in
    the working folder and LUIGI_CONFIG_PATH are read after it, so their keys win."""
    luigi_private.layer_config_first(str(REPO_CONFIG))


def config_path_problem() -> str | None:
    """Luigi ignores a LUIGI_CONFIG_PATH that names no file, with a warning; here it is an error."""
    path = os.environ.get("LUIGI_CONFIG_PATH")
    if path and not os.path.isfile(path):
        return f"config: LUIGI_CONFIG_PATH={path}: no such file"
    return None


def load_settings(data_root: str | None = None) -> Settings:
    """Read our sections (config files and command-line overrides), refuse unknown keys, validate."""
    problem = config_path_problem()
    if problem:
        raise ConfigError(problem)
    config = get_config()
    _refuse_misspelt_sections(config.sections())
    for section, keys in SECTIONS.items():
        if config.has_section(section):
            for key in config.options(section):
                if key not in keys:
                    raise ConfigError(f"config [{section}] {key}: unknown key (known keys: {', '.join(sorted(keys))})")
    values: dict[str, Any] = {}
    for section, cls in SECTION_CLASSES.items():
        try:
            texts = cls()
        except configparser.Error as err:
            hint = " (in luigi.cfg a literal % is written %%)" if isinstance(err, configparser.InterpolationSyntaxError) else ""
            raise ConfigError(f"config [{section}]: {' '.join(str(err).split())}{hint}") from None
        for key, spec in SECTIONS[section].items():
            raw = getattr(texts, key)
            if raw is None:
                continue
            try:
                values[spec.field] = spec.parse(raw)
            except ValueError as err:
                raise ConfigError(f"config [{section}] {key}: cannot read {raw!r} ({err})") from None
    if data_root is not None:
        values["data_root"] = data_root
    if isinstance(values.get("date_formats"), list):
        values["date_formats"] = tuple(values["date_formats"])
    try:
        settings = validate(Settings(**values))
    except TypeError as err:
        raise ConfigError(f"config: {err}") from None
    refused = overrides.refusal({spec: value for spec in SETTINGS
                                 if (value := luigi_private.command_line_value(spec.section, spec.key)) is not None})
    if refused:  # a bad value is told first (above); then where a good one belongs
        raise ConfigError(refused)
    return settings


def _refuse_misspelt_sections(sections: list[str]) -> None:
    """A section named nearly like one of ours (`[claening]`) would be ignored, with its keys:
    refuse it. Other sections (Luigi's own, a task's parameters) are Luigi's business."""
    for section in sections:
        if section in SECTIONS:
            continue
        near = difflib.get_close_matches(section.lower(), list(SECTIONS), n=1, cutoff=0.7)
        if near:
            raise ConfigError(f"config [{section}]: unknown section; did you mean [{near[0]}]? "
                              f"(its keys would be ignored)")


class _Settings:
    """Per-process cache: settings are read once per data root in each worker process."""

    _cache: dict[str, Settings] = {}

    @classmethod
    def for_root(cls, data_root: str) -> Settings:
        if data_root not in cls._cache:
            cls._cache[data_root] = load_settings(data_root)
        return cls._cache[data_root]


settings_for_root = _Settings.for_root
layer_repo_config()
luigi_private.quiet_rpc_retry_warnings()
