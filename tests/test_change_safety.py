"""Change-safe gold: no settings change, input change or maintenance command gives a wrong number
with exit 0. Every case ends either in a one-line refusal naming the cause and the command to run,
or in gold equal, table for table, to a from-scratch run on the same final inputs and settings."""
from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import HEADER, REPO, run_cli, write_bronze
from tests.gold_helpers import assert_gold_equal, copy_bronze, generated_bronze, layered_config, read_gold, run_gold, temp_files

NAMES = ["sales_data_part_0001.csv", "sales_data_part_0002.csv", "sales_data_part_0003.csv"]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three dirty generated files (duplicates across them included), written once."""
    return generated_bronze(tmp_path_factory, "generated", rows=9_000, files=3, seed=7)


@pytest.fixture(scope="module")
def in_gold(generated: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root whose three files went through a complete run to gold (default settings), run once;
    a test starts from a copy of it (`gold_root`)."""
    root = tmp_path_factory.mktemp("in-gold") / "data"
    copy_bronze(generated, root)
    run_gold(root)
    return root


def root_with(tmp_path: Path, name: str, generated: Path, names: list[str] | None = None) -> Path:
    root = tmp_path / name
    copy_bronze(generated, root, names)
    return root


def gold_root(tmp_path: Path, in_gold: Path) -> Path:
    """A copy of `in_gold` (copy2: mtimes kept; the new inodes make the next run hash the files again,
    and its gold step checks gold and writes nothing)."""
    root = tmp_path / "data"
    shutil.copytree(in_gold, root)
    return root


def fresh_gold(tmp_path: Path, bronze: Path, env: dict[str, str] | None = None) -> dict:
    """Gold of a from-scratch run on a copy of `bronze` as it is now."""
    root = tmp_path / f"fresh-{len(list(tmp_path.glob('fresh-*')))}"
    shutil.copytree(bronze, root / "bronze")
    run_gold(root, env)
    return read_gold(root)


def one_error_line(result: subprocess.CompletedProcess) -> str:
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.startswith(("ERROR", "FAILED"))]
    assert len(lines) == 1, f"expected one error line, got {lines}\n{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.stdout + result.stderr
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# --- settings ------------------------------------------------------------------------------------

# By default one change of a cleaning key and of the bucket count together (the line names both; silver
# is cleaned again and re-bucketed); each kind of key alone (a number, a JSON value, the buckets) is
# the slow tier. Every silver key moving the silver fingerprint is tests/test_settings_model.py's.
@pytest.mark.parametrize("change, keys", [
    ("[cleaning]\nmax_quantity = 15\n[pipeline]\nsilver_buckets = 8\n",
     ("[cleaning] max_quantity 1000000 -> 15", "[pipeline] silver_buckets 64 -> 8")),
    pytest.param("[cleaning]\nmax_quantity = 15\n", ("[cleaning] max_quantity 1000000 -> 15",), marks=pytest.mark.slow),
    pytest.param('[cleaning]\nregion_aliases = {"north": ["north", "nort", "n"], "south": ["south"], "east": ["east"], "west": ["west"]}\n',
                 ("[cleaning] region_aliases",), marks=pytest.mark.slow),
    pytest.param("[pipeline]\nsilver_buckets = 8\n", ("[pipeline] silver_buckets 64 -> 8",), marks=pytest.mark.slow),
], ids=["quantity-and-buckets", "quantity", "region-aliases", "buckets"])
def test_a_silver_setting_change_is_refused_until_reprocess_all(tmp_path: Path, generated: Path, change: str,
                                                               keys: tuple[str, ...]) -> None:
    root = root_with(tmp_path, "data", generated, NAMES[:2])
    run_gold(root)
    env = layered_config(tmp_path / "cfg", change)
    copy_bronze(generated, root, NAMES[2:])  # a file that arrives after the change
    before = {layer: snapshot(root / layer) for layer in ("silver", "gold", "state")}

    for extra in ([], ["--rebuild-gold"], ["--reprocess", NAMES[0]]):
        refused = run_cli("--data-root", str(root), "--until", "gold", *extra, env=env)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        line = one_error_line(refused)
        assert all(key in line for key in keys) and "python run.py --reprocess-all" in line, line
        assert {layer: snapshot(root / layer) for layer in before} == before, "a refused run wrote something"

    run_gold(root, env, "--reprocess-all")
    assert_gold_equal(read_gold(root), fresh_gold(tmp_path, root / "bronze", env), "after --reprocess-all")
    assert "Nothing to do" in run_gold(root, env).stdout


def test_an_interrupted_reprocess_all_is_finished_by_running_it_again(tmp_path: Path, in_gold: Path) -> None:
    root = gold_root(tmp_path, in_gold)
    env = layered_config(tmp_path / "cfg", "[cleaning]\nmax_quantity = 15\n")
    # What --reprocess-all leaves if killed after dropping state and gold but before all silver went.
    shutil.rmtree(root / "gold")
    (root / "state" / "gold_state.sqlite").unlink()
    shutil.rmtree(root / "silver" / NAMES[0])
    refused = run_cli("--data-root", str(root), "--until", "gold", env=env)
    assert refused.returncode == 2 and "--reprocess-all" in one_error_line(refused)
    run_gold(root, env, "--reprocess-all")
    assert_gold_equal(read_gold(root), fresh_gold(tmp_path, root / "bronze", env))


# The kept case changes two gold keys (anomaly_top_n 5 -> 20 with it); one key alone is the slow tier's.
@pytest.mark.parametrize("change", ["[gold]\ntop_products_n = 3\n", pytest.param("[gold]\nanomaly_top_n = 40\n", marks=pytest.mark.slow)])
def test_a_gold_setting_change_rebuilds_gold_without_touching_silver(tmp_path: Path, generated: Path, change: str) -> None:
    root = root_with(tmp_path, "data", generated)
    run_gold(root, layered_config(tmp_path / "small", "[gold]\nanomaly_top_n = 5\n"))
    silver_before = snapshot(root / "silver")
    env = layered_config(tmp_path / "cfg", change)
    result = run_gold(root, env)
    assert "Nothing to do" not in result.stdout
    assert snapshot(root / "silver") == silver_before
    assert_gold_equal(read_gold(root), fresh_gold(tmp_path, root / "bronze", env), change)


# --- maintenance commands ------------------------------------------------------------------------

def test_a_bad_second_reprocess_argument_changes_nothing(tmp_path: Path, generated: Path) -> None:
    root = root_with(tmp_path, "data", generated)
    run_gold(root)  # its own run, not a copy of `in_gold`: the first run on a copied root checks gold again
    expected = read_gold(root)
    silver_before = snapshot(root / "silver")
    for bad in (["--reprocess", NAMES[0], "--reprocess", "typo.csv"], ["--reprocess", NAMES[0], "--forget", "typo.csv"],
                ["--forget", NAMES[1]]):
        result = run_cli("--data-root", str(root), "--until", "gold", *bad)
        assert result.returncode == 2
        line = one_error_line(result)
        assert "nothing was changed" in line, line
        assert snapshot(root / "silver") == silver_before
    assert "Nothing to do" in run_gold(root).stdout
    assert_gold_equal(read_gold(root), expected)


@pytest.mark.parametrize("until", [pytest.param("gold", marks=pytest.mark.slow), "report"])
def test_reprocess_of_an_unchanged_file_redoes_it_and_keeps_gold(tmp_path: Path, generated: Path, until: str) -> None:
    """Once answered "Nothing to do" (gold and the page were still those of the same inputs) and
    left the file without silver. By default through the whole pipeline (`--until report`);
    `--until gold` is the slow tier."""
    import json

    root = root_with(tmp_path, "data", generated)
    assert run_cli("--data-root", str(root), "--until", until).returncode == 0
    expected = read_gold(root)
    result = run_cli("--data-root", str(root), "--until", until, "--reprocess", NAMES[1], "--json")
    assert result.returncode == 0, result.stderr
    account = json.loads(result.stdout)
    assert not account.get("nothing_to_do") and account["this_run"]["rows_cleaned"] == 3_000, account
    assert (root / "silver" / NAMES[1] / "_file_metrics.json").exists()
    assert_gold_equal(read_gold(root), expected, "after --reprocess of an unchanged file")
    status = json.loads(run_cli("status", "--data-root", str(root), "--json").stdout)
    assert {f["state"] for f in status["files"]} == {"done"}


def test_rebuild_gold_and_reprocess_reproduce_the_gold_of_a_late_arrival(tmp_path: Path) -> None:
    """Files 1 and 3 first, file 2 a run later: first wins in input order, whatever the arrival,
    so the late file, a rebuild, a reprocess and a fresh machine all give the same gold."""
    files = {
        "part_1.csv": f"{HEADER}\nA1,alpha,electronics,1,10.00,0,north,2024-01-01,a@x.io\n",
        "part_2.csv": f"{HEADER}\nB1,beta,fashion,2,20.00,0.5,south,2024-02-02,b@x.io\nA1,alpha,electronics,9,10.00,0,east,2024-01-03,\n",
        "part_3.csv": f"{HEADER}\nB1,gamma,home appliance,5,30.00,0,west,2024-03-03,c@x.io\nC1,delta,fashion,1,1.00,0,north,2024-03-04,\n",
    }
    root = tmp_path / "data"
    write_bronze(root, {k: v for k, v in files.items() if k != "part_2.csv"})
    run_gold(root)
    write_bronze(root, {"part_2.csv": files["part_2.csv"]})
    late = run_gold(root)
    assert "part_2.csv sorts before files already merged" in late.stdout
    expected = fresh_gold(tmp_path, root / "bronze")
    assert_gold_equal(read_gold(root), expected, "late arrival")
    regions = {row["region"]: row["order_count"] for row in expected["region_wise_performance"].to_pylist()}
    assert regions == {"north": 2, "south": 1}, "B1 comes from part_2 (first in input order), A1 from part_1"
    run_gold(root, None, "--rebuild-gold")
    assert_gold_equal(read_gold(root), expected, "--rebuild-gold")
    run_gold(root, None, "--reprocess", "part_1.csv")
    assert_gold_equal(read_gold(root), expected, "--reprocess")


def _lock_race(tmp_path: Path, generated: Path, tries: int) -> None:
    """A maintenance command started while another run is merging (it holds the gold lock)."""
    root = root_with(tmp_path, "data", generated)
    # The plain run merges in many small batches: its merge takes a few seconds, so the command lands
    # inside it. Every other run merges in default batches (the batch size changes no number).
    env = {**os.environ, **layered_config(tmp_path / "cfg", "[pipeline]\nchunk_rows = 1500\n[gold]\nmerge_batch_rows = 1\n")}
    quick = {**os.environ, **layered_config(tmp_path / "cfg-quick", "[pipeline]\nchunk_rows = 1500\n")}
    run_gold(root, quick)
    expected = read_gold(root)
    lock = root / "_gold.lock"
    rng = random.Random(16)
    for attempt in range(tries):
        command = rng.choice([["--rebuild-gold"], ["--reprocess", NAMES[1]], ["--reprocess", NAMES[0], "--rebuild-gold"]])
        shutil.rmtree(root / "gold")  # the plain run has a whole merge to do
        (root / "state" / "gold_state.sqlite").unlink(missing_ok=True)
        lock.unlink(missing_ok=True)
        args = [sys.executable, str(REPO / "run.py"), "--data-root", str(root), "--until", "gold", "--workers", "2"]
        plain = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 60
        while not (lock.exists() and lock.read_text()):  # the merge holds the lock once its holder is written into it
            if plain.poll() is not None or time.monotonic() > deadline:
                plain.kill()
                raise AssertionError(f"try {attempt}: the merging run never wrote its holder into {lock} "
                                     f"({'it ended first' if plain.returncode is not None else 'within 60 s'}):\n{plain.communicate()[0]}")
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.5))  # the thing under test: a random instant inside the merge (bounded)
        maintenance = subprocess.run(args + command, cwd=REPO, env=quick, capture_output=True, text=True, timeout=300)
        plain_out = plain.communicate(timeout=300)[0]
        label = f"try {attempt}: {command}"
        for code, out in ((plain.returncode, plain_out), (maintenance.returncode, maintenance.stdout + maintenance.stderr)):
            assert code in (0, 1), f"{label}: exit {code}\n{out}"
            assert "corrupt" not in out and "Traceback" not in out, f"{label}\n{out}"
        assert maintenance.returncode == 0, f"{label}: the command waited for the lock, then ran\n{maintenance.stdout}"
        assert_gold_equal(read_gold(root), expected, label)
        run_gold(root, quick)
        assert_gold_equal(read_gold(root), expected, f"{label}, after a plain run")
        assert not temp_files(root), label


def test_maintenance_commands_and_a_merging_run_are_serialised(tmp_path: Path, generated: Path) -> None:
    _lock_race(tmp_path, generated, tries=int(os.environ.get("CHANGE_RACE_TRIES", "1")))


@pytest.mark.slow
def test_maintenance_commands_and_a_merging_run_are_serialised_soak(tmp_path: Path, generated: Path) -> None:
    _lock_race(tmp_path, generated, tries=int(os.environ.get("CHANGE_RACE_SOAK_TRIES", "8")))


# --- input inventory -----------------------------------------------------------------------------

def test_a_deleted_file_is_reported_until_forgotten(tmp_path: Path, in_gold: Path) -> None:
    root = gold_root(tmp_path, in_gold)
    with_all = read_gold(root)
    (root / "bronze" / NAMES[1]).unlink()
    result = run_cli("--data-root", str(root), "--until", "gold")
    assert result.returncode == 1
    line = one_error_line(result)
    assert NAMES[1] in line and f"python run.py --forget {NAMES[1]}" in line, line
    assert_gold_equal(read_gold(root), with_all, "until the user decides, gold is unchanged")
    status = run_cli("status", "--data-root", str(root))
    assert f"{NAMES[1]}: GONE" in status.stdout
    run_gold(root, None, "--forget", NAMES[1])
    assert_gold_equal(read_gold(root), fresh_gold(tmp_path, root / "bronze"), "after --forget")
    assert "Nothing to do" in run_gold(root).stdout


@pytest.mark.slow  # a rename is a gone file and a new one: test_a_deleted_file_is_reported_until_forgotten
def test_a_renamed_file_is_not_counted_twice_silently(tmp_path: Path, in_gold: Path) -> None:
    root = gold_root(tmp_path, in_gold)
    (root / "bronze" / NAMES[0]).rename(root / "bronze" / "renamed_0001.csv")
    result = run_cli("--data-root", str(root), "--until", "gold")
    assert result.returncode == 1 and NAMES[0] in one_error_line(result)
    run_gold(root, None, "--forget", NAMES[0])
    gold = read_gold(root)
    assert_gold_equal(gold, fresh_gold(tmp_path, root / "bronze"), "after the rename and --forget")
    assert sum(gold["data_quality"].column("rows_read").to_pylist()) == 9_000


# --- a file failing during a run -----------------------------------------------------------------

@pytest.mark.slow  # its files are small, so grouped: test_small_files::test_a_file_failing_inside_a_group_fails_alone
def test_one_file_failing_during_a_run_does_not_withhold_gold_for_the_others(tmp_path: Path, generated: Path) -> None:
    root = root_with(tmp_path, "data", generated)
    run_cli("--data-root", str(root), "--until", "silver", "--workers", "1")
    # A manifest that no longer agrees with its chunks: the file fails when its chunks are redone.
    manifest = root / "silver" / NAMES[0] / "_manifest.json"
    manifest.write_text(manifest.read_text().replace('"records": 3000', '"records": 3001', 1))
    for derived in (root / "silver" / NAMES[0]).glob("part-*"):
        derived.unlink()
    (root / "silver" / NAMES[0] / "_file_metrics.json").unlink()
    result = run_cli("--data-root", str(root), "--until", "gold", "--workers", "2")
    assert result.returncode == 1, result.stdout
    mentions = [line for line in result.stdout.splitlines() if line.startswith("FAILED") and NAMES[0] in line]
    assert len(mentions) == 1, result.stdout
    assert f"gold does not include {NAMES[0]}" in result.stdout
    others = tmp_path / "others"
    copy_bronze(generated, others, NAMES[1:])
    run_gold(others)
    assert_gold_equal(read_gold(root), read_gold(others), "gold of the files that did not fail")
