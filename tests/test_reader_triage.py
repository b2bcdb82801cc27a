"""A chunk with a few bad records is triaged, vectorised; it must read exactly as an independent
reference reads it (Python's own `csv` module, record by record, with the project's documented
differences spelled out), with pyarrow agreeing with the scan at the first parse. Where they are
made to disagree, the records in question are quarantined as malformed_row, none lost."""
from __future__ import annotations

import csv
import dataclasses
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.bronze import reader
from pipeline.bronze.chunking import Chunk, record_spans, scan_file
from pipeline.bronze.header import layout_header
from pipeline.bronze.reader import parse_chunk

HEADER = ["order_id", "quantity", "unit_price"]
LAYOUT = layout_header(HEADER, "t.csv")
EXAMPLES = int(os.environ.get("READER_TRIAGE_EXAMPLES", "300"))

_PLAIN = st.text(alphabet="ab1 .é€", max_size=4)
_GOOD = st.lists(_PLAIN, min_size=3, max_size=3).map(lambda f: ",".join(f).encode())
_QUOTED = st.tuples(_PLAIN, _PLAIN, st.sampled_from([
    '"x,y"', '"line\nbreak"', '"say ""hi"""', '"cr\rin"',
    '"ab"c',  # text after a closing quote stays in the field: abc
    '""""',  # a field holding one quote
    '""',  # an empty quoted field
    '"crlf\r\ninside"',  # a quoted CRLF is data, not a line end
    '"a"",b"',  # an escaped quote followed by a quoted comma
])).map(lambda f: ",".join(f).encode())
_BAD = st.sampled_from([
    b"a,b",  # too few fields
    b"a,b,c,d",  # too many
    b"a,\xff\xfe,c",  # invalid UTF-8
    b"a,b\x00,c",  # NUL
    b"a,b\rc,d",  # a bare CR inside an unquoted field: data, and still 3 fields
    b"a,\xed\xa0\x80,c",  # an encoded surrogate: invalid UTF-8
    b'a,b"c,d',  # a stray quote is a literal: 3 fields
    b",,",  # three empty fields
    b"  ",  # white space only: a record of one field, malformed
    b'a,\r"x",y',  # a quote after a bare CR is not at a field's start: a literal, 3 fields
    b'"q\x00",1,2',  # a NUL inside a quoted field
    b'"\xff",1,2',  # invalid UTF-8 inside a quoted field
])
_RECORD = st.one_of(_GOOD, _QUOTED, _BAD)
# A last record whose quote never closes: it runs to the end of the chunk, and is malformed, whether
# its field count is wrong as well or not.
_OPEN_TAIL = st.sampled_from([None, None, None, b'z,"never closed,1', b'"open\rat the start', b'y,1,"2\n\nz,3',
                              b'y,"2\n\nz,3'])


def _chunk_bytes(records: list[bytes], blank_lines: list[int], crlf: bool, last_newline: bool) -> bytes:
    end = b"\r\n" if crlf else b"\n"
    lines = []
    for i, record in enumerate(records):
        lines.extend([b""] * (blank_lines[i % len(blank_lines)] if blank_lines else 0))
        lines.append(record)
    text = end.join(lines)
    return text + end if last_newline else text


def _scanned(data: bytes, first_row: int) -> Chunk | None:
    """The chunk the pipeline makes of `data` as the records of a file (after its header line):
    the scan's record count and metadata (e.g. a quote still open at the end), numbered from
    `first_row`; None when the scan finds no record. Its bytes are `data`."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "t.csv"
        path.write_bytes(",".join(HEADER).encode() + b"\n" + data)
        chunks = scan_file(path, "t.csv", chunk_rows=1_000_000).chunks
    if not chunks:
        return None
    [chunk] = chunks
    assert chunk.end - chunk.start == len(data)
    return dataclasses.replace(chunk, first_row=first_row)


# --- the reference: the csv module, plus the project's documented differences --------------------

# csv.reader with the format of docs/CONTRACT.md section 2: comma, `"` quotes a field only at its
# start, `""` inside is one quote, text after a closing quote stays in the field (strict=False).
CSV_DIALECT = dict(delimiter=",", quotechar='"', doublequote=True, escapechar=None, skipinitialspace=False,
                   quoting=csv.QUOTE_MINIMAL, strict=False)
# Difference 1: a CR that does not end a line (not before an LF, not the chunk's last byte) is data
# to the project, where csv ends the record there (or refuses "new-line character seen in unquoted
# field"). The reference hides each such CR from csv behind this character (never generated) and
# puts it back in the values.
BARE_CR = "\ue000"


def _lines(data: bytes) -> list[bytes]:
    """The chunk's lines, each with its LF (a last line without one kept as is)."""
    pieces = data.split(b"\n")
    return [piece + b"\n" for piece in pieces[:-1]] + ([pieces[-1]] if pieces[-1] else [])


def _csv_text(line: bytes, last: bool) -> str:
    """A line as csv reads it: bytes that are not UTF-8 kept as lone surrogates (so quotes, commas
    and line ends around them stay where they are), and every bare CR hidden (difference 1)."""
    text = line.decode("utf-8", "surrogateescape")
    for end in ("\r\n", "\n", "\r" if last else None):
        if end and text.endswith(end):  # a CR ending the chunk is a line end (CONTRACT: a lone last CR adds no record)
            return text[: -len(end)].replace("\r", BARE_CR) + end
    return text.replace("\r", BARE_CR)


def _without_line_end(raw: bytes, unterminated: bool) -> bytes:
    """A record's bytes without its line end: LF, then one CR before it. An unterminated record
    runs to the chunk's end, so its last LF is inside the quote (data); only a CR ending the
    chunk is a line end there."""
    if not unterminated and raw.endswith(b"\n"):
        raw = raw[:-1]
    return raw[:-1] if raw.endswith(b"\r") else raw


def _csv_records(data: bytes) -> Iterator[tuple[bytes, list[str], bool]]:
    """Each non-empty record of `data` as csv reads it: its bytes without the line end, its fields
    (bare CRs still hidden) and whether its quote never closed."""
    lines = _lines(data)
    taken: list[int] = []  # the lines csv has pulled so far
    exhausted: list[bool] = []

    def feed() -> Iterator[str]:
        for i, line in enumerate(lines):
            taken.append(i)
            yield _csv_text(line, last=i == len(lines) - 1)
        exhausted.append(True)

    records = csv.reader(feed(), **CSV_DIALECT)
    start = 0
    while True:
        before = len(exhausted)
        try:
            fields = next(records)
        except StopIteration:
            return
        raw = b"".join(lines[start:len(taken)])
        start = len(taken)
        # Difference 2: csv (strict=False) returns a field whose quote never closes as if the data
        # closed it; csv only had to ask for a line past the last one while inside a quoted field.
        # To the project that record (from its opening quote to the chunk's end) is malformed.
        unterminated = len(exhausted) > before
        text = _without_line_end(raw, unterminated)
        if fields == []:  # an empty line (`\n`, `\r\n`): skipped and not counted, by csv and the project
            assert text == b"", raw
            continue
        yield text, fields, unterminated


def csv_reference(data: bytes, first_row: int, width: int) -> list[tuple]:
    """Every record of `data` as ("ok", source_row, values...) or ("bad", source_row, raw_text), in order."""
    rows: list[tuple] = []
    for row, (text, fields, unterminated) in enumerate(_csv_records(data), start=first_row):
        # Difference 3: csv has no notion of the header's width, accepts NUL and, on text, knows
        # nothing of bytes: to the project a record with the wrong field count, a NUL byte or
        # bytes that are not UTF-8 is malformed, kept with its raw text (bad bytes as U+FFFD).
        try:
            text.decode("utf-8")
            valid_utf8 = True
        except UnicodeDecodeError:
            valid_utf8 = False
        if unterminated or not valid_utf8 or b"\x00" in text or len(fields) != width:
            rows.append(("bad", row, text.decode("utf-8", errors="replace")))
        else:
            rows.append(("ok", row, *(field.replace(BARE_CR, "\r") for field in fields)))
    return rows


def _as_rows(raw: pa.Table, malformed: pa.Table) -> list[tuple]:
    good = [(r["source_row"], "ok", r["order_id"], r["quantity"], r["unit_price"]) for r in raw.to_pylist()]
    bad = [(r["source_row"], "bad", r["raw_text"]) for r in malformed.to_pylist()]
    return sorted(good + bad)


def _reference_rows(reference: list[tuple]) -> list[tuple]:
    """csv_reference's rows in _as_rows' shape (the header is order_id, quantity, unit_price)."""
    return sorted((row[1], row[0], *row[2:]) for row in reference)


def _holding_a_cr(reference: list[tuple]) -> int:
    """The well-formed records holding a CR that is not their line end: the only ones triage may
    split in Python (pyarrow would take such a CR for a line end)."""
    return sum(1 for row in reference if row[0] == "ok" and any("\r" in value for value in row[2:]))


@contextmanager
def _watching_the_python_paths() -> Iterator[dict[str, int]]:
    """Count calls of pyarrow's parse of the triaged records (more than one: it disagreed with the
    scan, and halves were parsed again) and of the Python record split."""
    calls = {"triaged_parses": 0, "split_record": 0}
    agreeing, split = reader._parse_agreeing, reader._split_record

    def counting_agreeing(*args, **kwargs):
        calls["triaged_parses"] += 1
        return agreeing(*args, **kwargs)

    def counting_split(*args, **kwargs):
        calls["split_record"] += 1
        return split(*args, **kwargs)

    reader._parse_agreeing, reader._split_record = counting_agreeing, counting_split
    try:
        yield calls
    finally:
        reader._parse_agreeing, reader._split_record = agreeing, split


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=st.lists(_RECORD, min_size=1, max_size=30), blank_lines=st.lists(st.integers(0, 2), max_size=3),
       crlf=st.booleans(), last_newline=st.booleans(), first_row=st.integers(1, 1000), open_tail=_OPEN_TAIL)
def test_triaged_parse_equals_the_csv_module_and_stays_vectorised(records, blank_lines, crlf, last_newline, first_row,
                                                                   open_tail) -> None:
    data = _chunk_bytes(records + ([open_tail] if open_tail else []), blank_lines, crlf, last_newline)
    reference = csv_reference(data, first_row, LAYOUT.width)
    assert len(reference) == len(records) + (open_tail is not None)
    chunk = _scanned(data, first_row)
    assert chunk.records == len(reference), "the scan's record count"
    with _watching_the_python_paths() as calls:
        parsed = reader.parse_chunk(data, chunk, LAYOUT, "t.csv")
    assert parsed.records_read == len(reference)
    assert _as_rows(parsed.raw, parsed.malformed) == _reference_rows(reference)
    assert parsed.raw.column("source_row").to_pylist() == sorted(parsed.raw.column("source_row").to_pylist())
    # Which path read it. pyarrow agrees with the scan on these records at its first parse.
    assert calls["triaged_parses"] <= 1, "pyarrow and the scan disagreed: the triaged records were parsed again by halves"
    # Only the well-formed records holding a CR that is not their line end may be split in Python.
    assert calls["split_record"] <= _holding_a_cr(reference), f"{calls['split_record']} records split in Python"
    malformed = any(row[0] == "bad" for row in reference)
    if not malformed and b"\r" not in data.replace(b"\r\n", b""):
        assert not parsed.used_slow_path, "well-formed records without a CR must take pyarrow's fast path"
    if malformed:
        assert parsed.used_slow_path


# Any bytes of a CSV's alphabet: quotes opening, closing and escaped across lines, bare CRs, CRLFs,
# NULs and bytes that are not UTF-8 anywhere, records of any width.
_SOUP = st.lists(st.sampled_from([b"a", b'"', b'""', b",", b"\r", b"\n", b"\r\n", b" ", b"\xff", b"\x00"]),
                 min_size=1, max_size=40).map(b"".join)


# pyarrow cannot show a ragged row that is not UTF-8 to the invalid row handler: it reports that
# as unraisable, then fails the parse (ArrowInvalid), which sends the chunk to triage as it should.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=_SOUP, first_row=st.integers(1, 1000))
def test_any_chunk_reads_as_the_csv_module_reads_it(data: bytes, first_row: int) -> None:
    reference = csv_reference(data, first_row, LAYOUT.width)
    chunk = _scanned(data, first_row)
    assert (chunk.records if chunk else 0) == len(reference), "the scan's record count"
    if chunk is None:
        return
    with _watching_the_python_paths() as calls:
        parsed = reader.parse_chunk(data, chunk, LAYOUT, "t.csv")
    assert parsed.records_read == len(reference)
    assert _as_rows(parsed.raw, parsed.malformed) == _reference_rows(reference)
    assert calls["triaged_parses"] <= 1, "pyarrow and the scan disagreed: the triaged records were parsed again by halves"
    assert calls["split_record"] <= _holding_a_cr(reference), f"{calls['split_record']} records split in Python"


def test_a_bare_cr_at_a_records_first_or_last_byte_is_data() -> None:
    """pyarrow reads such a CR as a line end (and skips the empty line it makes): with the record
    count right it would drop the CR from the value."""
    data = b"x,y,z\n\ra,b,c\r\r\n"
    reference = csv_reference(data, 1, LAYOUT.width)
    assert reference == [("ok", 1, "x", "y", "z"), ("ok", 2, "\ra", "b", "c\r")]
    parsed = parse_chunk(data, _scanned(data, 1), LAYOUT, "t.csv")
    assert _as_rows(parsed.raw, parsed.malformed) == _reference_rows(reference)


def test_the_csv_reference_reads_what_the_contract_says() -> None:
    """The reference itself, on the cases its documented differences cover."""
    data = b'a,1,2\r\n\r\nb,1\rx,2\n"c""",",",3\n  \nd,\xff,1\ne,\x00,1\n"f"g,1,2\nh,"open\n'
    assert csv_reference(data, 10, 3) == [
        ("ok", 10, "a", "1", "2"), ("ok", 11, "b", "1\rx", "2"), ("ok", 12, 'c"', ",", "3"), ("bad", 13, "  "),
        ("bad", 14, "d,\ufffd,1"), ("bad", 15, "e,\x00,1"), ("ok", 16, "fg", "1", "2"), ("bad", 17, 'h,"open\n')]
    assert csv_reference(b"a,1,2\r", 1, 3) == [("ok", 1, "a", "1", "2")]
    assert csv_reference(b"\r", 1, 3) == []


def test_an_unterminated_quote_in_the_last_field_is_malformed() -> None:
    """pyarrow closes a quote left open at the end of its input: with the right field count it would
    read the record as valid (the scan's ends_in_open_quote keeps such a chunk off the fast path)."""
    data = b'a,b,c\nz,1,"open\n'
    reference = csv_reference(data, 1, LAYOUT.width)
    assert reference == [("ok", 1, "a", "b", "c"), ("bad", 2, 'z,1,"open\n')]
    parsed = parse_chunk(data, _scanned(data, 1), LAYOUT, "t.csv")
    assert _as_rows(parsed.raw, parsed.malformed) == _reference_rows(reference)


def test_one_ragged_record_in_a_large_chunk_keeps_the_rest_on_the_vectorised_path() -> None:
    rows = [f"ORD-{i},{i % 7 + 1},{i}.25".encode() for i in range(20_000)]
    rows[777] = b"ORD-777,1,2,extra"
    rows[15_000] = b"ORD-15000,\xff,3"
    data = b"\n".join(rows) + b"\n"
    chunk = Chunk(index=0, start=0, end=len(data), first_row=1, records=len(rows))
    parsed = parse_chunk(data, chunk, LAYOUT, "t.csv")
    assert parsed.malformed.column("source_row").to_pylist() == [778, 15_001]
    assert parsed.malformed.column("raw_text").to_pylist()[0] == "ORD-777,1,2,extra"
    assert parsed.raw.num_rows == 19_998
    source_rows = parsed.raw.column("source_row").to_numpy()
    assert np.array_equal(source_rows, np.delete(np.arange(1, 20_001), [777, 15_000]))
    assert parsed.raw.column("order_id")[776].as_py() == "ORD-776"
    assert parsed.raw.column("order_id")[777].as_py() == "ORD-778"


def test_unterminated_quote_at_the_end_is_malformed() -> None:
    data = b'a,1,2\nb,"open,3\nstill open\n'
    spans = record_spans(data)
    chunk = Chunk(index=0, start=0, end=len(data), first_row=1, records=len(spans))
    parsed = parse_chunk(data, chunk, LAYOUT, "t.csv")
    assert parsed.raw.column("order_id").to_pylist() == ["a"]
    assert parsed.malformed.column("source_row").to_pylist() == [2]


def _whole_chunk(data: bytes) -> Chunk:
    return Chunk(index=0, start=0, end=len(data), first_row=1, records=len(record_spans(data)))


def test_bare_cr_and_bad_records_agree_at_the_first_parse(caplog) -> None:
    data = b'a,1,2\nb,1\rstill b,2\nc,"q\r\nx",3\nd,\x00,1\ne,\xff,1\nf,1,2,3\ng,1,2\r\n'
    with _watching_the_python_paths() as calls:
        parsed = reader.parse_chunk(data, _whole_chunk(data), LAYOUT, "t.csv")
    assert calls["triaged_parses"] == 1 and not caplog.records
    assert parsed.raw.column("order_id").to_pylist() == ["a", "b", "c", "g"]
    assert parsed.raw.column("quantity").to_pylist() == ["1", "1\rstill b", "q\r\nx", "1"]
    assert parsed.malformed.column("source_row").to_pylist() == [4, 5, 6]


def test_a_chunk_of_only_malformed_records_is_triaged() -> None:
    data = b"".join(f"A{i};1;2\n".encode() for i in range(1000))  # a ';' export: one field per record
    with _watching_the_python_paths() as calls:
        parsed = reader.parse_chunk(data, _whole_chunk(data), LAYOUT, "t.csv")
    assert calls["triaged_parses"] == 1
    assert parsed.raw.num_rows == 0 and parsed.malformed.num_rows == 1000
    assert parsed.malformed.column("source_row").to_pylist() == list(range(1, 1001))


# --- pyarrow (or the Python split) made to read records otherwise than the scan -------------------

def _disagreeing_on(monkeypatch, marker: bytes) -> list[int]:
    """pyarrow 'disagrees' with the scan on any bytes holding `marker`; returns the list its
    parses' record counts go to."""
    parses: list[int] = []
    parse_fast = reader._parse_fast

    def disagreeing(data: bytes, records: int, *args, **kwargs):
        parses.append(records)
        return None if marker in data else parse_fast(data, records, *args, **kwargs)

    monkeypatch.setattr(reader, "_parse_fast", disagreeing)
    return parses


def _numbered(count: int) -> list[bytes]:
    return [f"ORD-{i},{i % 7 + 1},{i}.25".encode() for i in range(count)]


def test_records_pyarrow_reads_otherwise_are_quarantined_and_the_rest_kept(monkeypatch, caplog) -> None:
    """The records in question, and only they, become malformed_row with their raw text; each costs
    a few parses of halves (about two parses of the chunk), not a parse in Python."""
    rows = _numbered(20_000)
    rows[1_234] += b',"odd"'  # ragged: sends the chunk to triage anyway
    data = b"\n".join(rows) + b"\n"
    parses = _disagreeing_on(monkeypatch, b"ORD-777,")
    with caplog.at_level(logging.WARNING, logger="pipeline"):
        parsed = reader.parse_chunk(data, _whole_chunk(data), LAYOUT, "t.csv")
    assert parsed.records_read == 20_000
    assert parsed.malformed.column("source_row").to_pylist() == [778, 1_235]
    assert parsed.malformed.column("reason").to_pylist() == ["malformed_row"] * 2
    assert parsed.malformed.column("raw_text").to_pylist()[0] == "ORD-777,1,777.25"
    kept = [i for i in range(20_000) if i not in (777, 1_234)]
    assert parsed.raw.column("source_row").to_pylist() == [i + 1 for i in kept]
    assert parsed.raw.column("order_id").to_pylist() == [f"ORD-{i}" for i in kept]
    assert parsed.raw.column("unit_price").to_pylist() == [f"{i}.25" for i in kept]
    assert [r.getMessage() for r in caplog.records] == [
        "t.csv: records 778 read otherwise by the parser than by the scan: quarantined as malformed_row"]
    # The fast path, the triaged parse, then halves: two of 10,000 records, two of 5,000... (two parses more)
    assert len(parses) <= 2 + 2 * 15 and sum(parses) <= 4 * 20_000, parses


def test_a_chunk_pyarrow_reads_wholly_otherwise_is_quarantined_whole(monkeypatch) -> None:
    data = b"\n".join(_numbered(40)) + b"\n"
    _disagreeing_on(monkeypatch, b"ORD-")
    parsed = reader.parse_chunk(data, _whole_chunk(data), LAYOUT, "t.csv")
    assert parsed.raw.num_rows == 0 and parsed.records_read == 40
    assert parsed.malformed.column("source_row").to_pylist() == list(range(1, 41))
    assert parsed.malformed.column("raw_text").to_pylist() == [row.decode() for row in _numbered(40)]


def test_a_bare_cr_record_the_split_reads_otherwise_is_quarantined(monkeypatch, caplog) -> None:
    split_record = reader._split_record
    monkeypatch.setattr(reader, "_split_record", lambda record, width: None if b"still" in record else split_record(record, width))
    data = b'a,1,2\nb,1\rstill b,2\nc,"q\r\nx",3\nd,1,2\n'
    parsed = reader.parse_chunk(data, _whole_chunk(data), LAYOUT, "t.csv")
    assert parsed.raw.column("order_id").to_pylist() == ["a", "c", "d"]
    assert parsed.raw.column("source_row").to_pylist() == [1, 3, 4]
    assert parsed.malformed.column("raw_text").to_pylist() == ["b,1\rstill b,2"]
    assert parsed.malformed.column("source_row").to_pylist() == [2]
    assert "records 2 read otherwise" in caplog.text


def test_a_record_longer_than_pyarrows_block_is_read(monkeypatch) -> None:
    """pyarrow cannot read a record over about two blocks (32 MB by default); triage gives it a block
    as long as the longest record, so such a record is read, not quarantined (here blocks of 64 bytes)."""
    monkeypatch.setattr(reader, "BLOCK_BYTES", 64)
    long_value = "x" * 500
    data = f'a,1,2\nb,"{long_value}",2\nc,{long_value},3\nd,1\n'.encode()  # d is ragged: triage
    with _watching_the_python_paths() as calls:
        parsed = reader.parse_chunk(data, _whole_chunk(data), LAYOUT, "t.csv")
    assert calls["triaged_parses"] == 1
    assert parsed.raw.column("quantity").to_pylist() == ["1", long_value, long_value]
    assert parsed.malformed.column("source_row").to_pylist() == [4]
