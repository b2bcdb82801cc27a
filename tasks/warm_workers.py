"""Long-lived processes that do the scan and chunk work of Luigi's short-lived task processes.

Why: with `--workers N` Luigi forks a fresh process for every task. A chunk task touches about
0.5 GB of new memory, and in a fresh process every page of it is a page fault, a large share of
the chunk's time (bench/README.md). A warm process reuses its pages.
So `run.py` starts one warm worker per Luigi worker before the build; a scan or chunk task (still
one Luigi task with its own target and progress) hands its call to a free warm worker and waits.
Silver -> Gold stays in its task's process: it was no faster in a warm worker. Other pools of
the same kind (`worker_pool`) serve one kind of call each: the report's (tasks.report.report_worker)
imports matplotlib while the run starts instead of when the report is due.

Nothing depends on them: a task finds them through an environment variable, and without it
(the `luigi` command, one worker, a test calling `luigi.build`) the call runs in the task's own
process. A warm worker dies with the run (PR_SET_PDEATHSIG); a call whose worker died fails
with one line, and the next run redoes that chunk, because its outputs are written atomically.
"""
from __future__ import annotations

import contextlib
import ctypes
import importlib
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Connection, Listener
from typing import Any, TypeVar

import pyarrow as pa

from pipeline.errors import PipelineError

WARM_WORKERS_ENV = "PIPELINE_WARM_WORKERS"
_CONNECT_ATTEMPTS = 3
IDLE_RELEASE_SECONDS = 1.0  # well above the gap between two chunk tasks of a busy run
_PR_SET_PDEATHSIG = 1
T = TypeVar("T")
Progress = Callable[[int, str], None]
_PROGRESS, _DONE, _FAILED = "progress", "done", "failed"  # the kinds of message a warm worker sends back


class WarmWorkerDied(PipelineError):
    """The warm worker running a call was killed (out of memory, SIGKILL) before it answered."""


def supported() -> bool:
    """Linux only: the workers need an abstract socket and a parent-death signal."""
    return sys.platform.startswith("linux")


@contextlib.contextmanager
def warm_workers(count: int) -> Iterator[None]:
    """`count` warm workers for the duration of the block (none when count < 2: one Luigi worker
    runs its tasks in its own, already warm, process)."""
    if count < 2:
        yield
        return
    with worker_pool(WARM_WORKERS_ENV, count, "warm-worker"):
        yield


@contextlib.contextmanager
def worker_pool(env: str, count: int, name: str, prepare: str | None = None, daemon: bool = True) -> Iterator[None]:
    """`count` processes forked now that answer `call(..., pool=env)` until the block ends;
    `prepare`: a module each imports as it starts, on idle CPU (`_prepare`); `daemon=False` for workers that fork
    processes of their own (multiprocessing refuses a daemon process children; the block's end and the
    parent-death signal stop them all the same)."""
    if not supported():
        yield
        return
    authkey = os.urandom(16)
    address = f"\0pipeline-{name}-{os.getpid()}-{authkey.hex()[:8]}"
    listener = Listener(address, family="AF_UNIX", authkey=authkey, backlog=max(8, 4 * count))
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_serve, args=(listener, os.getpid(), prepare), daemon=daemon, name=f"{name}-{i + 1}")
               for i in range(count)]
    for worker in workers:
        worker.start()
    # Only the workers hold the socket: when all of them are gone a call is refused, never left waiting.
    listener.close()
    os.environ[env] = f"{address.encode().hex()}:{authkey.hex()}"
    try:
        yield
    finally:
        os.environ.pop(env, None)
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.join(timeout=5)


def call(what: str, function: Callable[..., T], *args: Any, progress: Progress | None = None, pool: str = WARM_WORKERS_ENV) -> T:
    """`function(*args)` in a warm worker of `pool` when the run started it, else right here;
    `what` names the work in the one-line error of a worker that died. With `progress`, the
    function is called with `progress=` a callback, and its reports reach `progress` here while it runs.

    The function and its arguments are pickled (by reference for functions), so both must be
    module-level names and plain values.
    """
    target = os.environ.get(pool)
    if not target:
        return function(*args, progress=progress) if progress else function(*args)
    address_hex, authkey_hex = target.split(":")
    address, authkey = bytes.fromhex(address_hex).decode(), bytes.fromhex(authkey_hex)
    for _ in range(_CONNECT_ATTEMPTS):
        try:
            connection = Client(address, family="AF_UNIX", authkey=authkey)
        except (ConnectionRefusedError, FileNotFoundError):  # every warm worker is gone: do it here
            break
        except (EOFError, ConnectionResetError, BrokenPipeError):  # queued at a worker that was dying: nothing ran
            continue
        with connection:
            try:
                connection.send((function, args, progress is not None))
                kind, *message = connection.recv()
                while kind == _PROGRESS:
                    progress(*message)  # type: ignore[misc]
                    kind, *message = connection.recv()
                ok, value = kind == _DONE, message[0]
            except (EOFError, ConnectionResetError, BrokenPipeError):
                raise WarmWorkerDied(f"{what}: the warm worker process doing it died (killed, or out of memory); "
                                     "run again to redo it") from None
        if ok:
            return value
        raise value
    return function(*args)


def die_with_parent(parent: int) -> None:
    """SIGKILL this process as soon as `parent` (the process that forked it) dies: a process
    whose run is gone must not go on writing beside the next run."""
    if not supported():
        return
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # it died before the signal was armed
        os.kill(os.getpid(), signal.SIGKILL)


def _serve(listener: Listener, parent: int, prepare: str | None = None) -> None:
    """A warm worker: answer one call at a time until the run ends."""
    die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the run; the run stops its workers
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # ... with SIGTERM: die quietly, not run.py's handler
    if prepare:
        threading.Thread(target=_prepare, args=(prepare,), name="prepare", daemon=True).start()
    releaser = _IdleMemoryRelease(IDLE_RELEASE_SECONDS)
    while True:
        try:
            connection = listener.accept()
        except (OSError, EOFError, AuthenticationError):
            continue  # a client that went away during the handshake
        with releaser.busy(), connection:
            _answer(connection)


class _Preparing:
    """The thread importing a worker's `prepare` module, while it does."""

    thread_id: int | None = None
    done = threading.Event()


def _prepare(module: str) -> None:
    """Import `module` on CPU time no one else wants: under SCHED_IDLE (Linux) this thread only
    runs on a core the run leaves idle, so the import does not slow the scans and chunks. Idle only
    where the process may put the thread back to normal (root, or a high RLIMIT_NICE): a call
    that arrives before the import is done does that (`_hurry_preparation`), so on a machine busy
    with other work the call never waits on a starved thread. Elsewhere the import runs at normal
    priority."""
    if _can_leave_idle():
        _Preparing.thread_id = threading.get_native_id()  # first: a call arriving meanwhile finds it
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))  # 0: this thread
    try:
        with contextlib.suppress(Exception):  # a module that fails to import fails again, and is reported, in the call
            importlib.import_module(module)
    finally:
        _Preparing.done.set()


def _can_leave_idle() -> bool:
    """Whether a thread of this process may go from SCHED_IDLE back to normal: tried on a thread of its own."""
    if not hasattr(os, "SCHED_IDLE"):
        return False
    allowed: list[bool] = []

    def attempt() -> None:
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
            allowed.append(True)
        except OSError:
            pass

    probe = threading.Thread(target=attempt, name="idle-probe")
    probe.start()
    probe.join()
    return bool(allowed)


def _hurry_preparation() -> None:
    """A call has come: an import still running at idle priority goes on at normal priority."""
    if _Preparing.thread_id is not None and not _Preparing.done.is_set():
        with contextlib.suppress(OSError):
            os.sched_setscheduler(_Preparing.thread_id, os.SCHED_OTHER, os.sched_param(0))


def release_free_memory() -> None:
    """Give freed memory back to the system: Arrow's pool, then the C heap (numpy, Python). Never
    raises: it runs as a signal handler, which may interrupt a call."""
    with contextlib.suppress(Exception):
        pa.default_memory_pool().release_unused()
    with contextlib.suppress(Exception):  # malloc_trim is glibc's
        ctypes.CDLL(None).malloc_trim(0)


class _IdleMemoryRelease:
    """Between chunks a warm worker reuses its freed memory at once (that is the point of it), but
    one left idle, while Silver -> Gold and the report run, should not sit on it (about two thirds
    of it comes back: bench/README.md). A thread notices `seconds` of idleness and
    signals the main thread (SIGUSR1), which does the release: Arrow's allocator (mimalloc) only
    returns the memory of the thread that asks, and the main thread is the one that did the work."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._lock = threading.Lock()
        self._busy = False
        self._released = True
        self._since = time.monotonic()
        self._main = threading.main_thread().ident
        signal.signal(signal.SIGUSR1, lambda _signum, _frame: release_free_memory())
        threading.Thread(target=self._watch, name="idle-memory-release", daemon=True).start()

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        with self._lock:
            self._busy, self._released = True, False
        try:
            yield
        finally:
            with self._lock:
                self._busy, self._since = False, time.monotonic()

    def _watch(self) -> None:
        while True:
            time.sleep(self._seconds / 4)
            with self._lock:
                due = not self._busy and not self._released and time.monotonic() - self._since >= self._seconds
                self._released = self._released or due
            if due:  # a call starting meanwhile is fine: only memory already freed is given back
                signal.pthread_kill(self._main, signal.SIGUSR1)


def _answer(connection: Connection) -> None:
    try:
        function, args, wants_progress = connection.recv()
    except (EOFError, OSError):
        return
    _hurry_preparation()

    def report(percent: int, message: str) -> None:
        with contextlib.suppress(OSError, EOFError):  # the caller is gone: the work goes on to its atomic end
            connection.send((_PROGRESS, percent, message))

    try:
        reply: tuple[str, Any] = (_DONE, function(*args, progress=report) if wants_progress else function(*args))
    except Exception as error:  # noqa: BLE001 - the caller re-raises it in its own process
        if not isinstance(error, PipelineError):  # a bug: keep where it happened
            error.add_note(f"in warm worker {os.getpid()}:\n{traceback.format_exc()}")
        reply = (_FAILED, error)
    try:
        connection.send(reply)
    except (OSError, EOFError):  # the caller is gone (its task was stopped)
        return
    except Exception:  # noqa: BLE001 - a value or exception that does not pickle
        value = reply[1]
        connection.send((_FAILED, RuntimeError(f"{type(value).__name__}: {value}")))
