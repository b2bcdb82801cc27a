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


def label(value: object, limit: int = MAX_LABEL_CHARS) -> str:
    """A chart label from data: short and e-mail-free."""
    return _bounded(value, limit)


def text(value: object) -> str:
    """HTML-escaped, e-mail-free text of our own wording (notes, titles); may hold data values."""
    return html.escape(mask_emails(str(value)), quote=True)


def product(key: object) -> str:
    """How every section names a product: its `product_key`, the name gold groups by (top_products
    has nothing else), so the chart, the top products and the anomalies spell one product alike."""
    return str(key)


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


def ratio(value: Decimal) -> str:
    """How many times a typical value: Decimal('93.46') -> '×93.5'."""
    return f"×{Decimal(value).quantize(Decimal('0.1'), rounding=ROUND_HALF_UP):,}"


def seconds(value: float | None) -> str:
    return NOT_RECORDED if value is None else f"{value:,.2f} s"


# --- chart axes and bar labels (floats) ----------------------------------------------------------
# Short, so a label fits a phone-width chart: at most 4 significant digits and a K/M/B/T suffix.
# The exact figures are in the tables beside each chart.

SCALES = ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K"))


def compact(value: float) -> str:
    """A number in at most 4 significant digits: 1234 -> '1.234K', 503604332.13 -> '503.6M', 12 -> '12'."""
    size = abs(value)
    for scale, suffix in SCALES:
        if size >= scale * 0.99995:  # what would round up to 1000 of the next lower unit
            return f"{value / scale:.4g}{suffix}"
    return f"{value:.4g}" if size >= 1 or size == 0 else f"{value:.2g}"


def money_float(value: float) -> str:
    """Money on axes and bar labels: `$1.235M`, `-$5`."""
    sign = "-" if value < 0 else ""
    return f"{sign}{CURRENCY}{compact(abs(value))}"


def count_float(value: float) -> str:
    return compact(value)


def percent_float(value: float) -> str:
    """A fraction on an axis: 0.125 -> '12.5%'."""
    return f"{value * 100:,.1f}%"


FLOAT_FORMATS: dict[str, Callable[[float], str]] = {
    "money": money_float,
    "count": count_float,
    "percent": percent_float,
}
