"""A chunk with a few bad records is triaged, vectorised; it must read exactly as the
record-by-record Python split (the reference) reads it, record for record."""
from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.chunking import Chunk, record_spans
from pipeline.header import layout_header
from pipeline.reader import _parse_record_by_record, parse_chunk

HEADER = ["order_id", "quantity", "unit_price"]
LAYOUT = layout_header(HEADER, "t.csv")
EXAMPLES = int(os.environ.get("READER_TRIAGE_EXAMPLES", "300"))

_PLAIN = st.text(alphabet="ab1 .é€", max_size=4)
_GOOD = st.lists(_PLAIN, min_size=3, max_size=3).map(lambda f: ",".join(f).encode())
_QUOTED = st.tuples(_PLAIN, _PLAIN, st.sampled_from(['"x,y"', '"line\nbreak"', '"say ""hi"""', '"cr\rin"'])).map(
    lambda f: ",".join(f).encode())
_BAD = st.sampled_from([
    b"a,b",  # too few fields
    b"a,b,c,d",  # too many
    b"a,\xff\xfe,c",  # invalid UTF-8
    b"a,b\x00,c",  # NUL
    b"a,b\rc,d",  # a bare CR inside an unquoted field: data, and still 3 fields
    b"a,\xed\xa0\x80,c",  # an encoded surrogate: invalid UTF-8
    b'a,b"c,d',  # a stray quote is a literal: 3 fields
    b",,",  # three empty fields
])
_RECORD = st.one_of(_GOOD, _QUOTED, _BAD)


def _chunk_bytes(records: list[bytes], blank_lines: list[int], crlf: bool, last_newline: bool) -> bytes:
    end = b"\r\n" if crlf else b"\n"
    lines = []
    for i, record in enumerate(records):
        lines.extend([b""] * (blank_lines[i % len(blank_lines)] if blank_lines else 0))
        lines.append(record)
    text = end.join(lines)
    return text + end if last_newline else text


def _as_rows(raw: pa.Table, malformed: pa.Table) -> list[tuple]:
    good = [(r["source_row"], "ok", r["order_id"], r["quantity"], r["unit_price"]) for r in raw.to_pylist()]
    bad = [(r["source_row"], "bad", r["raw_text"]) for r in malformed.to_pylist()]
    return sorted(good + bad)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=st.lists(_RECORD, min_size=1, max_size=30), blank_lines=st.lists(st.integers(0, 2), max_size=3),
       crlf=st.booleans(), last_newline=st.booleans(), first_row=st.integers(1, 1000))
def test_triaged_parse_equals_the_record_by_record_split(records, blank_lines, crlf, last_newline, first_row) -> None:
    data = _chunk_bytes(records, blank_lines, crlf, last_newline)
    spans = record_spans(data)
    chunk = Chunk(index=0, start=0, end=len(data), first_row=first_row, records=len(spans))
    parsed = parse_chunk(data, chunk, LAYOUT, "t.csv")
    reference = _parse_record_by_record(data, spans, chunk, LAYOUT, "t.csv")
    assert parsed.records_read == reference.records_read == len(records)
    assert _as_rows(parsed.raw, parsed.malformed) == _as_rows(reference.raw, reference.malformed)
    assert parsed.raw.column("source_row").to_pylist() == sorted(parsed.raw.column("source_row").to_pylist())


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


def test_bare_cr_and_bad_records_never_need_the_last_resort(monkeypatch) -> None:
    from pipeline import reader

    def refuse(*_args, **_kwargs):
        raise AssertionError("fell back to splitting every record in Python")

    monkeypatch.setattr(reader, "_parse_record_by_record", refuse)
    data = b'a,1,2\nb,1\rstill b,2\nc,"q\r\nx",3\nd,\x00,1\ne,\xff,1\nf,1,2,3\ng,1,2\r\n'
    spans = record_spans(data)
    chunk = Chunk(index=0, start=0, end=len(data), first_row=1, records=len(spans))
    parsed = reader.parse_chunk(data, chunk, LAYOUT, "t.csv")
    assert parsed.raw.column("order_id").to_pylist() == ["a", "b", "c", "g"]
    assert parsed.raw.column("quantity").to_pylist() == ["1", "1\rstill b", "q\r\nx", "1"]
    assert parsed.malformed.column("source_row").to_pylist() == [4, 5, 6]


def test_a_chunk_of_only_malformed_records_is_triaged(monkeypatch) -> None:
    from pipeline import reader

    monkeypatch.setattr(reader, "_parse_record_by_record", lambda *_a, **_k: (_ for _ in ()).throw(AssertionError("last resort")))
    data = b"".join(f"A{i};1;2\n".encode() for i in range(1000))  # a ';' export: one field per record
    spans = record_spans(data)
    parsed = reader.parse_chunk(data, Chunk(index=0, start=0, end=len(data), first_row=1, records=len(spans)), LAYOUT, "t.csv")
    assert parsed.raw.num_rows == 0 and parsed.malformed.num_rows == 1000
    assert parsed.malformed.column("source_row").to_pylist() == list(range(1, 1001))
