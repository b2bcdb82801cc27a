"""No wrong number, ever: routes to wrong or stale gold with exit 0, each closed by its mechanism.

Every case ends in gold equal, table for table, to a from-scratch run on the same final inputs,
or in one line and a non-zero exit with no gold changed. The bit-flip tests damage the real state
file and the real gold files, then run the real Silver -> Gold step on them.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.contract import GOLD_TABLES
from pipeline.errors import PipelineError
from pipeline.generator import generate_bronze
from pipeline.gold.aggregates import GRAIN, sum_aggregates
from pipeline.gold.step import is_published, merge_and_publish
from pipeline.settings import Settings
from pipeline.storage.layout import DataLayout
from tests.conftest import HEADER, run_cli

FLIP_TRIALS = int(os.environ.get("BITFLIP_TRIALS", "6"))
FLIP_SOAK_TRIALS = int(os.environ.get("BITFLIP_SOAK_TRIALS", "60"))


def gold(root: Path) -> dict[str, pa.Table]:
    return {n: pq.read_table(root / "gold" / f"{n}.parquet").replace_schema_metadata(None) for n in GOLD_TABLES}


def assert_same_gold(root: Path, reference: Path) -> None:
    got, expected = gold(root), gold(reference)
    for name in GOLD_TABLES:
        assert got[name].equals(expected[name]), f"gold/{name} differs from a from-scratch run"


def one_error_line(result: subprocess.CompletedProcess) -> str:
    text = result.stdout + result.stderr
    assert "Traceback" not in text, text
    lines = [line for line in text.splitlines() if line.startswith(("ERROR", "FAILED"))]
    assert lines, text
    return lines[0]


@pytest.fixture(scope="module")
def in_gold(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root whose three generated files went through a complete run to gold, run once: its
    gold is also the from-scratch gold of those three files. A test starts from a copy (`gold_root`)."""
    root = tmp_path_factory.mktemp("in-gold") / "data"
    generate_bronze(root / "bronze", rows=3_000, files=3, seed=12)
    assert run_cli("--data-root", str(root), "--until", "gold").returncode == 0
    return root


def gold_root(tmp_path: Path, in_gold: Path) -> Path:
    """A copy of `in_gold` (copy2 keeps mtimes; the new inodes make the next run hash the files again).
    Its state folder comes along and with it the state id that owns gold: a test that empties the state
    folder needs its own run."""
    root = tmp_path / "data"
    shutil.copytree(in_gold, root)
    return root


# --- 1. an edit that keeps size and mtime ---------------------------------------------------------

def test_an_edit_that_keeps_size_and_mtime_is_caught_and_reprocess_gives_fresh_gold(tmp_path: Path) -> None:
    root, reference = tmp_path / "data", tmp_path / "reference"
    generate_bronze(root / "bronze", rows=3_000, files=2, seed=5)
    assert run_cli("--data-root", str(root), "--until", "gold").returncode == 0
    path = root / "bronze" / "sales_data_part_0002.csv"
    before = path.stat()
    text = path.read_text()
    first = text.index("\n") + 1  # the first data row's order id, same length, another value
    path.write_text(text[:first] + text[first:].replace("ORD-", "ORE-", 1))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # what `cp -p` or `touch -r` leaves
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    status = run_cli("status", "--data-root", str(root))
    assert "sales_data_part_0002.csv: CHANGED since ingest" in status.stdout, status.stdout
    refused = run_cli("--data-root", str(root), "--until", "gold")
    assert refused.returncode == 1
    assert "sales_data_part_0002.csv: bronze file changed since it was ingested" in one_error_line(refused) + refused.stdout
    redone = run_cli("--data-root", str(root), "--until", "gold", "--reprocess", "sales_data_part_0002.csv")
    assert redone.returncode == 0, redone.stdout + redone.stderr
    shutil.copytree(root / "bronze", reference / "bronze")
    assert run_cli("--data-root", str(reference), "--until", "gold").returncode == 0
    assert_same_gold(root, reference)


def test_a_file_whose_stat_alone_moved_is_hashed_once_and_its_new_stat_recorded(tmp_path: Path) -> None:
    """A hard link (or chmod, or a restore of the same bytes) moves ctime: the next run hashes the
    file, finds the same bytes, and records the new stat, so later runs do not read it whole again."""
    root = tmp_path / "data"
    generate_bronze(root / "bronze", rows=500, files=1, seed=3)
    assert run_cli("--data-root", str(root), "--until", "silver").returncode == 0
    path = root / "bronze" / "sales_data_part_0001.csv"
    manifest = root / "silver" / path.name / "_manifest.json"
    recorded = json.loads(manifest.read_text())["fingerprint"]
    os.link(path, tmp_path / "a-hard-link.csv")
    assert path.stat().st_ctime_ns != recorded["ctime_ns"]
    again = run_cli("--data-root", str(root), "--until", "silver")
    assert again.returncode == 0, again.stdout + again.stderr
    now = json.loads(manifest.read_text())["fingerprint"]
    assert now == {**recorded, "ctime_ns": path.stat().st_ctime_ns}


# --- 2. flipped bits in the state and in gold -----------------------------------------------------

@pytest.fixture(scope="module")
def merged_twice(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(a data root whose state and gold cover files 1-2, with the silver of file 3 ready;
    a reference root with gold of files 1-3 from scratch)."""
    base = tmp_path_factory.mktemp("flips")
    root, reference = base / "data", base / "reference"
    generate_bronze(root / "bronze", rows=6_000, files=3, seed=11)
    assert run_cli("--data-root", str(root), "--until", "silver").returncode == 0
    shutil.copytree(root, reference)
    merge_and_publish(DataLayout(root), Settings(data_root=str(root)), FILES[:2], "two")
    merge_and_publish(DataLayout(reference), Settings(data_root=str(reference)), FILES, "three")
    return root, reference


FILES = ["sales_data_part_0001.csv", "sales_data_part_0002.csv", "sales_data_part_0003.csv"]


def flip_a_bit(path: Path, rng: random.Random, start: int = 0) -> None:
    data = bytearray(path.read_bytes())
    at = rng.randrange(start, len(data))
    data[at] ^= 1 << rng.randrange(8)
    path.write_bytes(bytes(data))


def flip_a_stored_value(state_file: Path, rng: random.Random) -> str:
    """One bit of one stored value (or of its key), as a damaged page of the file would give."""
    with sqlite3.connect(state_file) as db:
        keys = [k for (k,) in db.execute("SELECT key FROM state ORDER BY key")]
        key = rng.choice(keys)
        (value,) = db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        value = bytearray(value)
        if rng.random() < 0.2:  # the key itself: the record is then missing under its own name
            db.execute("UPDATE state SET key = ? WHERE key = ?", (key + "x", key))
            return f"key {key}"
        at = rng.randrange(len(value))
        value[at] ^= 1 << rng.randrange(8)
        db.execute("UPDATE state SET value = ? WHERE key = ?", (bytes(value), key))
    return f"value {key} byte {at}"


def run_step_on_damage(base: Path, reference: Path, trial: int) -> str:
    """The Silver -> Gold step of a day with a new file, on damaged state or gold: it publishes the
    reference gold, or fails in one line (PipelineError) and the same step then publishes it."""
    layout = DataLayout(base)
    settings = Settings(data_root=str(base))
    try:
        outcome = merge_and_publish(layout, settings, FILES, f"trial-{trial}")
    except PipelineError as err:
        assert "\n" not in str(err)
        outcome = f"failed: {err}"
        merge_and_publish(layout, settings, FILES, f"trial-{trial}-again")
    assert_same_gold(base, reference)
    return outcome


def _read_only_on_a_match(where: str) -> bool:
    """A run's key texts: the merge reads them only to confirm a hash match (pipeline.gold.dedup),
    so a flip there is caught when a new key matches that run (the test below), not before."""
    name = where.split(" ")[1] if " " in where else ""
    return name.startswith("seen/") and name.endswith("/keys")


def _state_flips(tmp_path: Path, merged_twice: tuple[Path, Path], trials: int, seed: int) -> None:
    """`trials` damaged copies of the state, half of them a flipped bit anywhere in the file, half
    one bit of one stored value or key; each goes through the real Silver -> Gold step."""
    source, reference = merged_twice
    rng = random.Random(seed)
    missed = []
    for trial in range(trials):
        base = tmp_path / f"trial-{trial}"
        shutil.copytree(source, base)
        state_file = base / "state" / "gold_state.sqlite"
        where = flip_a_stored_value(state_file, rng) if trial % 2 else "file"
        if where == "file":
            flip_a_bit(state_file, rng, start=100)  # past SQLite's header: pages, free space, values
        outcome = run_step_on_damage(base, reference, trial)
        if where != "file" and not _read_only_on_a_match(where) and "state rebuilt" not in outcome:
            missed.append(where)
        shutil.rmtree(base)
    # A flip of a stored value the step reads is always caught (its checksum or its absence)
    assert not missed, missed


def test_a_damaged_run_of_seen_keys_is_caught_when_a_new_key_matches_it(tmp_path: Path, merged_twice: tuple[Path, Path]) -> None:
    source, reference = merged_twice
    base = tmp_path / "damaged"
    shutil.copytree(source, base)
    with sqlite3.connect(base / "state" / "gold_state.sqlite") as db:
        for key, value in db.execute("SELECT key, value FROM state WHERE key LIKE 'seen/%/keys'").fetchall():
            value = bytearray(value)
            value[len(value) // 2] ^= 0x10
            db.execute("UPDATE state SET value = ? WHERE key = ?", (bytes(value), key))
    assert "state rebuilt" in run_step_on_damage(base, reference, 0)  # file 3 repeats orders of files 1-2


def test_random_bit_flips_in_the_state_never_publish_a_wrong_table(tmp_path: Path, merged_twice: tuple[Path, Path]) -> None:
    _state_flips(tmp_path, merged_twice, FLIP_TRIALS, seed=19)


@pytest.mark.slow
def test_random_bit_flips_in_the_state_soak(tmp_path: Path, merged_twice: tuple[Path, Path]) -> None:
    _state_flips(tmp_path, merged_twice, FLIP_SOAK_TRIALS, seed=20)


def test_a_flipped_bit_in_a_gold_file_is_rewritten_not_upserted_or_kept(tmp_path: Path, merged_twice: tuple[Path, Path]) -> None:
    source, reference = merged_twice
    rng = random.Random(23)
    for trial, name in enumerate(GOLD_TABLES):
        base = tmp_path / f"gold-{trial}"
        shutil.copytree(source, base)
        layout = DataLayout(base)
        assert is_published(layout, "two")
        flip_a_bit(layout.gold_table_path(name), rng, start=4)
        assert not is_published(layout, "two")  # a run with nothing new would run the step again
        run_step_on_damage(base, reference, trial)
        assert is_published(layout, f"trial-{trial}")
        shutil.rmtree(base)


# --- 3. sums past int64 ---------------------------------------------------------------------------

@pytest.mark.parametrize("override", [
    ["--cleaning-max-quantity", "1000000000000000", "--cleaning-max-unit-price", "1"],
    ["--gold-top-products-n", str(2**70)],
    ["--gold-anomaly-top-n", "99999999999"],
    ["--gold-merge-batch-rows", str(10**12)],
])
def test_settings_whose_sums_could_not_be_exact_are_refused_at_start(tmp_path: Path, override: list[str]) -> None:
    root = tmp_path / "data"
    generate_bronze(root / "bronze", rows=200, files=1, seed=1)
    result = run_cli("--data-root", str(root), *override)
    assert result.returncode == 2, result.stdout + result.stderr
    assert one_error_line(result).startswith("ERROR config [")
    assert not (root / "silver").exists() and not (root / "gold").exists()


def test_a_total_past_int64_fails_in_one_line_instead_of_wrapping() -> None:
    from pipeline.gold.aggregates import DEFAULTED_MEASURES, Aggregates

    daily = GRAIN["daily"].schema
    big = pa.table({"sale_date": pa.array([0], pa.date32()), "sale_month": ["1970-01"], "region": ["north"], "category": ["fashion"],
                    "order_count": [1], "total_quantity": [2**62], "gross_revenue": pa.array([0], daily.field("gross_revenue").type),
                    "total_revenue": pa.array([0], daily.field("total_revenue").type),
                    "discount_sum": pa.array([0], daily.field("discount_sum").type),
                    **{m: pa.array([0], daily.field(m).type) for m in DEFAULTED_MEASURES}}).cast(daily)
    half = Aggregates({**Aggregates.empty(), "daily": big})
    with pytest.raises(PipelineError, match="total_quantity passes the int64 range"):
        sum_aggregates([half, half])
    assert sum_aggregates([half])["daily"].column("total_quantity").to_pylist() == [2**62]


# --- 4. a header longer than the head the reader looks at ------------------------------------------

def test_a_header_longer_than_4_mib_fails_its_file_alone_in_one_line(tmp_path: Path) -> None:
    root = tmp_path / "data"
    generate_bronze(root / "bronze", rows=300, files=1, seed=3)
    long_header = HEADER + "," + ",".join(f"extra_{i:07d}" for i in range(400_000))  # about 5.6 MB
    (root / "bronze" / "wide.csv").write_text(long_header + "\n" + "A1,x,fashion,1,1,0,north,2024-01-01,\n")
    result = run_cli("--data-root", str(root), "--until", "gold")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "wide.csv" in one_error_line(result) and "header row is longer than 4 MiB" in result.stdout
    assert pq.read_table(root / "gold" / "data_quality.parquet").column("source_file").to_pylist() == ["sales_data_part_0001.csv"]


# --- 5. upper-case extensions -------------------------------------------------------------------

def test_upper_case_extensions_are_read_and_look_alikes_are_named(tmp_path: Path) -> None:
    import gzip

    lower, upper = tmp_path / "lower", tmp_path / "upper"
    generate_bronze(lower / "bronze", rows=2_000, files=2, seed=8)
    (upper / "bronze" / "dir.csv").mkdir(parents=True)  # a folder named like an input
    first, second = sorted((lower / "bronze").glob("*.csv"))
    shutil.copy(first, upper / "bronze" / "sales_data_part_0001.CSV")
    (upper / "bronze" / "sales_data_part_0002.Csv.GZ").write_bytes(gzip.compress(second.read_bytes()))
    os.symlink("nowhere.csv", upper / "bronze" / "dangling.csv")
    assert run_cli("--data-root", str(lower), "--until", "gold").returncode == 0
    result = run_cli("--data-root", str(upper), "--until", "gold")
    assert result.returncode == 1, result.stdout + result.stderr  # what is not read is a FAILED line; gold is built
    status = run_cli("status", "--data-root", str(upper))
    assert "sales_data_part_0001.CSV" in status.stdout and "sales_data_part_0002.Csv.GZ" in status.stdout
    for text in (result.stdout + result.stderr, status.stdout + status.stderr):
        assert "dir.csv: a folder named like an input file" in text
        assert "dangling.csv: a symlink whose target does not exist" in text
    got, expected = gold(upper), gold(lower)
    for name in GOLD_TABLES:
        if name not in ("data_quality", "anomaly_records"):  # these name the files
            assert got[name].equals(expected[name]), name
    assert got["data_quality"].column("rows_in_gold").equals(expected["data_quality"].column("rows_in_gold"))


# --- 6. a deleted state folder on the gold owner -------------------------------------------------

def test_a_deleted_state_folder_is_rebuilt_and_the_next_files_reach_gold(tmp_path: Path, in_gold: Path) -> None:
    root, source = tmp_path / "data", in_gold / "bronze"
    names = sorted(p.name for p in source.glob("*.csv"))
    (root / "bronze").mkdir(parents=True)
    for name in names[:2]:
        shutil.copy(source / name, root / "bronze" / name)
    assert run_cli("--data-root", str(root), "--until", "gold").returncode == 0
    shutil.rmtree(root / "state")
    shutil.copy(source / names[2], root / "bronze" / names[2])
    again = run_cli("--data-root", str(root), "--until", "gold", "--json")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "cleans silver only" not in again.stdout + again.stderr
    status = run_cli("status", "--data-root", str(root))
    assert "0 pending" in status.stdout and "3 of 3 silver parts merged" in status.stdout, status.stdout
    assert_same_gold(root, in_gold)  # the from-scratch gold of the same three files


# --- 7. a full disk during Silver -> Gold ---------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path: Path):
    mount = tmp_path / "small-disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=640k", "tmpfs", str(mount)], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({made.stderr.strip()})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_during_silver_to_gold_ends_in_one_line_and_a_later_run_finishes(tmp_path: Path, small_disk: Path) -> None:
    root, reference = tmp_path / "data", tmp_path / "reference"
    generate_bronze(root / "bronze", rows=40_000, files=2, seed=4)
    shutil.copytree(root / "bronze", reference / "bronze")
    assert run_cli("--data-root", str(reference), "--until", "gold").returncode == 0
    on_small_disk = ["--data-root", str(root), "--until", "gold", "--pipeline-state-dir", str(small_disk / "state")]
    full = run_cli(*on_small_disk, timeout=40)
    assert full.returncode in (1, 2), full.stdout + full.stderr
    line = one_error_line(full)
    assert "full" in (full.stdout + full.stderr).lower(), line
    assert not list(root.rglob(".tmp-*"))
    assert full.stderr.strip() == "", full.stderr  # no log or traceback of SQLite's writer thread
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)  # room again
    roomy = run_cli(*on_small_disk)
    assert roomy.returncode == 0, roomy.stdout + roomy.stderr
    assert_same_gold(root, reference)


# --- 11. settings and folders that used to pass in silence ----------------------------------------

def test_a_misspelt_section_is_refused_in_one_line(tmp_path: Path) -> None:
    root = tmp_path / "data"
    generate_bronze(root / "bronze", rows=200, files=1, seed=1)
    config = tmp_path / "typo.cfg"
    config.write_text("[claening]\nmax_quantity = 5\n")
    for command in (["--data-root", str(root)], ["status", "--data-root", str(root)]):
        result = run_cli(*command, env={"LUIGI_CONFIG_PATH": str(config)})
        assert result.returncode == 2
        assert "[claening]: unknown section; did you mean [cleaning]?" in one_error_line(result)
    assert not (root / "silver").exists()


def test_a_symlink_loop_under_bronze_is_named_not_a_traceback(tmp_path: Path) -> None:
    root = tmp_path / "data"
    generate_bronze(root / "bronze", rows=200, files=1, seed=1)
    os.symlink("loop-b.csv", root / "bronze" / "loop-a.csv")
    os.symlink("loop-a.csv", root / "bronze" / "loop-b.csv")
    for command in (["--data-root", str(root), "--until", "gold"], ["status", "--data-root", str(root)]):
        result = run_cli(*command)
        text = result.stdout + result.stderr
        assert "Traceback" not in text and "loop-a.csv: a symlink loop" in text, text


# --- 9, 10. maintenance that resumes, and never changes data it cannot follow up -------------------

def test_a_forget_killed_after_dropping_silver_is_finished_by_the_same_command(tmp_path: Path) -> None:
    # its own run, not a copy of `in_gold`: a copy whose state folder is then emptied is not the gold
    # owner any more (the owner record names the state folder it was copied from)
    root, reference = tmp_path / "data", tmp_path / "reference"
    generate_bronze(root / "bronze", rows=3_000, files=3, seed=12)
    assert run_cli("--data-root", str(root), "--until", "gold").returncode == 0
    gone = "sales_data_part_0002.csv"
    (root / "bronze" / gone).unlink()
    # What a SIGKILL of `--forget` leaves after its deletions: gold unpublished, state and silver gone, gold tables kept
    for marker in (root / "gold").glob("_published-*.json"):
        marker.unlink()
    shutil.rmtree(root / "state")
    shutil.rmtree(root / "silver" / gone)
    again = run_cli("--data-root", str(root), "--until", "gold", "--forget", gone)
    assert again.returncode == 0, again.stdout + again.stderr
    shutil.copytree(root / "bronze", reference / "bronze")
    assert run_cli("--data-root", str(reference), "--until", "gold").returncode == 0
    assert_same_gold(root, reference)
    unknown = run_cli("--data-root", str(root), "--forget", "never-there.csv")
    assert unknown.returncode == 2 and "no silver of such a file" in one_error_line(unknown)


def test_an_interrupted_reprocess_all_resumes_without_cleaning_again_what_it_cleaned(tmp_path: Path, in_gold: Path) -> None:
    import json

    from pipeline.settings import silver_fingerprint

    root = gold_root(tmp_path, in_gold)
    config = tmp_path / "changed.cfg"
    config.write_text("[cleaning]\nmax_quantity = 15\n")
    env = {"LUIGI_CONFIG_PATH": str(config)}
    # the deletions of --reprocess-all, then a run that cleaned one file before it was killed
    started = run_cli("--data-root", str(root), "--until", "silver", "--reprocess-all", env=env)
    assert started.returncode == 0, started.stdout + started.stderr
    kept = root / "silver" / "sales_data_part_0001.csv" / "part-00001.parquet"
    kept_inode = kept.stat().st_ino
    shutil.rmtree(root / "silver" / "sales_data_part_0003.csv")
    marker = {"fingerprint": silver_fingerprint(Settings(max_quantity=15))}  # as a run killed before its end leaves it
    (root / "runs" / "reprocess-all.json").write_text(json.dumps(marker))
    resumed = run_cli("--data-root", str(root), "--until", "gold", "--reprocess-all", env=env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "reprocess-all: resuming" in resumed.stdout, resumed.stdout
    assert kept.stat().st_ino == kept_inode  # silver cleaned under the new settings is kept, not cleaned again
    assert not (root / "runs" / "reprocess-all.json").exists()
    fresh = tmp_path / "fresh"
    shutil.copytree(root / "bronze", fresh / "bronze")
    assert run_cli("--data-root", str(fresh), "--until", "gold", env=env).returncode == 0
    assert_same_gold(root, fresh)
    afresh = run_cli("--data-root", str(root), "--until", "gold", "--reprocess-all", env=env)
    assert "reprocess-all: dropped silver" in afresh.stdout  # once finished, the command starts afresh


def test_a_maintenance_command_with_an_unreachable_scheduler_changes_nothing(tmp_path: Path, in_gold: Path) -> None:
    import socket

    root = gold_root(tmp_path, in_gold)
    before = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if "runs" not in p.parts)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there once closed
    for command in (["--reprocess", "sales_data_part_0001.csv"], ["--rebuild-gold"], ["--reprocess-all"]):
        result = run_cli("--data-root", str(root), "--scheduler-host", "127.0.0.1", "--scheduler-port", str(port), *command)
        assert result.returncode == 2
        assert "cannot be reached" in one_error_line(result) and "nothing was changed" in result.stderr
        assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if "runs" not in p.parts) == before


# --- 12. a status and a summary that tell the truth ---------------------------------------------

def test_status_is_not_ok_with_a_gone_a_changed_or_an_unreadable_file(tmp_path: Path, in_gold: Path) -> None:
    import json

    root = gold_root(tmp_path, in_gold)
    clean = run_cli("status", "--data-root", str(root), "--json")
    assert clean.returncode == 0 and json.loads(clean.stdout)["ok"] is True
    (root / "bronze" / "sales_data_part_0002.csv").unlink()
    (root / "bronze" / "broken.csv.gz").write_bytes(b"\x1f\x8b\x08\x00 not really gzip")
    status = run_cli("status", "--data-root", str(root), "--json")
    account = json.loads(status.stdout)
    assert status.returncode == 1 and account["ok"] is False
    assert account["gone"] == ["sales_data_part_0002.csv"]
    states = {f["source_file"]: f["state"] for f in account["files"]}
    assert states["broken.csv.gz"] == "unreadable", states
    assert "broken.csv.gz: UNREADABLE: not a valid gzip stream" in status.stderr


def test_a_file_with_every_row_rejected_is_warned_about_in_summary_json_status_and_report(tmp_path: Path) -> None:
    import json

    root = tmp_path / "data"
    generate_bronze(root / "bronze", rows=1_000, files=1, seed=16)
    rows = [f"A{i},Widget,fashion,1,1.00,0,north,2024-01-01,x@y.z," for i in range(50)]  # a trailing comma: 10 fields
    (root / "bronze" / "trailing_comma.csv").write_text(HEADER + "\n" + "\n".join(rows) + "\n")
    result = run_cli("--data-root", str(root), "--json")
    assert result.returncode == 0, result.stderr
    warned = json.loads(result.stdout)["mostly_rejected"]
    assert [w["source_file"] for w in warned] == ["trailing_comma.csv"] and warned[0]["share"] == 1.0
    assert "WARNING trailing_comma.csv: 50 of its 50 rows rejected (100%, mostly malformed_row)" in result.stderr
    status = run_cli("status", "--data-root", str(root))
    assert "WARNING trailing_comma.csv: 50 of its 50 rows rejected" in status.stdout
    page = (root / "report" / "index.html").read_text()
    assert "Files mostly rejected" in page and "trailing_comma.csv" in page


# --- 8. a rebuild never leaves a reader without gold ---------------------------------------------

def test_rebuild_gold_with_a_corrupt_silver_part_keeps_the_published_gold_and_fails_in_one_line(tmp_path: Path, in_gold: Path) -> None:
    root = gold_root(tmp_path, in_gold)
    before = gold(root)
    part = root / "silver" / "sales_data_part_0002.csv" / "part-00001.parquet"
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0xFF
    part.write_bytes(bytes(data))
    rebuild = run_cli("--data-root", str(root), "--until", "gold", "--rebuild-gold")
    assert rebuild.returncode == 1
    assert "is corrupt or truncated" in one_error_line(rebuild) and "--reprocess sales_data_part_0002.csv" in rebuild.stdout
    after = gold(root)  # every table still there, as published before
    assert all(after[name].equals(before[name]) for name in GOLD_TABLES)
    redone = run_cli("--data-root", str(root), "--until", "gold", "--reprocess", "sales_data_part_0002.csv")
    assert redone.returncode == 0, redone.stdout + redone.stderr
    assert_same_gold(root, in_gold)  # the from-scratch gold of the same three files
