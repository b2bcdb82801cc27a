"""Helpers shared by the gold tests: run the real CLI with a layered config, read gold back.

Nothing here imports the code under test's gold logic: gold is read straight from the Parquet
files the pipeline wrote, so the tests compare what a user of the product would see.
"""
from __future__ import annotations

import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from pipeline.contract import GOLD_TABLES
from tests.conftest import run_cli

GOLD_NAMES = tuple(GOLD_TABLES)
ORDERS = "orders"  # gold/orders/, a dataset beside the eight tables
TEMP_PREFIX = ".tmp-"


def layered_config(folder: Path, text: str) -> dict[str, str]:
    """Environment that layers `text` over the repo's luigi.cfg (LUIGI_CONFIG_PATH keys win)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "luigi-gold-test.cfg"
    path.write_text(text)
    return {"LUIGI_CONFIG_PATH": str(path)}


def run_ok(root: Path, env: dict[str, str] | None = None, *extra: str) -> subprocess.CompletedProcess:
    result = run_cli("--data-root", str(root), *extra, env=env)
    assert result.returncode == 0, f"run.py failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result


def run_gold(root: Path, env: dict[str, str] | None = None, *extra: str) -> subprocess.CompletedProcess:
    """A run up to gold only (`--until gold`): the report is not what these tests are about."""
    return run_ok(root, env, "--until", "gold", *extra)


def read_gold(root: Path) -> dict[str, pa.Table]:
    """Every gold table as written, schema metadata (the covers digest) removed, and the orders
    dataset as one table (key `orders`)."""
    tables = {}
    for name in GOLD_NAMES:
        path = root / "gold" / f"{name}.parquet"
        assert path.exists(), f"gold table {path} is missing"
        tables[name] = pq.read_table(path).replace_schema_metadata(None)
    tables[ORDERS] = read_orders(root / "gold" / ORDERS)
    return tables


def read_orders(folder: Path) -> pa.Table:
    """gold/orders/ read as a reader would (a hive-partitioned dataset), in a stable row order:
    the file order of a dataset is no promise."""
    if not folder.is_dir():
        return pa.table({})
    table = ds.dataset(folder, format="parquet", partitioning="hive").to_table()
    return table.sort_by([("source_file", "ascending"), ("source_row", "ascending")]).replace_schema_metadata(None)


def assert_gold_equal(actual: dict[str, pa.Table], expected: dict[str, pa.Table], label: str = "") -> None:
    """Table for table, schema and value for value (row order included)."""
    assert set(actual) == set(expected)
    for name in actual:
        a, e = actual[name], expected[name]
        assert a.schema == e.schema, f"{label} {name}: schema differs\n{a.schema}\n--- vs ---\n{e.schema}"
        if not a.equals(e):
            a_rows, e_rows = a.to_pylist(), e.to_pylist()
            diff = [(i, x, y) for i, (x, y) in enumerate(zip(a_rows, e_rows)) if x != y][:3]
            pytest.fail(f"{label} {name}: {a.num_rows} rows vs {e.num_rows} expected; first differing rows "
                        f"(index, actual, expected): {diff}", pytrace=False)


def rows(table: pa.Table, columns: list[str]) -> list[tuple]:
    """Rows of `table` as tuples of the given columns, decimals as Decimal (exact)."""
    return [tuple(row[c] for c in columns) for row in table.select(columns).to_pylist()]


def D(text: str) -> Decimal:  # noqa: N802 - reads like a literal in the expected tables
    return Decimal(text)


def temp_files(root: Path) -> list[Path]:
    """Temporary files of the atomic writer left anywhere in silver, quarantine or gold."""
    found = []
    for layer in ("silver", "quarantine", "gold"):
        folder = root / layer
        if folder.exists():
            found.extend(p for p in folder.rglob("*") if p.name.startswith(TEMP_PREFIX))
    return found


def copy_bronze(source_bronze: Path, root: Path, names: list[str] | None = None) -> None:
    """Copy all (or some, by relative path) bronze files of a generated set into `root/bronze`."""
    for path in sorted(source_bronze.rglob("*.csv")):
        relative = path.relative_to(source_bronze).as_posix()
        if names is None or relative in names:
            target = root / "bronze" / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


def generated_names(source_bronze: Path) -> list[str]:
    return sorted(p.relative_to(source_bronze).as_posix() for p in source_bronze.rglob("*.csv"))


def generated_bronze(factory: pytest.TempPathFactory, name: str, rows: int, files: int, seed: int) -> Path:
    """A generated bronze folder written once per test module (the module fixtures' one body)."""
    from pipeline.generator import generate_bronze

    folder = factory.mktemp(name) / "bronze"
    generate_bronze(folder, rows=rows, files=files, seed=seed)
    return folder
