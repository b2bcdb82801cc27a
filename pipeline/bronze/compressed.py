"""Compressed bronze input (`*.csv.gz`, `*.csv.zst`), decompressed by pyarrow's own codecs in blocks.

Why a staged copy: a compressed stream can only be read from its start, so chunks of a
compressed file cannot each seek to their byte range, and decompressing from the start for every
chunk would cost chunks x file. The scan therefore decompresses the file once, block by block,
into a plain copy under `<root>/staging/` (pipeline.bronze.silver decides when); the scan and every
chunk then read byte ranges of that copy exactly as they read a plain CSV, in parallel, and the
copy is removed once the file's silver is complete. Memory stays bounded by STAGE_BLOCK_BYTES
plus the codec's own buffer (about 1 MiB), whatever the file's size or compression ratio.

This module knows codecs and bytes only (no layout, no manifests); errors of the compressed
stream become one line naming the file (CompressedInputError), never a traceback.
"""
from __future__ import annotations

import contextlib
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePath
from typing import BinaryIO

import pyarrow as pa

from pipeline.errors import ChangedInputError, CompressedInputError
from pipeline.storage.atomic import atomic_path
from pipeline.storage.store import LOCAL_FILES, Store

COMPRESSIONS = {".gz": "gzip", ".zst": "zstd"}  # file name suffix -> pyarrow codec
STAGE_BLOCK_BYTES = 4 * 1024 * 1024  # decompressed bytes held at a time while staging or skipping


def compression_of(path: str | Path) -> str | None:
    """The pyarrow codec a bronze file is read with, from its name (`x.csv.gz` -> "gzip"), or None
    for a plain file (a staged copy ends in .csv, so it reads as plain)."""
    name = str(path).lower()  # `x.CSV.GZ` as `x.csv.gz`
    for suffix, codec in COMPRESSIONS.items():
        if name.endswith(suffix):
            return codec
    return None


class _Tap:
    """A raw file handle seen through pyarrow: counts and CRCs the compressed bytes it hands on, so
    staging checks it decompressed exactly the bytes the manifest's fingerprint describes. Closing
    it leaves the handle open: its owner closes it."""

    closed = False

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.size = 0
        self.crc32 = 0

    def read(self, size: int = -1) -> bytes:
        block = self.handle.read(size)
        self.size += len(block)
        self.crc32 = zlib.crc32(block, self.crc32)
        return block

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True


@contextlib.contextmanager
def _decompressed(tap: _Tap, path: Path, codec: str) -> Iterator[pa.NativeFile]:
    """A decompressing stream over `tap`; a corrupt or truncated stream, met anywhere in the block,
    fails as one line naming `path`. OSErrors with an errno (a disk, a permission) stay as they are."""
    try:
        with pa.CompressedInputStream(pa.PythonFile(tap, mode="r"), codec) as stream:
            yield stream
    except pa.ArrowInvalid as err:
        raise _corrupt(path, codec, err) from None
    except OSError as err:
        if err.errno is not None:
            raise
        raise _corrupt(path, codec, err) from None


def _corrupt(path: Path, codec: str, err: Exception) -> CompressedInputError:
    reason = " ".join(str(err).split()) or type(err).__name__
    if "Truncated" in reason:
        reason = "truncated: the file ends inside the compressed stream"
    return CompressedInputError(f"{path}: not a valid {codec} stream ({reason}); fix or replace the file, then run again")


def read_head(handle: BinaryIO, path: Path, size: int) -> bytes:
    """The first `size` bytes of the file's content from `handle` (open at its start): decompressed
    when `path` names a compressed file, so its header is checked like a plain file's."""
    codec = compression_of(path)
    if codec is None:
        return handle.read(size)
    with _decompressed(_Tap(handle), path, codec) as stream:
        return stream.read(size)


def stage_copy(source: PurePath, staged: Path, size: int, crc32: int, store: Store = LOCAL_FILES) -> None:
    """Decompress `source` into `staged` (atomically: each stager writes its own temporary file and
    renames it, so concurrent stagers never break each other), checking on the way that the
    compressed bytes read are the `size` bytes of CRC-32 `crc32` the caller fingerprinted."""
    codec = compression_of(source)
    if codec is None:
        raise ValueError(f"{source} is not a compressed file")
    with store.open_input(source) as handle, atomic_path(staged) as tmp:
        tap = _Tap(handle)
        with open(tmp, "wb") as out, _decompressed(tap, source, codec) as stream:
            for block in iter(lambda: stream.read(STAGE_BLOCK_BYTES), b""):
                out.write(block)
        while tap.read(STAGE_BLOCK_BYTES):  # bytes the codec left unread still belong to the fingerprint
            pass
        if (tap.size, tap.crc32) != (size, crc32):
            raise ChangedInputError(f"{source}: the file changed while it was being decompressed; run again")


def read_range(path: PurePath, start: int, end: int, store: Store = LOCAL_FILES) -> bytes:
    """Bytes [start, end) of the decompressed content of `path`, streamed from its start (skipped
    bytes are held STAGE_BLOCK_BYTES at a time). For callers without a staged copy; the pipeline's
    chunks read the staged copy instead, since this costs a decompression up to `end` per call."""
    codec = compression_of(path)
    if codec is None:
        raise ValueError(f"{path} is not a compressed file")
    with store.open_input(path) as handle, _decompressed(_Tap(handle), path, codec) as stream:
        skip = start
        while skip > 0:
            block = stream.read(min(skip, STAGE_BLOCK_BYTES))
            if not block:
                break
            skip -= len(block)
        return stream.read(end - start) if end > start else b""
