"""Locks between runs on one data root: one for state and gold (two runs never merge into one
state or gold at once), and one per piece of bronze work (two runs never clean one chunk twice).

Both are kernel locks (flock, fcntl record locks): released when the holder dies, even by SIGKILL,
so no lock is ever stale."""
from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.errors import PipelineError


@contextmanager
def exclusive_lock(path: Path, what: str, wait_seconds: float = 0.0) -> Iterator[None]:
    """Hold an flock on `path`; wait up to `wait_seconds`, then stop with a clear message.

    flock is released by the kernel when the holder dies (even by SIGKILL), so no stale lock.
    """
    import time

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + wait_seconds
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "another process"
                    raise PipelineError(f"{what} is locked by {holder} ({path}); wait for that run to finish and run again") from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}".encode(), 0)
        yield
    finally:
        os.close(fd)


def is_locked(path: Path) -> bool:
    """Someone holds the exclusive lock on `path` right now (a live run, not an interrupted one)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


@contextmanager
def claim_work(path: Path, slot: int | None) -> Iterator[None]:
    """Hold slot `slot` of the work lock `path` (None: every slot), waiting while another run holds it.

    The caller checks its output after this returns: if the other run finished the piece meanwhile,
    there is nothing left to do. A process holds at most one file's slots at a time, or several
    files' whole ranges taken in input order, so two runs never wait on each other in a circle."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if slot is None:
            fcntl.lockf(fd, fcntl.LOCK_EX, 0, 0)
        else:
            fcntl.lockf(fd, fcntl.LOCK_EX, 1, slot)
        yield
    finally:
        os.close(fd)  # releases the record lock
