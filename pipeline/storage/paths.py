"""What names a file of a data root on object storage, and what the cheap unchanged-check reads
of any file (pipeline.storage.store's backends both return it)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePath, PurePosixPath

OBJECT_SCHEME = "s3://"


class ObjectPath(PurePosixPath):
    """`bucket/key` of an object; printed as `s3://bucket/key` in every message."""

    def __str__(self) -> str:
        return OBJECT_SCHEME + self.key

    def as_posix(self) -> str:
        return self.key

    @property
    def key(self) -> str:
        """`bucket/key`, as pyarrow's S3 file system names it."""
        return PurePosixPath.__str__(self)

    @property
    def bucket(self) -> str:
        return self.parts[0]

    @property
    def object_key(self) -> str:
        """The key inside the bucket."""
        return "/".join(self.parts[1:])

    def __fspath__(self) -> str:
        raise TypeError(f"{self} is an object, not a local file")


@dataclass(frozen=True)
class FileStat:
    """What the cheap unchanged-check compares: size, and what changes on every write of the file
    (local: mtime, ctime and inode; an object: its ETag, which a new PUT of other bytes changes)."""

    path: PurePath
    size: int
    mtime_ns: int
    ctime_ns: int = 0
    inode: int = 0
    etag: str = ""
