"""What the benchmark's DuckDB and Polars jobs share: the contract's constants and the input files.

The jobs re-implement the cleaning rules of pipeline/bronze/cleaning.py in their own engines; only the
setup is borrowed from the product, so that both sides agree on what the input *is*:

- the files and their order (pipeline.bronze.discovery: natural sort of the path, which defines "first"),
- each file's header (pipeline.bronze.chunking.read_header + pipeline.bronze.header.layout_header: BOM, trimmed
  lower-cased names, where each contract column sits, missing optional columns),
- the default alias maps, limits and date formats (pipeline.settings defaults = luigi.cfg's).
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from pipeline.bronze.chunking import read_header  # noqa: E402
from pipeline.bronze.discovery import discover_bronze  # noqa: E402
from pipeline.bronze.header import layout_header  # noqa: E402
from pipeline.contract import INPUT_COLUMNS, NULL_TOKENS, UNKNOWN_PRODUCT  # noqa: E402
from pipeline.errors import InputFileError  # noqa: E402
from pipeline.settings import Settings  # noqa: E402

SETTINGS = Settings()
MAX_QUANTITY = SETTINGS.max_quantity
MAX_UNIT_PRICE = SETTINGS.max_unit_price
CATEGORY_LOOKUP = SETTINGS.category_lookup  # normalised alias -> canonical
REGION_LOOKUP = SETTINGS.region_lookup
DEFAULT_CATEGORY = "unknown"
DEFAULT_REGION = SETTINGS.default_region
DATE_FORMATS = tuple(SETTINGS.date_formats)
SENTINEL_DATE = "1970-01-01"

# White space = Python's str.isspace (29 code points), as characters and as a regex class
# (RE2 for DuckDB, Rust `regex` for Polars: both read \x{...}).
WS_CHARS = "".join(map(chr, [*range(0x09, 0x0E), *range(0x1C, 0x21), 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B),
                              0x2028, 0x2029, 0x202F, 0x205F, 0x3000]))
assert len(WS_CHARS) == 29 and WS_CHARS.isspace()  # bench/edge_check.py checks it is the whole set
WS_CLASS = "[" + "".join(f"\\x{{{ord(ch):X}}}" for ch in WS_CHARS) + "]"
WS_RUN = WS_CLASS + "+"
# local@label.label[...] with no white space (pipeline.bronze.cleaning._EMAIL), checked after lower-casing
EMAIL = f"^[^@{WS_CLASS[1:-1]}]+@[^@.{WS_CLASS[1:-1]}]+(?:\\.[^@.{WS_CLASS[1:-1]}]+)+$"
NULLS = NULL_TOKENS  # compared after trimming, case-insensitively

# Number syntax (pipeline.bronze.cleaning._NumberSyntax): [0-9] only, optional sign, fraction, exponent.
PLAIN_NUMBER = r"^[+-]?(?:(?:[0-9]+)(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
PRICE_NUMBER = r"^[+-]?[$€£]?(?:(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
PRICE_PREFIX = "+-$€£"
EXPONENT_CAP = 40  # zeros written out when expanding 1e400, as in the pipeline
SATURATED = 10**18
MONEY_SCALE = 2
DISCOUNT_SCALE = 6

# An ISO timestamp with a valid clock time: group 1 is the date, checked as a calendar date.
ISO_TIMESTAMP = (
    r"^([0-9]{4}-[0-9]{2}-[0-9]{2})[Tt ](?:[01][0-9]|2[0-3]):[0-5][0-9]"
    r"(?::[0-5][0-9](?:[.,][0-9]+)?)?(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):?[0-5][0-9])?$"
)

# What Python's strptime accepts for each directive (Lib/_strptime.py), ASCII digits only
# (the pipeline refuses other scripts' digits).
_DIRECTIVES = {
    "%Y": ("y", r"([0-9]{4})"),
    "%m": ("m", r"(1[0-2]|0[1-9]|[1-9])"),
    "%d": ("d", r"(3[01]|[12][0-9]|0[1-9]|[1-9]| [1-9])"),
}


@dataclass(frozen=True)
class DateFormat:
    pattern: str  # anchored regex, one group per directive
    groups: tuple[str, ...]  # "y", "m", "d" in group order


def date_format_regexes(formats: tuple[str, ...] = DATE_FORMATS) -> list[DateFormat]:
    """Each strptime format as an anchored regex; only %Y %m %d and literal text are supported."""
    out = []
    for fmt in formats:
        parts, groups, i = ["^"], [], 0
        while i < len(fmt):
            if fmt[i] == "%":
                name, rx = _DIRECTIVES[fmt[i:i + 2]]
                parts.append(rx)
                groups.append(name)
                i += 2
            else:
                parts.append(re.escape(fmt[i]))
                i += 1
        parts.append("$")
        assert sorted(groups) == ["d", "m", "y"], fmt
        out.append(DateFormat("".join(parts), tuple(groups)))
    return out


@dataclass(frozen=True)
class InputFile:
    index: int  # position in input order (natural sort)
    relative_path: str
    path: Path
    width: int  # fields in the header
    positions: dict[str, int]  # contract column -> field index
    extra_columns: tuple[str, ...] = ()  # as data_quality lists them
    missing_optional: tuple[str, ...] = ()


def input_files(bronze_dir: Path) -> tuple[list[InputFile], list[str]]:
    """Bronze files in input order with their header layout; files that fail alone are listed apart."""
    files, failed = [], []
    for i, bronze in enumerate(discover_bronze(Path(bronze_dir), SETTINGS.bronze_glob)):
        try:
            with open(bronze.absolute_path, "rb") as handle:
                names, _, _ = read_header(handle, bronze.absolute_path)
            layout = layout_header(names, bronze.relative_path)
        except InputFileError as err:
            failed.append(str(err))
            continue
        files.append(InputFile(i, bronze.relative_path, bronze.absolute_path, layout.width, dict(layout.positions),
                               layout.extra_columns, layout.missing_optional))
    return files, failed


def sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


__all__ = [name for name in dir() if name.isupper()] + [
    "INPUT_COLUMNS", "UNKNOWN_PRODUCT", "DateFormat", "date_format_regexes", "InputFile", "input_files", "sql_string",
]


def readable_inputs(bronze_dir: Path) -> list[InputFile]:
    """input_files() for a job's command line: says which files are skipped (they fail alone in the
    pipeline too); an empty list means there is nothing to run."""
    files, failed = input_files(bronze_dir)
    for line in failed:
        print(f"skipped (fails alone in the pipeline too): {line}", file=sys.stderr)
    if not files:
        print("no readable bronze file", file=sys.stderr)
    return files
