"""A data root on object storage (`s3://bucket/prefix`) against a real S3-compatible server
(SeaweedFS on 127.0.0.1, tests/s3_server.py): the same gold as a local run, table for table,
through new days, maintenance commands, SIGKILLs, two hosts racing, and the store's faults."""
from __future__ import annotations

import gzip
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.generator import generate_bronze
from tests.conftest import REPO, run_cli
from tests.gold_helpers import GOLD_NAMES, ORDERS, assert_gold_equal, read_gold, read_orders
from tests.s3_server import S3Server
from tests.test_luigi_native import can_unshare
from tests.test_scheduler import api, start_luigid

CONFIG = "[pipeline]\nchunk_rows = 1500\n"  # several chunks per file: chunk tasks, not only small-file groups


@pytest.fixture(scope="module")
def bronze(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Plain files in date folders, a gzip one and a file with a bad header (it fails alone)."""
    folder = tmp_path_factory.mktemp("source") / "bronze"
    generate_bronze(folder, rows=9_000, files=3, seed=11, date_folders=True)
    first = sorted(folder.rglob("*.csv"))[0]
    (first.parent / "extra.csv.gz").write_bytes(gzip.compress(first.read_bytes()[:40_000].rsplit(b"\n", 1)[0] + b"\n"))
    (folder / "broken.csv").write_text("not,a,sales,header\n1,2,3,4\n")
    return folder


def environment(server: S3Server, tmp_path: Path, name: str = "host") -> dict[str, str]:
    cfg = tmp_path / f"{name}.cfg"
    cfg.write_text(CONFIG)
    return {**server.env(), "XDG_STATE_HOME": str(tmp_path / name / "state-home"), "LUIGI_CONFIG_PATH": str(cfg)}


def s3_gold(server: S3Server, root: str) -> dict[str, pa.Table]:
    """The gold tables and the orders dataset on the store, read as read_gold reads a local root."""
    tables = {name: pq.read_table(io.BytesIO(server.read(root, f"gold/{name}.parquet"))).replace_schema_metadata(None)
              for name in GOLD_NAMES}
    with tempfile.TemporaryDirectory() as folder:
        for key in server.keys(root, "gold/orders/"):
            local = Path(folder, key)
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_bytes(server.read(root, key))
        tables[ORDERS] = read_orders(Path(folder, "gold", "orders"))
    return tables


def run(root: str | Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess:
    return run_cli("--data-root", str(root), "--workers", "2", *extra, env=env)


def local_twin(tmp_path: Path, bronze: Path, env: dict[str, str], name: str = "local") -> Path:
    root = tmp_path / name
    shutil.copytree(bronze, root / "bronze")
    local_env = {k: v for k, v in env.items() if not k.startswith("AWS_")}
    assert run(root, local_env, "--until", "gold").returncode == 1  # broken.csv fails alone; gold is what twins compare
    return root


def test_an_s3_root_gives_the_gold_of_a_local_run_through_new_days_and_every_maintenance_command(
        s3_server: S3Server, bronze: Path, tmp_path: Path) -> None:
    env = environment(s3_server, tmp_path)
    local_env = {k: v for k, v in env.items() if not k.startswith("AWS_")}
    root = s3_server.fresh_root("e2e")
    s3_server.upload_folder(bronze, root)
    local = local_twin(tmp_path, bronze, env)
    first = run(root, env)
    assert first.returncode == 1, first.stdout + first.stderr
    assert "FAILED broken.csv" in first.stdout and "Traceback" not in first.stdout + first.stderr
    assert_gold_equal(s3_gold(s3_server, root), read_gold(local), "first run")
    keys = s3_server.keys(root)
    assert "report/index.html" in keys and not [k for k in keys if ".tmp-" in k]
    assert not [k for k in keys if k.startswith(("state/", "staging/"))], "the state and staged copies stay on local disk"
    assert (tmp_path / "host" / "state-home" / "sales-pipeline" / "s3").is_dir()
    # the runs after the first stop at gold: only the first's report is checked here (test_report draws it)
    again = run(root, env, "--until", "gold")
    assert again.returncode == 1 and "nothing to do" in again.stdout.lower(), again.stdout

    # the next day: one new file, on both roots
    day = tmp_path / "day2"
    generate_bronze(day, rows=2_000, files=1, seed=12)
    new = sorted(day.rglob("*.csv"))[0]
    s3_server.client().put_object(Bucket=s3_server.bucket, Key=f"{root.removeprefix('s3://' + s3_server.bucket + '/')}/bronze/zz/next.csv",
                                  Body=new.read_bytes())
    (local / "bronze" / "zz").mkdir()
    shutil.copy(new, local / "bronze" / "zz" / "next.csv")
    assert run(root, env, "--until", "gold").returncode == 1 and run(local, local_env, "--until", "gold").returncode == 1
    assert_gold_equal(s3_gold(s3_server, root), read_gold(local), "the next day")

    # maintenance commands do on object storage what they do on a local folder
    plain = sorted(p.relative_to(bronze).as_posix() for p in bronze.rglob("*.csv"))[0]
    for command in (["--reprocess", plain], ["--forget", "broken.csv"], ["--rebuild-gold"], ["--reprocess-all"]):
        if command[0] == "--forget":
            s3_server.client().delete_object(Bucket=s3_server.bucket,
                                             Key=f"{root.removeprefix('s3://' + s3_server.bucket + '/')}/bronze/broken.csv")
            (local / "bronze" / "broken.csv").unlink()
        on_s3, on_disk = run(root, env, *command, "--until", "gold"), run(local, local_env, *command, "--until", "gold")
        assert on_s3.returncode == on_disk.returncode, (command, on_s3.stdout, on_disk.stdout)
        assert "Traceback" not in on_s3.stdout + on_s3.stderr, on_s3.stdout + on_s3.stderr
        assert_gold_equal(s3_gold(s3_server, root), read_gold(local), " ".join(command))
    status = run_cli("status", "--data-root", root, env=env)
    assert status.returncode == 0 and f"gold: {len(GOLD_NAMES)} tables" in status.stdout, status.stdout
    # every run above left its record and log on the store, listed as on a local root
    listed = run_cli("history", "--json", "--data-root", root, env=env)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    runs = json.loads(listed.stdout)["runs"]
    # seven runs; the --forget of broken.csv, never ingested, is refused at start and writes nothing
    commands = "\n".join(f"{r['command'][4:]} {r['exit_code']}" for r in runs)
    assert len(runs) == 6 and [r["exit_code"] for r in runs[:2]] == [1, 1], commands
    assert not any("--forget" in r["command"] for r in runs), commands
    assert runs[-1]["gold"]["orders"] == sum(read_gold(local)["monthly_sales_summary"].column("order_count").to_pylist())
    assert sum(k.endswith(".log") for k in s3_server.keys(root, "runs/history/")) == 6


def test_a_replaced_object_is_detected_even_with_the_same_size(s3_server: S3Server, tmp_path: Path) -> None:
    env = environment(s3_server, tmp_path)
    root = s3_server.fresh_root("replaced")
    assert run_cli("generate", "--rows", "2000", "--files", "2", "--data-root", root, env=env).returncode == 0
    assert run(root, env, "--until", "gold").returncode == 0
    key = f"{root.removeprefix('s3://' + s3_server.bucket + '/')}/bronze/sales_data_part_0001.csv"
    body = bytearray(s3_server.client().get_object(Bucket=s3_server.bucket, Key=key)["Body"].read())
    at = body.index(b"\n", 200) + 1
    body[at:at + 1] = b"9" if body[at:at + 1] != b"9" else b"8"  # one byte of one order id: same size, other content
    s3_server.client().put_object(Bucket=s3_server.bucket, Key=key, Body=bytes(body))
    result = run(root, env, "--until", "gold")
    assert result.returncode == 1, result.stdout
    assert "sales_data_part_0001.csv: bronze file changed since it was ingested" in result.stdout


def test_sigkill_at_random_instants_then_a_run_to_the_end_gives_the_from_scratch_gold(
        s3_server: S3Server, bronze: Path, tmp_path: Path) -> None:
    env = environment(s3_server, tmp_path)
    # the reference: an uninterrupted run on a local twin (that an s3 root's gold is a local root's
    # is the end-to-end test's claim)
    expected = read_gold(local_twin(tmp_path, bronze, env, "reference"))
    chance = random.Random(int(os.environ.get("KILL_SEED", "5")))
    root = s3_server.fresh_root("killed")
    s3_server.upload_folder(bronze, root)
    kills = int(os.environ.get("KILL_TRIALS", "3"))
    for trial in range(kills):
        process = subprocess.Popen([sys.executable, str(REPO / "run.py"), "--data-root", root, "--workers", "2", "--until", "gold"],
                                   cwd=REPO, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)
        time.sleep(chance.uniform(0.6, 3.0))
        os.killpg(process.pid, signal.SIGKILL)  # the run and every task process of it
        process.wait()
        assert not [k for k in s3_server.keys(root) if ".tmp-" in k], f"trial {trial}: a temporary object is visible"
    final = run(root, env, "--until", "gold")
    assert final.returncode == 1, final.stdout
    assert_gold_equal(s3_gold(s3_server, root), expected, f"after {kills} SIGKILLs")


@pytest.mark.skipif(not can_unshare(), reason="needs root and unshare --uts to give a run another host name")
def test_two_hosts_racing_for_gold_on_one_s3_root_build_it_once(s3_server: S3Server, bronze: Path, tmp_path: Path) -> None:
    """Each host its own state folder and host name; first each with its own local scheduler (by
    mistake), started at the same instant, then both through one luigid."""
    root = s3_server.fresh_root("hosts")
    s3_server.upload_folder(bronze, root)
    local = local_twin(tmp_path, bronze, environment(s3_server, tmp_path, "local-cfg"))

    def host(name: str, *extra: str, start_at: float = 0.0) -> subprocess.Popen:
        env = environment(s3_server, tmp_path, name)
        wait = f'python3 -c "import time; time.sleep(max(0, {start_at} - time.time()))" && ' if start_at else ""
        command = [sys.executable, str(REPO / "run.py"), "--data-root", root, "--workers", "2", "--until", "gold", *extra]
        return subprocess.Popen(["unshare", "--uts", "sh", "-c", f'hostname {name} && {wait}exec "$@"', "sh", *command], cwd=REPO,
                                env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    start = time.time() + 2.0
    racing = [host("host-a", start_at=start), host("host-b", start_at=start)]
    outputs = [p.communicate(timeout=300)[0] for p in racing]
    assert [p.returncode for p in racing] == [1, 1], outputs  # broken.csv fails on both, nothing else
    builders = [out for out in outputs if "gold: merged" in out]
    assert len(builders) == 1, outputs
    assert sum("this run cleans silver only" in out or "is built on host" in out for out in outputs) == 1, outputs
    owners = [name for name in ("host-a", "host-b") if list((tmp_path / name / "state-home").rglob("gold_state.sqlite"))]
    assert len(owners) == 1, owners
    assert_gold_equal(s3_gold(s3_server, root), read_gold(local), "two hosts racing vs one local run")

    (tmp_path / "luigid").mkdir()
    for luigid_port in start_luigid(tmp_path / "luigid"):
        day = tmp_path / "day2"
        generate_bronze(day, rows=3_000, files=1, seed=13)
        new = sorted(day.rglob("*.csv"))[0]
        prefix = root.removeprefix(f"s3://{s3_server.bucket}/")
        s3_server.client().put_object(Bucket=s3_server.bucket, Key=f"{prefix}/bronze/zz/next.csv", Body=new.read_bytes())
        (local / "bronze" / "zz").mkdir()
        shutil.copy(new, local / "bronze" / "zz" / "next.csv")
        scheduler = ("--scheduler-host", "127.0.0.1", "--scheduler-port", str(luigid_port))
        both = [host("host-a", *scheduler), host("host-b", *scheduler)]
        outputs = [p.communicate(timeout=300)[0] for p in both]
        assert [p.returncode for p in both] == [1, 1], outputs
        done = api(luigid_port, "task_list", {"status": "DONE", "upstream_status": "", "search": ""})
        assert [task["name"] for task in done.values()].count("SilverToGold") == 1
        local_env = {k: v for k, v in environment(s3_server, tmp_path, "local-cfg").items() if not k.startswith("AWS_")}
        assert run(local, local_env, "--until", "gold").returncode == 1
        assert_gold_equal(s3_gold(s3_server, root), read_gold(local), "the next day through one luigid")


# Each fault is one row of object_client's error table, one path: the default run keeps the retried one and the
# one where the server answers (nothing written); the other rows are the slow tier's.
@pytest.mark.parametrize("fault", [pytest.param("no such bucket", marks=pytest.mark.slow),
                                   pytest.param("wrong credentials", marks=pytest.mark.slow), "unreachable endpoint", "access denied"])
def test_store_faults_end_in_one_line_exit_2_and_nothing_written(s3_server: S3Server, tmp_path: Path, fault: str) -> None:
    env = environment(s3_server, tmp_path)
    root = s3_server.fresh_root("faults")
    assert run_cli("generate", "--rows", "500", "--files", "1", "--data-root", root, env=env).returncode == 0
    before = s3_server.keys(root)
    expected = {"no such bucket": "the bucket does not exist", "wrong credentials": "the credentials were refused",
                "unreachable endpoint": "cannot be reached", "access denied": "access denied"}[fault]
    if fault == "no such bucket":
        root_used = root.replace(s3_server.bucket, "no-such-bucket-here")
    else:
        root_used = root
    if fault == "wrong credentials":
        env["AWS_SECRET_ACCESS_KEY"] = "not-the-secret"
    elif fault == "unreachable endpoint":
        env["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9"  # the discard port: nothing listens
    elif fault == "access denied":
        env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"] = s3_server.read_only_key, s3_server.read_only_secret
    started = time.monotonic()
    result = run(root_used, env)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in (result.stdout + result.stderr).splitlines() if expected in line]
    assert len(lines) == 1 and "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    assert s3_server.keys(root) == before, "nothing is written"
    assert time.monotonic() - started < 120, "bounded retries"


@pytest.mark.slow  # the checks read through any store (file_digest): test_faults and test_no_wrong_number prove them locally
def test_bytes_the_store_returns_other_than_were_sent_never_reach_gold(s3_server: S3Server, tmp_path: Path) -> None:
    """An object whose bytes changed on the store after they were sent (what a store mangling
    uploads returns): a silver part is refused by its recorded checksum before it is merged, and a
    gold table is rewritten from the state, never kept or upserted."""
    env = environment(s3_server, tmp_path)
    root = s3_server.fresh_root("corrupt")
    prefix = root.removeprefix(f"s3://{s3_server.bucket}/")
    assert run_cli("generate", "--rows", "3000", "--files", "2", "--data-root", root, env=env).returncode == 0
    assert run(root, env, "--until", "silver").returncode == 0
    part = next(k for k in s3_server.keys(root, "silver/") if k.endswith(".parquet"))
    body = bytearray(s3_server.read(root, part))
    body[len(body) // 2] ^= 0x01
    s3_server.client().put_object(Bucket=s3_server.bucket, Key=f"{prefix}/{part}", Body=bytes(body))
    refused = run(root, env, "--until", "gold")
    assert refused.returncode != 0 and "is corrupt or truncated" in refused.stdout + refused.stderr, refused.stdout
    assert not [k for k in s3_server.keys(root) if k.startswith("gold/") and k.endswith(".parquet")], "no gold from such bytes"
    assert "Traceback" not in refused.stdout + refused.stderr
    source = part.split("/")[1]
    assert run(root, env, "--until", "gold", "--reprocess", source).returncode == 0
    expected = s3_gold(s3_server, root)
    table = f"{prefix}/gold/daily_sales.parquet"
    body = bytearray(s3_server.client().get_object(Bucket=s3_server.bucket, Key=table)["Body"].read())
    body[len(body) // 2] ^= 0x01
    s3_server.client().put_object(Bucket=s3_server.bucket, Key=table, Body=bytes(body))
    repaired = run(root, env, "--until", "gold")
    assert repaired.returncode == 0, repaired.stdout
    assert_gold_equal(s3_gold(s3_server, root), expected, "a flipped gold object, repaired")


@pytest.mark.parametrize(("root", "said"), [("gs://bucket/prefix", "the scheme gs:// is not supported"),
                                            ("s3://", "name a bucket")])
def test_a_data_root_of_another_scheme_or_without_a_bucket_is_refused_in_one_line(tmp_path: Path, root: str, said: str) -> None:
    result = run_cli("--data-root", root, env={"XDG_STATE_HOME": str(tmp_path)})
    assert result.returncode == 2, result.stdout + result.stderr
    assert said in result.stdout + result.stderr and "Traceback" not in result.stdout + result.stderr
