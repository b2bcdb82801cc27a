"""Header normalisation: which input columns a file has, which are missing, which are extra."""
from __future__ import annotations

from dataclasses import dataclass

from pipeline.contract import INPUT_COLUMNS, REQUIRED_COLUMNS
from pipeline.errors import InputFileError


@dataclass(frozen=True)
class HeaderLayout:
    """Where each contract column sits in a file, and the schema drift it shows."""

    width: int
    positions: dict[str, int]  # contract column -> position in the file
    missing_optional: tuple[str, ...]
    extra_columns: tuple[str, ...]


def normalise_name(name: str) -> str:
    return name.strip().lower()


def layout_header(header_raw: list[str], source_file: str) -> HeaderLayout:
    """Map a raw header to contract columns; fail the file when a required column is missing."""
    names = [normalise_name(n) for n in header_raw]
    positions: dict[str, int] = {}
    duplicates: list[str] = []
    for index, name in enumerate(names):
        if name in INPUT_COLUMNS:
            if name in positions:
                duplicates.append(name)
            else:
                positions[name] = index
    missing_required = [c for c in REQUIRED_COLUMNS if c not in positions]
    if missing_required:
        shown = ",".join(names)
        shown = shown if len(shown) <= 200 else shown[:200] + "..."
        hint = ""
        for delimiter, label in ((";", "';'"), ("\t", "tab"), ("|", "'|'")):
            if len(names) == 1 and delimiter in names[0]:
                hint = f"; the header looks {label}-separated, but files must be comma-separated"
        raise InputFileError(f"{source_file}: missing required column(s) {', '.join(missing_required)} (header: {shown!r}){hint}")
    if duplicates:
        raise InputFileError(f"{source_file}: duplicate column(s) {', '.join(sorted(set(duplicates)))} in the header; "
                             "which one to use is ambiguous")
    extra = tuple(n if n else f"<empty #{i + 1}>" for i, n in enumerate(names) if n not in INPUT_COLUMNS)
    missing_optional = tuple(c for c in INPUT_COLUMNS if c not in positions)
    return HeaderLayout(width=len(names), positions=positions, missing_optional=missing_optional, extra_columns=extra)
