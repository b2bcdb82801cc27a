"""The settings silver was cleaned with, recorded once in `silver/_settings.json`.

Silver is a function of the bronze bytes, the silver-shaping settings and the cleaning code
(`settings.silver_values`). Mixing parts cleaned under two of them would make gold a blend of two
rule sets, so a run refuses before it writes anything when the current settings differ from the
record, and names the changed keys and the one command that applies them (`--reprocess-all`).
Each part also records the fingerprint it was cleaned with (its chunk metrics), checked again
when it is merged: a part written by a run that started under old settings is caught there.
"""
from __future__ import annotations

import json

from pipeline.errors import PipelineError
from pipeline.settings import Settings, describe_changes, silver_fingerprint, silver_values
from pipeline.storage.layout import DataLayout

REPROCESS_ALL = "python run.py --reprocess-all"


class SettingsChangedError(PipelineError):
    """Silver on disk was cleaned under other settings than the current ones."""


def read_record(layout: DataLayout) -> dict | None:
    path = layout.silver_settings_path
    if not layout.store.exists(path):
        return None
    try:
        record = json.loads(layout.store.read_text(path))
        record["values"], record["fingerprint"]  # noqa: B018 - both must be there
        return record
    except (ValueError, KeyError, TypeError) as err:
        raise SettingsChangedError(f"{path}: unreadable settings record ({type(err).__name__}); "
                                   f"run `{REPROCESS_ALL}` to redo silver under the current settings") from None


def settings_problem(layout: DataLayout, settings: Settings) -> str | None:
    """Why the silver on disk cannot be used with `settings` (one line), or None."""
    try:
        record = read_record(layout)
    except SettingsChangedError as err:
        return str(err)
    if record is None:
        if layout.ingested_files():
            return (f"silver in {layout.silver_dir} has no record of the settings it was cleaned with; "
                    f"run `{REPROCESS_ALL}` to redo it under the current settings")
        return None
    if record["fingerprint"] == silver_fingerprint(settings):
        return None
    changes = describe_changes(record["values"], silver_values(settings))
    return (f"settings changed since silver in {layout.silver_dir} was written: {changes}; "
            f"run `{REPROCESS_ALL}` to redo silver for every file under the new settings and rebuild gold "
            "(or restore the old values)")


def check_and_record(layout: DataLayout, settings: Settings) -> None:
    """Refuse silver of other settings; on a data root without silver, record the current ones."""
    problem = settings_problem(layout, settings)
    if problem:
        raise SettingsChangedError(problem)
    if not layout.store.exists(layout.silver_settings_path):
        write_record(layout, settings)


def write_record(layout: DataLayout, settings: Settings) -> None:
    record = {"fingerprint": silver_fingerprint(settings), "values": silver_values(settings)}
    layout.store.write_text(layout.silver_settings_path, json.dumps(record, indent=1, sort_keys=True))
