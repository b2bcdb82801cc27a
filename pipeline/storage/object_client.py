"""The clients of an object-storage data root, configured once from AWS's own conventions, and
what their faults mean to a user.

pyarrow's S3 file system moves the bytes (ranged GETs, PUTs and multipart uploads in C++); the AWS
SDK (boto3) does what pyarrow's API lacks: listings with ETags, HEAD with ETag, conditional PUTs.
Both find the store from `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_S3`), both read credentials from
the environment, `AWS_PROFILE` and `~/.aws`, both retry transient faults (5xx, throttling, a
dropped connection) with back-off a bounded number of times before the task fails in one line.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import PurePath
from typing import Any

from pipeline.errors import EnvironmentProblem
from pipeline.storage.paths import FileStat

RETRY_ATTEMPTS = 6  # the first try and 5 retries, with the SDKs' standard exponential back-off
CONNECT_TIMEOUT_SECONDS = 5.0
REQUEST_TIMEOUT_SECONDS = 120.0
# S3-compatible stores differ in their support of the SDKs' newer default, streaming uploads with a
# trailing checksum (`aws-chunked`); one seen here stored the framing as the object's bytes. Where a
# custom endpoint is named, checksums are sent only where the API requires them unless the user set
# these AWS variables otherwise; the pipeline's own CRC-32 of every silver part and gold file (checked
# before each is used) is what guards the bytes end to end.
_CHECKSUM_DEFAULTS = {"AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
                      "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required"}


class StoreProblem(EnvironmentProblem):
    """Object storage refused or could not be reached: one line, exit 2, the same command resumes
    once it is fixed (a bucket that does not exist, credentials, access, the endpoint)."""


def endpoint() -> str | None:
    return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None


def _apply_checksum_defaults() -> None:
    if endpoint():
        for name, value in _CHECKSUM_DEFAULTS.items():
            os.environ.setdefault(name, value)


_clients: dict[str, Any] = {}


def _cached(name: str, make: Any) -> Any:
    """One client per process: clients are not fork-safe, so a forked task process makes its own."""
    key = f"{name}-{os.getpid()}"
    if key not in _clients:
        _clients[key] = make()
    return _clients[key]


def filesystem(root: PurePath) -> Any:
    """pyarrow's S3 file system for the bucket of `root`."""
    def make() -> Any:
        from pyarrow import fs

        _apply_checksum_defaults()
        options: dict[str, Any] = {
            "retry_strategy": fs.AwsStandardS3RetryStrategy(max_attempts=RETRY_ATTEMPTS),
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            "request_timeout": REQUEST_TIMEOUT_SECONDS,
        }
        url = endpoint()
        if url:
            scheme, _, host = url.rpartition("://")
            options.update(endpoint_override=host or url, scheme=scheme or "https")
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if region:
            options["region"] = region
        elif not url:  # on AWS itself: the bucket's own region, as `FileSystem.from_uri` finds it
            with fault(root):
                options["region"] = fs.resolve_s3_region(root.parts[0])
        return fs.S3FileSystem(**options)

    return _cached(f"fs-{root.parts[0]}", make)


_sessions: list[Any] = []


def _session() -> Any:
    """One SDK session for the process and the task processes forked from it: a session holds no
    connection (clients do), and the S3 model it has parsed makes each forked process's client
    cost 8 ms instead of 0.26 s (a new session parses it again: 0.26 s for every task process)."""
    if not _sessions:
        import boto3

        _sessions.append(boto3.session.Session())
    return _sessions[0]


def client() -> Any:
    """The AWS SDK's S3 client (it reads endpoint, credentials, profile and region itself)."""
    def make() -> Any:
        from botocore.config import Config

        _apply_checksum_defaults()
        config = Config(retries={"max_attempts": RETRY_ATTEMPTS, "mode": "standard"},
                        connect_timeout=CONNECT_TIMEOUT_SECONDS, read_timeout=REQUEST_TIMEOUT_SECONDS)
        return _session().client("s3", config=config)

    return _cached("boto3", make)


# What a fault means, in the words of the SDKs' error codes (boto3) or messages (pyarrow, which
# exposes no codes). Anything else stays the SDK's own text.
_MEANINGS = (
    (("NoSuchBucket", "bucket does not exist"), "the bucket does not exist"),
    (("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken", "NoCredentials",
      "Unable to locate credentials", "credentials"), "the credentials were refused (check AWS_ACCESS_KEY_ID / "
     "AWS_SECRET_ACCESS_KEY, AWS_PROFILE or ~/.aws)"),
    (("AccessDenied", "ACCESS_DENIED", "Forbidden", "403"), "access denied"),
    (("NETWORK_CONNECTION", "Could not connect", "EndpointConnectionError", "Connection refused", "timed out",
      "curlCode", "Failed to connect"), f"the store cannot be reached (endpoint {endpoint() or 'AWS'})"),
)


def meaning(error: BaseException) -> str:
    text = f"{type(error).__name__} {error} {_code(error)}"
    for needles, said in _MEANINGS:
        if any(needle in text for needle in needles):
            return said
    return str(error).splitlines()[0] if str(error) else type(error).__name__


def _code(error: BaseException) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


@contextlib.contextmanager
def fault(where: PurePath | str) -> Iterator[None]:
    """A store fault as one line naming the object; a missing object stays FileNotFoundError."""
    try:
        yield
    except FileNotFoundError:
        raise
    except StoreProblem:
        raise
    except Exception as error:  # noqa: BLE001 - only the SDKs' faults reach here, each said in one line
        if not _is_sdk_fault(error):
            raise
        if _code(error) in ("NoSuchKey", "404", "NotFound"):
            raise FileNotFoundError(str(where)) from error
        raise StoreProblem(f"object storage: {where}: {meaning(error)}") from None


def _is_sdk_fault(error: BaseException) -> bool:
    module = type(error).__module__
    return isinstance(error, OSError) or module.startswith(("botocore", "boto3", "urllib3"))


def _split(path: PurePath) -> tuple[str, str]:
    parts = path.parts
    return parts[0], "/".join(parts[1:])


def head(path: PurePath) -> Any:
    """The object's FileStat (size, mtime, ETag), or None when there is none."""
    bucket, key = _split(path)
    if not key:
        return None
    try:
        with fault(path):
            answer = client().head_object(Bucket=bucket, Key=key)
    except FileNotFoundError:
        return None
    modified = answer["LastModified"].timestamp()
    return FileStat(path, int(answer["ContentLength"]), int(modified * 1e9), etag=answer.get("ETag", "").strip('"'))


def list_objects(folder: PurePath, recursive: bool = True) -> list[Any]:
    """Every object under `folder/` (recursive, or its direct files only)."""
    bucket, key = _split(folder)
    prefix = f"{key}/" if key else ""
    options: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    if not recursive:
        options["Delimiter"] = "/"
    found = []
    with fault(folder):
        for page in client().get_paginator("list_objects_v2").paginate(**options):
            for item in page.get("Contents", []):
                if item["Key"].endswith("/"):
                    continue  # a folder marker some tools write
                path = type(folder)(f"{bucket}/{item['Key']}")
                found.append(FileStat(path, int(item["Size"]), int(item["LastModified"].timestamp() * 1e9),
                                      etag=item.get("ETag", "").strip('"')))
    return found


def any_under(folder: PurePath) -> bool:
    bucket, key = _split(folder)
    with fault(folder):
        answer = client().list_objects_v2(Bucket=bucket, Prefix=f"{key}/" if key else "", MaxKeys=1)
    return bool(answer.get("KeyCount") or answer.get("Contents"))


def check_bucket(root: PurePath) -> None:
    """The bucket exists and these credentials may list it: said in one line before any work."""
    bucket, key = _split(root)
    with fault(root):
        client().list_objects_v2(Bucket=bucket, Prefix=f"{key}/" if key else "", MaxKeys=1)


def delete_objects(paths: list[PurePath]) -> None:
    """Delete objects, 1,000 per request; a missing one is no error."""
    by_bucket: dict[str, list[str]] = {}
    for path in paths:
        bucket, key = _split(path)
        by_bucket.setdefault(bucket, []).append(key)
    for bucket, keys in by_bucket.items():
        for first in range(0, len(keys), 1000):
            batch = [{"Key": key} for key in keys[first:first + 1000]]
            with fault(f"s3://{bucket}"):
                answer = client().delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
            errors = answer.get("Errors") or []
            if errors:
                first_error = errors[0]
                raise StoreProblem(f"object storage: s3://{bucket}/{first_error.get('Key')}: cannot delete "
                                   f"({first_error.get('Code')}: {first_error.get('Message')})")
