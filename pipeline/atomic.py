"""The one way every output file is written: a temporary sibling, fsync, then rename.

A reader (or a re-run after SIGKILL) sees either the old file, no file, or the whole new file.
Temporary names start with '.tmp-' so cleanup and discovery can recognise and skip them, and carry
the writer's host and PID, so a run cleaning up never deletes the file another live run is writing.
"""
from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

TEMP_PREFIX = ".tmp-"
# A temp file from another machine (a shared data root) is only removed once this old: no single
# atomic write here takes anywhere near that long.
FOREIGN_TEMP_MAX_AGE_SECONDS = 3600.0
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(final: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside `final`; on success fsync it and rename it over `final`."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{final.name}.{_writer_tag()}.", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual permissions
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, final)
        _fsync_dir(final.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_bytes_atomic(final: Path | str, data: bytes) -> None:
    with atomic_path(final) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(final: Path | str, text: str) -> None:
    write_bytes_atomic(final, text.encode("utf-8"))


def write_with_atomic(final: Path | str, writer: Callable[[Path], None]) -> None:
    """Call `writer(tmp_path)` and publish the result atomically at `final`."""
    with atomic_path(final) as tmp:
        writer(tmp)


def remove_stale_temp_files(folder: Path | str) -> int:
    """Delete temp files left by a killed writer under `folder`; return how many.

    A file whose writer is still running on this host (another run on the same data root) stays.
    """
    removed = 0
    root = Path(folder)
    if not root.exists():
        return 0
    for path in root.rglob(f"{TEMP_PREFIX}*"):
        with contextlib.suppress(FileNotFoundError):
            if _writer_gone(path):
                path.unlink()
                removed += 1
    return removed


def _host() -> str:
    return socket.gethostname().replace(".", "_")  # no dots: the tag is one dot-separated piece


def _writer_tag() -> str:
    return f"{_host()}-{os.getpid()}"


def _writer_gone(path: Path) -> bool:
    """True unless the temp file's writer may still be writing it.

    Names are `.tmp-<final name>.<host>-<pid>.<random>`; an untagged name is from an older version.
    """
    pieces = path.name.split(".")
    host, _, pid = pieces[-2].rpartition("-") if len(pieces) >= 3 else ("", "", "")
    if not host:
        return True
    if host == _host() and pid.isdigit():
        return not _alive(int(pid))
    return time.time() - path.stat().st_mtime > FOREIGN_TEMP_MAX_AGE_SECONDS


def _alive(pid: int) -> bool:
    """Running, not just present: a killed writer whose parent died too can stay a zombie for
    good where the container's first process reaps no one."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # no /proc (not Linux), or it just ended
        return True
    return stat[stat.rindex(")") + 2:][:1] != "Z"


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
