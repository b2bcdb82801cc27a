"""Coordination on object storage, where there is no flock: create-once objects and a renewed lease.

Both stand on one primitive of S3 (AWS since 2024, and the S3-compatible stores that follow it):
a PUT with `If-None-Match: *` creates the object only if no object has that key; of several
writers at the same instant exactly one succeeds, the others get 412 Precondition Failed.

The gold lease is a sequence of generation objects `<lock key>/<generation:012d>.json`. Whoever
creates generation g + 1 holds the lease; it may do so only when generation g is released or
expired. While held, a thread renews the holder's own generation (a new expiry every third of the
lease's time) and the holder calls `check()` right before it publishes, so a holder that stalled
past its expiry (and may have been overtaken) stops instead of publishing. A holder killed by
SIGKILL on another host leaves its lease live for at most `ttl_seconds`: the next holder waits
that long (the price of no kernel lock; the default keeps it short). On the same host a dead
holder's lease is taken at once, as a dead writer's temporary file is removed (pipeline.storage.atomic).
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time
from types import TracebackType
from typing import Any

from pipeline.errors import PipelineError
from pipeline.storage import object_client
from pipeline.storage.atomic import process_alive

LEASE_SECONDS = 30.0
POLL_SECONDS = 0.3
_SUFFIX = ".json"


def _client() -> Any:
    return object_client.client()


def create_once(bucket: str, key: str, body: bytes) -> bool:
    """Create `key` with `body` unless an object has that key; True if this call created it."""
    from botocore.exceptions import ClientError

    for attempt in range(5):
        try:
            _client().put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*")
            return True
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code == "PreconditionFailed" or status == 412:
                return False
            if code == "ConditionalRequestConflict" or status == 409:  # a racing write still in flight: ask again
                time.sleep(0.05 * (attempt + 1))
                continue
            raise
    return False


def _holder() -> str:
    return f"{socket.gethostname()} pid {os.getpid()}"


def _generations(bucket: str, prefix: str) -> list[int]:
    found = []
    paginator = _client().get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=f"{prefix}/"):
        for item in page.get("Contents", []):
            name = item["Key"].rsplit("/", 1)[-1]
            if name.endswith(_SUFFIX) and name[: -len(_SUFFIX)].isdigit():
                found.append(int(name[: -len(_SUFFIX)]))
    return sorted(found)


def _key(prefix: str, generation: int) -> str:
    return f"{prefix}/{generation:012d}{_SUFFIX}"


def _read(bucket: str, prefix: str, generation: int) -> dict | None:
    from botocore.exceptions import ClientError

    try:
        body = _client().get_object(Bucket=bucket, Key=_key(prefix, generation))["Body"].read()
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise
    try:
        record = json.loads(body)
        return record if isinstance(record, dict) else {}
    except ValueError:
        return {}  # a damaged lease record holds nothing


def _live(record: dict | None) -> bool:
    """Held now: not released, not expired, and (when its holder ran on this host) its holder alive,
    so a run killed here is followed at once, not after its lease's time."""
    if not record or record.get("released") or float(record.get("expires", 0)) <= time.time():
        return False
    pid = record.get("pid")
    return not (record.get("host") == socket.gethostname() and isinstance(pid, int) and not process_alive(pid))


def lease_held(bucket: str, prefix: str) -> bool:
    """Someone holds a live lease now."""
    with object_client.fault(f"s3://{bucket}/{prefix}"):
        generations = _generations(bucket, prefix)
        return bool(generations) and _live(_read(bucket, prefix, generations[-1]))


class ObjectLease:
    """An exclusive lease on object storage (see the module's docstring); a context manager that
    yields itself, with `check()` to call right before publishing."""

    def __init__(self, bucket: str, prefix: str, what: str, wait_seconds: float, ttl_seconds: float = LEASE_SECONDS) -> None:
        self.bucket, self.prefix, self.what = bucket, prefix.rstrip("/"), what
        self.wait_seconds, self.ttl_seconds = wait_seconds, ttl_seconds
        self.generation: int | None = None
        self.holder = _holder()
        self._expires = 0.0
        self._lost = ""
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    # --- taking and giving back
    def __enter__(self) -> ObjectLease:
        with object_client.fault(f"s3://{self.bucket}/{self.prefix}"):
            self._acquire()
        self._renewer = threading.Thread(target=self._renew_until_stopped, name="lease-renewal", daemon=True)
        self._renewer.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=10)
        if self.generation is None:
            return
        try:
            with object_client.fault(f"s3://{self.bucket}/{self.prefix}"):
                if not self._lost:
                    self._write({**self._record(time.time()), "released": True})
                older = [g for g in _generations(self.bucket, self.prefix) if g < self.generation]
                if older:
                    objects = [{"Key": _key(self.prefix, g)} for g in older[:1000]]
                    _client().delete_objects(Bucket=self.bucket, Delete={"Objects": objects, "Quiet": True})
        except Exception:  # noqa: BLE001 - giving back is best effort: the lease expires by itself
            if error is None:
                raise

    def _acquire(self) -> None:
        deadline = time.monotonic() + self.wait_seconds
        while True:
            generations = _generations(self.bucket, self.prefix)
            latest = generations[-1] if generations else 0
            record = _read(self.bucket, self.prefix, latest) if latest else None
            if not _live(record):
                expires = time.time() + self.ttl_seconds
                body = json.dumps(self._record(expires)).encode()
                if create_once(self.bucket, _key(self.prefix, latest + 1), body):
                    self.generation, self._expires = latest + 1, expires
                    return
                continue  # another taker created that generation first: look again
            if time.monotonic() >= deadline:
                holder = (record or {}).get("holder") or "another process"
                raise PipelineError(f"{self.what} is locked by {holder} (s3://{self.bucket}/{self.prefix}); "
                                    "wait for that run to finish and run again")
            time.sleep(POLL_SECONDS)

    def _record(self, expires: float) -> dict:
        return {"holder": self.holder, "host": socket.gethostname(), "pid": os.getpid(), "expires": expires, "released": False}

    # --- keeping it
    def _write(self, record: dict) -> None:
        assert self.generation is not None
        _client().put_object(Bucket=self.bucket, Key=_key(self.prefix, self.generation), Body=json.dumps(record).encode())

    def _renew_until_stopped(self) -> None:
        while not self._stop.wait(self.ttl_seconds / 3):
            try:
                if _generations(self.bucket, self.prefix)[-1:] != [self.generation]:
                    self._lost = "another holder took the lease"
                    return
                expires = time.time() + self.ttl_seconds
                self._write(self._record(expires))
                self._expires = expires
            except Exception:  # noqa: BLE001 - a missed renewal is retried; check() judges by the expiry
                continue

    def check(self) -> None:
        """Raise unless the lease is still ours and unexpired (call right before publishing)."""
        if self._lost or time.time() >= self._expires - 1.0:
            reason = self._lost or "it expired before this holder could renew it (a stalled process or an unreachable store)"
            raise PipelineError(f"{self.what}: lost the lease s3://{self.bucket}/{self.prefix} ({reason}); "
                                "nothing more was published; run again")
