"""The quote-aware scan: chunks hold whole records, numbered as the whole file numbers them."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.bronze.chunking import scan_file
from pipeline.bronze.header import layout_header
from pipeline.bronze.reader import parse_chunk, read_chunk_bytes
from pipeline.errors import InputFileError
from pipeline.storage.fingerprint import unchanged_since
from pipeline.storage.store import LOCAL_FILES


def records_of(path: Path, chunk_rows: int) -> tuple[list[tuple[int, str, str, str]], list[tuple[int, str]]]:
    """(source_row, a, b, c) of valid records and (source_row, raw_text) of malformed ones."""
    manifest = scan_file(path, path.name, chunk_rows)
    layout = layout_header(["order_id", "quantity", "unit_price"] if manifest.header_raw == ["a", "b", "c"] else manifest.header_raw, path.name)
    valid, bad = [], []
    for chunk in manifest.chunks:
        parsed = parse_chunk(read_chunk_bytes(path, chunk), chunk, layout, path.name)
        for row in parsed.raw.to_pylist():
            valid.append((row["source_row"], row["order_id"], row["quantity"], row["unit_price"]))
        for row in parsed.malformed.to_pylist():
            bad.append((row["source_row"], row["raw_text"]))
    return valid, bad


def test_quoted_newlines_and_commas_survive_every_chunk_size(tmp_path: Path) -> None:
    rows = [(f"id{i}", f"multi\nline {i}" if i % 3 == 0 else f"a,b {i}", f'say ""{i}""' if i % 4 == 0 else str(i)) for i in range(40)]
    body = "".join(f'{a},"{b}","{c}"\n' for a, b, c in rows)
    path = tmp_path / "f.csv"
    path.write_text("order_id,quantity,unit_price\n" + body)
    expected = [(i + 1, a, b, c.replace('""', '"')) for i, (a, b, c) in enumerate(rows)]
    for chunk_rows in (1, 2, 3, 7, 1000):
        valid, bad = records_of(path, chunk_rows)
        assert bad == []
        assert valid == expected, chunk_rows


def test_small_chunk_size_gives_several_chunks(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("order_id,quantity,unit_price\n" + "".join(f"{i},1,2\n" for i in range(100)))
    manifest = scan_file(path, "f.csv", 10)
    assert len(manifest.chunks) >= 8
    assert [c.first_row for c in manifest.chunks] == [1 + sum(c.records for c in manifest.chunks[:k]) for k in range(len(manifest.chunks))]
    assert manifest.records == 100


def test_bom_crlf_and_blank_lines_are_not_records(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(b"\xef\xbb\xbfOrder_ID , Quantity,UNIT_PRICE\r\n\r\n1,2,3\r\n\r\n\r\n4,5,6\r\n\n7,8,9")
    manifest = scan_file(path, "f.csv", 1)
    assert manifest.header_raw == ["Order_ID ", " Quantity", "UNIT_PRICE"]
    assert manifest.records == 3
    valid, bad = records_of(path, 1)
    assert valid == [(1, "1", "2", "3"), (2, "4", "5", "6"), (3, "7", "8", "9")]
    assert bad == []


def test_header_only_and_empty_files(tmp_path: Path) -> None:
    header_only = tmp_path / "h.csv"
    header_only.write_text("order_id,quantity,unit_price\n")
    assert scan_file(header_only, "h.csv", 10).records == 0
    assert scan_file(header_only, "h.csv", 10).chunks == []
    empty = tmp_path / "e.csv"
    empty.write_bytes(b"")
    with pytest.raises(InputFileError, match="e.csv: no header row"):
        scan_file(empty, "e.csv", 10)


def test_ragged_rows_are_quarantined_with_raw_text_and_numbered(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text('order_id,quantity,unit_price\n1,2,3\n4,5\n6,7,8,9\n"x\ny",1,2\n   \n10,11,12\n')
    for chunk_rows in (1, 2, 100):
        valid, bad = records_of(path, chunk_rows)
        assert valid == [(1, "1", "2", "3"), (4, "x\ny", "1", "2"), (6, "10", "11", "12")]
        assert bad == [(2, "4,5"), (3, "6,7,8,9"), (5, "   ")]


def test_stray_quote_inside_a_field_is_a_literal_quote(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text('order_id,quantity,unit_price\n1,ab"c,3\n2,"q\n",4\n3,x"y"z,5\n')
    for chunk_rows in (1, 100):
        valid, bad = records_of(path, chunk_rows)
        assert valid == [(1, "1", 'ab"c', "3"), (2, "2", "q\n", "4"), (3, "3", 'x"y"z', "5")]
        assert bad == []


def test_invalid_utf8_record_is_malformed_others_survive(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_bytes(b"order_id,quantity,unit_price\n1,2,3\n\xff\xfe,2,3\n4,5,6\n")
    valid, bad = records_of(path, 100)
    assert valid == [(1, "1", "2", "3"), (3, "4", "5", "6")]
    assert [row for row, _ in bad] == [2]


def test_fingerprint_notices_a_same_size_edit(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("order_id,quantity,unit_price\n1,2,3\n")
    manifest = scan_file(path, "f.csv", 10)
    assert unchanged_since(LOCAL_FILES, path, manifest.fingerprint)
    path.write_text("order_id,quantity,unit_price\n1,2,4\n")
    assert not unchanged_since(LOCAL_FILES, path, manifest.fingerprint)


def _quote(value: str, force: bool) -> str:
    """RFC 4180 quoting: needed for , " CR LF; also applied to some plain fields."""
    if force or any(ch in value for ch in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


_FIELD = st.text(alphabet=st.sampled_from(list('ab,"\n\r x1é')), max_size=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.tuples(_FIELD, _FIELD, _FIELD), max_size=25), chunk_rows=st.integers(1, 6),
       blank_every=st.integers(0, 5), crlf=st.booleans())
def test_any_csv_module_output_round_trips(tmp_path: Path, rows, chunk_rows: int, blank_every: int, crlf: bool) -> None:
    """Whatever the csv module writes, the chunks give back exactly its records, in order."""
    rows = [r for r in rows if r != ("", "", "")]  # an all-empty record is written as a blank line
    end = "\r\n" if crlf else "\n"
    out = io.StringIO()
    out.write("order_id,quantity,unit_price" + end)
    for i, row in enumerate(rows):
        out.write(",".join(_quote(value, force=(i + k) % 3 == 0) for k, value in enumerate(row)) + end)
        if blank_every and i % blank_every == 0:
            out.write(end)
    path = tmp_path / "p.csv"
    path.write_bytes(out.getvalue().encode("utf-8"))
    valid, bad = records_of(path, chunk_rows)
    assert bad == []
    assert [v[1:] for v in valid] == [tuple(r) for r in rows]
    assert [v[0] for v in valid] == list(range(1, len(rows) + 1))
