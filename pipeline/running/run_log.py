"""What a run printed, kept for its log under `runs/history/` (pipeline.running.history).

A nightly job's console goes nowhere; the log beside the run's record is what is read the next
morning. The run tees its stdout and stderr (the summary, `FAILED`, `WARNING` and `ERROR` lines,
the pipeline's log lines and, with --verbose, Luigi's) into a spool file while passing everything
through unchanged. The spool is opened for appending and inherited by the processes Luigi and the
warm workers fork, so their lines (a chunk's, a bug's traceback) land in it too, in the order they
were written; one `write` is one append, with no lock a fork could leave held. The lines a terminal
rewrote in place (the live progress line) are kept as the terminal left them.
"""
from __future__ import annotations

import fcntl
import io
import os
import sys
import tempfile
from typing import TextIO

MAX_LOG_BYTES = 4_000_000  # a --verbose run of a huge input keeps its last 4 MB


class _Tee(io.TextIOBase):
    """A text stream that writes to `target` and appends to the spool; everything else is the target's."""

    def __init__(self, target: TextIO, spool: int) -> None:
        self._target, self._spool = target, spool

    def write(self, text: str) -> int:
        try:
            os.write(self._spool, text.encode("utf-8", "replace"))
        except OSError:  # a full /tmp must not stop the run: the log only misses these lines
            pass
        return self._target.write(text)

    def flush(self) -> None:
        self._target.flush()

    def isatty(self) -> bool:
        return self._target.isatty()

    def fileno(self) -> int:
        return self._target.fileno()

    def __getattr__(self, name: str):  # encoding, errors, buffer, ...
        return getattr(self._target, name)


class RunLog:
    """`with RunLog() as log:` tees sys.stdout and sys.stderr; `log.text()` is what was printed."""

    def __init__(self) -> None:
        self._spool: int | None = None
        self._saved: tuple[TextIO, TextIO] | None = None

    def __enter__(self) -> RunLog:
        handle = tempfile.TemporaryFile(prefix="run-log-")  # no name: gone with the last process holding it
        self._spool = os.dup(handle.fileno())
        handle.close()
        fcntl.fcntl(self._spool, fcntl.F_SETFL, fcntl.fcntl(self._spool, fcntl.F_GETFL) | os.O_APPEND)
        self._saved = (sys.stdout, sys.stderr)
        sys.stdout, sys.stderr = _Tee(sys.stdout, self._spool), _Tee(sys.stderr, self._spool)
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._saved is not None:
            sys.stdout, sys.stderr = self._saved
            self._saved = None
        if self._spool is not None:
            os.close(self._spool)
            self._spool = None

    def text(self) -> str:
        """The printed lines as a terminal shows them at the end: a line rewritten after `\\r` keeps
        its last version, a line cleared that way is left out."""
        if self._spool is None:
            return ""
        size = os.fstat(self._spool).st_size
        start = max(size - MAX_LOG_BYTES, 0)
        raw = os.pread(self._spool, size - start, start).decode("utf-8", "replace")
        lines = []
        for line in raw.split("\n"):
            if "\r" in line:
                line = line.rsplit("\r", 1)[-1].rstrip()
                if not line:
                    continue
            lines.append(line)
        cut = "[... the start of this log was cut: it keeps the last 4 MB]\n" if start else ""
        return cut + "\n".join(lines)
