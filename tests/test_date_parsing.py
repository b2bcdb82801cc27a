"""sale_date parsing (pipeline/bronze/cleaning.py `_clean_sale_date`) against Python's own `strptime`.

The code runs `strptime` once per distinct text (and an ISO timestamp's date part), vectorised
around it. The reference here is the plain loop the contract describes, row by row: trim, missing
tokens, then `datetime.strptime(text, fmt).date()` format by format, the first real date wins,
text holding a non-ASCII digit is refused.

- test_formats_agree_with_strptime (hypothesis): lists of texts shaped like the formats (every
  directive filled with good and bad numbers, leap days, years 0000/0001/9999, ` 5`, non-ASCII
  digits, literal letters in other cases or as `K`/`ſ`/`İ`) and free mixes of fragments, for the
  default formats and other format lists: ambiguous runs of digits, white space, `%%`, formats
  without a year, month names (`%b`), a literal `i`.
- test_iso_timestamps_give_their_real_date (hypothesis): the date of an ISO timestamp.

Environment: DATE_PARSING_EXAMPLES (default 100) sets the hypothesis examples per test and format
list, e.g. 5000 for a long run.
"""
from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Sequence

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipeline import contract as c
from pipeline.bronze import cleaning
from pipeline.bronze.cleaning import _clean_sale_date
from pipeline.settings import DEFAULT_DATE_FORMATS

EXAMPLES = int(os.environ.get("DATE_PARSING_EXAMPLES", "100"))
SENTINEL = dt.date(1970, 1, 1)
HYPOTHESIS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

FORMAT_LISTS: list[tuple[str, ...]] = [
    DEFAULT_DATE_FORMATS,
    ("%d.%m.%Y",),
    ("%Y%m%d",),
    ("%m/%d/%Y", "%Y-%m-%d"),
    ("%b %d %Y", "%Y-%m-%d"),  # a month name
    ("%d %m %Y", "%Y %m"),  # white space runs; a format without a day
    ("%Y%m%d", "%Y%d%m", "%m%d"),  # ambiguous digit runs; no year (1900)
    ("week %d/%m, %Y", "%Y%%%m%%%d"),  # literal letters (K, ſ fold to k, s); %%
    ("%Y is %m-%d", "%d-%m-%Y"),  # literal `i` (İ and ı match it in strptime)
]


# =================================================================================================
# The reference: plain Python, strptime itself.
# =================================================================================================

def reference_date(raw: str | None, formats: Sequence[str]) -> dt.date | None:
    """The date the contract gives `raw` (texts here hold no `:`, so never an ISO timestamp)."""
    text = None if raw is None else raw.strip()
    if text is None or text.lower() in c.NULL_TOKENS:
        return None
    if any(ch.isdecimal() and not ch.isascii() for ch in text):
        return None
    for fmt in formats:
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def parsed(texts: Sequence[str | None], formats: Sequence[str]) -> list[tuple[dt.date, bool]]:
    """(sale_date, default applied) of each text, by the code under test."""
    out = _clean_sale_date(pa.array(texts, pa.string()), formats)
    months = out["sale_month"].to_pylist()
    dates = out["sale_date"].to_pylist()
    assert months == [f"{d.year:04d}-{d.month:02d}" for d in dates]
    return list(zip(dates, out["default_sale_date"].tolist()))


def expected(texts: Sequence[str | None], formats: Sequence[str]) -> list[tuple[dt.date, bool]]:
    dates = [reference_date(t, formats) for t in texts]
    return [(SENTINEL, True) if d is None else (d, False) for d in dates]


# =================================================================================================
# Random texts.
# =================================================================================================

YEARS = ["0000", "0001", "0999", "1900", "2000", "2023", "2024", "2100", "9999", "024", "20245", "٢٠٢٤", "2O24"]
MONTHS = ["1", "01", "2", "02", "09", "10", "11", "12", "13", "0", "00", " 5", "٠٢", "1٢", "x"]
DAYS = ["1", "01", "5", " 5", "  5", "09", "10", "28", "29", "30", "31", "32", "0", "00", "٢", "3١"]
MONTH_NAMES = ["Mar", "mar", "MAR", "Feb", "fEB", "Sep", "Sept", "xyz", "\u212aan"]
SPACES = [" ", "  ", "\t", "\u00a0", "\u3000", "\u2028", ""]
FOLDS = {"k": ["\u212a"], "s": ["\u017f"], "i": ["\u0130", "\u0131"]}  # other letters some regex engines fold
FRAGMENTS = ["0", "1", "2", "3", "5", "9", "02", "12", "20", "29", "30", "31", "2024", "2023", "0000", "9999",
             "-", "/", ".", " ", "  ", "%", ",", "٢", "٠", "۵", "१", "Mar", "week", "is", "K", "\u212a", "\u017f",
             "\u0130", "x", "na"]


def directive_text(directive: str) -> st.SearchStrategy[str]:
    return st.sampled_from({"Y": YEARS, "m": MONTHS, "d": DAYS, "b": MONTH_NAMES, "%": ["%", "%%", ""]}[directive])


def literal_text(piece: str) -> st.SearchStrategy[str]:
    """The literal itself most of the time, else another case, a fold, another separator or nothing."""
    if piece.isspace():
        return st.sampled_from(SPACES)
    variants = [piece.upper(), piece.lower(), *FOLDS.get(piece.lower(), []), "", "-", "/", ".", "x"]
    return st.one_of(st.just(piece), st.just(piece), st.sampled_from(variants))


def shaped(fmt: str) -> st.SearchStrategy[str]:
    """Text following `fmt` piece by piece, each piece good or slightly wrong."""
    pieces = re.findall(r"%.|\s+|.", fmt, re.DOTALL)
    parts = [directive_text(p[1]) if p.startswith("%") else literal_text(p) for p in pieces]
    return st.tuples(*parts).map("".join)


def texts_for(formats: Sequence[str]) -> st.SearchStrategy[list[str | None]]:
    free = st.lists(st.sampled_from(FRAGMENTS), max_size=7).map("".join)
    pad = st.sampled_from(["", "", "", " ", "\u00a0", "\t"])
    one = st.one_of(*(shaped(f) for f in (*formats, *DEFAULT_DATE_FORMATS)), free)
    text = st.tuples(pad, one, pad).map("".join)
    return st.lists(st.one_of(text, text, text, st.none()), min_size=1, max_size=30)


# =================================================================================================
# Tests.
# =================================================================================================

@pytest.mark.parametrize("formats", FORMAT_LISTS, ids=lambda f: "|".join(f))
def test_formats_agree_with_strptime(formats: tuple[str, ...]) -> None:
    @HYPOTHESIS
    @given(texts=texts_for(formats))
    @example(texts=["2024229", "2023229", "20241231", "2024111", "202411", "2024-3- 5", "2024-03-5x", "0000-01-01"])
    @example(texts=["5 3 2024", "5  3\t2024", "5\u3000 3 2024", "2024   5", "weeK 5/3, 2024", "\u212aweek 5/3, 2024",
                    "wee\u212a 05/03, 2024", "2024%3%5", "2024 i\u0130 3-5", "2024 \u0131s 3-5", "Mar 5 2024"])
    def check(texts: list[str | None]) -> None:
        assert parsed(texts, formats) == expected(texts, formats)

    check()


@HYPOTHESIS
@given(stamps=st.lists(st.tuples(
    st.sampled_from(YEARS[:9]) | st.text("0123456789", min_size=4, max_size=4),
    st.sampled_from(["01", "02", "04", "12", "00", "13", "99"]),
    st.sampled_from(["01", "28", "29", "30", "31", "00", "32", "99"]),
    st.sampled_from(["T10:20:00", " 10:20:00", "T23:59", "t00:00:00z", "T10:20:00.5+05:30", "T00:00:00-0800"]),
), min_size=1, max_size=30))
def test_iso_timestamps_give_their_real_date(stamps: list[tuple[str, str, str, str]]) -> None:
    """An ISO timestamp gives its date when real, else the default (never the formats)."""
    texts = [f"{y}-{m}-{d}{clock}" for y, m, d, clock in stamps]
    wanted = []
    for y, m, d, _ in stamps:
        try:
            wanted.append((dt.date(int(y), int(m), int(d)), False))
        except ValueError:
            wanted.append((SENTINEL, True))
    assert parsed(texts, DEFAULT_DATE_FORMATS) == wanted
    # A format that would read the date part does not rescue an impossible timestamp date.
    assert parsed(texts, ("%Y-%m-%d",)) == wanted


HAND_CASES = [
    ("2024-02-29", dt.date(2024, 2, 29)),  # leap day
    ("2000-02-29", dt.date(2000, 2, 29)),  # divisible by 400
    ("1900-02-29", None),  # divisible by 100 only
    ("2023-02-29", None),  # no format gives a real date
    ("2024-02-30", None),  # no rolling over to March 1
    ("2024-04-31", None),
    ("05/03/2024", dt.date(2024, 3, 5)),  # %d/%m/%Y before any month-first reading
    ("03-05-2024", dt.date(2024, 3, 5)),  # only %m-%d-%Y
    ("2024/03/05", dt.date(2024, 3, 5)),  # %Y/%m/%d
    ("2024-3- 5", dt.date(2024, 3, 5)),  # strptime's ` [1-9]` day
    (" 2024-03-05\u00a0", dt.date(2024, 3, 5)),  # trimmed first
    ("0001-01-01", dt.date(1, 1, 1)),
    ("9999-12-31", dt.date(9999, 12, 31)),
    ("0000-01-01", None),  # year 0 does not exist
    ("٢٠٢٤-03-05", None),  # non-ASCII digits are refused
    ("2024-03-05x", None),  # strptime: unconverted data remains
    ("2024-03-05T10:20:00", dt.date(2024, 3, 5)),
    ("2024-03-05 10:20:00", dt.date(2024, 3, 5)),
    ("2024-02-30T10:00:00", None),
    ("2024-03-05T24:00:00", None),  # no clock time 24:00, and no format reads it
    (None, None),
    ("N/A", None),
]


@pytest.mark.parametrize("text, date", HAND_CASES)
def test_hand_cases_default_formats(text: str | None, date: dt.date | None) -> None:
    assert parsed([text], DEFAULT_DATE_FORMATS) == [(SENTINEL, True) if date is None else (date, False)]


@pytest.mark.parametrize("formats, text, date", [
    (("%Y%m%d", "%Y%d%m"), "2023229", dt.date(2023, 9, 22)),  # format 1 reads Feb 29 2023: not real, format 2 wins
    (("%Y%m%d", "%Y%d%m"), "2024229", dt.date(2024, 2, 29)),
    (("%Y%m%d",), "2024111", dt.date(2024, 11, 1)),  # strptime's first match, not 2024-01-11
    (("%Y%m%d",), "20241", None),  # first match 2024-1-? leaves nothing for %d
    (("%d.%m.%Y", "%m/%d/%Y"), "03/05/2024", dt.date(2024, 3, 5)),
    (("%d.%m.%Y", "%m/%d/%Y"), "2024-03-05", None),
    (("%m/%d",), "02/29", None),  # no year: 1900, not a leap year
    (("%b %d %Y",), "mar 05 2024", dt.date(2024, 3, 5)),  # a month name, any case
    (("%b %d %Y",), "Feb 30 2024", None),
])
def test_hand_cases_configured_formats(formats: tuple[str, ...], text: str, date: dt.date | None) -> None:
    assert parsed([text], formats) == [(SENTINEL, True) if date is None else (date, False)]
    assert reference_date(text, formats) == date  # the table agrees with strptime itself


def test_strptime_runs_once_per_distinct_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows repeat few date texts: each distinct text (a timestamp: its date part) is parsed once."""
    calls: list[str] = []

    def counting(text: str, formats: tuple[str, ...]) -> int | None:
        calls.append(text)
        return reference(text, formats)

    reference = cleaning._date_days.__wrapped__  # not the cache: every call counts
    monkeypatch.setattr(cleaning, "_date_days", counting)
    texts = ["2024-03-05", " 2024-03-05", "05/03/2024", "nope", None] * 200
    stamps = [f"2024-03-0{1 + i % 2}T{i % 24:02d}:{i % 60:02d}:00" for i in range(1000)]
    assert parsed(texts + stamps, DEFAULT_DATE_FORMATS) == expected(texts, DEFAULT_DATE_FORMATS) + [
        (dt.date(2024, 3, 1 + i % 2), False) for i in range(1000)]
    assert sorted(calls) == sorted(["2024-03-05", "05/03/2024", "nope", "2024-03-01", "2024-03-02"])
