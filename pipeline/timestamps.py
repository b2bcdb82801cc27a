"""The one way run metadata spells a moment: ISO 8601 in UTC with a Z, e.g. 2026-11-25T18:54:50.123Z.

Only run metadata beside the data carries wall-clock times; data files never do.
"""
from __future__ import annotations

import datetime as dt
import time


def utc_iso(epoch: float | None = None, timespec: str = "milliseconds") -> str:
    """`epoch` (seconds; now when None) as ISO 8601 UTC ending in Z."""
    moment = dt.datetime.fromtimestamp(time.time() if epoch is None else epoch, dt.UTC)
    return moment.isoformat(timespec=timespec).replace("+00:00", "Z")
