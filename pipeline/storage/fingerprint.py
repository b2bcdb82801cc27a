"""What identifies a file's content, and the cheap check that it did not change.

Bronze files are fingerprinted when first scanned (pipeline.bronze.chunking, which computes the
same CRC while it scans), and silver and gold files carry the CRC-32 recorded when they were
written (pipeline.storage.parquet_io.file_digest).
"""
from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from pathlib import Path

READ_BLOCK_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class Fingerprint:
    """What identifies a bronze file's content: size, and a CRC-32 of all of its bytes.

    CRC-32 runs at about 6.6 GB/s here, five times BLAKE2b: change detection needs no
    cryptographic strength, and it is computed on every byte of every input.
    """

    size: int
    crc32: int
    # A shortcut only: the same size, mtime, ctime and inode mean unchanged without rehashing. mtime
    # alone is not enough (`cp -p`, `touch -d`, rsync keep or restore it); ctime is set by the kernel
    # on every write or restore, and no tool can set it back.
    mtime_ns: int = 0
    ctime_ns: int = 0
    inode: int = 0

    def same_content(self, other: Fingerprint) -> bool:
        return self.size == other.size and self.crc32 == other.crc32

    def same_stat(self, stat: os.stat_result) -> bool:
        """Whether `stat` is the one this fingerprint was taken with (an older manifest, which
        recorded no ctime or inode, never matches: its file is hashed again)."""
        return (stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino) == (self.size, self.mtime_ns, self.ctime_ns, self.inode)


def fingerprint_of(size: int, crc32: int, stat: os.stat_result) -> Fingerprint:
    return Fingerprint(size=size, crc32=crc32, mtime_ns=stat.st_mtime_ns, ctime_ns=stat.st_ctime_ns, inode=stat.st_ino)


def fingerprint_file(path: Path) -> Fingerprint:
    """Size and content hash of a file, read in blocks."""
    crc = 0
    size = 0
    with open(path, "rb") as handle:
        stat = os.fstat(handle.fileno())
        for block in iter(lambda: handle.read(READ_BLOCK_BYTES), b""):
            crc = zlib.crc32(block, crc)
            size += len(block)
    return fingerprint_of(size, crc, stat)


def unchanged_since(path: Path, recorded: Fingerprint) -> bool:
    """True when `path` still has the recorded content: cheap when its stat is the recorded one,
    else every byte is hashed again (an edit that kept size and mtime is caught here)."""
    stat = path.stat()
    if stat.st_size != recorded.size:
        return False
    if recorded.same_stat(stat):
        return True
    return fingerprint_file(path).same_content(recorded)
