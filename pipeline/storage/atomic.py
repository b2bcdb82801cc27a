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
import threading
import time
from collections.abc import Iterator
from pathlib import Path

TEMP_PREFIX = ".tmp-"
# A temp file from another machine (a shared data root) is only removed once this old: no single
# atomic write here takes anywhere near that long.
FOREIGN_TEMP_MAX_AGE_SECONDS = 3600.0
_UMASK = os.umask(0)
os.umask(_UMASK)


class _Deferred(threading.local):
    """Atomic writes of this thread waiting to be published together (deferred_publication)."""

    pending: list[tuple[Path, Path]] | None = None
    folders: set[Path] | None = None


_deferred = _Deferred()


@contextlib.contextmanager
def atomic_path(final: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside `final`; on success fsync it and rename it over `final`
    (inside `deferred_publication`, at the end of that block)."""
    final = Path(final)
    pending, folders = _deferred.pending, _deferred.folders
    if folders is None or final.parent not in folders:
        final.parent.mkdir(parents=True, exist_ok=True)
        if folders is not None:
            folders.add(final.parent)
    fd, tmp_name = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{final.name}.{_writer_tag()}.", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    published = False
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual permissions
        if pending is not None:
            pending.append((tmp, final))
            published = True
            return
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, final)
        _fsync_dir(final.parent)
    finally:
        if not published:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()


@contextlib.contextmanager
def deferred_publication() -> Iterator[None]:
    """Inside, this thread's atomic writes go to their temporary files and are published together
    at the end: one sync of the file system for all of them, the renames in the order the files
    were written (so a checkpoint written last still appears last), then one more sync for the
    folders. The same guarantees as an fsync per file, at a fraction of the cost for thousands
    of small files (an fsync per file dominated their cost: bench/README.md). On an error nothing of the block
    is published and its temporary files are removed."""
    if _deferred.pending is not None:  # already inside one: the outer block publishes
        yield
        return
    pending: list[tuple[Path, Path]] = []
    _deferred.pending, _deferred.folders = pending, set()
    try:
        yield
    except BaseException:
        for tmp, _final in pending:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        raise
    finally:
        _deferred.pending = _deferred.folders = None
    if not pending:
        return
    _sync_file_system(pending[0][0].parent)
    for tmp, final in pending:
        os.replace(tmp, final)
    _sync_file_system(pending[0][0].parent)


def _sync_file_system(folder: Path) -> None:
    """syncfs(2) of the file system holding `folder` (Linux); os.sync() elsewhere."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        os.sync()
        return
    try:
        if _LIBC is None or _LIBC.syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


try:
    import ctypes

    _LIBC = ctypes.CDLL(None, use_errno=True) if hasattr(ctypes.CDLL(None), "syncfs") else None
except OSError:
    _LIBC = None


def write_bytes_atomic(final: Path | str, data: bytes) -> None:
    with atomic_path(final) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(final: Path | str, text: str) -> None:
    write_bytes_atomic(final, text.encode("utf-8"))


def create_text_once(final: Path | str, text: str) -> bool:
    """Publish `text` at `final` only if nothing is there yet; True if this call created it.

    Written whole under a name of its own, then hard-linked into place: a link never replaces an
    existing file, so of several processes or hosts creating at once exactly one wins, and no
    reader ever sees a half-written file."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{final.name}.{_writer_tag()}.", dir=final.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        try:
            os.link(tmp, final)
        except FileExistsError:
            return False
        _fsync_dir(final.parent)
        return True
    finally:
        tmp.unlink(missing_ok=True)


def remove_stale_temp_files(folder: Path | str) -> int:
    """Delete temp files left by a killed writer under `folder`; return how many.

    A file whose writer is still running on this host (another run on the same data root) stays.
    """
    root = Path(folder)
    if not root.exists():
        return 0
    temps = [Path(folder, name) for folder, _dirs, names in os.walk(root) for name in names if name.startswith(TEMP_PREFIX)]
    return remove_stale_temps(temps)  # os.walk, not pathlib's rglob: far cheaper at 20,000 files


def remove_stale_temps(temps: list[Path]) -> int:
    """Delete those of `temps` (temporary files of atomic writes) whose writer is gone."""
    removed = 0
    for path in temps:
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

    Names are `.tmp-<final name>.<host>-<pid>.<random>`; a temp name without a writer tag is no
    writer's we know of: it is removed.
    """
    pieces = path.name.split(".")
    host, _, pid = pieces[-2].rpartition("-") if len(pieces) >= 3 else ("", "", "")
    if not host:
        return True
    if host == _host() and pid.isdigit():
        return not process_alive(int(pid))
    return time.time() - path.stat().st_mtime > FOREIGN_TEMP_MAX_AGE_SECONDS


def process_alive(pid: int) -> bool:
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
