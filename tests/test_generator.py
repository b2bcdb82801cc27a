"""The sample generator: deterministic, well-formed CSV, and every kind of dirt the contract names.

Files are real files in tmp_path and are read back with pyarrow's CSV reader, as the pipeline does.
"""
from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pv
import pytest

from pipeline import generator
from pipeline.contract import INPUT_COLUMNS, NULL_TOKENS
from pipeline.errors import PipelineError
from pipeline.generator import generate_bronze

SAMPLE_ROWS = 20_000
SAMPLE_FILES = 10


def read_records(path: Path) -> pa.Table:
    """All fields as raw strings (no null conversion), header skipped; fails on ragged rows."""
    return pv.read_csv(
        path,
        read_options=pv.ReadOptions(skip_rows=1, column_names=list(INPUT_COLUMNS)),
        parse_options=pv.ParseOptions(newlines_in_values=True),
        convert_options=pv.ConvertOptions(
            column_types={c: pa.string() for c in INPUT_COLUMNS},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )


def header_names(path: Path) -> list[str]:
    first_line = path.read_bytes().decode("utf-8-sig").splitlines()[0]
    return first_line.split(",")


def normalised(names: list[str]) -> list[str]:
    return [n.strip().lower() for n in names]


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return generate_bronze(tmp_path_factory.mktemp("bronze"), SAMPLE_ROWS, files=SAMPLE_FILES)


@pytest.fixture(scope="module")
def tables(sample: list[Path]) -> list[pa.Table]:
    return [read_records(p) for p in sample]


@pytest.fixture(scope="module")
def values(tables: list[pa.Table]) -> dict[str, list[str]]:
    table = pa.concat_tables(tables)
    return {c: table[c].to_pylist() for c in INPUT_COLUMNS}


# --- layout -------------------------------------------------------------------------------------


def test_same_arguments_give_identical_bytes(tmp_path: Path) -> None:
    first = generate_bronze(tmp_path / "a", 3_000, files=4, seed=7)
    second = generate_bronze(tmp_path / "b", 3_000, files=4, seed=7)
    other_seed = generate_bronze(tmp_path / "c", 3_000, files=4, seed=8)
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    assert [p.read_bytes() for p in first] != [p.read_bytes() for p in other_seed]


def test_files_are_numbered_parts_in_the_bronze_folder(tmp_path: Path) -> None:
    paths = generate_bronze(tmp_path, 50, files=3)
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == [
        "sales_data_part_0001.csv",
        "sales_data_part_0002.csv",
        "sales_data_part_0003.csv",
    ]
    assert sorted(tmp_path.iterdir()) == paths  # nothing else, no temp files left behind


def test_date_folders_are_hive_style_consecutive_days(tmp_path: Path) -> None:
    paths = generate_bronze(tmp_path, 50, files=3, date_folders=True)
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == [
        "date=2026-11-01/sales_data_part_0001.csv",
        "date=2026-11-02/sales_data_part_0002.csv",
        "date=2026-11-03/sales_data_part_0003.csv",
    ]
    assert sum(read_records(p).num_rows for p in paths) == 50


@pytest.mark.parametrize(
    ("rows", "files", "expected"),
    [(10, 5, [2, 2, 2, 2, 2]), (11, 4, [3, 3, 3, 2]), (3, 10, [1, 1, 1]), (1, 1, [1])],
)
def test_rows_are_split_evenly_and_no_file_is_header_only(
    tmp_path: Path, rows: int, files: int, expected: list[int]
) -> None:
    paths = generate_bronze(tmp_path, rows, files=files)
    assert [read_records(p).num_rows for p in paths] == expected


def test_zero_rows_writes_nothing(tmp_path: Path) -> None:
    assert generate_bronze(tmp_path / "bronze", 0) == []
    assert not (tmp_path / "bronze").exists() or not any((tmp_path / "bronze").iterdir())


@pytest.mark.parametrize(("rows", "files", "seed"), [(-1, 10, 42), (10, 0, 42), (10, -3, 42), (10, 2, -1)])
def test_bad_arguments_are_rejected(tmp_path: Path, rows: int, files: int, seed: int) -> None:
    with pytest.raises(ValueError):
        generate_bronze(tmp_path, rows, files=files, seed=seed)
    assert not any(tmp_path.iterdir())


def test_files_larger_than_a_block_stay_well_formed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(generator, "BLOCK_ROWS", 64)
    paths = generate_bronze(tmp_path, 1_000, files=2)
    ids = [i.strip() for p in paths for i in read_records(p)["order_id"].to_pylist()]
    numbers = {int(i[4:]) for i in ids if i.startswith("ORD-")}
    assert len(ids) == 1_000
    assert numbers <= set(range(1, 1_001))
    assert len(numbers) > 900  # ids follow the global row number across blocks and files


# --- well-formed CSV ----------------------------------------------------------------------------


def test_every_file_parses_and_records_add_up(tables: list[pa.Table]) -> None:
    assert [t.num_rows for t in tables] == [SAMPLE_ROWS // SAMPLE_FILES] * SAMPLE_FILES


def test_headers_normalise_to_the_input_columns(sample: list[Path]) -> None:
    headers = [header_names(p) for p in sample]
    assert all(normalised(h) == list(INPUT_COLUMNS) for h in headers)
    assert any(h != list(INPUT_COLUMNS) for h in headers), "no file exercises header normalisation"


def test_line_ends_bom_and_blank_lines_vary(sample: list[Path]) -> None:
    raw = [p.read_bytes() for p in sample]
    assert any(b"\r\n" in r for r in raw) and any(b"\r\n" not in r for r in raw)
    assert any(r.startswith(b"\xef\xbb\xbf") for r in raw) and any(not r.startswith(b"\xef\xbb\xbf") for r in raw)
    blank_lines = sum(r.count(b"\n\n") + r.count(b"\r\n\r\n") for r in raw)
    assert 0 < blank_lines <= SAMPLE_ROWS * 0.002


# --- dirt ---------------------------------------------------------------------------------------

EXACT_VALUES: dict[str, list[str]] = {
    "order_id": ["", "NULL", "none", "N/A", "nan"],
    "product_name": ["iPhone 14", "iphone-14", "Samsung  Galaxy S23", "LG Washer 5000", "Widget, Large",
                     'The "Best" Mug', "Multi\nLine Lamp", "", "NULL"],
    "category": ["electronics", "Electronic", "home appliance", "HomeAppliance", "home-appl", "Home_Appliance",
                 "fashion", "Cloths", "clothes", "CLOTHING", "  electronics  ", "", "NULL", "toys"],
    "quantity": ["1", "20", "zero", "-2", "0", "2.5", "", "abc"],
    "unit_price": ["£3.1", "1,234.50", "1e3", "12.345", "0", "0.001", "-5.00", "abc", "nan", "inf", ""],
    "discount_percent": ["0", "0.05", "0.1", "0.15", "0.2", "0.25", "0.5", "1.5", "-0.1", "abc", "", "NULL"],
    "region": ["north", "south", "east", "west", "North", " SOUTH ", "nort", "Nort", "", "NULL", "mars"],
    "sale_date": ["2024-02-30", "2023-13-01", "not a date", "", "NULL"],
    "customer_email": ["no-at-sign.com", "a@@b.com", "a b@c.com", "x@nodot", "", "NULL"],
}

PATTERNS: list[tuple[str, str]] = [
    ("order_id", r"\s+ORD-\d{8}\s*|\s*ORD-\d{8}\s+"),
    ("quantity", r"\+\d+"),
    ("quantity", r"\d+\.0"),
    ("quantity", r"\s+\d+\s*|\s*\d+\s+"),
    ("unit_price", r"\$\d+\.\d\d"),
    ("unit_price", r"€\d+\.\d\d"),
    ("unit_price", r"£\d+\.\d\d"),
    ("sale_date", r"\d{4}-\d\d-\d\d"),
    ("sale_date", r"\d\d/\d\d/\d{4}"),
    ("sale_date", r"\d\d-\d\d-\d{4}"),
    ("sale_date", r"\d{4}/\d\d/\d\d"),
    ("sale_date", r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d"),
    ("sale_date", r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"),
    ("customer_email", r"user\d+@[a-z.]+"),
    ("customer_email", r"USER\d+@[A-Z.]+"),
]


@pytest.mark.parametrize("column", list(EXACT_VALUES))
def test_every_listed_variant_occurs(values: dict[str, list[str]], column: str) -> None:
    missing = set(EXACT_VALUES[column]) - set(values[column])
    assert not missing, f"{column}: never generated {sorted(missing)}"


@pytest.mark.parametrize(("column", "pattern"), PATTERNS)
def test_every_listed_shape_occurs(values: dict[str, list[str]], column: str, pattern: str) -> None:
    assert any(re.fullmatch(pattern, v) for v in values[column])


def test_null_tokens_of_every_spelling_occur_in_order_ids(values: dict[str, list[str]]) -> None:
    tokens = {v.strip().lower() for v in values["order_id"]}
    assert {"", "null", "none", "nan", "n/a"} <= tokens & set(NULL_TOKENS)


def test_tabs_and_no_break_spaces_surround_some_values(values: dict[str, list[str]]) -> None:
    fields = [v for column in values.values() for v in column]
    assert any(v.startswith("\t") or v.endswith("\t") for v in fields)
    assert any(v.startswith("\u00a0") and v.endswith("\u00a0") for v in fields)


def test_order_ids_repeat_within_and_across_files(tables: list[pa.Table]) -> None:
    ids_per_file = [[i.strip() for i in t["order_id"].to_pylist() if i.strip().startswith("ORD-")] for t in tables]
    within = [sum(n - 1 for n in Counter(ids).values()) for ids in ids_per_file]
    seen: set[str] = set()
    across = []
    for ids in ids_per_file:
        across.append(len(set(ids) & seen))
        seen.update(ids)
    rows_per_file = SAMPLE_ROWS // SAMPLE_FILES
    assert all(0.01 * rows_per_file < n < 0.06 * rows_per_file for n in within)
    assert across[0] == 0 and all(0.005 * rows_per_file < n < 0.04 * rows_per_file for n in across[1:])


CLEAN_SHAPES: dict[str, str] = {
    "order_id": r"ORD-\d{8}",
    "quantity": r"([1-9]|1\d|20)",
    "unit_price": r"\d+\.\d\d",
    "discount_percent": r"0|0\.(05|1|15|2|25|5)",
    "region": r"north|south|east|west",
    "customer_email": r"user\d+@[a-z.]+",
}


@pytest.mark.parametrize("column", list(CLEAN_SHAPES))
def test_most_values_are_clean(values: dict[str, list[str]], column: str) -> None:
    clean = sum(bool(re.fullmatch(CLEAN_SHAPES[column], v)) for v in values[column])
    assert clean / SAMPLE_ROWS > 0.9


# --- never overwrite the user's files without --force ------------------------------------------

REPO = Path(__file__).resolve().parent.parent


def run_generate(*args: str) -> subprocess.CompletedProcess:
    """`python run.py generate ...` as a user runs it, from the repo root."""
    return subprocess.run([sys.executable, "run.py", "generate", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def refusal(count: int, bronze: Path, example: str) -> str:
    return (f"ERROR generate: {count} file(s) already exist under {bronze} (e.g. {example}); "
            "refusing to overwrite them; pass --force to overwrite, or use another --data-root\n")


def test_second_generate_refuses_and_changes_nothing(tmp_path: Path) -> None:
    first = run_generate("--rows", "300", "--files", "3", "--seed", "1", "--data-root", str(tmp_path))
    assert first.returncode == 0, first.stderr
    bronze = tmp_path / "bronze"
    before = snapshot(bronze)
    assert list(before) == [f"sales_data_part_000{i}.csv" for i in (1, 2, 3)]

    second = run_generate("--rows", "300", "--files", "3", "--seed", "2", "--data-root", str(tmp_path))
    assert second.returncode == 2
    assert second.stderr == refusal(3, bronze, "sales_data_part_0001.csv")
    assert second.stdout == ""
    assert snapshot(bronze) == before  # same names, same bytes, no temp files left


def test_one_clashing_user_file_refuses_the_whole_run(tmp_path: Path) -> None:
    bronze = tmp_path / "bronze"
    bronze.mkdir()
    (bronze / "sales_data_part_0002.csv").write_bytes(b"order_id\nmy own data, keep me\n")
    (bronze / "notes.txt").write_bytes(b"mine too")
    before = snapshot(bronze)

    result = run_generate("--rows", "400", "--files", "4", "--data-root", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr == refusal(1, bronze, "sales_data_part_0002.csv")
    assert snapshot(bronze) == before  # not even the non-clashing parts 1, 3, 4 were written


def test_clash_inside_date_folders_is_reported_by_relative_path(tmp_path: Path) -> None:
    bronze = tmp_path / "bronze"
    own = bronze / "date=2026-11-02" / "sales_data_part_0002.csv"
    own.parent.mkdir(parents=True)
    own.write_bytes(b"user bytes")

    result = run_generate("--rows", "30", "--files", "3", "--date-folders", "--data-root", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr == refusal(1, bronze, "date=2026-11-02/sales_data_part_0002.csv")
    assert snapshot(bronze) == {"date=2026-11-02/sales_data_part_0002.csv": b"user bytes"}


def test_force_overwrites_files_of_the_same_names(tmp_path: Path) -> None:
    bronze = tmp_path / "bronze"
    bronze.mkdir()
    (bronze / "sales_data_part_0001.csv").write_bytes(b"user bytes")
    (bronze / "other.csv").write_bytes(b"untouched")

    result = run_generate("--rows", "200", "--files", "2", "--seed", "5", "--force", "--data-root", str(tmp_path))
    assert result.returncode == 0, result.stderr
    expected = generate_bronze(tmp_path / "expected", 200, files=2, seed=5)
    after = snapshot(bronze)
    assert after == {
        "other.csv": b"untouched",
        "sales_data_part_0001.csv": expected[0].read_bytes(),
        "sales_data_part_0002.csv": expected[1].read_bytes(),
    }


def test_generate_beside_differently_named_files_works(tmp_path: Path) -> None:
    bronze = tmp_path / "bronze"
    bronze.mkdir()
    (bronze / "my_sales_2024.csv").write_bytes(b"order_id\nkeep\n")
    (bronze / "sales_data_part_0003.csv").write_bytes(b"beyond --files 2, so no clash")
    before = snapshot(bronze)

    result = run_generate("--rows", "100", "--files", "2", "--data-root", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "generated 100 rows in 2 files" in result.stdout
    after = snapshot(bronze)
    assert {k: after[k] for k in before} == before
    assert sorted(set(after) - set(before)) == ["sales_data_part_0001.csv", "sales_data_part_0002.csv"]


def test_generate_bronze_checks_every_path_before_writing(tmp_path: Path) -> None:
    (tmp_path / "sales_data_part_0003.csv").write_bytes(b"last one clashes")
    with pytest.raises(PipelineError) as err:
        generate_bronze(tmp_path, 30, files=3)
    assert str(err.value) == (
        f"generate: 1 file(s) already exist under {tmp_path} (e.g. sales_data_part_0003.csv); "
        "refusing to overwrite them; pass --force to overwrite, or use another --data-root"
    )
    assert "\n" not in str(err.value)
    assert snapshot(tmp_path) == {"sales_data_part_0003.csv": b"last one clashes"}

    paths = generate_bronze(tmp_path, 30, files=3, overwrite=True)
    assert [p.name for p in paths] == [f"sales_data_part_000{i}.csv" for i in (1, 2, 3)]
    assert read_records(paths[2]).num_rows == 10


def test_bad_generate_arguments_are_usage_errors(tmp_path: Path) -> None:
    for option, value in (("--rows", "-1"), ("--files", "0"), ("--seed", "-2"), ("--day-offset", "-1")):
        args = ["--rows", "10", option, value] if option != "--rows" else [option, value]
        result = run_generate(*args, "--data-root", str(tmp_path))
        assert result.returncode == 2 and f"argument {option}: must be >= " in result.stderr, result.stderr
    assert not (tmp_path / "bronze").exists()


# --- a next day's batch (--day-offset) ------------------------------------------------------------

# sha256 of generate_bronze(d, 3000, files=4, seed=7, date_folders=True) (names and bytes) before
# --day-offset existed: day 0 stays the sample it was.
DAY_ZERO_DIGEST = "dbad3e410d570d92ac44f78e86cfeae634b871d63c55188766987f20750b3e02"


def test_day_zero_is_byte_identical_to_the_sample_before_day_offset(tmp_path: Path) -> None:
    import hashlib

    digest = hashlib.sha256()
    for path in generate_bronze(tmp_path, 3000, files=4, seed=7, date_folders=True, day_offset=0):
        digest.update(path.relative_to(tmp_path).as_posix().encode() + b"\0" + path.read_bytes())
    assert digest.hexdigest() == DAY_ZERO_DIGEST


def parsed_day(text: str) -> dt.date | None:
    """The day a generated date text names, or None for the deliberately bad ones."""
    for fmt in generator.DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return None


def clean_ids(paths: list[Path]) -> list[str]:
    return [i.strip() for p in paths for i in read_records(p)["order_id"].to_pylist() if i.strip().startswith("ORD-")]


def test_a_next_day_has_new_ids_dates_of_that_day_and_later_names(tmp_path: Path) -> None:
    first = generate_bronze(tmp_path, 2000, files=2, seed=7)
    before = snapshot(tmp_path)
    second = generate_bronze(tmp_path, 2000, files=2, seed=7, day_offset=1)
    assert [p.name for p in second] == ["sales_data_part_100001.csv", "sales_data_part_100002.csv"]
    assert {k: v for k, v in snapshot(tmp_path).items() if k in before} == before
    old, new = set(clean_ids(first)), clean_ids(second)
    repeated = sum(i in old for i in new)
    assert 0.005 * len(new) < repeated < 0.03 * len(new)  # the earlier-day duplicates, about 2 % of the first file
    assert all(i in old or i.startswith("ORD-1") and len(i) == 14 for i in new)
    dates = {d.strip() for p in second for d in read_records(p)["sale_date"].to_pylist()}
    assert {"2026-12-01", "01/12/2026", "12-01-2026", "2026/12/01"} <= dates
    assert {parsed_day(d) for d in dates} - {None} == {dt.date(2026, 12, 1)}  # every real date is that day
    assert read_records(second[0]).to_pylist() != read_records(first[0]).to_pylist()
    folders = generate_bronze(tmp_path / "dated", 20, files=2, seed=7, date_folders=True, day_offset=3)
    assert [p.relative_to(tmp_path / "dated").as_posix() for p in folders] == [
        "date=2026-12-03/sales_data_part_300001.csv", "date=2026-12-03/sales_data_part_300002.csv"]


def test_a_batch_too_large_for_a_day_is_refused_before_writing(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"generate: at most 1,000,000,000 rows and 100,000 files per batch"):
        generate_bronze(tmp_path, 100_001, files=100_001)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow  # a next day's ids: test_a_next_day_has_new_ids...; dedup across runs: test_gold
def test_two_generated_days_give_about_the_sum_of_their_orders(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from tests.conftest import run_cli

    def orders(root: Path) -> int:
        result = run_cli("--data-root", str(root), "--until", "gold")
        assert result.returncode == 0, result.stdout + result.stderr
        return sum(pq.read_table(root / "gold" / "region_wise_performance.parquet")["order_count"].to_pylist())

    both, second_alone = tmp_path / "both", tmp_path / "second"
    assert run_generate("--rows", "1000", "--files", "1", "--seed", "7", "--data-root", str(both)).returncode == 0
    first_orders = orders(both)
    result = run_generate("--rows", "1000", "--files", "1", "--seed", "7", "--day-offset", "1", "--data-root", str(both))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (both / "bronze").iterdir()) == ["sales_data_part_0001.csv", "sales_data_part_100001.csv"]
    total = orders(both)  # the second day merged incrementally onto the first
    assert run_generate("--rows", "1000", "--files", "1", "--seed", "7", "--day-offset", "1",
                        "--data-root", str(second_alone)).returncode == 0
    second_orders = orders(second_alone)
    assert second_orders > 800
    assert first_orders + second_orders - 35 <= total < first_orders + second_orders  # ~2 % repeat the day before
