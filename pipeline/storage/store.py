"""The one seam between the pipeline and the storage of a data root: a local folder or an
`s3://bucket/prefix` on object storage.

Every persisted file of the data root (bronze read, silver, quarantine, gold, report, run records)
is read and written through a `Store`; no other module touches the file system for them. The
backend owns atomicity:

- a local root keeps a temporary sibling, fsync, then rename (pipeline.storage.atomic), kernel
  locks (pipeline.storage.locking) and hard links for create-once;
- on object storage one PUT (one closed `open_output_stream`, or one completed multipart upload)
  is visible whole or not at all, so nothing relies on rename (a copy then a delete is not
  atomic); an interrupted upload leaves no object, only an incomplete multipart upload that no
  listing shows. Create-once and the gold lease use conditional PUTs (pipeline.storage.lease).

Paths are `pathlib.Path` for a local root and `ObjectPath` (`s3://bucket/key` when printed) for
an object root, so the layout names files once for both.
"""
from __future__ import annotations

import contextlib
import functools
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.errors import ConfigError
from pipeline.storage import atomic, locking
from pipeline.storage.paths import OBJECT_SCHEME, FileStat, ObjectPath

COPY_BLOCK_BYTES = 8 * 1024 * 1024
DOWNLOAD_THREADS = 4


class Held:
    """A held lock. `check()` before publishing: a kernel lock cannot be lost while its holder
    lives, so it does nothing; a lease on object storage raises if it expired or was taken."""

    def check(self) -> None:
        return None


class Store:
    """Every persisted file under one data root. Subclasses are the backends."""

    remote = False
    root: PurePath

    @property
    def uri(self) -> str:
        return str(self.root)

    # --- reading
    def stat(self, path: PurePath) -> FileStat | None:
        raise NotImplementedError

    def exists(self, path: PurePath) -> bool:
        return self.stat(path) is not None

    def is_dir(self, path: PurePath) -> bool:
        raise NotImplementedError

    def list_files(self, folder: PurePath, recursive: bool = True) -> list[FileStat]:
        """Files under `folder` (none when it does not exist), in no particular order."""
        raise NotImplementedError

    def walk(self, folder: PurePath) -> list[str]:
        """Relative paths (posix) of every file under `folder`: one listing, no stat per file."""
        raise NotImplementedError

    def open_input(self, path: PurePath) -> BinaryIO:
        """A seekable binary reader (read, seek, tell)."""
        raise NotImplementedError

    def read_bytes(self, path: PurePath) -> bytes:
        with self.open_input(path) as handle:
            return handle.read()

    def read_text(self, path: PurePath) -> str:
        return self.read_bytes(path).decode("utf-8")

    def read_range(self, path: PurePath, start: int, length: int) -> bytes:
        with self.open_input(path) as handle:
            handle.seek(start)
            return handle.read(length)

    def parquet_file(self, path: PurePath, **options: object) -> pq.ParquetFile:
        raise NotImplementedError

    def read_parquet(self, path: PurePath, columns: list[str] | None = None) -> pa.Table:
        with self.parquet_file(path) as part:
            return part.read(columns=columns)

    def read_schema(self, path: PurePath) -> pa.Schema:
        with self.parquet_file(path) as part:
            return part.schema_arrow

    # --- writing: each call publishes its file whole or not at all
    def write_bytes(self, path: PurePath, data: bytes | memoryview, before_publish: Callable[[], None] | None = None) -> None:
        """Publish `data` at `path`; `before_publish()` runs once the bytes are safe but before
        they appear under the name (what records their checksum is stored first)."""
        raise NotImplementedError

    def write_text(self, path: PurePath, text: str) -> None:
        self.write_bytes(path, text.encode("utf-8"))

    def write_parquet(self, path: PurePath, table: pa.Table) -> None:
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="snappy")
        self.write_bytes(path, memoryview(sink.getvalue()))

    def download(self, path: PurePath, local: Path) -> None:
        """Copy `path` to a file of this host's disk (streamed, one GET on object storage)."""
        with self.open_input(path) as source, open(local, "wb") as out:
            shutil.copyfileobj(source, out, COPY_BLOCK_BYTES)

    def upload(self, local: Path, path: PurePath) -> None:
        """Copy a file of this host's disk to `path`, published whole (streamed, not held in memory)."""
        raise NotImplementedError

    def create_once(self, path: PurePath, text: str) -> bool:
        """Publish `text` at `path` only if nothing is there; True if this call created it (of
        several processes or hosts creating at once, exactly one wins)."""
        raise NotImplementedError

    def deferred_publication(self) -> contextlib.AbstractContextManager[None]:
        """Writes inside are published together at the end (local: one file-system sync for all);
        on object storage each PUT is already durable and whole, so nothing is deferred."""
        return contextlib.nullcontext()

    def delete(self, path: PurePath) -> None:
        """Delete one file; nothing when it is not there."""
        raise NotImplementedError

    def delete_tree(self, folder: PurePath) -> None:
        raise NotImplementedError

    def remove_stale_temps(self, folder: PurePath) -> int:
        """Temporary files of killed writers under `folder` (local roots only have them)."""
        return 0

    # --- coordination between runs and hosts on this root
    def exclusive_lock(self, path: PurePath, what: str, wait_seconds: float) -> contextlib.AbstractContextManager[Held]:
        """Held by whoever writes state or gold, renders the report or runs a maintenance command;
        waits up to `wait_seconds`, then stops with a one-line error naming the holder."""
        raise NotImplementedError

    def is_locked(self, path: PurePath) -> bool:
        raise NotImplementedError


class LocalStore(Store):
    """A data root on a local (or shared POSIX) file system: today's durability, at today's speed."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def stat(self, path: PurePath) -> FileStat | None:
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        return FileStat(Path(path), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)

    def exists(self, path: PurePath) -> bool:
        return os.path.exists(path)

    def is_dir(self, path: PurePath) -> bool:
        return os.path.isdir(path)

    def list_files(self, folder: PurePath, recursive: bool = True) -> list[FileStat]:
        found: list[FileStat] = []
        for place, _dirs, names in os.walk(folder) if recursive else [(str(folder), [], _names(Path(folder)))]:
            for name in names:
                entry = self.stat(Path(place, name))
                if entry is not None and not os.path.isdir(entry.path):
                    found.append(entry)
        return found

    def walk(self, folder: PurePath) -> list[str]:
        top = str(folder)
        found = []
        for place, _dirs, names in os.walk(top):  # os.walk, not rglob: far cheaper at 20,000 folders
            relative = os.path.relpath(place, top).replace(os.sep, "/")
            found.extend(name if relative == "." else f"{relative}/{name}" for name in names)
        return found

    def open_input(self, path: PurePath) -> BinaryIO:
        return open(path, "rb")

    def read_bytes(self, path: PurePath) -> bytes:
        return Path(path).read_bytes()

    def read_range(self, path: PurePath, start: int, length: int) -> bytes:
        with open(path, "rb") as handle:
            return os.pread(handle.fileno(), length, start)

    def parquet_file(self, path: PurePath, **options: object) -> pq.ParquetFile:
        return pq.ParquetFile(path, **options)

    def read_parquet(self, path: PurePath, columns: list[str] | None = None) -> pa.Table:
        # One file through one handle; pq.read_table would import pyarrow.dataset, and with it pandas
        # (0.3 s of a run with nothing new, which reads only gold's totals)
        with pq.ParquetFile(path) as parquet:
            return parquet.read(columns=columns)

    def read_schema(self, path: PurePath) -> pa.Schema:
        return pq.read_schema(path)

    def write_bytes(self, path: PurePath, data: bytes | memoryview, before_publish: Callable[[], None] | None = None) -> None:
        with atomic.atomic_path(Path(path)) as tmp:
            tmp.write_bytes(data)
            if before_publish is not None:
                before_publish()

    def write_parquet(self, path: PurePath, table: pa.Table) -> None:
        with atomic.atomic_path(Path(path)) as tmp:
            pq.write_table(table, tmp, compression="snappy")

    def upload(self, local: Path, path: PurePath) -> None:
        with atomic.atomic_path(Path(path)) as tmp:
            shutil.copyfile(local, tmp)

    def create_once(self, path: PurePath, text: str) -> bool:
        return atomic.create_text_once(Path(path), text)

    def deferred_publication(self) -> contextlib.AbstractContextManager[None]:
        return atomic.deferred_publication()

    def delete(self, path: PurePath) -> None:
        Path(path).unlink(missing_ok=True)

    def delete_tree(self, folder: PurePath) -> None:
        if os.path.isdir(folder):
            shutil.rmtree(folder)

    def remove_stale_temps(self, folder: PurePath) -> int:
        return atomic.remove_stale_temp_files(Path(folder))

    @contextlib.contextmanager
    def exclusive_lock(self, path: PurePath, what: str, wait_seconds: float) -> Iterator[Held]:
        with locking.exclusive_lock(Path(path), what, wait_seconds):
            yield Held()

    def is_locked(self, path: PurePath) -> bool:
        return locking.is_locked(Path(path))


LOCAL_FILES = LocalStore(Path("/"))  # files on this host's own disk (staged copies, tests' plain files)


def _names(folder: Path) -> list[str]:
    try:
        return os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []


class ObjectStore(Store):
    """A data root on S3 or an S3-compatible store, through pyarrow's S3 file system (reads and
    writes) and the AWS SDK (listing with ETags, conditional PUTs: pipeline.storage.lease).

    Where the store is found and who we are come from AWS's own conventions only:
    `AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`,
    `AWS_REGION`, `AWS_PROFILE` and `~/.aws`.
    """

    remote = True

    def __init__(self, root: ObjectPath) -> None:
        self.root = root
        self._deferred = _Deferred()

    def __reduce__(self) -> tuple:
        """Sent to a warm worker by its root alone: clients are made again in that process."""
        return (ObjectStore, (self.root,))

    @property
    def _fs(self) -> Any:
        """pyarrow's S3 file system of this process (one per process: Luigi forks task processes)."""
        from pipeline.storage import object_client

        return object_client.filesystem(self.root)

    # pyarrow's S3 errors are OSErrors whose text says what; object_client.fault turns them into ours.
    def stat(self, path: PurePath) -> FileStat | None:
        from pipeline.storage import object_client

        return object_client.head(_object(path))

    def exists(self, path: PurePath) -> bool:
        return self.stat(path) is not None

    def is_dir(self, path: PurePath) -> bool:
        from pipeline.storage import object_client

        return object_client.any_under(_object(path))

    def list_files(self, folder: PurePath, recursive: bool = True) -> list[FileStat]:
        from pipeline.storage import object_client

        return object_client.list_objects(_object(folder), recursive)

    def walk(self, folder: PurePath) -> list[str]:
        base = len(_object(folder).key) + 1
        return [entry.path.key[base:] for entry in self.list_files(folder)]

    def open_input(self, path: PurePath) -> BinaryIO:
        from pipeline.storage import object_client

        with object_client.fault(path):
            return self._fs.open_input_file(_object(path).key)

    def read_bytes(self, path: PurePath) -> bytes:
        from pipeline.storage import object_client

        with object_client.fault(path), self._fs.open_input_stream(_object(path).key) as stream:
            return stream.read()

    def read_range(self, path: PurePath, start: int, length: int) -> bytes:
        from pipeline.storage import object_client

        with object_client.fault(path), self._fs.open_input_file(_object(path).key) as handle:
            data = handle.read_at(length, start)
            return data if isinstance(data, bytes) else data.to_pybytes()

    def parquet_file(self, path: PurePath, **options: object) -> pq.ParquetFile:
        from pipeline.storage import object_client

        options.setdefault("pre_buffer", True)  # a row group's column chunks in a few coalesced GETs, not one each
        with object_client.fault(path):
            return pq.ParquetFile(self._fs.open_input_file(_object(path).key), **options)

    def read_parquet(self, path: PurePath, columns: list[str] | None = None) -> pa.Table:
        from pipeline.storage import object_client

        with object_client.fault(path):
            return pq.read_table(_object(path).key, columns=columns, filesystem=self._fs)

    def write_bytes(self, path: PurePath, data: bytes | memoryview, before_publish: Callable[[], None] | None = None) -> None:
        if before_publish is not None:
            before_publish()
        pending = self._deferred.pending
        if pending is not None:
            send = functools.partial(self._put, _object(path), bytes(data))
            (pending.checkpoints if before_publish is not None else pending.first).append(send)
            return
        self._put(_object(path), data)

    def _put(self, path: ObjectPath, data: bytes | memoryview) -> None:
        from pipeline.storage import object_client

        with object_client.fault(path), self._fs.open_output_stream(path.key, metadata={}) as out:
            out.write(data)

    def deferred_publication(self) -> contextlib.AbstractContextManager[None]:
        return self._publishing_together()

    @contextlib.contextmanager
    def _publishing_together(self) -> Iterator[None]:
        """PUTs of the block sent at its end, PUBLISH_THREADS at a time (thousands of small files
        cost a round trip each): first every file, then the checkpoints among them (the files
        written with a `before_publish` step, whose existence says the others are there). On an
        error nothing of the block is sent."""
        if self._deferred.pending is not None:
            yield
            return
        pending = _Pending()
        self._deferred.pending = pending
        try:
            yield
        finally:
            self._deferred.pending = None
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(PUBLISH_THREADS) as senders:
            for wave in (pending.first, pending.checkpoints):
                list(senders.map(lambda send: send(), wave))

    def write_parquet(self, path: PurePath, table: pa.Table) -> None:
        sink = pa.BufferOutputStream()  # whole in memory, then one PUT: never a half object under the name
        pq.write_table(table, sink, compression="snappy")
        self.write_bytes(path, memoryview(sink.getvalue()))

    def download(self, path: PurePath, local: Path) -> None:
        """Ranged GETs of COPY_BLOCK_BYTES, DOWNLOAD_THREADS at once, written in place: one stream
        from an S3-compatible server is far slower than the link."""
        from concurrent.futures import ThreadPoolExecutor

        from pipeline.storage import object_client

        with object_client.fault(path), self._fs.open_input_file(_object(path).key) as source, open(local, "wb") as out:
            size = source.size()
            out.truncate(size)

            def fetch(offset: int) -> None:
                data = source.read_at(min(COPY_BLOCK_BYTES, size - offset), offset)
                os.pwrite(out.fileno(), data, offset)

            with ThreadPoolExecutor(DOWNLOAD_THREADS) as fetchers:
                list(fetchers.map(fetch, range(0, size, COPY_BLOCK_BYTES)))

    def upload(self, local: Path, path: PurePath) -> None:
        """Inside a deferred publication, sent with the block's other files (so `local` must live
        until the block ends)."""
        pending = self._deferred.pending
        if pending is not None:
            pending.first.append(functools.partial(self._upload, local, _object(path)))
            return
        self._upload(local, _object(path))

    def _upload(self, local: Path, path: ObjectPath) -> None:
        from pyarrow import fs

        from pipeline.storage import object_client

        with object_client.fault(path):  # one multipart upload, completed whole at the end
            fs.copy_files(str(local), _object(path).key, source_filesystem=fs.LocalFileSystem(), destination_filesystem=self._fs)

    def create_once(self, path: PurePath, text: str) -> bool:
        from pipeline.storage import lease, object_client

        target = _object(path)
        with object_client.fault(path):
            return lease.create_once(target.bucket, target.object_key, text.encode("utf-8"))

    def delete(self, path: PurePath) -> None:
        from pipeline.storage import object_client

        object_client.delete_objects([_object(path)])

    def delete_tree(self, folder: PurePath) -> None:
        from pipeline.storage import object_client

        object_client.delete_objects([entry.path for entry in self.list_files(folder)])

    def exclusive_lock(self, path: PurePath, what: str, wait_seconds: float) -> contextlib.AbstractContextManager[Held]:
        from pipeline.storage import lease

        target = _object(path)
        return lease.ObjectLease(target.bucket, target.object_key, what, wait_seconds)

    def is_locked(self, path: PurePath) -> bool:
        from pipeline.storage import lease

        target = _object(path)
        return lease.lease_held(target.bucket, target.object_key)


PUBLISH_THREADS = 16


@dataclass
class _Pending:
    """The sends of a deferred publication: every file first, then the checkpoints."""

    first: list[Callable[[], None]] = field(default_factory=list)
    checkpoints: list[Callable[[], None]] = field(default_factory=list)


class _Deferred(threading.local):
    pending: _Pending | None = None


def _object(path: PurePath) -> ObjectPath:
    if not isinstance(path, ObjectPath):
        raise TypeError(f"{path} is not an object path")
    return path


def parse_root(data_root: str | PurePath) -> tuple[PurePath, bool]:
    """(root path, whether it is an object root) of what a user wrote as `--data-root`."""
    text = str(data_root)
    if isinstance(data_root, ObjectPath):
        return data_root, True
    if "://" not in text:
        return Path(text), False
    if not text.startswith(OBJECT_SCHEME):
        scheme = text.split("://", 1)[0]
        raise ConfigError(f"data root {text}: the scheme {scheme}:// is not supported (a local folder, or s3://bucket/prefix)")
    rest = text[len(OBJECT_SCHEME):].strip("/")
    if not rest or not rest.split("/", 1)[0]:
        raise ConfigError(f"data root {text}: name a bucket (s3://bucket or s3://bucket/prefix)")
    return ObjectPath(rest), True


def open_store(data_root: str | PurePath) -> Store:
    root, remote = parse_root(data_root)
    return ObjectStore(root) if remote else LocalStore(root)  # type: ignore[arg-type]


def is_object_root(data_root: str | PurePath) -> bool:
    return parse_root(data_root)[1]


def read_json_or_none(store: Store, path: PurePath) -> object | None:
    """A small JSON record, or None when it is not there."""
    import json

    try:
        return json.loads(store.read_text(path))
    except FileNotFoundError:
        return None

