"""Compare two daily_sales tables exactly and say where they differ.

Key (sale_date, region, category); measures order_count, total_quantity, total_revenue (exact
decimals). Differences are listed per key with both values and the delta, never hidden.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pyarrow.parquet as pq

KEYS = ("sale_date", "region", "category")
MEASURES = ("order_count", "total_quantity", "total_revenue")


def _load(path: Path) -> dict[tuple, tuple]:
    table = pq.read_table(path, columns=[*KEYS, *MEASURES])
    rows = {}
    for r in table.to_pylist():
        key = tuple(str(r[k]) for k in KEYS)
        if key in rows:
            raise ValueError(f"{path}: key {key} appears twice")
        rows[key] = tuple(Decimal(r[m]) if m == "total_revenue" else int(r[m]) for m in MEASURES)
    return rows


@dataclass
class Comparison:
    expected_name: str
    actual_name: str
    keys: int = 0
    only_expected: dict = field(default_factory=dict)
    only_actual: dict = field(default_factory=dict)
    differing: dict = field(default_factory=dict)  # key -> (expected, actual)
    totals_expected: tuple = (0, 0, Decimal(0))
    totals_actual: tuple = (0, 0, Decimal(0))

    @property
    def equal(self) -> bool:
        return not (self.only_expected or self.only_actual or self.differing)

    def summary(self) -> str:
        te, ta = self.totals_expected, self.totals_actual
        totals = ", ".join(f"{m} {e}" for m, e in zip(MEASURES, te))
        if self.equal:
            return f"MATCH: {self.keys:,} keys identical; totals {totals}"
        deltas = ", ".join(f"{m} {a - e:+}" for m, e, a in zip(MEASURES, te, ta))
        return (f"DIFFER: {len(self.differing)} keys with other values, {len(self.only_expected)} keys only in "
                f"{self.expected_name}, {len(self.only_actual)} only in {self.actual_name} (of {self.keys:,}); "
                f"total deltas {self.actual_name} - {self.expected_name}: {deltas}")

    def details(self, limit: int = 20) -> list[str]:
        lines = []
        for key, (e, a) in sorted(self.differing.items()):
            deltas = ", ".join(f"{m} {ev} -> {av} ({av - ev:+})" for m, ev, av in zip(MEASURES, e, a) if ev != av)
            lines.append(f"{'/'.join(key)}: {deltas}")
        for key, v in sorted(self.only_expected.items()):
            lines.append(f"{'/'.join(key)}: only in {self.expected_name} {dict(zip(MEASURES, map(str, v)))}")
        for key, v in sorted(self.only_actual.items()):
            lines.append(f"{'/'.join(key)}: only in {self.actual_name} {dict(zip(MEASURES, map(str, v)))}")
        if len(lines) > limit:
            lines = lines[:limit] + [f"... and {len(lines) - limit} more"]
        return lines


def compare_daily_sales(expected: Path, actual: Path, expected_name: str = "pipeline", actual_name: str = "other") -> Comparison:
    e, a = _load(expected), _load(actual)
    result = Comparison(expected_name, actual_name, keys=len(set(e) | set(a)))
    result.only_expected = {k: v for k, v in e.items() if k not in a}
    result.only_actual = {k: v for k, v in a.items() if k not in e}
    result.differing = {k: (v, a[k]) for k, v in e.items() if k in a and a[k] != v}
    result.totals_expected = tuple(sum(v[i] for v in e.values()) for i in range(3))
    result.totals_actual = tuple(sum(v[i] for v in a.values()) for i in range(3))
    return result
