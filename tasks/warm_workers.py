"""Long-lived processes that do the chunk work of Luigi's short-lived task processes.

Why: with `--workers N` Luigi forks a fresh process for every task. A chunk task touches about
0.5 GB of new memory, and in a fresh process every page of it is a page fault: measured here,
0.1-0.7 s of kernel time per chunk on top of about 0.7 s of work. A warm process reuses its pages.
So `run.py` starts one warm worker per Luigi worker before the build; a chunk task (still one
Luigi task with its own target and progress) hands its call to a free warm worker and waits.

Nothing depends on them: a task finds them through an environment variable, and without it
(the `luigi` command, one worker, a test calling `luigi.build`) the call runs in the task's own
process. A warm worker dies with the run (PR_SET_PDEATHSIG); a call whose worker died fails
with one line, and the next run redoes that chunk, because its outputs are written atomically.
"""
from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import traceback
from contextlib import contextmanager
from multiprocessing import AuthenticationError
from multiprocessing.connection import Client, Connection, Listener
from typing import Any, Callable, Iterator, TypeVar

from pipeline.errors import PipelineError

WARM_WORKERS_ENV = "PIPELINE_WARM_WORKERS"
_PR_SET_PDEATHSIG = 1
T = TypeVar("T")


class WarmWorkerDied(PipelineError):
    """The warm worker running a call was killed (out of memory, SIGKILL) before it answered."""


def supported() -> bool:
    """Linux only: the workers need an abstract socket and a parent-death signal."""
    return sys.platform.startswith("linux")


@contextmanager
def warm_workers(count: int) -> Iterator[None]:
    """`count` warm workers for the duration of the block (none when count < 2: one Luigi worker
    runs its tasks in its own, already warm, process)."""
    if count < 2 or not supported():
        yield
        return
    authkey = os.urandom(16)
    address = f"\0pipeline-warm-{os.getpid()}-{authkey.hex()[:8]}"
    listener = Listener(address, family="AF_UNIX", authkey=authkey, backlog=max(8, 4 * count))
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_serve, args=(listener, os.getpid()), daemon=True, name=f"warm-worker-{i + 1}")
               for i in range(count)]
    for worker in workers:
        worker.start()
    # Only the workers hold the socket: when all of them are gone a call is refused, never left waiting.
    listener.close()
    os.environ[WARM_WORKERS_ENV] = f"{address.encode().hex()}:{authkey.hex()}"
    try:
        yield
    finally:
        os.environ.pop(WARM_WORKERS_ENV, None)
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.join(timeout=5)


def call(what: str, function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` in a warm worker when the run started some, else right here; `what`
    names the work in the one-line error of a worker that died.

    The function and its arguments are pickled (by reference for functions), so both must be
    module-level names and plain values.
    """
    target = os.environ.get(WARM_WORKERS_ENV)
    if not target:
        return function(*args)
    address_hex, authkey_hex = target.split(":")
    try:
        with Client(bytes.fromhex(address_hex).decode(), family="AF_UNIX", authkey=bytes.fromhex(authkey_hex)) as connection:
            connection.send((function, args))
            ok, value = connection.recv()
    except (ConnectionRefusedError, FileNotFoundError):  # every warm worker is gone: do it here
        return function(*args)
    except (EOFError, ConnectionResetError, BrokenPipeError):
        raise WarmWorkerDied(f"{what}: the warm worker process doing it died (killed, or out of memory); "
                             "run again to redo it") from None
    if ok:
        return value
    raise value


def die_with_parent(parent: int) -> None:
    """SIGKILL this process as soon as `parent` (the process that forked it) dies: a process
    whose run is gone must not go on writing beside the next run."""
    if not supported():
        return
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # it died before the signal was armed
        os.kill(os.getpid(), signal.SIGKILL)


def _serve(listener: Listener, parent: int) -> None:
    """A warm worker: answer one call at a time until the run ends."""
    die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the run; the run stops its workers
    while True:
        try:
            connection = listener.accept()
        except (OSError, EOFError, AuthenticationError):
            continue  # a client that went away during the handshake
        with connection:
            _answer(connection)


def _answer(connection: Connection) -> None:
    try:
        function, args = connection.recv()
    except (EOFError, OSError):
        return
    try:
        reply: tuple[bool, Any] = (True, function(*args))
    except Exception as error:  # noqa: BLE001 - the caller re-raises it in its own process
        if not isinstance(error, PipelineError):  # a bug: keep where it happened
            error.add_note(f"in warm worker {os.getpid()}:\n{traceback.format_exc()}")
        reply = (False, error)
    try:
        connection.send(reply)
    except (OSError, EOFError):  # the caller is gone (its task was stopped)
        return
    except Exception:  # noqa: BLE001 - a value or exception that does not pickle
        value = reply[1]
        connection.send((False, RuntimeError(f"{type(value).__name__}: {value}")))
