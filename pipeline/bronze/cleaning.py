"""Field rules of CONTRACT.md applied to a table of raw CSV strings: silver rows, quarantined rows.

This is the hot path, so every rule runs on whole Arrow arrays, never row by row:

- Columns with few distinct values (quantity, unit_price, discount, product, category, region,
  sale_date) are dictionary-encoded and each rule runs once per distinct value, then the results
  are spread back with `take` (`_per_distinct`). The rules themselves are vectorised too, so a
  column that turns out to have many distinct values is still fast.
- Python runs only where Arrow cannot give the contract's answer, and only on distinct values:
  lower-casing non-ASCII text (Arrow and Python differ on `İ` and final `Σ`; Python's
  `str.lower` is the reference), numbers written with an exponent, and dates: `strptime` itself
  reads each distinct date text once (`_date_days`, cached across chunks), since the contract's
  dates are whatever `strptime` accepts and a chunk holds a few thousand distinct ones.
- Money is exact integer arithmetic on int64 cents (`_money`), turned into decimals at the end.

White space means Python's `str.isspace` (the same 29 code points Arrow's `utf8_trim_whitespace`
trims and `str.split` splits on), so the alias maps of settings.py normalise the same way.
"""
from __future__ import annotations

import datetime as dt
import functools
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline import contract as c
from pipeline.bronze.hashing import bucket_of, key_hash
from pipeline.settings import Settings

Columns = dict[str, "pa.Array | np.ndarray"]

# RE2 class of every white space code point (Python's str.isspace; RE2's own \s is ASCII only).
_WS = r"\t\n\x{0B}\f\r \x{1C}-\x{1F}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}"
_WS_RUN = f"[{_WS}]+"
# local@domain.tld: no white space, exactly one @, domain labels non-empty and dot separated.
_EMAIL = f"^[^@{_WS}]+@[^@.{_WS}]+(?:\\.[^@.{_WS}]+)+$"
# An ISO timestamp with a valid clock time; its date part (the first 10 characters) is parsed later.
_ISO_TIMESTAMP = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ](?:[01][0-9]|2[0-3]):[0-5][0-9]"
    r"(?::[0-5][0-9](?:[.,][0-9]+)?)?(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):?[0-5][0-9])?$"
)
_ISO_DATE = ("%Y-%m-%d",)  # the format of that date part, whose shape the pattern has checked


@functools.cache
def _null_tokens() -> pa.Array:
    """Built on first use: pyarrow imports pandas (0.3 s) the first time it converts a Python
    sequence, and a run with nothing new, which imports this module, never needs it."""
    return pa.array(c.NULL_TOKENS, pa.string())


_NULL_STRING = pa.nulls(1, pa.string())[0]  # not pa.scalar(None): see _null_tokens
_MONEY_COLUMNS = ("gross_revenue", "revenue", "discount_amount")  # derived from quantity, price and discount
_EPOCH = dt.date(1970, 1, 1)
_PARTS_PER_MILLION = 10**c.DISCOUNT_SCALE  # discount units: 1.0 == 1_000_000
# Parsed numbers at or above this many units are "too large" for every field (all maxima are far
# below), which keeps every intermediate value inside int64.
_SATURATED = 10**18
_EXPONENT_CAP = 40  # zeros written out when expanding 1e400: more than any scale needs
_CURRENCY = "$€£"
_LOW_WORD = 0 if sys.byteorder == "little" else 1  # which int64 of a decimal128 holds the low bits


@dataclass(frozen=True)
class CleanResult:
    """What cleaning one chunk gives: silver rows, quarantined rows and their counts."""

    silver: pa.Table  # exactly contract.SILVER_MEMORY_SCHEMA, rows by bucket, then input order (as parts are written)
    quarantine: pa.Table  # exactly contract.QUARANTINE_SCHEMA (raw_text null: records were well formed)
    rejected_by_reason: dict[str, int]  # every reason but malformed_row, 0 when none
    defaults_by_field: dict[str, int]  # every soft field: silver rows where its default was applied


def clean_records(raw: pa.Table, settings: Settings, source_file: str | pa.DictionaryArray) -> CleanResult:
    """Apply the contract's hard rules (quarantine) and soft rules (defaults) to `raw`.

    `raw`: one string column per contract.INPUT_COLUMNS (untrimmed, all null when the file lacks
    the column) and `source_row` (int64, 1-based record number). `source_file`: the file the
    records come from, or one per record (a dictionary array) when records of several small files
    are cleaned together; every rule works record by record, so the result is the same.
    """
    _check_input(raw, settings)
    columns = {name: _single_array(raw.column(name)).cast(pa.string()) for name in c.INPUT_COLUMNS}
    source_row = _single_array(raw.column("source_row")).cast(pa.int64())
    if isinstance(source_file, str):
        source_file = pa.DictionaryArray.from_arrays(np.zeros(raw.num_rows, np.int32), pa.array([source_file], pa.string()))

    order_id = _present_values(columns["order_id"])
    quantity = _per_distinct(columns["quantity"], lambda v: _parse_quantity(v, settings.max_quantity))
    unit_price = _per_distinct(columns["unit_price"], lambda v: _parse_unit_price(v, settings.max_unit_price))
    reason = _first_failing_reason(
        [order_id.is_valid().to_numpy(zero_copy_only=False), quantity["valid"], unit_price["valid"]]
    )
    valid = reason == 0

    quarantine = _quarantine_table(columns, reason, source_row, source_file)
    # Silver rows come out grouped by bucket (stable, so input order within a bucket), the order
    # parts are written in. The bucket comes from the cleaned key columns, which are cleaned first
    # (in input order); the permutation is then applied to the raw rows, before the other columns
    # are built (reordering a built table would cost a fifth of the cleaning).
    valid_rows = np.flatnonzero(valid)
    hard: Columns = {"order_id": pc.filter(order_id, pa.array(valid)), "quantity": quantity["units"][valid_rows],
                     "price_cents": unit_price["units"][valid_rows]}
    key = settings.dedup_key
    key_columns = _silver_columns(columns, valid_rows, hard, settings, wanted=set(key))
    hashes = key_hash(pa.table({name: _as_arrow(key_columns[name], c.SILVER_SCHEMA.field(name).type) for name in key}), key)
    buckets = bucket_of(hashes, settings.silver_buckets)
    by_bucket = np.argsort(buckets, kind="stable")
    rows = valid_rows[by_bucket]
    in_bucket_order = pa.array(by_bucket)
    hard = {"order_id": pc.take(hard["order_id"], in_bucket_order), "quantity": hard["quantity"][by_bucket],
            "price_cents": hard["price_cents"][by_bucket]}
    out = _silver_columns(columns, rows, hard, settings)
    out |= {"source_file": source_file.take(pa.array(rows)), "source_row": pc.take(source_row, pa.array(rows)),
            "key_hash": hashes[by_bucket], "bucket": buckets[by_bucket]}
    silver = pa.Table.from_arrays([_as_arrow(out[f.name], f.type) for f in c.SILVER_MEMORY_SCHEMA], schema=c.SILVER_MEMORY_SCHEMA)
    return CleanResult(
        silver=silver,
        quarantine=quarantine,
        rejected_by_reason=_count_reasons(reason),
        defaults_by_field={f: _count_true(silver.column(c.default_flag_column(f))) for f in c.SOFT_FIELDS},
    )


# --- shape of the work --------------------------------------------------------------------------

def _check_input(raw: pa.Table, settings: Settings) -> None:
    missing = [name for name in (*c.INPUT_COLUMNS, "source_row") if name not in raw.column_names]
    if missing:
        raise ValueError(f"clean_records: raw table lacks columns {missing}")
    # Keeps quantity * unit_price cents (and every step of _money) inside int64.
    if settings.max_quantity * settings.max_unit_price > 10**15:
        raise ValueError("clean_records: max_quantity * max_unit_price must be <= 1e15")


def _single_array(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """One contiguous array: dictionary encoding needs one dictionary for the whole column."""
    if isinstance(column, pa.ChunkedArray):
        return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return column


def _per_distinct(values: pa.Array, clean: Callable[[pa.Array], Columns], rows: np.ndarray | None = None,
                  text_as_dictionary: bool = False) -> Columns:
    """Run `clean` once per distinct value of `values` (null included), spread back to every row,
    or to the `rows` given (positions, in the order wanted): only small integers are reordered.
    With `text_as_dictionary`, text outputs stay dictionary arrays over their distinct clean values."""
    encoded = pc.dictionary_encode(values, null_encoding="encode")
    positions = encoded.indices.to_numpy(zero_copy_only=False)
    if rows is not None:
        positions = positions[rows]
    indices = pa.array(positions)
    spread: Columns = {}
    for name, out in clean(encoded.dictionary).items():
        if isinstance(out, np.ndarray):
            spread[name] = out[positions]
        elif text_as_dictionary and pa.types.is_string(out.type):
            distinct = pc.dictionary_encode(out)  # several raw spellings may clean to one value
            spread[name] = pa.DictionaryArray.from_arrays(pc.take(distinct.indices, indices), distinct.dictionary)
        else:
            spread[name] = pc.take(out, indices)
    return spread


# --- text ---------------------------------------------------------------------------------------

def _present_values(raw: pa.Array) -> pa.Array:
    """Trimmed values, null where the value is missing (null, empty or a null token, any case).

    ASCII lower-casing is exact for the test: no non-ASCII character lower-cases to a token letter.
    """
    trimmed = pc.utf8_trim_whitespace(raw)
    return pc.if_else(pc.is_in(pc.ascii_lower(trimmed), value_set=_null_tokens()), _NULL_STRING, trimmed)


def _lower(text: pa.Array) -> pa.Array:
    """Python's `str.lower` of every value: Arrow for ASCII values (same answer), Python for the rest."""
    lowered = pc.ascii_lower(text)
    non_ascii = pc.invert(pc.fill_null(pc.string_is_ascii(text), True))
    if not pc.any(non_ascii).as_py():
        return lowered
    replacements = [value.lower() for value in pc.filter(text, non_ascii).to_pylist()]
    return pc.replace_with_mask(lowered, non_ascii, pa.array(replacements, pa.string()))


def _normal_text(raw: pa.Array) -> pa.Array:
    """Trimmed, inner white space collapsed to one space, lower-cased; null when missing."""
    return _lower(pc.replace_substring_regex(_present_values(raw), pattern=_WS_RUN, replacement=" "))


# --- numbers ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _NumberSyntax:
    """Which decimal notations a field accepts, and the scale its value is kept at."""

    scale: int
    currency: bool = False  # a leading $, € or £ after the optional sign
    grouping: bool = False  # thousands separators, only as valid 3-digit groups: 1,234,567.5

    @property
    def pattern(self) -> str:
        """RE2 for the whole text; [0-9] keeps out other scripts' digits, nan, inf and 0x10."""
        currency = f"[{_CURRENCY}]?" if self.currency else ""
        whole = "[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+" if self.grouping else "[0-9]+"
        return f"^[+-]?{currency}(?:(?:{whole})(?:\\.[0-9]*)?|\\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"

    @property
    def prefix(self) -> str:
        """Characters that can only appear before the digits: sign and currency."""
        return "+-" + (_CURRENCY if self.currency else "")

    @property
    def plain_pattern(self) -> str:
        """Unsigned digits with at most `scale` decimals, short enough for decimal128(18, scale):
        the common case, which Arrow's decimal cast reads exactly with nothing to round."""
        whole = f"[0-9]{{1,{min(15, 17 - self.scale)}}}"
        return f"^{whole}(?:\\.[0-9]{{1,{self.scale}}})?$" if self.scale else f"^{whole}$"


def _parse_numbers(text: pa.Array, syntax: _NumberSyntax) -> Columns:
    """Exact parse of decimal text (null = missing) into int64 units of 10**-scale.

    Returns `ok` (the text is a number in the syntax), `units` (rounded half up, ties away from
    zero, saturated at +-_SATURATED) and `exact` (no non-zero digit was rounded away).
    Plain values (`plain_pattern`) take Arrow's decimal cast; the others `_parse_written_numbers`.
    """
    plain = _np_bool(pc.fill_null(pc.match_substring_regex(text, pattern=syntax.plain_pattern), False))
    if not plain.any():
        return _parse_written_numbers(text, syntax)
    units = np.zeros(len(text), dtype=np.int64)
    units[plain] = _decimal_units_of(pc.cast(pc.filter(text, pa.array(plain)), pa.decimal128(18, syntax.scale)))
    out = {"ok": plain.copy(), "units": units, "exact": plain.copy()}
    others = ~plain
    if others.any():
        written = _parse_written_numbers(pc.filter(text, pa.array(others)), syntax)
        for name, values in written.items():
            out[name][others] = values
    return out


def _decimal_units_of(values: pa.Array) -> np.ndarray:
    """Unscaled int64 values of a decimal128 array whose values all fit in int64 (no nulls)."""
    words = np.frombuffer(values.buffers()[1], dtype=np.int64)[2 * values.offset: 2 * (values.offset + len(values))]
    return words.reshape(-1, 2)[:, _LOW_WORD].copy()


def _parse_written_numbers(text: pa.Array, syntax: _NumberSyntax) -> Columns:
    """_parse_numbers for any text: sign, currency, grouping, exponent, rounding to `scale`.

    Cheap string kernels do the splitting once one regex has checked the whole syntax.
    """
    ok = _np_bool(pc.fill_null(pc.match_substring_regex(text, pattern=syntax.pattern), False))
    checked = pc.if_else(pa.array(ok), text, "")
    negative = _np_bool(pc.starts_with(checked, "-"))
    plain = pc.replace_substring(pc.utf8_ltrim(checked, characters=syntax.prefix), ",", "")
    with_exponent = _np_bool(pc.match_substring(plain, "e", ignore_case=True))
    if with_exponent.any():
        plain = _expand_exponents(plain, with_exponent)
    parts = pc.extract_regex(plain, pattern=r"^(?P<whole>[0-9]*)(?:\.(?P<frac>[0-9]*))?$")
    magnitude, exact = _decimal_units(parts.field("whole"), parts.field("frac"), syntax.scale)
    return {"ok": ok, "units": np.where(negative, -magnitude, magnitude), "exact": exact}


def _decimal_units(whole: pa.Array, frac: pa.Array, scale: int) -> tuple[np.ndarray, np.ndarray]:
    """|value| * 10**scale rounded half up, and exactness, from digit strings (the one rounding rule)."""
    digits = pc.utf8_ltrim(whole, characters="0")
    too_large = _np_int(pc.utf8_length(digits)) > 18 - scale  # value >= 10**(18 - scale)
    safe_digits = pc.if_else(pa.array(too_large), "0", digits)
    integer = _np_int(pc.cast(pc.if_else(pc.equal(safe_digits, ""), "0", safe_digits), pa.int64()))
    padded = pc.utf8_rpad(frac, width=scale + 1, padding="0")
    kept = _np_int(pc.cast(pc.utf8_slice_codeunits(padded, 0, scale), pa.int64())) if scale else 0
    round_up = _np_bool(pc.greater_equal(pc.utf8_slice_codeunits(padded, scale, scale + 1), "5"))
    exact = _np_int(pc.utf8_length(pc.utf8_rtrim(pc.utf8_slice_codeunits(frac, scale), characters="0"))) == 0
    units = integer * 10**scale + kept + round_up
    return np.where(too_large, _SATURATED, units), exact


def _expand_exponents(plain: pa.Array, rows: np.ndarray) -> pa.Array:
    """Rewrite `d.ddde±x` as plain digits (rare, so Python) so one rounding rule serves every form."""
    mask = pa.array(rows)
    expanded = [_shift_point(number) for number in pc.filter(plain, mask).to_pylist()]
    return pc.replace_with_mask(plain, mask, pa.array(expanded, pa.string()))


def _shift_point(number: str) -> str:
    """`whole.frac e±x` (sign and separators already removed) as plain `whole.frac` digits.

    Runs of zeros are capped at _EXPONENT_CAP: beyond that the value is already saturated (too
    large) or rounds to zero inexactly, whatever the true exponent, so `1e400` stays cheap.
    """
    mantissa, _, exponent = number.lower().partition("e")
    whole, _, frac = mantissa.partition(".")
    magnitude = exponent.lstrip("+-").lstrip("0")
    shift = int(exponent) if len(magnitude) <= 9 else (-(10**9) if exponent.startswith("-") else 10**9)
    digits = whole + frac
    point = len(whole) + shift
    if point <= 0:
        return "." + "0" * min(-point, _EXPONENT_CAP) + digits
    if point >= len(digits):
        return digits + "0" * min(point - len(digits), _EXPONENT_CAP)
    return f"{digits[:point]}.{digits[point:]}"


def _parse_quantity(raw: pa.Array, max_quantity: int) -> Columns:
    """A whole number in 1..max_quantity (`3`, `+3`, `3.0`, `3e0`; not `2.5`, `-2`, `0`)."""
    number = _parse_numbers(_present_values(raw), _NumberSyntax(scale=0))
    units = number["units"]
    valid = number["ok"] & number["exact"] & (units >= 1) & (units <= max_quantity)
    return {"units": np.where(valid, units, 0), "valid": valid}


def _parse_unit_price(raw: pa.Array, max_unit_price: int) -> Columns:
    """Cents rounded half up; valid when finite and 0 < cents <= max_unit_price * 100."""
    syntax = _NumberSyntax(scale=c.MONEY_SCALE, currency=True, grouping=True)
    number = _parse_numbers(_present_values(raw), syntax)
    units = number["units"]
    valid = number["ok"] & (units > 0) & (units <= max_unit_price * 10**c.MONEY_SCALE)
    return {"units": np.where(valid, units, 0), "valid": valid}


# --- hard rules ---------------------------------------------------------------------------------

_HARD_REASONS = (c.MISSING_ORDER_ID, c.INVALID_QUANTITY, c.INVALID_UNIT_PRICE)


def _first_failing_reason(passed: Sequence[np.ndarray]) -> np.ndarray:
    """Per row, 0 when every hard rule passed, else 1 + index in _HARD_REASONS of the first failure."""
    return np.select([~p for p in passed], list(range(1, len(passed) + 1)), 0).astype(np.int8)


def _count_reasons(reason: np.ndarray) -> dict[str, int]:
    counts = np.bincount(reason, minlength=len(_HARD_REASONS) + 1)
    return {name: int(counts[i + 1]) for i, name in enumerate(_HARD_REASONS)}


def _quarantine_table(
    columns: Mapping[str, pa.Array], reason: np.ndarray, source_row: pa.Array, source_file: pa.DictionaryArray
) -> pa.Table:
    rejected = reason != 0
    mask = pa.array(rejected)
    n = int(rejected.sum())
    arrays = {
        "source_file": pc.filter(source_file, mask).cast(pa.string()),
        "source_row": pc.filter(source_row, mask),
        "reason": pc.take(pa.array(_HARD_REASONS, pa.string()), pa.array(reason[rejected] - 1)),
        "raw_text": pa.nulls(n, pa.string()),
        **{f"raw_{name}": pc.filter(values, mask) for name, values in columns.items()},
    }
    return pa.Table.from_arrays([arrays[f.name] for f in c.QUARANTINE_SCHEMA], schema=c.QUARANTINE_SCHEMA)


# --- soft rules ---------------------------------------------------------------------------------

def _clean_product(raw: pa.Array) -> Columns:
    """product_name (normal text) and product_key ([a-z0-9] runs joined by `_`)."""
    name = _normal_text(raw)
    key = pc.utf8_trim(pc.replace_substring_regex(name, pattern="[^a-z0-9]+", replacement="_"), characters="_")
    return {
        "product_name": pc.fill_null(name, c.UNKNOWN_PRODUCT),
        "product_key": pc.if_else(pc.fill_null(pc.equal(key, ""), True), c.UNKNOWN_PRODUCT, key),
        c.default_flag_column("product_name"): _np_bool(name.is_null()),
    }


def _clean_alias(raw: pa.Array, field: str, lookup: Mapping[str, str], default: str) -> Columns:
    """Normal text mapped through an alias table; missing or unknown text gets `default`."""
    mapped = pc.take(
        pa.array(list(lookup.values()), pa.string()),
        pc.index_in(_normal_text(raw), value_set=pa.array(list(lookup), pa.string())),
    )
    return {field: pc.fill_null(mapped, default), c.default_flag_column(field): _np_bool(mapped.is_null())}


def _clean_discount(raw: pa.Array) -> Columns:
    """Millionths of the discount (0..1_000_000) as written rounded half up to 6 places; else 0."""
    number = _parse_numbers(_present_values(raw), _NumberSyntax(scale=c.DISCOUNT_SCALE))
    units = number["units"]
    valid = number["ok"] & (units >= 0) & (units <= _PARTS_PER_MILLION)
    return {"discount_units": np.where(valid, units, 0), c.default_flag_column("discount_percent"): ~valid}


def _clean_sale_date(raw: pa.Array, formats: Sequence[str]) -> Columns:
    """sale_date and sale_month; an ISO timestamp gives its date, other text goes through the formats.

    A timestamp whose date is no real date gets the default: it is not tried with the formats.
    Only a timestamp's date part is parsed, so timestamps with many clock times still cost one parse per day.
    """
    text = _present_values(raw)
    is_stamp = pc.fill_null(pc.match_substring_regex(text, pattern=_ISO_TIMESTAMP), False)
    stamp_days = _days_per_distinct(pc.if_else(is_stamp, pc.utf8_slice_codeunits(text, 0, 10), _NULL_STRING), _ISO_DATE)
    other_days = _days_per_distinct(pc.if_else(is_stamp, _NULL_STRING, text), tuple(formats))
    days = pc.coalesce(stamp_days, other_days)
    real = _np_bool(days.is_valid())
    day = pc.fill_null(days, 0).cast(pa.date32())
    return {
        "sale_date": day,
        "sale_month": pc.utf8_slice_codeunits(pc.cast(day, pa.string()), 0, 7),
        c.default_flag_column("sale_date"): ~real,
    }


def _days_per_distinct(text: pa.Array, formats: tuple[str, ...]) -> pa.Array:
    """Days since 1970-01-01 (int32, null: no real date, or no text) by `_date_days`, run once per
    distinct text and spread back with `take`: date texts are few, strptime is the reference."""
    encoded = pc.dictionary_encode(text)
    days = pa.array([_date_days(value, formats) for value in encoded.dictionary.to_pylist()], pa.int32())
    return pc.take(days, encoded.indices)


@functools.lru_cache(maxsize=1 << 16)
def _date_days(text: str, formats: tuple[str, ...]) -> int | None:
    """Days since 1970-01-01 of the first format `datetime.strptime` reads `text` with, else None.

    strptime never rolls `2024-02-30` over (a format reading no real date fails, the next is tried).
    Its `\\d` accepts any Unicode digit (`٢٠٢٤`), which the contract does not: refused. Cached because
    one strptime try costs about 5 us and every chunk of a file meets the same dates again.
    """
    if any(ch.isdecimal() and not ch.isascii() for ch in text):
        return None
    for fmt in formats:
        try:
            return (dt.datetime.strptime(text, fmt).date() - _EPOCH).days
        except ValueError:
            continue
    return None


def _clean_email(raw: pa.Array) -> Columns:
    """Lower-cased address when it looks like local@domain.tld, else null (counted).

    No null-token test: empty text and every token (`null`, `n/a`...) lack an `@`, so the address
    pattern already refuses them, one pass fewer over a column that is mostly distinct.
    """
    text = _lower(pc.utf8_trim_whitespace(raw))
    valid = pc.fill_null(pc.match_substring_regex(text, pattern=_EMAIL), False)
    return {
        "customer_email": pc.if_else(valid, text, _NULL_STRING),
        c.default_flag_column("customer_email"): _np_bool(pc.invert(valid)),
    }


# --- money --------------------------------------------------------------------------------------

def _money(quantity: np.ndarray, price_cents: np.ndarray, discount_units: np.ndarray) -> Columns:
    """gross, revenue and discount_amount in cents, exactly, in int64.

    gross <= max_quantity * max_unit_price * 100 <= 1e17. revenue = gross * keep / 1e6 with
    keep = 1e6 - discount millionths; gross * keep could reach 1e23, so gross is split into
    high * 1e6 + low: high * keep <= 1e17 is exact and only low * keep / 1e6 (< 1e12) is rounded.
    """
    gross = quantity * price_cents
    keep = _PARTS_PER_MILLION - discount_units
    high, low = np.divmod(gross, _PARTS_PER_MILLION)
    revenue = high * keep + (low * keep + _PARTS_PER_MILLION // 2) // _PARTS_PER_MILLION
    return {"gross_revenue": gross, "revenue": revenue, "discount_amount": gross - revenue}


def _decimal_array(units: np.ndarray, decimal_type: pa.Decimal128Type) -> pa.Array:
    """decimal128 array whose unscaled values are `units` (int64), built without any float."""
    units = np.ascontiguousarray(units, dtype=np.int64)
    words = np.empty((len(units), 2), dtype=np.int64)
    words[:, _LOW_WORD] = units
    words[:, 1 - _LOW_WORD] = units >> 63  # sign extension to 128 bits
    return pa.Array.from_buffers(decimal_type, len(units), [None, pa.py_buffer(words)])


# --- silver -------------------------------------------------------------------------------------

def _silver_columns(columns: Mapping[str, pa.Array], rows: np.ndarray, hard: Columns, settings: Settings,
                    wanted: set[str] | None = None) -> Columns:
    """The cleaned columns of `rows` of the raw `columns` (rows that passed every hard rule, in the
    order wanted; `hard` holds their hard-rule values in that order); with `wanted`, only the rules
    that give one of those columns run (the dedup key is cleaned before the rest)."""
    categories, regions = settings.category_lookup, settings.region_lookup
    flag = c.default_flag_column
    soft_rules: list[tuple[tuple[str, ...], Callable[[], Columns]]] = [
        (("product_name", "product_key", flag("product_name")),
         lambda: _per_distinct(columns["product_name"], _clean_product, rows, text_as_dictionary=True)),
        (("category", flag("category")),
         lambda: _per_distinct(columns["category"], lambda v: _clean_alias(v, "category", categories, c.UNKNOWN_CATEGORY), rows,
                               text_as_dictionary=True)),
        (("region", flag("region")),
         lambda: _per_distinct(columns["region"], lambda v: _clean_alias(v, "region", regions, settings.default_region), rows,
                               text_as_dictionary=True)),
        (("sale_date", "sale_month", flag("sale_date")),
         lambda: _per_distinct(columns["sale_date"], lambda v: _clean_sale_date(v, settings.date_formats), rows,
                               text_as_dictionary=True)),
        # mostly distinct: per-distinct would not pay
        (("customer_email", flag("customer_email")), lambda: _clean_email(pc.take(columns["customer_email"], pa.array(rows)))),
        (("discount_percent", flag("discount_percent"), *_MONEY_COLUMNS),
         lambda: _per_distinct(columns["discount_percent"], _clean_discount, rows)),
    ]
    out: Columns = {"order_id": hard["order_id"], "quantity": hard["quantity"],
                    "unit_price": _decimal_array(hard["price_cents"], c.MONEY_TYPE)}
    for names, rule in soft_rules:
        if wanted is None or wanted.intersection(names):
            out |= rule()
    if "discount_units" in out:
        discount_units = out.pop("discount_units")
        out["discount_percent"] = _decimal_array(discount_units, c.DISCOUNT_TYPE)
        money = _money(hard["quantity"], hard["price_cents"], discount_units)
        out |= {name: _decimal_array(cents, c.MONEY_TYPE) for name, cents in money.items()}
    return out


def _as_arrow(values: pa.Array | np.ndarray, type_: pa.DataType) -> pa.Array:
    return pa.array(values, type_) if isinstance(values, np.ndarray) else values


def _count_true(flags: pa.ChunkedArray) -> int:
    return int(pc.sum(flags).as_py() or 0)  # the sum of an empty column is null


def _np_bool(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=bool)


def _np_int(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.fill_null(values, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
