"""The Silver -> Gold state: one sqlitedict table, values as JSON, Arrow IPC or raw hash bytes (never pickle).

Everything lives in one table so that one `commit()` is one SQLite transaction: the dedup keys
of a bucket, the aggregates they changed and the progress marker land together or not at all.
Open it inside the task's `run()` (sqlitedict is not fork-safe) and close it in `finally`.

Every value is `type byte + CRC-32 of (key, payload) + payload`, and the checksum is verified
before anything is decoded: Arrow IPC has no checksum of its own (one flipped bit in a stored
aggregate decoded without error, and other flips crashed the decoder), and a value found under
another key than it was written for fails too. A value that fails, a required record that is
missing or a damaged SQLite file raise StateDamaged, never a wrong number.
"""
from __future__ import annotations

import json
import logging
import sqlite3
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from sqlitedict import SqliteDict

from pipeline.errors import EnvironmentProblem, PipelineError, StateDamaged, environment_line, is_transient
from pipeline.storage.layout import STATE_FILE, DataLayout

# sqlitedict logs a failed statement of its writer thread (with two stacks) before the caller gets
# it raised: the caller's one line is the message; the log would print a traceback to stderr.
logging.getLogger("sqlitedict").setLevel(logging.CRITICAL + 1)

STATE_TABLE = "state"
SQLITE_MAGIC = b"SQLite format 3\0"
_JSON = b"J"
_ARROW = b"A"
_HASHES = b"H"  # a sorted uint64 array, little-endian: read with no decoding at all
_CRC = struct.Struct(">I")
_HEAD = 1 + _CRC.size  # type byte + checksum
_REQUIRED = object()  # get_json's default: a missing record is damage, not "empty"


def _checksum(key: str, payload: bytes | memoryview) -> int:
    return zlib.crc32(payload, zlib.crc32(key.encode("utf-8") + b"\0"))


def _seal(kind: bytes, key: str, payload: bytes) -> bytes:
    return kind + _CRC.pack(_checksum(key, payload)) + payload


def _open(raw: bytes, key: str, kind: bytes) -> memoryview:
    """The payload of a stored value, after its type and checksum are verified."""
    view = memoryview(raw)
    if len(view) < _HEAD or view[:1] != kind:
        raise StateDamaged(f"state value {key!r} is not of the type it was written with")
    payload = view[_HEAD:]
    if _CRC.unpack(view[1:_HEAD])[0] != _checksum(key, payload):
        raise StateDamaged(f"state value {key!r} fails its checksum")
    return payload


def _identity(value: bytes) -> bytes:
    return value


class StateStore:
    """Typed access to the state: JSON documents and Arrow tables under string keys."""

    def __init__(self, db: SqliteDict) -> None:
        self._db = db
        self._dirty = False  # written since the last commit (SQL's COMMIT fails outside a transaction)

    def get_json(self, key: str, default: Any = _REQUIRED) -> Any:
        """The record under `key`; without a `default` it must exist (its absence is damage)."""
        raw = self._db.get(key)
        if raw is None:
            if default is _REQUIRED:
                raise StateDamaged(f"state record {key!r} is missing")
            return default
        return decode_json(raw, key)

    def put_json(self, key: str, value: Any) -> None:
        self._dirty = True
        self._db[key] = encode_json(key, value)

    def get_table(self, key: str) -> pa.Table:
        """The table under `key`, which must exist (its absence is damage)."""
        raw = self._db.get(key)
        if raw is None:
            raise StateDamaged(f"state record {key!r} is missing")
        return decode_table(raw, key)

    def put_table(self, key: str, table: pa.Table) -> None:
        self._dirty = True
        self._db[key] = encode_table(key, table)

    def put_encoded(self, key: str, value: bytes) -> None:
        """A value from `encode_table` or `encode_hashes`, encoded elsewhere (a merge thread), so that the thread that
        commits only writes."""
        self._dirty = True
        self._db[key] = value

    def delete(self, key: str) -> None:
        if key in self._db:
            self._dirty = True
            del self._db[key]

    def delete_prefix(self, prefix: str) -> None:
        """Every record whose key starts with `prefix`, in one statement: a delete per key is two round
        trips to sqlitedict's writer thread (0.2 s of a small run's merge for its 320 bucket records)."""
        self._dirty = True  # a DELETE opens the transaction even when it matches nothing
        self._db.conn.execute(f'DELETE FROM "{STATE_TABLE}" WHERE key >= ? AND key < ?', (prefix, prefix + "\U0010ffff"))

    def keys_with_prefix(self, prefix: str) -> list[str]:
        return [k for k in self._db.keys() if k.startswith(prefix)]

    def commit(self, wait: bool = True) -> None:
        """One SQLite transaction. With wait=False it is queued to sqlitedict's writer thread and
        the caller goes on: commits still happen one after another, in order, and a crash keeps
        a prefix of them; a later call (any read or write) raises what went wrong.

        The commit is SQL's COMMIT, not sqlitedict's `commit()`: a failed `conn.commit()` (a full
        disk) kills sqlitedict's writer thread and every later call waits for it forever, while a
        failed statement is raised in the caller. A waiting commit first makes sure every earlier
        write went through (a round trip raises the first failure), so it never commits a
        transaction with a write missing; with `cache_spill=OFF` (open_state) writes touch no
        file before COMMIT, so a full disk fails the COMMIT itself, which keeps all or nothing.
        """
        writer = self._db.conn
        if wait:
            writer.select_one("SELECT 1")  # every earlier statement has run: raises the first that failed
        else:
            writer.check_raise_error()  # what failed so far, without waiting
        if not self._dirty:
            return
        self._dirty = False
        if wait:
            writer.select_one("COMMIT")
        else:
            writer.execute("COMMIT")


def encode_table(key: str, table: pa.Table) -> bytes:
    """A table as the state value of `key`: Arrow IPC, LZ4-compressed, sealed with its checksum."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression="lz4")) as writer:
        writer.write_table(table)
    return _seal(_ARROW, key, sink.getvalue().to_pybytes())


def encode_json(key: str, value: Any) -> bytes:
    return _seal(_JSON, key, json.dumps(value, sort_keys=True, separators=(",", ":")).encode("utf-8"))


def decode_json(raw: bytes, key: str) -> Any:
    return json.loads(bytes(_open(raw, key, _JSON)).decode("utf-8"))


def encode_hashes(key: str, hashes: np.ndarray) -> bytes:
    """64-bit hashes as the state value of `key`: their bytes as they are (they do not compress),
    so that probing history costs a read and a checksum, no decoding."""
    return _seal(_HASHES, key, np.ascontiguousarray(hashes, dtype="<u8").tobytes())


def decode_hashes(raw: bytes, key: str) -> np.ndarray:
    payload = _open(raw, key, _HASHES)
    if len(payload) % 8:
        raise StateDamaged(f"state value {key!r} is not an array of 64-bit hashes")
    return np.frombuffer(payload, dtype="<u8")


def decode_table(raw: bytes, key: str) -> pa.Table:
    payload = _open(raw, key, _ARROW)
    with pa.ipc.open_stream(pa.py_buffer(payload)) as reader:
        return reader.read_all()


class StateReader:
    """A read-only SQLite connection to the state, one per merge job: the merge threads must not
    share the writer's sqlitedict connection.

    They read only what earlier commits wrote (seen segments of finished batches), so they never
    race the one writer.
    """

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)

    def get_table(self, key: str) -> pa.Table:
        return decode_table(self._get(key), key)

    def get_hashes(self, key: str) -> np.ndarray:
        return decode_hashes(self._get(key), key)

    def get_json(self, key: str) -> Any:
        return decode_json(self._get(key), key)

    def _get(self, key: str) -> bytes:
        row = self._conn.execute(f"SELECT value FROM {STATE_TABLE} WHERE key = ?", (key,)).fetchone()
        if row is None:
            raise StateDamaged(f"state record {key!r} is missing")
        return row[0]

    def close(self) -> None:
        self._conn.close()


def state_path(state_dir: Path) -> Path:
    return state_dir / STATE_FILE


@contextmanager
def open_state(state_dir: Path) -> Iterator[StateStore]:
    """Open the state for one task run: WAL journal, FULL sync, closed whatever happens."""
    path = state_path(state_dir)
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise EnvironmentProblem(environment_line(err)) from None
    _check_header(path)  # a file that is no SQLite database would fail inside sqlitedict's thread, with a traceback
    try:
        if not path.exists():
            _create(path)
        db = SqliteDict(str(path), tablename=STATE_TABLE, journal_mode="WAL", autocommit=False,
                        outer_stack=False, encode=_identity, decode=_identity)
    except sqlite3.DatabaseError as err:
        raise _corrupt(path, err) from None
    try:
        db.conn.execute("PRAGMA synchronous=FULL")
        db.conn.execute("PRAGMA cache_spill=OFF")  # see StateStore.commit
        yield StateStore(db)
    except StateDamaged as err:
        raise StateDamaged(f"state file {path}: {err}") from None
    except (sqlite3.DatabaseError, pa.ArrowInvalid, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise _corrupt(path, err) from None
    finally:
        db.close()


PAGE_SIZE = 65536  # large values (runs of seen keys) read about 3.5x faster than with 4 KiB pages (bench/README.md)


def _create(path: Path) -> None:
    """A new state file with large pages (a page size is fixed once a WAL database has a table),
    holding the table as sqlitedict makes it; sqlitedict then opens it as its own."""
    conn = sqlite3.connect(path)
    try:
        conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f'CREATE TABLE IF NOT EXISTS "{STATE_TABLE}" (key TEXT PRIMARY KEY, value BLOB)')
        conn.commit()
    finally:
        conn.close()


def _check_header(path: Path) -> None:
    try:
        with open(path, "rb") as handle:
            head = handle.read(len(SQLITE_MAGIC))
    except FileNotFoundError:
        return
    except OSError as err:
        raise EnvironmentProblem(environment_line(err)) from None
    if head and head != SQLITE_MAGIC:
        raise StateDamaged(f"state file {path} is damaged (it is not an SQLite database)")


def delete_state(layout: DataLayout) -> None:
    """Delete the state file with its WAL (under the gold lock), so it is rebuilt from silver:
    for a damaged state, SQLite cannot be trusted to open, let alone empty, the file."""
    for path in layout.state_files():
        path.unlink(missing_ok=True)


def _corrupt(path: Path, err: Exception) -> PipelineError:
    """Tell a state that cannot be opened or written (the machine's problem, by SQLite's result
    code: the state is fine, and rebuilding it would not help) from one whose content is damaged."""
    if is_transient(err):
        return EnvironmentProblem(f"state file {path} cannot be opened or written ({err}); check that {path.parent} is "
                                  "writable and its disk has room, then run the same command again (the state is not damaged)")
    return StateDamaged(f"state file {path} is damaged ({type(err).__name__}: {' '.join(str(err).split())})")
