"""Which settings may be overridden on the command line (`--<section>-<key> VALUE`), and the one
line that refuses the others.

The rule: a setting whose change reaches silver (`Reach.SILVER`: the run is refused until
`--reprocess-all`) lives in a config file only. Given for one run, it would be refused (silver was
cleaned otherwise), and applied with `--reprocess-all` it would make the next plain run (a
nightly job without the option) refused in turn. Every other setting may be overridden for one
run: its next run without the option goes back to the file's value by itself (the state or gold is
rebuilt where the table says so). Pure: the values given come from tasks/config.py.
"""
from __future__ import annotations

from collections.abc import Mapping

from pipeline.settings import SETTINGS, Reach, SettingSpec


def flag(spec: SettingSpec) -> str:
    """The command-line spelling of a setting, as Luigi parses it: `--cleaning-max-quantity`."""
    return f"--{spec.section}-{spec.key}".replace("_", "-")


def overridable(spec: SettingSpec) -> bool:
    return spec.reach is not Reach.SILVER


def config_line(spec: SettingSpec, value: str) -> str:
    """The line of a config file that sets `value` (Luigi interpolates `%`, so it is written `%%`)."""
    return f"{spec.key} = {value.replace('%', '%%')}"


def refusal(given: Mapping[SettingSpec, str]) -> str | None:
    """The one line that refuses silver-shaping settings given on the command line, or None."""
    refused = {spec: value for spec, value in given.items() if not overridable(spec)}
    if not refused:
        return None
    names = ", ".join(spec.name for spec in refused)
    flags = " and ".join(flag(spec) for spec in refused)
    sections: dict[str, list[str]] = {}
    for spec, value in refused.items():
        sections.setdefault(spec.section, []).append(config_line(spec, value))
    lines = "; ".join(f"under [{section}]: {', '.join(entries)}" for section, entries in sections.items())
    it, shapes = ("they", "shape") if len(refused) > 1 else ("it", "shapes")
    return (f"config {names}: {shapes} silver, so {it} cannot be set on the command line (every later run would need "
            f"{flags} too, or be refused); put {'them' if len(refused) > 1 else 'it'} in luigi.cfg (or the file "
            f"LUIGI_CONFIG_PATH names) {lines}, then run `python run.py --reprocess-all` once")


def help_lines() -> list[str]:
    """For --help: the settings that may be given for one run, and those that may not."""
    allowed = [f"  {flag(spec)} VALUE  {spec.meaning}" for spec in SETTINGS if overridable(spec)]
    refused = ", ".join(flag(spec) for spec in SETTINGS if not overridable(spec))
    return ["settings for this run only (default: luigi.cfg; see README, Configuration):", *allowed,
            f"settings that shape silver go in luigi.cfg, not here (refused: {refused})"]
