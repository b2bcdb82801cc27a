"""Line ends: CR-only (classic Mac) files fail alone with one clear line instead of losing every
row, and empty lines before the header are skipped like empty lines anywhere else."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.bronze.chunking import read_header, scan_file
from pipeline.bronze.discovery import BronzeFile
from pipeline.bronze.header import layout_header
from pipeline.bronze.reader import parse_chunk, read_chunk_bytes
from pipeline.errors import InputFileError
from pipeline.running.inventory import header_problem
from tests.conftest import HEADER, run_cli, write_bronze
from tests.gold_helpers import assert_gold_equal, read_gold

BOM = b"\xef\xbb\xbf"
CR_ONLY_ERROR = ("lines end with a bare CR (classic Mac line endings), which is not a supported line end; "
                 "convert the file to LF or CRLF line ends")
ROWS = [
    "A1,Widget,electronics,2,10.00,0.1,north,2024-01-05,a@b.co",
    "A2,Gadget,fashion,1,5.50,0,south,2024-01-06,c@d.co",
    'A3,"Quoted, name",toys,3,7.25,0,east,2024-02-07,e@f.co',
    "A1,Widget again,electronics,1,10.00,0,north,2024-01-08,a@b.co",
]


def csv_bytes(end: str, prefix: bytes = b"") -> bytes:
    """The ROWS file with line end `end`, after `prefix` (a BOM, empty lines)."""
    return prefix + (HEADER + end + end.join(ROWS) + end).encode("utf-8")


def records(path: Path, chunk_rows: int) -> list[dict]:
    """Every record the chunks of `path` give, with its source_row, in file order."""
    manifest = scan_file(path, path.name, chunk_rows)
    layout = layout_header(manifest.header_raw, path.name)
    out: list[dict] = []
    for chunk in manifest.chunks:
        out.extend(parse_chunk(read_chunk_bytes(path, chunk), chunk, layout, path.name).raw.to_pylist())
    return out


# --- unit: CR-only files -------------------------------------------------------------------------

@pytest.mark.parametrize("content", [
    csv_bytes("\r"),
    BOM + csv_bytes("\r"),
    b"\n\r\n" + csv_bytes("\r"),  # empty lines first, then CR line ends
    b'"order_id","quantity","unit_price"\r"1","2","3"\r',  # quoted fields: the CRs are still outside quotes
    (HEADER + "\r").encode(),  # a header-only CR file
])
def test_cr_only_file_fails_in_read_header_and_scan_file_naming_the_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "mac.csv"
    path.write_bytes(content)
    with open(path, "rb") as handle, pytest.raises(InputFileError) as raised:
        read_header(handle, path)
    assert str(raised.value) == f"{path}: {CR_ONLY_ERROR}"
    with pytest.raises(InputFileError, match="bare CR"):
        scan_file(path, "mac.csv", 10)


def test_header_problem_refuses_a_cr_only_file_by_its_relative_path(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "mac.csv"
    path.parent.mkdir()
    path.write_bytes(csv_bytes("\r"))
    assert header_problem(BronzeFile("sub/mac.csv", path)) == f"sub/mac.csv: {CR_ONLY_ERROR}"


def test_bare_cr_inside_an_unquoted_data_field_is_still_data(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(b"order_id,quantity,unit_price\r\n1,a\rb,3\r\n2,4,5\n")
    got = [(r["source_row"], r["order_id"], r["quantity"]) for r in records(path, 10)]
    assert got == [(1, "1", "a\rb"), (2, "2", "4")]


def test_a_bare_cr_inside_a_quoted_header_name_is_not_taken_for_line_ends(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(b'order_id,"qu\rantity",quantity,unit_price\n1,x,2,3\n')
    with open(path, "rb") as handle:
        names, header_end, _ = read_header(handle, path)
    assert names == ["order_id", "qu\rantity", "quantity", "unit_price"]
    assert header_end == path.read_bytes().index(b"\n") + 1


# --- unit: empty lines before the header ---------------------------------------------------------

@pytest.mark.parametrize("end", ["\n", "\r\n"])
@pytest.mark.parametrize("bom", [b"", BOM])
@pytest.mark.parametrize("blank", [b"\n", b"\r\n", b"\n\r\n\n", b"\r\n" * 5])
@pytest.mark.parametrize("chunk_rows", [1, 3, 100])
def test_empty_lines_before_the_header_are_skipped(tmp_path: Path, end: str, bom: bytes, blank: bytes, chunk_rows: int) -> None:
    plain = tmp_path / "plain.csv"
    plain.write_bytes(bom + csv_bytes(end))
    padded = tmp_path / "padded.csv"
    padded.write_bytes(bom + csv_bytes(end, prefix=blank))
    expected, got = scan_file(plain, "f.csv", chunk_rows), scan_file(padded, "f.csv", chunk_rows)
    assert got.header_raw == expected.header_raw == HEADER.split(",")
    assert got.header_end == expected.header_end + len(blank)
    assert [(c.first_row, c.records) for c in got.chunks] == [(c.first_row, c.records) for c in expected.chunks]
    assert got.records == len(ROWS)
    assert records(padded, chunk_rows) == records(plain, chunk_rows)
    assert [r["source_row"] for r in records(padded, chunk_rows)] == list(range(1, len(ROWS) + 1))


@pytest.mark.parametrize("content", [b"", b"\n", b"\r\n\n", BOM, BOM + b"\r\n\r\n"])
def test_a_file_of_only_empty_lines_has_no_header_row(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "e.csv"
    path.write_bytes(content)
    with pytest.raises(InputFileError, match=r"e\.csv: no header row"):
        scan_file(path, "e.csv", 10)


def test_a_white_space_line_before_the_header_is_not_skipped(tmp_path: Path) -> None:
    path = tmp_path / "w.csv"
    path.write_bytes(b"  \n" + csv_bytes("\n"))
    with pytest.raises(InputFileError, match=r"w\.csv: no header row"):
        scan_file(path, "w.csv", 10)


# --- end to end: the real command line -----------------------------------------------------------

def run_to_gold(root: Path):
    return run_cli("--data-root", str(root), "--workers", "1", "--until", "gold")


def test_cr_only_file_fails_alone_and_the_good_file_gives_the_same_gold(tmp_path: Path) -> None:
    mixed = tmp_path / "mixed"
    write_bronze(mixed, {"good.csv": csv_bytes("\n"), "mac.csv": csv_bytes("\r")})
    result = run_to_gold(mixed)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output
    # The file is named once, in the run's closing summary.
    lines = [line for line in output.splitlines() if "mac.csv" in line]
    assert lines == [f"FAILED mac.csv: {CR_ONLY_ERROR}"], output
    assert not (mixed / "silver" / "mac.csv").exists()
    alone = tmp_path / "alone"
    write_bronze(alone, {"good.csv": csv_bytes("\n")})
    baseline = run_to_gold(alone)
    assert baseline.returncode == 0, baseline.stdout + baseline.stderr
    assert_gold_equal(read_gold(mixed), read_gold(alone), "good + CR-only vs good alone")


# Every combination is unit-tested by test_empty_lines_before_the_header_are_skipped; end to end, the richer case.
@pytest.mark.parametrize("end, prefix", [pytest.param("\n", b"\n\n", marks=pytest.mark.slow), ("\r\n", BOM + b"\r\n\n\r\n")])
def test_empty_lines_before_the_header_give_the_same_gold(tmp_path: Path, end: str, prefix: bytes) -> None:
    plain, padded = tmp_path / "plain", tmp_path / "padded"
    write_bronze(plain, {"sales.csv": csv_bytes(end, prefix=BOM if prefix.startswith(BOM) else b"")})
    write_bronze(padded, {"sales.csv": csv_bytes(end, prefix=prefix)})
    for root in (plain, padded):
        result = run_to_gold(root)
        assert result.returncode == 0, result.stdout + result.stderr
    assert_gold_equal(read_gold(padded), read_gold(plain), "empty lines before the header")
