"""An exclusive lock per data root, so two runs never merge into one state or gold at once."""
from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

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
