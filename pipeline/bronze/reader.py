"""Read one chunk (a byte range of whole records) into string columns plus its malformed records.

Fast path: pyarrow's CSV parser on the chunk's bytes. It is trusted only when it returns exactly
the records the scan counted and finds no ragged record. Otherwise (a ragged record, invalid
UTF-8, a NUL byte, a bare CR) the chunk is triaged, still vectorised: the scan's quote rules
locate every record and count its fields, the malformed records are set aside with their raw
text, the few records with a bare CR inside are split in Python, and pyarrow parses all the
others in one go, so one bad line never costs a chunk more than a few percent.

There is no third parser. Should pyarrow (or the split) still read a record otherwise than the
scan, that record is quarantined as malformed_row with its raw text and a warning: silver only
holds records both readers agree on, and every record is still accounted for. pyarrow's
disagreement is localised by parsing halves again (`_parse_agreeing`), about two parses of the
records for one such record.
"""
from __future__ import annotations

import codecs
import io
import logging
from dataclasses import dataclass
from pathlib import PurePath

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from pipeline.bronze.chunking import CR, Chunk, RecordSpans, record_spans, split_fields
from pipeline.bronze.header import HeaderLayout
from pipeline.contract import INPUT_COLUMNS, MALFORMED_ROW, QUARANTINE_SCHEMA
from pipeline.storage.store import LOCAL_FILES, Store

log = logging.getLogger("pipeline")
# pyarrow's block: it reads records up to about twice as long, triage passes a larger one when needed.
BLOCK_BYTES = 1 << 24


@dataclass(frozen=True)
class RawChunk:
    raw: pa.Table  # INPUT_COLUMNS as strings (null for a missing optional column) + source_row
    malformed: pa.Table  # QUARANTINE_SCHEMA rows with reason malformed_row
    records_read: int
    used_slow_path: bool


def read_chunk_bytes(path: PurePath, chunk: Chunk, store: Store = LOCAL_FILES) -> bytes:
    """One chunk's bytes: a byte-range read (a ranged GET on object storage)."""
    return store.read_range(path, chunk.start, chunk.end - chunk.start)


def parse_chunk(data: bytes, chunk: Chunk, layout: HeaderLayout, source_file: str) -> RawChunk:
    """Parse a chunk's bytes; every record ends up in `raw` or in `malformed`."""
    # Triage decides where the fast parser would get it wrong: a NUL byte marks a corrupt record
    # (kept as text by pyarrow), a quote still open at the end of the file a malformed last record
    # (closed by pyarrow), and a bare CR is data (a line end to pyarrow).
    trusted = (b"\x00" not in data and not chunk.ends_in_open_quote
               and (b"\r" not in data or data.count(b"\r") == data.count(b"\r\n")))
    fast = _parse_fast(data, chunk.records, layout) if trusted else None
    if fast is not None:
        raw = _assemble(fast, chunk.records, chunk.first_row)
        return RawChunk(raw=raw, malformed=QUARANTINE_SCHEMA.empty_table(), records_read=chunk.records, used_slow_path=False)
    return _parse_triaged(data, chunk, layout, source_file)


def _parse_fast(data: bytes, records: int, layout: HeaderLayout, block_size: int = BLOCK_BYTES) -> dict[str, pa.ChunkedArray] | None:
    """pyarrow's parse of `data` as exactly `records` well-formed records, else None."""
    ragged: list[object] = []

    def note_ragged(row: object) -> str:
        ragged.append(row)
        return "skip"

    field_names = [f"f{i}" for i in range(layout.width)]
    wanted = sorted(layout.positions.values())
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(column_names=field_names, use_threads=False, block_size=block_size),
            parse_options=pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=True, invalid_row_handler=note_ragged),
            convert_options=pacsv.ConvertOptions(
                include_columns=[field_names[i] for i in wanted],
                column_types={field_names[i]: pa.string() for i in wanted},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return None
    if ragged or table.num_rows != records:
        return None
    return {name: table.column(field_names[pos]) for name, pos in layout.positions.items()}


def _assemble(columns: dict[str, pa.ChunkedArray | pa.Array], rows: int, first_row: int, source_rows: pa.Array | None = None) -> pa.Table:
    arrays = [columns[c] if c in columns else pa.nulls(rows, pa.string()) for c in INPUT_COLUMNS]
    if source_rows is None:
        source_rows = pa.array(np.arange(first_row, first_row + rows, dtype=np.int64))
    return pa.Table.from_arrays([*arrays, source_rows], names=[*INPUT_COLUMNS, "source_row"])


def _parse_triaged(data: bytes, chunk: Chunk, layout: HeaderLayout, source_file: str) -> RawChunk:
    """Malformed records aside, bare-CR records split in Python, every other record parsed by pyarrow;
    a record either parser reads otherwise than the scan is quarantined with the malformed ones."""
    spans = record_spans(data)
    if len(spans) != chunk.records:
        raise ValueError(f"{source_file}: chunk {chunk.index} has {len(spans)} records, the scan counted {chunk.records}")
    arr = np.frombuffer(data, dtype=np.uint8)
    bad = _malformed(data, arr, spans, layout.width)
    by_python = ~bad & _has_bare_cr(arr, spans)
    arrow_rows, python_rows = np.flatnonzero(~bad & ~by_python), np.flatnonzero(by_python)
    pieces, arrow_refused = _parse_agreeing(data, spans, arrow_rows, layout, _block_size(spans))
    split = [_split_record(data[start:stop], layout.width) for start, stop in _spans_of(spans, python_rows)]
    split_ok = np.array([fields is not None for fields in split], dtype=bool)
    refused = np.zeros(len(spans), dtype=bool)
    refused[arrow_refused] = refused[python_rows[~split_ok]] = True
    if refused.any():
        log.warning("%s: records %s read otherwise by the parser than by the scan: quarantined as %s",
                    source_file, _row_list(np.flatnonzero(refused) + chunk.first_row), MALFORMED_ROW)
        bad |= refused

    first = chunk.first_row
    columns = {name: pa.chunked_array([c for piece in pieces for c in piece[name].chunks], pa.string()) for name in layout.positions}
    kept = arrow_rows[~refused[arrow_rows]]
    raw = _assemble(columns, len(kept), first, pa.array(kept + first, pa.int64()))
    if split_ok.any():
        values = [fields for fields in split if fields is not None]
        extra = {name: pa.array([fields[pos] for fields in values], pa.string()) for name, pos in layout.positions.items()}
        raw = pa.concat_tables([raw, _assemble(extra, len(values), first, pa.array(python_rows[split_ok] + first, pa.int64()))])
        raw = raw.take(pc.sort_indices(raw.column("source_row")))
    bad_rows = np.flatnonzero(bad)
    texts = [data[start:stop].decode("utf-8", errors="replace") for start, stop in _spans_of(spans, bad_rows)]
    malformed = malformed_rows(source_file, (bad_rows + first).tolist(), texts)
    return RawChunk(raw=raw, malformed=malformed, records_read=len(spans), used_slow_path=True)


def _malformed(data: bytes, arr: np.ndarray, spans: RecordSpans, width: int) -> np.ndarray:
    """The malformed records: wrong field count, a NUL byte, invalid UTF-8, a quote open at the end."""
    bad = spans.fields != width
    bad[spans.record_of(np.flatnonzero(arr == 0))] = True
    bad[spans.record_of(_invalid_utf8_offsets(data))] = True
    if spans.open_quote_at_end and len(spans):
        bad[-1] = True
    return bad


def _block_size(spans: RecordSpans) -> int:
    """pyarrow's block for these records: at least the longest (pyarrow fails on a record over about two blocks)."""
    return max(BLOCK_BYTES, int((spans.line_ends - spans.starts).max(initial=0)) + 1)


def _parse_agreeing(data: bytes, spans: RecordSpans, rows: np.ndarray, layout: HeaderLayout,
                    block_size: int) -> tuple[list[dict[str, pa.ChunkedArray]], np.ndarray]:
    """pyarrow's parse of the records `rows` (ascending indices), in pieces in order, and the
    records it reads otherwise than the scan (a ragged record, another count, an error).

    A parse that disagrees is tried again on each half, down to the single records at fault, so
    every record kept was read by pyarrow exactly as the scan delimits it.
    """
    if not len(rows):
        return [], rows
    columns = _parse_fast(_records_bytes(data, spans, rows), len(rows), layout, block_size)
    if columns is not None:
        return [columns], rows[:0]
    if len(rows) == 1:
        return [], rows
    middle = len(rows) // 2
    first, first_refused = _parse_agreeing(data, spans, rows[:middle], layout, block_size)
    second, second_refused = _parse_agreeing(data, spans, rows[middle:], layout, block_size)
    return first + second, np.concatenate([first_refused, second_refused])


def _row_list(rows: np.ndarray, shown: int = 10) -> str:
    listed = ", ".join(str(row) for row in rows[:shown].tolist())
    return listed + (f" and {len(rows) - shown} more" if len(rows) > shown else "")


def _invalid_utf8_offsets(data: bytes) -> np.ndarray:
    """Offsets of the invalid UTF-8 sequences in `data`: C-speed decoding, resumed after each error."""
    offsets: list[int] = []
    view = memoryview(data)
    position = 0
    while position < len(data):
        try:
            codecs.utf_8_decode(view[position:], "strict", True)
            break
        except UnicodeDecodeError as error:
            offsets.append(position + error.start)
            position += error.end
    return np.array(offsets, dtype=np.int64)


def _has_bare_cr(arr: np.ndarray, spans: RecordSpans) -> np.ndarray:
    """Records with a CR that does not end their line: data to us, a line end to pyarrow when it is
    unquoted (quoted ones go to Python too: rare, and the answer is the same)."""
    flags = np.zeros(len(spans), dtype=bool)
    crs = np.flatnonzero(arr == CR)
    if len(crs) and len(spans):
        record = spans.record_of(crs)
        inside = (record >= 0) & (crs < spans.stops[np.maximum(record, 0)])
        flags[record[inside]] = True
    return flags


def _spans_of(spans: RecordSpans, rows: np.ndarray) -> list[tuple[int, int]]:
    return list(zip(spans.starts[rows].tolist(), spans.stops[rows].tolist()))


def _records_bytes(data: bytes, spans: RecordSpans, rows: np.ndarray) -> bytes:
    """The records `rows` (ascending indices, at least one), each with its own line end, in order:
    one slice per run of consecutive records."""
    breaks = np.flatnonzero(np.diff(rows) != 1)
    firsts, lasts = rows[np.concatenate(([0], breaks + 1))], rows[np.concatenate((breaks, [len(rows) - 1]))]
    return b"".join(data[start:end] for start, end in zip(spans.starts[firsts].tolist(), spans.line_ends[lasts].tolist()))


def _split_record(record: bytes, width: int) -> list[str] | None:
    """The fields of one record (chunking.split_fields: the scan's own quote rules), or None when it
    is not valid UTF-8, holds a NUL byte, leaves a quote open or has the wrong width (which triage
    has ruled out: None means the split and the scan disagree)."""
    if b"\x00" in record:
        return None
    fields = split_fields(record)
    if fields is None or len(fields) != width:
        return None
    try:
        return [field.decode("utf-8") for field in fields]
    except UnicodeDecodeError:
        return None


def malformed_rows(source_file: str, rows: list[int], texts: list[str]) -> pa.Table:
    count = len(rows)
    arrays = {
        "source_file": pa.repeat(pa.scalar(source_file, pa.string()), count),
        "source_row": pa.array(rows, pa.int64()),
        "reason": pa.repeat(pa.scalar(MALFORMED_ROW, pa.string()), count),
        "raw_text": pa.array(texts, pa.string()),
    }
    return pa.Table.from_arrays(
        [arrays.get(f.name, pa.nulls(count, f.type)) for f in QUARANTINE_SCHEMA], schema=QUARANTINE_SCHEMA
    )
