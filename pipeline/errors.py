"""Errors a user can cause. Each carries a one-line message that says what and where."""
from __future__ import annotations


class PipelineError(Exception):
    """Base class: the run stops (or the file fails) with this one-line message."""


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


_ENVIRONMENT_ERRNOS = frozenset({1, 13, 28, 30, 122})  # EPERM, EACCES, ENOSPC, EROFS, EDQUOT


def is_environment_problem(error: BaseException) -> bool:
    return isinstance(error, EnvironmentProblem) or (isinstance(error, OSError) and error.errno in _ENVIRONMENT_ERRNOS)


def environment_line(error: OSError) -> str:
    """`cannot write /data/gold/x: Permission denied`-style line for an OSError of the environment."""
    where = f" {error.filename}" if error.filename else ""
    return (f"cannot use{where}: {error.strerror or error} (an environment problem: fix the permissions or free space "
            "and run the same command again; the data is not damaged)")


class CompressedInputError(InputFileError):
    """A .csv.gz or .csv.zst bronze file whose compressed stream is corrupt or truncated."""
