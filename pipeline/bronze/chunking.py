"""Split a bronze CSV into chunks of whole records without loading it: a quote-aware byte scan.

The one home of the CSV quote rules (`_RecordScanner`): a `"` opens a quoted field only at the
start of a field; inside one, `""` is a literal quote and a lone `"` closes it; text after the
closing quote stays in the field as is. A record ends at a line feed outside quoted fields, and a
field at a comma outside them. The chunk scan, the per-record field counts of a chunk
(`record_spans`) and the field splitter of records read in Python (`split_fields`) all ask the
same scanner. The scan is vectorised with numpy over fixed-size blocks, so memory
is bounded by the block size, and it yields, per chunk, its byte range, the 1-based number of its
first record and its record count: chunk tasks can then run in parallel and still number their
records as the whole file does. Empty lines (`\n` or `\r\n`) are skipped and not counted, also
before the header: the header is the first non-empty line, and `header_end` is where its records
start. Only LF, optionally preceded by CR, ends a line: a bare CR inside a data field is data. A
header line holding a bare CR outside quotes means CR-only (classic Mac) line ends, which would
read as one header line and no records, so the file fails alone with a line saying so.
"""
from __future__ import annotations

import re
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import PurePath

import numpy as np

from pipeline.bronze.compressed import read_head
from pipeline.errors import InputFileError
from pipeline.storage.fingerprint import Fingerprint, fingerprint_of
from pipeline.storage.store import LOCAL_FILES, Store

QUOTE = 0x22
LF = 0x0A
CR = 0x0D
BOM = b"\xef\xbb\xbf"
SCAN_BLOCK_BYTES = 32 * 1024 * 1024
HEAD_SAMPLE_BYTES = 4 * 1024 * 1024
MANIFEST_VERSION = 2


@dataclass(frozen=True)
class Chunk:
    """A byte range of whole records: [start, end), records numbered first_row.. inclusive."""

    index: int
    start: int
    end: int
    first_row: int
    records: int
    # The file ends inside a quoted field (only ever its last chunk): the last record is malformed,
    # which a parser that closes the quote at the end of its input would not see.
    ends_in_open_quote: bool = False


@dataclass(frozen=True)
class Manifest:
    """Everything chunk tasks need to know about one bronze file, written once per file."""

    source_file: str
    fingerprint: Fingerprint
    header_raw: list[str]
    header_end: int
    chunks: list[Chunk] = field(default_factory=list)
    version: int = MANIFEST_VERSION

    @property
    def records(self) -> int:
        return sum(c.records for c in self.chunks)

    def to_json_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json_dict(cls, data: dict) -> Manifest:
        if data.get("version") != MANIFEST_VERSION:
            raise ValueError(f"manifest version {data.get('version')!r} is not {MANIFEST_VERSION}")
        return cls(
            source_file=data["source_file"],
            fingerprint=Fingerprint(**data["fingerprint"]),
            header_raw=list(data["header_raw"]),
            header_end=int(data["header_end"]),
            chunks=[Chunk(**c) for c in data["chunks"]],
        )


COMMA = 0x2C
_QUOTED_FIELD = re.compile(rb'"((?:[^"]|"")*)"(.*)', re.DOTALL)  # a field that starts quoted: its value, then any text after


def _inside(positions: np.ndarray, opens: np.ndarray, closes: np.ndarray) -> np.ndarray:
    """Which positions fall strictly inside one of the sorted, disjoint stretches (open, close)."""
    if not len(opens) or not len(positions):
        return np.zeros(len(positions), dtype=bool)
    span = np.searchsorted(opens, positions, side="right") - 1
    return (span >= 0) & (positions < closes[np.maximum(span, 0)])


class _RecordScanner:
    """Feeds blocks of bytes and returns absolute offsets just past each non-empty record.

    Quote semantics are those of the csv module and pyarrow: a `"` opens a quoted field only at
    the start of a field; inside one, `""` is a literal quote and a lone `"` closes it. When every
    quote of a block is well placed, simple parity gives the same answer and stays vectorised; a
    block with a stray quote (`ab"c`) is walked quote by quote (only its quotes, in Python).
    """

    def __init__(self, start_offset: int) -> None:
        self.in_quotes = False
        self.last_end = start_offset  # offset just past the previous record (or the data start)
        self.prev_byte_was_cr_at: int = -1  # absolute offset of a CR ending the previous block
        self.prev_byte = LF  # the byte before the block (data starts after the header's LF)

    def feed(self, block: bytes, block_offset: int) -> np.ndarray:
        """Absolute end offsets (just past the LF) of non-empty records completed in `block`."""
        arr = np.frombuffer(block, dtype=np.uint8)
        newlines, _, _ = self.unquoted(arr, np.flatnonzero(arr == LF))
        ends = newlines.astype(np.int64) + (block_offset + 1)
        return self._drop_empty(ends, arr, block_offset)

    def unquoted(self, arr: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The `positions` (sorted, of LF or comma bytes) outside quoted fields, and the block's
        quoted stretches [opens, closes); advances the quote state past the block."""
        quotes = np.flatnonzero(arr == QUOTE)
        if len(quotes):
            opens, closes = self._quoted_spans(arr, quotes)
        elif self.in_quotes:
            opens, closes = np.array([-1]), np.array([len(arr)])
        else:
            opens = closes = np.empty(0, dtype=np.int64)
        if len(arr):
            self.prev_byte = int(arr[-1])
        return positions[~_inside(positions, opens, closes)], opens, closes

    def _quoted_spans(self, arr: np.ndarray, quotes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """[open, close) positions of quoted stretches in this block (-1 / len(arr) when open across)."""
        spans = self._parity_spans(arr, quotes)
        if spans is not None:
            return spans
        return self._walk_quotes(arr, quotes)

    def _parity_spans(self, arr: np.ndarray, quotes: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        positions = np.concatenate(([-1], quotes)) if self.in_quotes else quotes
        opens = positions[0::2]
        closes = positions[1::2]
        real_opens = opens[opens >= 0]
        before = np.where(real_opens > 0, arr[np.maximum(real_opens - 1, 0)], self.prev_byte)
        after_index = closes + 1
        after = np.where(after_index < len(arr), arr[np.minimum(after_index, len(arr) - 1)], LF)
        opens_ok = np.isin(before, (COMMA, LF, QUOTE)).all()
        closes_ok = np.isin(after, (COMMA, LF, CR, QUOTE)).all()
        if not (opens_ok and closes_ok):
            return None
        self.in_quotes = (len(quotes) + int(self.in_quotes)) % 2 == 1
        if len(closes) < len(opens):
            closes = np.concatenate((closes, [len(arr)]))
        return opens, closes

    def _walk_quotes(self, arr: np.ndarray, quotes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        opens: list[int] = []
        closes: list[int] = []
        in_quotes = self.in_quotes
        if in_quotes:
            opens.append(-1)
        size = len(arr)
        positions = quotes.tolist()
        i = 0
        while i < len(positions):
            p = positions[i]
            if not in_quotes:
                before = int(arr[p - 1]) if p > 0 else self.prev_byte
                if before in (COMMA, LF):
                    in_quotes = True
                    opens.append(p)
                i += 1
            elif p + 1 < size and arr[p + 1] == QUOTE:
                i += 2  # an escaped quote inside a quoted field
            else:
                in_quotes = False
                closes.append(p)
                i += 1
        if in_quotes:
            closes.append(size)
        self.in_quotes = in_quotes
        return np.array(opens, dtype=np.int64), np.array(closes, dtype=np.int64)

    def _drop_empty(self, ends: np.ndarray, arr: np.ndarray, block_offset: int) -> np.ndarray:
        if len(ends) == 0:
            return ends
        starts = np.concatenate(([self.last_end], ends[:-1]))
        lengths = ends - starts
        # A lone CR before the LF: look it up inside this block, or remember it from the previous.
        cr_positions = ends - 2 - block_offset
        has_cr = np.zeros(len(ends), dtype=bool)
        in_block = cr_positions >= 0
        has_cr[in_block] = arr[cr_positions[in_block]] == CR
        has_cr[~in_block] = (ends[~in_block] - 2) == self.prev_byte_was_cr_at
        empty = (lengths == 1) | ((lengths == 2) & has_cr)
        self.last_end = int(ends[-1])
        return ends[~empty]

    def note_block_end(self, block: bytes, block_offset: int) -> None:
        self.prev_byte_was_cr_at = block_offset + len(block) - 1 if block.endswith(b"\r") else -1


EMPTY_LINES = re.compile(rb"(?:\r?\n)*")


def read_header(handle, path: PurePath) -> tuple[list[str], int, bytes]:
    """The raw header names and the offset where data starts; the header must be one line.

    Empty lines before the header are skipped (they are not records, so `header_end` just moves
    past them). A header with a bare CR fails the file here, before any record is lost to it. A
    compressed file's (`x.csv.gz`) head is decompressed first, so its header is checked the same way.
    """
    head = read_head(handle, path, HEAD_SAMPLE_BYTES + 1)  # one byte more: tells a cut header from a whole file
    start = len(BOM) if head.startswith(BOM) else 0
    start = EMPTY_LINES.match(head, start).end()
    newline = head.find(b"\n", start)
    if len(head) > HEAD_SAMPLE_BYTES and not 0 <= newline < HEAD_SAMPLE_BYTES:
        # The rest of a cut header would become record 1 and shift every source_row: refuse the file.
        raise InputFileError(f"{path}: the header row is longer than {HEAD_SAMPLE_BYTES // (1024 * 1024)} MiB "
                             "(no line end in the first bytes of the file), so it cannot be read whole")
    header_end = len(head) if newline < 0 else newline + 1
    if _has_bare_cr(head[start:header_end]):
        raise InputFileError(
            f"{path}: lines end with a bare CR (classic Mac line endings), which is not a supported line end; "
            "convert the file to LF or CRLF line ends"
        )
    line = head[start:header_end].removesuffix(b"\n").removesuffix(b"\r")
    if not line:
        raise InputFileError(f"{path}: no header row (the file is empty or holds only empty lines)")
    if not line.strip():
        raise InputFileError(f"{path}: no header row (its first non-empty line holds only white space)")
    if b'"' in line:
        import csv
        import io

        names = next(csv.reader(io.StringIO(_decode_header(line, path))))
    else:
        names = _decode_header(line, path).split(",")
    return names, header_end, head


def _has_bare_cr(line: bytes) -> bool:
    """Whether `line` (the header with its LF, if any) holds a CR not followed by LF, outside quotes.

    In an LF or CRLF file the only CR a header can hold outside quotes is the one before its LF;
    any other means CR line ends (or a header no line end convention makes valid).
    """
    arr = np.frombuffer(line, dtype=np.uint8)
    crs = np.flatnonzero(arr == CR)
    if not len(crs):
        return False
    following = np.append(arr, np.uint8(0))[crs + 1]
    bare = crs[following != LF]
    if not len(bare):
        return False
    outside, _, _ = _RecordScanner(start_offset=0).unquoted(arr, bare)
    return bool(len(outside))


def _decode_header(line: bytes, path: PurePath) -> str:
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputFileError(f"{path}: header is not UTF-8 ({err.reason} at byte {err.start})") from None


def _target_chunk_bytes(head: bytes, header_end: int, file_size: int, chunk_rows: int) -> int:
    """Bytes per chunk for chunks of about `chunk_rows` records and of equal size within the file.

    Records per byte are estimated from the file's head; the file is then cut into the nearest
    whole number of chunks, so there is no tiny last chunk.
    """
    sample = head[header_end:]
    lines = max(sample.count(b"\n"), 1)
    bytes_per_record = max(len(sample) / lines, 1.0)
    data_bytes = max(file_size - header_end, 1)
    chunks = max(1, round(data_bytes / bytes_per_record / chunk_rows))
    return max(data_bytes // chunks + 1, 1)


def scan_file(path: PurePath, source_file: str, chunk_rows: int, store: Store = LOCAL_FILES) -> Manifest:
    """Scan `path` once: fingerprint, header, and chunk boundaries of about `chunk_rows` records."""
    stat = store.stat(path)
    if stat is None:
        raise FileNotFoundError(str(path))
    crc = 0
    with store.open_input(path) as handle:
        header_raw, header_end, head = read_header(handle, path)
        target = _target_chunk_bytes(head, header_end, stat.size, chunk_rows)
        handle.seek(0)
        scanner = _RecordScanner(start_offset=header_end)
        chunks: list[Chunk] = []
        chunk_start = header_end
        chunk_records = 0
        next_row = 1
        offset = 0
        for block in iter(lambda: handle.read(SCAN_BLOCK_BYTES), b""):
            crc = zlib.crc32(block, crc)
            data = block
            data_offset = offset
            if offset < header_end:  # skip the header bytes
                data = block[header_end - offset:]
                data_offset = header_end
            ends = scanner.feed(data, data_offset) if data else np.empty(0, dtype=np.int64)
            scanner.note_block_end(data, data_offset)
            # Cut chunks at record ends that reach the target size.
            while len(ends):
                limit = chunk_start + target
                cut = int(np.searchsorted(ends, limit, side="left"))
                if cut >= len(ends):
                    chunk_records += len(ends)
                    break
                chunk_end = int(ends[cut])
                records = chunk_records + cut + 1
                chunks.append(Chunk(len(chunks), chunk_start, chunk_end, next_row, records))
                next_row += records
                chunk_start, chunk_records = chunk_end, 0
                ends = ends[cut + 1:]
            offset += len(block)
        size = offset
        # A last record without a trailing newline (and not only a CR) still counts.
        tail_start = scanner.last_end
        if size > tail_start:
            handle.seek(tail_start)
            tail = handle.read(size - tail_start)
            if tail not in (b"", b"\r"):
                chunk_records += 1
        if chunk_records or size > chunk_start:
            if chunk_records:
                chunks.append(Chunk(len(chunks), chunk_start, size, next_row, chunk_records, ends_in_open_quote=scanner.in_quotes))
    fingerprint = fingerprint_of(size, crc, stat)
    if stat.size != size:
        raise InputFileError(f"{path}: the file changed while it was being scanned")
    return Manifest(source_file=source_file, fingerprint=fingerprint, header_raw=header_raw, header_end=header_end, chunks=chunks)


@dataclass(frozen=True)
class RecordSpans:
    """Where each non-empty record of a chunk's bytes is, and how many fields the quote rules give it."""

    starts: np.ndarray  # offset of the record's first byte
    stops: np.ndarray  # offset just past its last byte, line end (LF or CRLF) excluded
    line_ends: np.ndarray  # offset just past its line end (len(data) for a last record without one)
    fields: np.ndarray  # 1 + the commas outside quoted fields
    open_quote_at_end: bool  # the last record ends inside a quoted field (an unterminated quote)

    def __len__(self) -> int:
        return len(self.starts)

    def record_of(self, offsets: np.ndarray) -> np.ndarray:
        """Index of the record holding each byte offset (offsets inside records only)."""
        return np.searchsorted(self.starts, offsets, side="right") - 1


def record_spans(data: bytes) -> RecordSpans:
    """Every non-empty record of `data` (a chunk's bytes), found with the scan's quote rules, vectorised."""
    arr = np.frombuffer(data, dtype=np.uint8)
    scanner = _RecordScanner(start_offset=0)
    newlines, opens, closes = scanner.unquoted(arr, np.flatnonzero(arr == LF))
    tail_start = int(newlines[-1]) + 1 if len(newlines) else 0
    if data[tail_start:] not in (b"", b"\r"):
        newlines = np.append(newlines, len(data))  # a last record without its line feed
    newlines = newlines.astype(np.int64)
    starts = np.concatenate(([0], newlines[:-1] + 1)).astype(np.int64)[: len(newlines)]
    stops = newlines.copy()
    if len(arr):  # a CR just before the line end belongs to the line end
        stops[(stops > starts) & (arr[np.maximum(stops - 1, 0)] == CR)] -= 1
    commas = np.flatnonzero(arr == COMMA)
    commas = commas[~_inside(commas, opens, closes)]
    fields = 1 + np.bincount(np.searchsorted(newlines, commas, side="left"), minlength=len(newlines))[: len(newlines)]
    kept = stops > starts
    line_ends = np.minimum(newlines + 1, len(data))
    return RecordSpans(starts[kept], stops[kept], line_ends[kept], fields[kept], open_quote_at_end=scanner.in_quotes)


def split_fields(record: bytes) -> list[bytes] | None:
    """The field values of one record (no line end), by the scanner's quote rules; None when a
    quote is left open. Only for the rare records read in Python (a bare CR inside): chunks are
    split by pyarrow, whose output is checked against the same scanner."""
    arr = np.frombuffer(record, dtype=np.uint8)
    scanner = _RecordScanner(start_offset=0)
    commas, _, _ = scanner.unquoted(arr, np.flatnonzero(arr == COMMA))
    if scanner.in_quotes:
        return None
    starts, ends = [0, *(commas + 1).tolist()], [*commas.tolist(), len(record)]
    fields = []
    for start, end in zip(starts, ends):
        value = record[start:end]
        if value.startswith(b'"'):
            quoted = _QUOTED_FIELD.fullmatch(value)
            if quoted is None:
                return None
            value = quoted.group(1).replace(b'""', b'"') + quoted.group(2)
        fields.append(value)
    return fields
