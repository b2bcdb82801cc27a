"""The Silver -> Gold state: one sqlitedict table, values as JSON or Arrow IPC bytes (never pickle).

Everything lives in one table so that one `commit()` is one SQLite transaction: the dedup keys
of a bucket, the aggregates they changed and the progress marker land together or not at all.
Open it inside the task's `run()` (sqlitedict is not fork-safe) and close it in `finally`.
"""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
from sqlitedict import SqliteDict

from pipeline.errors import EnvironmentProblem, PipelineError, environment_line
from pipeline.layout import STATE_FILE

STATE_TABLE = "state"
_JSON = b"J"
_ARROW = b"A"


def _identity(value: bytes) -> bytes:
    return value


class StateStore:
    """Typed access to the state: JSON documents and Arrow tables under string keys."""

    def __init__(self, db: SqliteDict) -> None:
        self._db = db

    def get_json(self, key: str, default: Any = None) -> Any:
        raw = self._db.get(key)
        if raw is None:
            return default
        if raw[:1] != _JSON:
            raise json.JSONDecodeError(f"state key {key!r} is not a JSON value", "", 0)
        return json.loads(bytes(raw[1:]).decode("utf-8"))

    def put_json(self, key: str, value: Any) -> None:
        self._db[key] = _JSON + json.dumps(value, sort_keys=True, separators=(",", ":")).encode("utf-8")

    def get_table(self, key: str) -> pa.Table | None:
        raw = self._db.get(key)
        if raw is None:
            return None
        return decode_table(raw, key)

    def put_table(self, key: str, table: pa.Table) -> None:
        self._db[key] = encode_table(table)

    def put_encoded(self, key: str, value: bytes) -> None:
        """A value from `encode_table`, encoded elsewhere (a merge thread), so that the thread that
        commits only writes."""
        self._db[key] = value

    def delete(self, key: str) -> None:
        if key in self._db:
            del self._db[key]

    def keys_with_prefix(self, prefix: str) -> list[str]:
        return [k for k in self._db.keys() if k.startswith(prefix)]

    def commit(self, wait: bool = True) -> None:
        """One SQLite transaction. With wait=False it is queued to sqlitedict's writer thread and
        the caller goes on: commits still happen one after another, in order, and a crash keeps
        a prefix of them; a later waiting commit (or any read) raises what went wrong."""
        self._db.commit(blocking=wait)


def encode_table(table: pa.Table) -> bytes:
    """A table as a state value: Arrow IPC, LZ4-compressed, behind its type byte."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema, options=pa.ipc.IpcWriteOptions(compression="lz4")) as writer:
        writer.write_table(table)
    return _ARROW + sink.getvalue().to_pybytes()


def decode_table(raw: bytes, key: str) -> pa.Table:
    if raw[:1] != _ARROW:
        raise pa.ArrowInvalid(f"state key {key!r} is not an Arrow table")
    with pa.ipc.open_stream(pa.py_buffer(bytes(raw[1:]))) as reader:
        return reader.read_all()


class StateReader:
    """A read-only SQLite connection to the state, one per merge job: the merge threads must not
    share the writer's sqlitedict connection.

    They read only what earlier commits wrote (seen segments of finished batches), so they never
    race the one writer.
    """

    def __init__(self, path: Path) -> None:
        self._conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)

    def get_table(self, key: str) -> pa.Table | None:
        row = self._conn.execute(f"SELECT value FROM {STATE_TABLE} WHERE key = ?", (key,)).fetchone()
        return None if row is None else decode_table(row[0], key)

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
    try:
        db = SqliteDict(str(path), tablename=STATE_TABLE, journal_mode="WAL", autocommit=False,
                        outer_stack=False, encode=_identity, decode=_identity)
    except sqlite3.DatabaseError as err:
        raise _corrupt(path, err) from None
    try:
        db.conn.execute("PRAGMA synchronous=FULL")
        yield StateStore(db)
    except (sqlite3.DatabaseError, pa.ArrowInvalid, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise _corrupt(path, err) from None
    finally:
        db.close()


_ENVIRONMENT_SQLITE = ("unable to open", "readonly", "read-only", "disk is full", "disk i/o", "locked", "permission", "access")


def _corrupt(path: Path, err: Exception) -> PipelineError:
    """Tell a state that cannot be opened or written (the machine's problem: the state is fine,
    and rebuilding it would not help) from one whose content is damaged."""
    if isinstance(err, sqlite3.OperationalError) and any(hint in str(err).lower() for hint in _ENVIRONMENT_SQLITE):
        return EnvironmentProblem(f"state file {path} cannot be opened or written ({err}); check that {path.parent} is "
                                  "writable and its disk has room, then run the same command again (the state is not damaged)")
    return PipelineError(f"state file {path} is corrupt or was tampered with ({type(err).__name__}: {err}); "
                         "run `python run.py --rebuild-gold` to rebuild it from silver")
