"""Header normalisation and configuration: bad input ends in one line naming what and where."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.bronze.header import layout_header
from pipeline.errors import ConfigError, InputFileError
from pipeline.settings import Settings, validate
from tests.conftest import HEADER, config_file, run_cli, write_bronze


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


# --- real export headers: separators, case and [cleaning] column_aliases ---------------------------

EXPORT_HEADER = "Order ID,Product Name,Category,Quantity,Unit Price,Discount %,Region,Sale Date,Customer Email"
EXPORT_ROWS = "A1,Widget,electronics,2,10.00,0.1,north,2024-01-05,a@b.co\nA2,Gadget,fashion,1,5.50,0,south,2024-01-06,c@d.co\n"


@pytest.mark.parametrize("spelling", ["Order ID", "order-id", "OrderID", "order_id", "ORDER ID", " Order_Id ", "order number"])
def test_order_id_spellings_and_aliases_are_one_column(spelling: str) -> None:
    layout = layout_header([spelling, "Qty", "Price"], "f.csv")
    assert layout.positions == {"order_id": 0, "quantity": 1, "unit_price": 2} and layout.extra_columns == ()


def test_an_export_header_maps_every_contract_column() -> None:
    layout = layout_header([*EXPORT_HEADER.split(","), "Coupon Code"], "f.csv")
    assert list(layout.positions) == ["order_id", "product_name", "category", "quantity", "unit_price", "discount_percent",
                                      "region", "sale_date", "customer_email"]
    assert layout.extra_columns == ("coupon code",) and layout.missing_optional == ()
    assert layout_header(["order_id", "quantity", "unit_price", "discount_percent", "Date", "E-Mail"], "f.csv").positions == {
        "order_id": 0, "quantity": 1, "unit_price": 2, "discount_percent": 3, "sale_date": 4, "customer_email": 5}


def test_a_missing_column_error_shows_the_header_and_names_the_setting() -> None:
    with pytest.raises(InputFileError) as raised:
        layout_header(["Order Ref", "Item", "Cost", "Qty"], "shop.csv")
    assert str(raised.value) == ("shop.csv: missing required column(s) order_id, unit_price; header: Order Ref, Item, Cost, Qty; "
                                 "map them with [cleaning] column_aliases in luigi.cfg")


def test_two_names_for_one_column_fail_the_file_naming_both() -> None:
    with pytest.raises(InputFileError) as raised:
        layout_header(["Order ID", "Qty", "Unit Price", "order_id"], "shop.csv")
    assert str(raised.value) == ("shop.csv: duplicate column(s) order_id in the header ('Order ID' and 'order_id' both mean "
                                 "order_id); which one to use is ambiguous: drop one, or change [cleaning] column_aliases in luigi.cfg")


def test_custom_aliases_replace_the_default_ones() -> None:
    layout = layout_header(["Ref", "Pieces", "Cost", "qty"], "f.csv", {"order_id": ["ref"], "quantity": ["pieces"], "unit_price": ["cost"]})
    assert layout.positions == {"order_id": 0, "quantity": 1, "unit_price": 2} and layout.extra_columns == ("qty",)


@pytest.mark.parametrize("aliases, words", [
    ({"sku": ["item"]}, "'sku' is not a contract column"),
    ({"quantity": ["unit price"]}, "alias 'unit price' maps to both 'unit_price' and 'quantity'"),
    ({"quantity": ["n"], "unit_price": ["N"]}, "alias 'N' maps to both 'quantity' and 'unit_price'"),
    ({"quantity": ["--"]}, "non-empty strings"),
])
def test_bad_column_aliases_name_section_and_key(aliases: dict, words: str) -> None:
    with pytest.raises(ConfigError, match=r"config \[cleaning\] column_aliases: ") as raised:
        Settings().with_changes(column_aliases=aliases)
    assert words in str(raised.value)


def _gold_of(root: Path, header: str, env: dict[str, str] | None = None) -> dict:
    from tests.gold_helpers import read_gold, run_gold

    write_bronze(root, {"shop.csv": header + "\n" + EXPORT_ROWS})
    run_gold(root, env)
    return read_gold(root)


def test_an_export_header_gives_the_gold_of_the_contract_header(tmp_path: Path) -> None:
    from tests.gold_helpers import assert_gold_equal

    expected = _gold_of(tmp_path / "canonical", HEADER)
    assert_gold_equal(_gold_of(tmp_path / "export", EXPORT_HEADER), expected, "export header")
    aliases = ('[cleaning]\ncolumn_aliases = {"order_id": ["order ref"], "product_name": ["item"], "unit_price": ["cost"], '
               '"quantity": ["pieces"], "discount_percent": ["off"], "sale_date": ["day"], "customer_email": ["mail"]}\n')
    custom = "Order Ref,Item,Category,Pieces,Cost,Off,Region,Day,Mail"
    env = {"LUIGI_CONFIG_PATH": str(config_file(tmp_path, aliases))}
    assert_gold_equal(_gold_of(tmp_path / "custom", custom, env), expected, "custom aliases")


def test_an_unmapped_export_header_fails_alone_naming_the_setting(tmp_path: Path) -> None:
    root = tmp_path / "data"
    write_bronze(root, {"good.csv": HEADER + "\n" + EXPORT_ROWS, "shop.csv": "Order Ref,Item,Cost,Qty\nA9,x,1.00,1\n",
                        "twice.csv": "Order ID,order_id,Qty,Price\nA8,A8,1,1.00\n"})
    result = run_cli("--data-root", str(root), "--until", "gold")
    assert result.returncode == 1, result.stdout + result.stderr
    assert ("shop.csv: missing required column(s) order_id, unit_price; header: Order Ref, Item, Cost, Qty; "
            "map them with [cleaning] column_aliases in luigi.cfg") in result.stdout
    assert "twice.csv: duplicate column(s) order_id in the header ('Order ID' and 'order_id' both mean order_id)" in result.stdout
    assert (root / "silver" / "good.csv" / "_file_metrics.json").exists()
