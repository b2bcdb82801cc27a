"""Coordination on object storage (pipeline.storage.lease) against a real S3-compatible server:
create-once has one winner, the gold lease excludes, is renewed while its holder lives, and is
taken over only once a killed holder's lease expired."""
from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from pipeline.errors import PipelineError
from pipeline.storage import lease
from tests.conftest import REPO
from tests.s3_server import S3Server


def _prefix(name: str) -> str:
    return f"lease-tests/{name}-{uuid.uuid4().hex[:8]}"


def test_of_eight_writers_creating_one_key_at_once_exactly_one_wins(s3_env: S3Server) -> None:
    key, barrier, won = f"{_prefix('once')}/claim.json", threading.Barrier(8), []

    def create(n: int) -> None:
        barrier.wait()
        won.append((n, lease.create_once(s3_env.bucket, key, f"writer {n}".encode())))

    threads = [threading.Thread(target=create, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [n for n, ok in won if ok]
    assert len(winners) == 1, won
    body = s3_env.client().get_object(Bucket=s3_env.bucket, Key=key)["Body"].read()
    assert body == f"writer {winners[0]}".encode(), "the first object stays in place"


def test_the_lease_excludes_names_its_holder_and_is_taken_at_once_when_released(s3_env: S3Server) -> None:
    prefix = _prefix("exclude")
    with lease.ObjectLease(s3_env.bucket, prefix, "Silver -> Gold of test", wait_seconds=0) as held:
        held.check()
        assert lease.lease_held(s3_env.bucket, prefix)
        started = time.monotonic()
        with pytest.raises(PipelineError, match=r"Silver -> Gold of test is locked by .* pid \d+ \(s3://.*\); wait for that run"):
            with lease.ObjectLease(s3_env.bucket, prefix, "Silver -> Gold of test", wait_seconds=1.0):
                pass
        assert time.monotonic() - started >= 1.0
    assert not lease.lease_held(s3_env.bucket, prefix)
    started = time.monotonic()
    with lease.ObjectLease(s3_env.bucket, prefix, "again", wait_seconds=0):
        assert time.monotonic() - started < 2.0


def test_renewal_keeps_a_live_holders_lease_past_its_time(s3_env: S3Server) -> None:
    prefix = _prefix("renew")
    with lease.ObjectLease(s3_env.bucket, prefix, "holder", wait_seconds=0, ttl_seconds=2.0) as held:
        for _ in range(3):
            time.sleep(2.0)
            with pytest.raises(PipelineError, match="is locked by"):
                with lease.ObjectLease(s3_env.bucket, prefix, "contender", wait_seconds=0.3):
                    pass
            held.check()


HOLDER = """
import sys, time
from pipeline.storage import lease
with lease.ObjectLease(sys.argv[1], sys.argv[2], "killed holder", wait_seconds=0, ttl_seconds=3.0):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_sigkilled_holders_lease_is_taken_at_once_here_and_after_it_expired_elsewhere(s3_env: S3Server) -> None:
    prefix = _prefix("killed")
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, s3_env.bucket, prefix], cwd=REPO, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(PipelineError, match="is locked by"):  # alive: excluded
        with lease.ObjectLease(s3_env.bucket, prefix, "contender", wait_seconds=0):
            pass
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    started = time.monotonic()
    with lease.ObjectLease(s3_env.bucket, prefix, "next holder on this host", wait_seconds=0) as held:
        held.check()
    assert time.monotonic() - started < 2.0
    # a holder on another host that died cannot be seen dying: its lease is waited out
    other = _prefix("elsewhere")
    record = {"holder": "host-z pid 7", "host": "host-z", "pid": 7, "expires": time.time() + 3.0, "released": False}
    assert lease.create_once(s3_env.bucket, f"{other}/000000000001.json", json.dumps(record).encode())
    started = time.monotonic()
    with pytest.raises(PipelineError, match="is locked by host-z pid 7"):
        with lease.ObjectLease(s3_env.bucket, other, "too early", wait_seconds=0):
            pass
    with lease.ObjectLease(s3_env.bucket, other, "after expiry", wait_seconds=10):
        waited = time.monotonic() - started
    assert 2.0 < waited < 6.0, waited


def _contend(bucket: str, prefix: str, log: str, start: float, env: dict[str, str]) -> None:
    os.environ.update(env)
    time.sleep(max(0.0, start - time.time()))
    with lease.ObjectLease(bucket, prefix, "racer", wait_seconds=30):
        entered = time.time()
        time.sleep(0.15)
        with open(log, "a") as out:
            out.write(f"{entered} {time.time()}\n")


def test_processes_racing_for_the_lease_at_the_same_instant_never_hold_it_together(s3_env: S3Server, tmp_path: Path) -> None:
    """LEASE_RACES races of three processes each, all at once on their own prefixes (the same races
    as one after another, in a third of the time)."""
    context = multiprocessing.get_context("spawn")
    trials = range(int(os.environ.get("LEASE_RACES", "3")))
    start = time.time() + 3.0  # every racer imported and waiting by then, on 2 cores
    prefixes = {trial: _prefix(f"race-{trial}") for trial in trials}  # one lease per race, three racers for it
    racers = {trial: [context.Process(target=_contend, args=(s3_env.bucket, prefixes[trial], str(tmp_path / f"race-{trial}.log"),
                                                             start, s3_env.env())) for _ in range(3)] for trial in trials}
    everyone = [racer for group in racers.values() for racer in group]
    for racer in everyone:
        racer.start()
    for racer in everyone:
        racer.join(60)
    for trial, group in racers.items():
        assert [racer.exitcode for racer in group] == [0, 0, 0], f"trial {trial}"
        spans = sorted(tuple(map(float, line.split())) for line in (tmp_path / f"race-{trial}.log").read_text().splitlines())
        assert len(spans) == 3, f"trial {trial}"
        assert all(earlier[1] <= later[0] for earlier, later in zip(spans, spans[1:])), f"trial {trial}: overlap {spans}"
