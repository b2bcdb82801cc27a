"""Deterministic dirty sample data for the bronze layer (`python run.py generate`).

Why it exists: the pipeline has to be exercised on realistic input at every scale, from a few
thousand rows in tests to 100M rows in benchmarks. So every kind of dirt the contract defines
(docs/CONTRACT.md) shows up at small rates, the same arguments always give the same bytes,
and the rows are built column-wise with numpy/pyarrow in bounded blocks instead of per-row Python.

How: each column is a pyarrow string array of ready-to-write CSV fields. Clean values come from
numpy integers formatted by pyarrow, or from small pools; dirty variants are overlaid at fixed
rates. Anything that needs CSV quoting lives only in the small pools, which are quoted once here.

Day by day (`day_offset`): a later batch is the next day's export into the same bronze folder, with
its own order numbers, sale dates on that day and file numbers sorting after every earlier day's,
so it adds orders instead of repeating the first batch's (only its deliberate duplicates repeat).
"""
from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.contract import INPUT_COLUMNS
from pipeline.errors import PipelineError
from pipeline.storage.atomic import atomic_path

__all__ = ["generate_bronze"]

BLOCK_ROWS = 200_000  # rows built in memory at once: bounds memory for 100M-row runs
FILE_NAME = "sales_data_part_{:04d}.csv"
FIRST_FOLDER_DATE = dt.date(2026, 11, 1)  # date=... folder of the first file (one file per day)
FIRST_SALE_DATE = dt.date(2023, 1, 1)
LAST_SALE_DATE = dt.date(2026, 11, 30)
# Day K (day_offset): order numbers from K * DAY_ID_BLOCK + 1, file numbers from K * PARTS_PER_DAY + 1,
# sales on LAST_SALE_DATE + K days.
DAY_ID_BLOCK = 1_000_000_000
PARTS_PER_DAY = 100_000  # far above the 20,000-file benchmark (bench/README.md)
DAY_TIME_SLOTS = 48  # sale times of a day's pool: every half hour

SAME_FILE_DUPLICATE_RATE = 0.03
EARLIER_FILE_DUPLICATE_RATE = 0.02
PAD_RATE = 0.01  # per field: surrounding spaces, tabs or no-break spaces
BLANK_LINE_RATE = 0.0005  # per record: an empty line after it

BOM = b"\xef\xbb\xbf"

# Makes the dirty replacements for the values it is given (same length), e.g. `3` -> `+3`.
Variant = Callable[[np.random.Generator, pa.Array], pa.Array]
Dirt = tuple[float, Variant]  # (share of rows, variant)
Column = tuple[pa.Array, Sequence[Dirt]]  # clean CSV fields and the dirt to overlay on them


# --- pools: small sets of values, CSV-quoted once --------------------------------------------------


def _csv_field(value: str) -> str:
    """Quote a value only when CSV needs it (comma, quote or line break), doubling inner quotes."""
    if any(ch in value for ch in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def _pool(values: Sequence[str]) -> pa.StringArray:
    return pa.array([_csv_field(v) for v in values], type=pa.string())


def _product_spellings(name: str) -> tuple[str, ...]:
    """The same product written four ways; all share one product_key (`iPhone 14`, `iphone-14`...)."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return (name, slug, name.replace(" ", "  ", 1), name.upper())


CATALOGUE: dict[str, tuple[str, ...]] = {
    "electronics": (
        "iPhone 14", "iPhone 15 Pro", "Samsung Galaxy S23", "Google Pixel 8", "OnePlus 11",
        "Sony WH-1000XM5", "Bose QC45", "Apple Watch Series 9", "iPad Air", "MacBook Air M2",
        "Dell XPS 13", "Lenovo ThinkPad X1", "HP Spectre x360", "Kindle Paperwhite", "GoPro Hero 12",
        "Nintendo Switch OLED", "PlayStation 5", "Xbox Series X", "LG OLED C3 TV", "Canon EOS R50",
    ),
    "home_appliance": (
        "LG Washer 5000", "Samsung Fridge RF28", "Dyson V15 Vacuum", "Philips Air Fryer XL",
        "Instant Pot Duo", "Nespresso Vertuo", "KitchenAid Mixer", "Bosch Dishwasher 300",
        "Whirlpool Dryer W10", "Panasonic Microwave NN", "iRobot Roomba j7", "Breville Toaster 4",
        "Honeywell Heater HZ", "De'Longhi Magnifica", "Tefal Steam Iron",
    ),
    "fashion": (
        "Levi's 501 Jeans", "Nike Air Max 90", "Adidas Ultraboost 22", "Uniqlo Down Jacket",
        "Zara Linen Shirt", "H&M Cotton Tee", "Ray-Ban Aviator", "Converse Chuck 70",
        "North Face Fleece", "Patagonia Better Sweater", "Puma Suede Classic", "Gap Hoodie",
        "Tommy Polo Shirt", "Calvin Klein Belt", "Vans Old Skool",
    ),
}
# First spelling is the usual one; the rest are the aliases the contract maps back.
CATEGORY_SPELLINGS: dict[str, tuple[str, ...]] = {
    "electronics": ("electronics", "Electronic", "  electronics  ", "Electronics"),
    "home_appliance": ("home_appliance", "home appliance", "HomeAppliance", "home-appl", "Home_Appliance"),
    "fashion": ("fashion", "Cloths", "clothes", "CLOTHING"),
}
SPELLINGS_PER_PRODUCT = 4
USUAL_SPELLING_SHARE = 0.85

_PRODUCT_NAMES = _pool([s for names in CATALOGUE.values() for n in names for s in _product_spellings(n)])
_PRODUCT_CATEGORY = np.repeat(np.arange(len(CATALOGUE)), [len(n) for n in CATALOGUE.values()])
_CATEGORY_WIDTH = max(len(s) for s in CATEGORY_SPELLINGS.values())
# One row of _CATEGORY_WIDTH spellings per category, in CATALOGUE order (short rows end with the usual one).
_CATEGORY_NAMES = _pool(
    [
        CATEGORY_SPELLINGS[category][i] if i < len(CATEGORY_SPELLINGS[category]) else category
        for category in CATALOGUE
        for i in range(_CATEGORY_WIDTH)
    ]
)
_ODD_PRODUCTS = _pool(["Widget, Large", 'The "Best" Mug', "Multi\nLine Lamp", "Lamp 12\" , round"])
_BAD_CATEGORIES = _pool(["toys", "garden"])

_MISSING = _pool(["", "NULL", "none"])
_ID_NULLS = _pool(["", " ", "NULL", "none", "N/A", "nan", "NA"])
_QUANTITIES = _pool([str(q) for q in range(1, 21)])
_CENTS = _pool([f"{c:02d}" for c in range(100)])
_BAD_QUANTITIES = _pool(["zero", "-2", "0", "2.5", "", "abc"])
_CURRENCIES = _pool(["$", "€", "£"])
_ODD_PRICES = _pool(["£3.1", "1,234.50", "2,499.00", "1e3", "2.5E2", "12.345", "19.995"])
_BAD_PRICES = _pool(["0", "0.001", "-5.00", "abc", "nan", "inf", ""])
_DISCOUNTS = _pool(["0", "0.05", "0.1", "0.15", "0.2", "0.25", "0.5"])
_DISCOUNT_WEIGHTS = (0.5, 0.1, 0.12, 0.08, 0.08, 0.06, 0.06)
_BAD_DISCOUNTS = _pool(["1.5", "-0.1", "abc", "", "NULL"])
_REGIONS = _pool(["north", "south", "east", "west"])
_ODD_REGIONS = _pool(["North", " SOUTH ", "nort", "Nort", "East", "WEST"])
_BAD_REGIONS = _pool(["", "NULL", "mars"])
_EMAIL_DOMAINS = _pool(["example.com", "mail.example.org", "shop.test"])
_BAD_EMAILS = _pool(["no-at-sign.com", "a@@b.com", "a b@c.com", "x@nodot"])
_BAD_DATES = _pool(["2024-02-30", "2023-13-01", "2023-02-29", "not a date", "", "NULL"])
_PADS_LEFT = pa.array([" ", "\t", "", "\u00a0", "  "])
_PADS_RIGHT = pa.array([" ", "", "\t", "\u00a0", " \t"])

DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%m-%d-%Y", "%Y/%m/%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S")
DATE_FORMAT_WEIGHTS = (0.80, 0.05, 0.05, 0.04, 0.03, 0.03)


def _date_pool() -> pa.StringArray:
    """Every sale day in every input format, laid out format-major: index = format * days + day."""
    days = (LAST_SALE_DATE - FIRST_SALE_DATE).days + 1
    moments = [
        dt.datetime.combine(FIRST_SALE_DATE, dt.time()) + dt.timedelta(days=d, minutes=(d * 437) % 1440)
        for d in range(days)
    ]
    return _pool([m.strftime(f) for f in DATE_FORMATS for m in moments])


_DATES = _date_pool()
_DAY_COUNT = len(_DATES) // len(DATE_FORMATS)


@lru_cache(maxsize=4)
def _one_day_pool(day: dt.date) -> pa.StringArray:
    """One sale day at DAY_TIME_SLOTS times in every input format: index = format * slots + slot."""
    start = dt.datetime.combine(day, dt.time())
    moments = [start + dt.timedelta(minutes=slot * 1440 // DAY_TIME_SLOTS) for slot in range(DAY_TIME_SLOTS)]
    return _pool([m.strftime(f) for f in DATE_FORMATS for m in moments])


@dataclass(frozen=True)
class Day:
    """Which day's export a batch is: day 0 is the sample, day K > 0 the K-th next day."""

    offset: int = 0
    rows: int = 0  # the batch's rows: how many of the previous day's orders its first file may repeat

    @property
    def id_base(self) -> int:
        return self.offset * DAY_ID_BLOCK

    @property
    def part_base(self) -> int:
        return self.offset * PARTS_PER_DAY

    @property
    def sale_day(self) -> dt.date:
        return LAST_SALE_DATE + dt.timedelta(days=self.offset)

    def earlier_numbers(self, file_first_row: int) -> tuple[int, int]:
        """(first, count) of the order numbers an earlier-file duplicate repeats: this batch's earlier
        files, or for the first file of a later day the previous day's orders."""
        if self.offset == 0 or file_first_row > 0:
            return self.id_base, file_first_row
        return self.id_base - DAY_ID_BLOCK, self.rows

    def sale_dates(self) -> tuple[pa.StringArray, int]:
        """The date pool (format-major) and its dates per format."""
        return (_DATES, _DAY_COUNT) if self.offset == 0 else (_one_day_pool(self.sale_day), DAY_TIME_SLOTS)


# --- array helpers ------------------------------------------------------------------------------


def _weighted(rng: np.random.Generator, weights: Sequence[float], n: int) -> np.ndarray:
    """`n` indices drawn with the given probabilities; several times faster than rng.choice(p=...)
    for the handful of categories used here."""
    u = rng.random(n)
    codes = np.zeros(n, dtype=np.intp)
    for bound in np.cumsum(weights)[:-1]:
        codes += u >= bound
    return codes


def _sample(rng: np.random.Generator, pool: pa.Array, n: int, p: Sequence[float] | None = None) -> pa.Array:
    return pool.take(rng.integers(0, len(pool), size=n) if p is None else _weighted(rng, p, n))


def _overlay(rng: np.random.Generator, base: pa.Array, variants: Sequence[Dirt]) -> pa.Array:
    """Replace a `rate` share of `base` by each variant; variants only see (and cost) their own rows."""
    n = len(base)
    bounds = np.cumsum([rate for rate, _ in variants])
    u = rng.random(n)
    dirty = np.flatnonzero(u < bounds[-1])
    which = np.searchsorted(bounds, u[dirty], side="right")
    pieces, take, used = [base], np.arange(n), n
    for code, (_, variant) in enumerate(variants):
        rows = dirty[which == code]
        take[rows] = used + np.arange(len(rows))
        used += len(rows)
        pieces.append(variant(rng, base.take(rows)))
    return pa.concat_arrays(pieces).take(take)


def _one_of(pool: pa.Array) -> Variant:
    """A variant that ignores the value and picks from `pool` (null tokens, garbage...)."""
    return lambda rng, values: _sample(rng, pool, len(values))


def _wrapped(prefix: str = "", suffix: str = "") -> Variant:
    return lambda rng, values: _join(prefix, values, suffix)


def _with_currency(rng: np.random.Generator, values: pa.Array) -> pa.Array:
    return _join(_sample(rng, _CURRENCIES, len(values)), values)


def _upper(rng: np.random.Generator, values: pa.Array) -> pa.Array:
    return pc.utf8_upper(values)


def _join(*parts: pa.Array | str) -> pa.Array:
    return pc.binary_join_element_wise(*parts, "")


def _decimal(numbers: np.ndarray) -> pa.Array:
    return pa.array(numbers).cast(pa.string())


# --- columns: each maker returns its clean values and the dirt to overlay on them -----------------


def _order_ids(rng: np.random.Generator, rows: np.ndarray, file_first_row: int, day: Day) -> Column:
    """`ORD-<day's first number + global row + 1>`, unique over the dataset and the days except for
    the deliberate duplicates."""
    n = len(rows)
    kind = _weighted(rng, [1.0 - SAME_FILE_DUPLICATE_RATE - EARLIER_FILE_DUPLICATE_RATE,
                           SAME_FILE_DUPLICATE_RATE, EARLIER_FILE_DUPLICATE_RATE], n)
    same_file = file_first_row + (rng.random(n) * (rows - file_first_row)).astype(np.int64)
    earlier_first, earlier_count = day.earlier_numbers(file_first_row)
    earlier_file = earlier_first + (rng.random(n) * earlier_count).astype(np.int64)
    numbers = day.id_base + np.where((kind == 1) & (rows > file_first_row), same_file, rows)
    numbers = np.where((kind == 2) & (earlier_count > 0), earlier_file, numbers)
    ids = _join("ORD-", pc.utf8_lpad(_decimal(numbers + 1), width=8, padding="0"))
    return ids, [(0.015, _one_of(_ID_NULLS))]


def _products(rng: np.random.Generator, n: int) -> tuple[Column, Column]:
    """product_name and category together, so a product keeps its category under any spelling."""
    product = rng.integers(0, len(_PRODUCT_CATEGORY), size=n)
    name = _PRODUCT_NAMES.take(product * SPELLINGS_PER_PRODUCT + _spelling(rng, SPELLINGS_PER_PRODUCT, n))
    category = _CATEGORY_NAMES.take(_PRODUCT_CATEGORY[product] * _CATEGORY_WIDTH + _spelling(rng, _CATEGORY_WIDTH, n))
    return (
        (name, [(0.012, _one_of(_ODD_PRODUCTS)), (0.01, _one_of(_MISSING))]),
        (category, [(0.01, _one_of(_BAD_CATEGORIES)), (0.01, _one_of(_MISSING))]),
    )


def _spelling(rng: np.random.Generator, width: int, n: int) -> np.ndarray:
    """Index of a spelling: the usual one (0) mostly, the others evenly share the rest."""
    other = (1.0 - USUAL_SPELLING_SHARE) / (width - 1)
    return _weighted(rng, [USUAL_SPELLING_SHARE] + [other] * (width - 1), n)


def _quantities(rng: np.random.Generator, n: int) -> Column:
    clean = _sample(rng, _QUANTITIES, n)
    return clean, [(0.01, _wrapped(prefix="+")), (0.01, _wrapped(suffix=".0")), (0.03, _one_of(_BAD_QUANTITIES))]


def _unit_prices(rng: np.random.Generator, n: int) -> Column:
    cents = rng.integers(100, 200_001, size=n)
    clean = _join(_decimal(cents // 100), ".", _CENTS.take(cents % 100))
    return clean, [(0.03, _with_currency), (0.02, _one_of(_ODD_PRICES)), (0.03, _one_of(_BAD_PRICES))]


def _discounts(rng: np.random.Generator, n: int) -> Column:
    return _sample(rng, _DISCOUNTS, n, p=_DISCOUNT_WEIGHTS), [(0.025, _one_of(_BAD_DISCOUNTS))]


def _regions(rng: np.random.Generator, n: int) -> Column:
    return _sample(rng, _REGIONS, n), [(0.04, _one_of(_ODD_REGIONS)), (0.015, _one_of(_BAD_REGIONS))]


def _sale_dates(rng: np.random.Generator, n: int, day: Day = Day()) -> Column:
    pool, per_format = day.sale_dates()
    clean = pool.take(_weighted(rng, DATE_FORMAT_WEIGHTS, n) * per_format + rng.integers(0, per_format, size=n))
    return clean, [(0.025, _one_of(_BAD_DATES))]


def _emails(rng: np.random.Generator, n: int) -> Column:
    clean = _join("user", _decimal(rng.integers(1, 100_000, size=n)), "@", _sample(rng, _EMAIL_DOMAINS, n))
    return clean, [(0.02, _upper), (0.02, _one_of(_BAD_EMAILS)), (0.02, _one_of(_MISSING))]


COLUMN_MAKERS: dict[str, Callable[[np.random.Generator, int], Column]] = {
    "quantity": _quantities,
    "unit_price": _unit_prices,
    "discount_percent": _discounts,
    "region": _regions,
    "sale_date": _sale_dates,
    "customer_email": _emails,
}


def _column_makers(day: Day) -> dict[str, Callable[[np.random.Generator, int], Column]]:
    """COLUMN_MAKERS in their order, the sale dates those of `day`."""
    return {**COLUMN_MAKERS, "sale_date": lambda rng, n: _sale_dates(rng, n, day)}


def _padded(rng: np.random.Generator, values: pa.Array) -> pa.Array:
    """Surround values with spaces/tabs/NBSP; quoted values are left alone (padding outside the
    quotes would break the CSV)."""
    pad = rng.integers(0, len(_PADS_LEFT), size=len(values))
    padded = _join(_PADS_LEFT.take(pad), values, _PADS_RIGHT.take(pad))
    return pc.if_else(pc.starts_with(values, '"'), values, padded)


PADDING: Dirt = (PAD_RATE, _padded)  # added to every column


# --- files --------------------------------------------------------------------------------------


def _block_bytes(rng: np.random.Generator, first_row: int, file_first_row: int, n: int, eol: str, day: Day) -> pa.Buffer:
    """`n` CSV records (with line ends) starting at global row `first_row`, as one buffer."""
    columns = {"order_id": _order_ids(rng, np.arange(first_row, first_row + n, dtype=np.int64), file_first_row, day)}
    columns["product_name"], columns["category"] = _products(rng, n)
    columns.update({name: make(rng, n) for name, make in _column_makers(day).items()})
    fields = [_overlay(rng, clean, [*dirt, PADDING]) for clean, dirt in (columns[name] for name in INPUT_COLUMNS)]
    line_ends = _sample(rng, pa.array([eol, eol * 2]), n, p=[1.0 - BLANK_LINE_RATE, BLANK_LINE_RATE])
    fields[-1] = _join(fields[-1], line_ends)
    return _string_data(pc.binary_join_element_wise(*fields, ","))


def _string_data(strings: pa.StringArray) -> pa.Buffer:
    """The concatenation of all values of a string array, without copying."""
    _, offsets, data = strings.buffers()
    first, last = np.frombuffer(offsets, dtype=np.int32)[[strings.offset, strings.offset + len(strings)]]
    return data[int(first):int(last)]


_HEADER_STYLES: tuple[Callable[[str], str], ...] = (
    lambda c: f" {c.title()} ", str.upper, str.title, lambda c: f"{c}  ",
)


def _file_head(index: int) -> tuple[bytes, str]:
    """Per-file style, fixed by position: BOM, line end and header spelling vary across files."""
    eol = "\r\n" if index % 3 == 2 else "\n"
    if index % 4 == 3:
        header = ",".join(_HEADER_STYLES[i % len(_HEADER_STYLES)](c) for i, c in enumerate(INPUT_COLUMNS))
    else:
        header = ",".join(INPUT_COLUMNS)
    bom = BOM if index % 7 == 1 else b""
    return bom + (header + eol).encode("utf-8"), eol


def _part_path(bronze_dir: Path, index: int, date_folders: bool, day: Day) -> Path:
    """Day 0's file i is part i + 1 (in date=FIRST_FOLDER_DATE + i); a later day's parts are
    numbered from its part_base, so they sort after every earlier day's (in date=<its sale day>)."""
    name = FILE_NAME.format(day.part_base + index + 1)
    if not date_folders:
        return bronze_dir / name
    folder = day.sale_day if day.offset else FIRST_FOLDER_DATE + dt.timedelta(days=index)
    return bronze_dir / f"date={folder}" / name


def _rows_per_file(rows: int, files: int) -> list[int]:
    """Split as evenly as possible, and never into an empty (header-only) file."""
    used = min(files, rows)
    base, extra = divmod(rows, used) if used else (0, 0)
    return [base + (i < extra) for i in range(used)]


def _write_part(path: Path, index: int, rows: int, first_row: int, seed: int, day: Day) -> None:
    """One file from its own random stream (seed and part number), so each part can be generated
    independently and a later day's parts differ from day 0's."""
    part = day.part_base + index
    rng = np.random.default_rng([seed, part])
    head, eol = _file_head(part)
    with atomic_path(path) as tmp, open(tmp, "wb") as out:
        out.write(head)
        for start in range(0, rows, BLOCK_ROWS):
            out.write(_block_bytes(rng, first_row + start, first_row, min(BLOCK_ROWS, rows - start), eol, day))


def _refuse_existing(bronze_dir: Path, paths: Sequence[Path]) -> None:
    """Raise before anything is written if any target already exists (the user's own data, say)."""
    existing = [p for p in paths if os.path.lexists(p)]
    if existing:
        example = existing[0].relative_to(bronze_dir).as_posix()
        raise PipelineError(
            f"generate: {len(existing)} file(s) already exist under {bronze_dir} (e.g. {example}); "
            "refusing to overwrite them; pass --force to overwrite, or use another --data-root"
        )


def _check_fits_a_day(rows: int, files: int) -> None:
    """A batch larger than a day's order numbers or file numbers would reuse the next day's."""
    if rows > DAY_ID_BLOCK or files > PARTS_PER_DAY:
        raise PipelineError(f"generate: at most {DAY_ID_BLOCK:,} rows and {PARTS_PER_DAY:,} files per batch "
                            f"(got --rows {rows:,}, --files {files:,}): a later --day-offset would reuse their "
                            "order ids or file names")


def generate_bronze(
    bronze_dir: Path,
    rows: int,
    files: int = 10,
    seed: int = 42,
    date_folders: bool = False,
    overwrite: bool = False,
    day_offset: int = 0,
) -> list[Path]:
    """Write a deterministic dirty sample of `rows` records over `files` CSV files; return their paths.

    `day_offset` K > 0 makes it the K-th next day's export (class Day): new order numbers, sales on
    LAST_SALE_DATE + K, files named after day 0's. Unless `overwrite`, raise PipelineError (writing
    nothing) when any of those paths already exists.
    """
    if rows < 0:
        raise ValueError(f"rows must be >= 0, got {rows}")
    if files < 1:
        raise ValueError(f"files must be >= 1, got {files}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if day_offset < 0:
        raise ValueError(f"day_offset must be >= 0, got {day_offset}")
    _check_fits_a_day(rows, min(files, rows))
    bronze_dir = Path(bronze_dir)
    day = Day(day_offset, rows)
    counts = _rows_per_file(rows, files)
    paths = [_part_path(bronze_dir, index, date_folders, day) for index in range(len(counts))]
    if not overwrite:
        _refuse_existing(bronze_dir, paths)
    first_row = 0
    for index, (path, count) in enumerate(zip(paths, counts)):
        _write_part(path, index, count, first_row, seed, day)
        first_row += count
    return paths
