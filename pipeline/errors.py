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
