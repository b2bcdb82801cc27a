"""Header normalisation and configuration: bad input ends in one line naming what and where."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.bronze.header import layout_header
from pipeline.errors import ConfigError, InputFileError
from pipeline.settings import Settings, validate
from tests.conftest import config_file, run_cli


def test_header_names_are_trimmed_and_lower_cased() -> None:
    layout = layout_header([" Order_ID ", "QUANTITY", "Unit_Price\t", "Region"], "f.csv")
    assert layout.positions == {"order_id": 0, "quantity": 1, "unit_price": 2, "region": 3}


def test_missing_required_columns_name_the_file_and_columns() -> None:
    with pytest.raises(InputFileError, match=r"f\.csv: missing required column\(s\) quantity, unit_price"):
        layout_header(["order_id", "region"], "f.csv")


def test_missing_optional_columns_and_unknown_extras_are_reported() -> None:
    layout = layout_header(["order_id", "quantity", "unit_price", "coupon", "Store "], "f.csv")
    assert layout.extra_columns == ("coupon", "store")
    assert set(layout.missing_optional) == {"product_name", "category", "discount_percent", "region", "sale_date", "customer_email"}


def test_duplicate_contract_column_fails_the_file() -> None:
    with pytest.raises(InputFileError, match="duplicate column"):
        layout_header(["order_id", "quantity", "unit_price", "Quantity"], "f.csv")


@pytest.mark.parametrize(
    "change, where",
    [
        ({"chunk_rows": 0}, r"\[pipeline\] chunk_rows"),
        ({"chunk_rows": -5}, r"\[pipeline\] chunk_rows"),
        ({"silver_buckets": 0}, r"\[pipeline\] silver_buckets"),
        ({"gold_mode": "append"}, r"\[gold\] mode"),
        ({"default_region": "mars"}, r"\[cleaning\] default_region"),
        ({"date_formats": ("no format",)}, r"\[cleaning\] date_formats"),
        ({"region_aliases": {"north": ["x"], "south": ["x"]}}, r"\[cleaning\] region_aliases"),
        ({"top_products_n": 0}, r"\[gold\] top_products_n"),
        ({"bronze_glob": "../*.csv"}, r"\[pipeline\] bronze_glob"),
    ],
)
def test_bad_settings_name_section_and_key(change: dict, where: str) -> None:
    with pytest.raises(ConfigError, match=where):
        validate(Settings(**{**Settings().__dict__, **change}))


def test_defaults_are_valid() -> None:
    assert validate(Settings()) == Settings()


@pytest.mark.parametrize(
    "extra, message",
    [
        ("[pipeline]\nchunk_rows = -3\n", "config [pipeline] chunk_rows"),
        ("[pipeline]\nchunk_rows = many\n", "config [pipeline] chunk_rows"),
        ("[pipeline]\nchunk_size = 10\n", "config [pipeline] chunk_size: unknown key"),
        ("[cleaning]\nregion_aliases = {not json\n", "config [cleaning] region_aliases"),
    ],
)
def test_bad_config_file_stops_with_one_line_and_writes_nothing(tmp_path: Path, data_root: Path, extra: str, message: str) -> None:
    cfg = config_file(tmp_path, extra)
    result = run_cli("--data-root", str(data_root), env={"LUIGI_CONFIG_PATH": str(cfg)})
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines == [lines[0]] and message in lines[0], result.stderr
    assert list(data_root.iterdir()) == []


def test_missing_data_folder_is_one_line(tmp_path: Path) -> None:
    result = run_cli("--data-root", str(tmp_path / "nowhere"))
    assert result.returncode != 0
    assert "bronze folder" in result.stderr and "does not exist" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
