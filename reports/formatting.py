"""How numbers and text look in the report: one place, shared by tables, headline and chart axes.

Money from gold is decimal128 and is shown exactly (Decimal, never float); chart axes and bar
labels are floats, already rounded by the eye, and use the same currency and separators.
"""
from __future__ import annotations

import html
import re
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal

from pipeline.contract import CENTS

CURRENCY = "$"
NOT_RECORDED = "not recorded"
NO_VALUE = "—"
# Defence in depth: gold holds no e-mails, but free text (product names, file names) could.
EMAIL_PATTERN = re.compile(r"[^\s@<>\"'(),;:]+@[^\s@<>\"'(),;:]+\.[A-Za-z]{2,}")
EMAIL_MASK = "[e-mail hidden]"
# Free text comes from input files and can be megabytes long (a hostile product name): cut it, so
# neither the page nor a chart label grows with it.
MAX_TEXT_CHARS = 120
MAX_LABEL_CHARS = 32


def mask_emails(value: str) -> str:
    """Customer e-mails must never reach the report, whatever column they hide in."""
    return EMAIL_PATTERN.sub(EMAIL_MASK, value)


def shorten(value: str, limit: int) -> str:
    """At most `limit` characters; a cut is marked with an ellipsis."""
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _bounded(value: object, limit: int) -> str:
    # Cut before masking, so the regex never scans megabytes; cut again after, to the limit.
    return shorten(mask_emails(shorten(str(value), limit * 4)), limit)


def label(value: object) -> str:
    """A chart label from data: short and e-mail-free."""
    return _bounded(value, MAX_LABEL_CHARS)


def text(value: object) -> str:
    """HTML-escaped, e-mail-free text of our own wording (notes, titles); may hold data values."""
    return html.escape(mask_emails(str(value)), quote=True)


def data_text(value: object) -> str:
    """HTML-escaped, e-mail-free, bounded text of one data value (a table cell, a card)."""
    return html.escape(_bounded(value, MAX_TEXT_CHARS), quote=True)


def money(value: Decimal) -> str:
    """Exact money: `$1,234,567.89`, `-$5.00`."""
    cents = Decimal(value).quantize(CENTS, rounding=ROUND_HALF_UP)
    sign = "-" if cents < 0 else ""
    return f"{sign}{CURRENCY}{abs(cents):,.2f}"


def count(value: int) -> str:
    return f"{int(value):,}"


def percent(fraction: Decimal | float, places: int = 1) -> str:
    """A fraction as a percentage, rounded half up: Decimal('0.12345') -> '12.3 %'."""
    quantum = Decimal(1).scaleb(-places)
    value = (Decimal(str(fraction)) * 100).quantize(quantum, rounding=ROUND_HALF_UP)
    return f"{value:,} %"


def share(part: Decimal | int, whole: Decimal | int, places: int = 1) -> str:
    """part / whole as a percentage, or a dash when the whole is zero."""
    if not whole:
        return NO_VALUE
    return percent(Decimal(part) / Decimal(whole), places)


def seconds(value: float | None) -> str:
    return NOT_RECORDED if value is None else f"{value:,.2f} s"


# --- chart axes and bar labels (floats) ----------------------------------------------------------

def money_float(value: float) -> str:
    """Whole currency units for axes and bar labels: `$1,234,568`."""
    sign = "-" if value < 0 else ""
    return f"{sign}{CURRENCY}{abs(value):,.0f}"


def count_float(value: float) -> str:
    return f"{value:,.0f}"


def percent_float(value: float) -> str:
    """A fraction on an axis: 0.125 -> '12.5%'."""
    return f"{value * 100:,.1f}%"


FLOAT_FORMATS: dict[str, Callable[[float], str]] = {
    "money": money_float,
    "count": count_float,
    "percent": percent_float,
}
