"""Header normalisation: which input columns a file has, which are missing, which are extra.

Exports name columns their own way (`Order ID`, `order-id`, `Qty`): a header name is matched
case-folded with white space, `-` and `_` removed, then against `[cleaning] column_aliases`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pipeline.contract import INPUT_COLUMNS, REQUIRED_COLUMNS, column_key
from pipeline.errors import InputFileError
from pipeline.settings import DEFAULT_COLUMN_ALIASES

ALIASES_SETTING = "[cleaning] column_aliases"
_SHOWN_HEADER_CHARS = 200
ColumnAliases = Mapping[str, Sequence[str]]  # [cleaning] column_aliases: contract column -> header names


@dataclass(frozen=True)
class HeaderLayout:
    """Where each contract column sits in a file, and the schema drift it shows."""

    width: int
    positions: dict[str, int]  # contract column -> position in the file
    missing_optional: tuple[str, ...]
    extra_columns: tuple[str, ...]


def normalise_name(name: str) -> str:
    """How an extra column is listed in data_quality: trimmed, lower-cased."""
    return name.strip().lower()


def column_lookup(aliases: ColumnAliases) -> dict[str, str]:
    """Header name (column_key) -> contract column; each contract name also means itself.

    Built once per aliases mapping (the settings' own object): a small file's header is laid out
    several times, and building the lookup was most of it (a few hundred name keys each time)."""
    cached = _LOOKUPS.get(id(aliases))
    if cached is not None and cached[0] is aliases:
        return cached[1]
    lookup = {column_key(name): column for column, names in aliases.items() for name in names}
    lookup.update({column_key(column): column for column in INPUT_COLUMNS})
    if len(_LOOKUPS) > 16:
        _LOOKUPS.clear()
    _LOOKUPS[id(aliases)] = (aliases, lookup)
    return lookup


_LOOKUPS: dict[int, tuple[ColumnAliases, dict[str, str]]] = {}  # id -> (the mapping, kept alive so its id is not reused)


def layout_header(header_raw: list[str], source_file: str,
                  aliases: ColumnAliases | None = None) -> HeaderLayout:
    """Map a raw header to contract columns (`aliases`: the setting's value, default its default);
    fail the file when a required column is missing or two names mean one column."""
    lookup = column_lookup(DEFAULT_COLUMN_ALIASES if aliases is None else aliases)
    found: dict[str, list[int]] = {}
    for index, name in enumerate(header_raw):
        column = lookup.get(column_key(name))
        if column is not None:
            found.setdefault(column, []).append(index)
    missing_required = [c for c in REQUIRED_COLUMNS if c not in found]
    if missing_required:
        raise InputFileError(_missing_message(header_raw, source_file, missing_required))
    duplicates = {column: at for column, at in found.items() if len(at) > 1}
    if duplicates:
        raise InputFileError(_duplicate_message(header_raw, source_file, duplicates))
    mapped = {at[0] for at in found.values()}
    names = [normalise_name(n) for n in header_raw]
    extra = tuple(n if n else f"<empty #{i + 1}>" for i, n in enumerate(names) if i not in mapped)
    return HeaderLayout(width=len(names), positions={column: at[0] for column, at in found.items()},
                        missing_optional=tuple(c for c in INPUT_COLUMNS if c not in found), extra_columns=extra)


def _missing_message(header_raw: list[str], source_file: str, missing: list[str]) -> str:
    """Names the header seen and what would fix it: a comma-separated export, or an alias."""
    shown = ", ".join(name.strip() for name in header_raw)
    shown = shown if len(shown) <= _SHOWN_HEADER_CHARS else shown[:_SHOWN_HEADER_CHARS] + "..."
    hint = f"map them with {ALIASES_SETTING} in luigi.cfg"
    for delimiter, label in ((";", "';'"), ("\t", "tab"), ("|", "'|'")):
        if len(header_raw) == 1 and delimiter in header_raw[0]:
            hint = f"the header looks {label}-separated, but files must be comma-separated"
    return f"{source_file}: missing required column(s) {', '.join(missing)}; header: {shown}; {hint}"


def _duplicate_message(header_raw: list[str], source_file: str, duplicates: dict[str, list[int]]) -> str:
    """Names both header columns of each contract column named twice: which one to use is ambiguous."""
    both = "; ".join(f"{' and '.join(repr(header_raw[i].strip()) for i in at)} both mean {column}"
                     for column, at in duplicates.items())
    return (f"{source_file}: duplicate column(s) {', '.join(sorted(duplicates))} in the header ({both}); "
            f"which one to use is ambiguous: drop one, or change {ALIASES_SETTING} in luigi.cfg")
