"""The project's errors: what a user or the machine causes, each one line that says what and where.

Failures are told apart by type, never by their message text:

- **terminal**: every `PipelineError` that is not transient. The same command fails the same way
  until the data, a file or the settings change (a bad header, a changed file, a bad setting).
  A file that fails so fails alone: the others run and gold is built without it (exit 1).
- **transient** (`PipelineError.transient`, and `is_transient` for the library's own types): the
  machine, not the data (a folder that cannot be written, a full disk, a database that cannot be
  opened, a scheduler that cannot be reached). The same command finishes once it is fixed, so the
  run stops at it rather than build anything without it (exit 2), and never advises destroying data.
- anything else is a bug: its traceback is shown, and it is never taken for the data's fault.
"""
from __future__ import annotations

import errno
import sqlite3
from typing import ClassVar


class PipelineError(Exception):
    """Base class: the run stops (or the file fails) with this one-line message. Terminal unless
    its class says `transient`."""

    transient: ClassVar[bool] = False


class ConfigError(PipelineError):
    """A bad value in luigi.cfg or on the command line."""


class InputFileError(PipelineError):
    """A bronze file that cannot be processed as a whole (missing required columns, unreadable)."""


class ChangedInputError(PipelineError):
    """A bronze file changed after it was ingested; it needs an explicit reprocess."""


class StateDamaged(PipelineError):
    """The Silver -> Gold state cannot be trusted (a value whose checksum fails, a missing record,
    a damaged SQLite file, another format). The state is derived from silver, so the gold step
    rebuilds it from silver; nothing is ever published from it."""


class EnvironmentProblem(PipelineError):
    """The machine, not the data: a folder that cannot be written, a full disk, a scheduler that
    cannot be reached. Exit 2, and never advice that destroys data, which is fine."""

    transient = True


class CompressedInputError(InputFileError):
    """A .csv.gz or .csv.zst bronze file whose compressed stream is corrupt or truncated."""


# errno values of the machine: permissions, a full disk or quota, a read-only file system. Others
# (a file that vanished, EFBIG of a file size limit) are the file's own failure.
_MACHINE_ERRNOS = frozenset({errno.EPERM, errno.EACCES, errno.ENOSPC, errno.EROFS, errno.EDQUOT})
# SQLite's primary result codes of the machine; SQLITE_CORRUPT, SQLITE_NOTADB and the like are damage.
_MACHINE_SQLITE_CODES = frozenset({sqlite3.SQLITE_PERM, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_NOMEM,
                                   sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN,
                                   sqlite3.SQLITE_AUTH})


def is_transient(error: BaseException) -> bool:
    """The machine's problem (see the module's docstring), by the error's type: our own errors say
    so themselves, an OSError by its errno, an SQLite error by its result code."""
    if isinstance(error, PipelineError):
        return error.transient
    if isinstance(error, OSError):
        return error.errno in _MACHINE_ERRNOS
    if isinstance(error, sqlite3.Error):
        code = getattr(error, "sqlite_errorcode", None)  # the extended code: its low byte is the primary one
        return code is not None and code & 0xFF in _MACHINE_SQLITE_CODES
    return False


def environment_line(error: OSError) -> str:
    """`cannot write /data/gold/x: Permission denied`-style line for an OSError of the environment."""
    where = f" {error.filename}" if error.filename else ""
    return (f"cannot use{where}: {error.strerror or error} (an environment problem: fix the permissions or free space "
            "and run the same command again; the data is not damaged)")
