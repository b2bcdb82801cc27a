"""Luigi-native use: the plain `luigi` command, Luigi's config habits, one gold owner across hosts,
and luigid's task history. Real processes, a real luigid on 127.0.0.1, real host names (unshare)."""
from __future__ import annotations

import contextlib
import io
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.errors import PipelineError
from pipeline.generator import generate_bronze
from pipeline.gold.owner import claim, refuse_unless_gold_owner
from pipeline.storage.layout import DataLayout
from tests.conftest import REPO, run_cli
from tests.gold_helpers import assert_gold_equal, read_gold, run_gold
from tests.test_scheduler import api, start_luigid

LUIGI = Path(sys.executable).parent / "luigi"


@pytest.fixture(scope="module")
def bronze(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("source") / "bronze"
    generate_bronze(folder, rows=12_000, files=4, seed=3)
    return folder


def fresh(tmp_path: Path, bronze: Path, name: str) -> Path:
    root = tmp_path / name
    shutil.copytree(bronze, root / "bronze")
    return root


def luigi_command(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(LUIGI), "--module", "tasks", "Pipeline", *args], cwd=cwd, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=300)


# --- the plain luigi command ---------------------------------------------------------------------

def test_the_luigi_command_does_what_run_py_does(tmp_path: Path, bronze: Path) -> None:
    by_luigi, by_run = fresh(tmp_path, bronze, "by-luigi"), fresh(tmp_path, bronze, "by-run")
    result = luigi_command("--data-root", str(by_luigi), "--workers", "2", "--local-scheduler", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (by_luigi / "report" / "index.html").exists()
    run_gold(by_run)
    assert_gold_equal(read_gold(by_luigi), read_gold(by_run), "luigi command vs run.py")
    # The same exit codes as run.py, through luigi.cfg's [retcode]: 2 for settings it cannot start with ...
    changed = luigi_command("--data-root", str(by_luigi), "--local-scheduler", "--cleaning-max-quantity", "15", cwd=tmp_path)
    assert changed.returncode == 2 and "--reprocess-all" in changed.stderr
    assert run_cli("--data-root", str(by_luigi), "--cleaning-max-quantity", "15").returncode == 2
    # ... and 1 when a file cannot run (here: gone after it was ingested), after the others ran.
    (by_luigi / "bronze" / "sales_data_part_0004.csv").unlink()
    gone = luigi_command("--data-root", str(by_luigi), "--local-scheduler", cwd=tmp_path)
    assert gone.returncode == 1 and "--forget sales_data_part_0004.csv" in gone.stderr


def _break_one_file_mid_run(root: Path, name: str) -> None:
    """Silver first, then a manifest that no longer agrees with its file: the file fails when its
    chunks are redone, in the middle of the next run."""
    assert run_cli("--data-root", str(root), "--until", "silver").returncode == 0
    silver = root / "silver" / name
    manifest = silver / "_manifest.json"
    manifest.write_text(manifest.read_text().replace('"records": 3000', '"records": 3001', 1))
    for derived in [*silver.glob("part-*"), silver / "_file_metrics.json"]:
        derived.unlink()


# Both variants are the slow tier's: test_the_luigi_command_does_what_run_py_does proves the two entry points
# one program in the default run (gold, report and exit codes), test_small_files grouped files equal to this path.
@pytest.mark.parametrize("small_file_bytes", [pytest.param("4194304", marks=pytest.mark.slow), pytest.param("0", marks=pytest.mark.slow)],
                         ids=["small files grouped", "a task per file and chunk"])
def test_run_py_and_the_luigi_command_are_one_program(tmp_path: Path, bronze: Path, small_file_bytes: str) -> None:
    """The same clean data root, and the same data root with a file that fails mid-run, through
    `python run.py` and through `luigi --module tasks Pipeline --local-scheduler`: the same gold,
    the same report, the same exit codes (run.py only adds its summary)."""
    failing = "sales_data_part_0002.csv"
    options = ("--workers", "2", "--pipeline-small-file-bytes", small_file_bytes)

    def both(case: str, prepare=None) -> tuple[dict[str, Path], dict[str, subprocess.CompletedProcess]]:
        roots = {entry: fresh(tmp_path, bronze, f"{case}-{entry}") for entry in ("run.py", "luigi")}
        for root in roots.values():
            if prepare:
                prepare(root)
        results = {"run.py": run_cli("--data-root", str(roots["run.py"]), *options),
                   "luigi": luigi_command("--data-root", str(roots["luigi"]), "--local-scheduler", *options, cwd=tmp_path)}
        for root in roots.values():
            assert not list((root / "runs").glob("journal-*")), "the run's journal is removed when it ends"
            assert (root / "report" / "index.html").exists()
        return roots, results

    clean, results = both("clean")
    assert {entry: r.returncode for entry, r in results.items()} == {"run.py": 0, "luigi": 0}, results["luigi"].stderr[-3000:]
    assert_gold_equal(read_gold(clean["luigi"]), read_gold(clean["run.py"]), "clean: luigi command vs run.py")
    again = {"run.py": run_cli("--data-root", str(clean["run.py"])).returncode,
             "luigi": luigi_command("--data-root", str(clean["luigi"]), "--local-scheduler", cwd=tmp_path).returncode}
    assert again == {"run.py": 0, "luigi": 0}  # nothing to do

    broken, results = both("failing", lambda root: _break_one_file_mid_run(root, failing))
    assert {entry: r.returncode for entry, r in results.items()} == {"run.py": 1, "luigi": 1}, results["luigi"].stderr[-3000:]
    assert_gold_equal(read_gold(broken["luigi"]), read_gold(broken["run.py"]), "a file failing: luigi command vs run.py")
    for root in broken.values():  # gold without the file that failed, and with the others
        assert read_gold(root)["data_quality"].column("source_file").to_pylist() == [
            name for name in sorted(p.name for p in bronze.glob("*.csv")) if name != failing]
    assert len([line for line in results["run.py"].stdout.splitlines() if line.startswith("FAILED") and failing in line]) == 1
    assert f"gold does not include {failing}" in results["run.py"].stdout
    assert f"the run has 1 problem(s): {failing}" in results["luigi"].stderr


def test_settings_are_overridden_on_the_command_line_of_both_entry_points(tmp_path: Path, bronze: Path) -> None:
    by_run, by_luigi = fresh(tmp_path, bronze, "by-run"), fresh(tmp_path, bronze, "by-luigi")
    result = run_cli("--data-root", str(by_run), "--until", "silver", "--pipeline-chunk-rows", "1000")
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(list((by_run / "silver").rglob("part-*.parquet"))) == 12
    result = luigi_command("--data-root", str(by_luigi), "--until", "silver", "--local-scheduler", "--pipeline-chunk-rows", "1000",
                           cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(list((by_luigi / "silver").rglob("part-*.parquet"))) == 12
    bad = run_cli("--data-root", str(by_run), "--pipeline-chunk-rows", "many")
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [bad.stderr.strip()]
    assert "[pipeline] chunk_rows" in bad.stderr
    typo = run_cli("--data-root", str(by_run), "--pipeline-chunk-rowz", "10")
    assert typo.returncode == 2 and "unrecognized arguments: --pipeline-chunk-rowz" in typo.stderr


def test_luigi_config_path_layers_over_the_repo_config_from_any_folder(tmp_path: Path, bronze: Path) -> None:
    root = fresh(tmp_path, bronze, "data")
    extra = tmp_path / "extra.cfg"
    extra.write_text("[gold]\ntop_products_n = 3\n")
    result = subprocess.run([sys.executable, str(REPO / "run.py"), "--data-root", str(root), "--until", "gold"], cwd=tmp_path,
                            env={**os.environ, "LUIGI_CONFIG_PATH": str(extra)}, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert pq.read_table(root / "gold" / "top_products.parquet").num_rows == 3  # its key won
    reference = fresh(tmp_path, bronze, "reference")
    run_gold(reference, None, "--gold-top-products-n", "3")  # every other key still from the repo's luigi.cfg
    assert_gold_equal(read_gold(root), read_gold(reference))
    missing = run_cli("--data-root", str(root), env={"LUIGI_CONFIG_PATH": str(tmp_path / "nope.cfg")})
    assert missing.returncode == 2
    assert missing.stderr.strip() == f"ERROR config: LUIGI_CONFIG_PATH={tmp_path / 'nope.cfg'}: no such file"


# --- one gold owner across hosts -----------------------------------------------------------------

def test_a_state_that_does_not_own_gold_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "data"
    root.mkdir()
    host_a, host_b = DataLayout(root, tmp_path / "state-a"), DataLayout(root, tmp_path / "state-b")
    assert claim(host_a).ours
    assert not claim(host_b).ours and claim(host_a).ours
    with pytest.raises(PipelineError, match=r"gold of .* is built on host .*--take-gold"):
        refuse_unless_gold_owner(host_b)


def _claim_at_once(barrier, root: str, state: str, results) -> None:
    barrier.wait()
    try:
        results.put((state, claim(DataLayout(Path(root), Path(state))).ours))
    except Exception as error:  # reported to the test, which shows it
        results.put((state, repr(error)))


@pytest.mark.parametrize("states", [1, 3], ids=["runs sharing one state", "one state per host"])
def test_runs_claiming_gold_at_the_same_instant_agree_on_one_owner(tmp_path: Path, states: int) -> None:
    """Two runs starting together on one data root once raced on the claim (one crashed, exit 1)."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    for attempt in range(8):
        root = tmp_path / f"data-{attempt}"
        root.mkdir()
        folders = [str(tmp_path / f"state-{attempt}-{n % states}") for n in range(6)]
        barrier, results = context.Barrier(len(folders)), context.Queue()
        workers = [context.Process(target=_claim_at_once, args=(barrier, str(root), folder, results)) for folder in folders]
        for worker in workers:
            worker.start()
        outcomes = [results.get(timeout=60) for _ in workers]
        for worker in workers:
            worker.join(60)
        assert all(isinstance(ours, bool) for _, ours in outcomes), outcomes
        owners = {state for state, ours in outcomes if ours}
        assert len(owners) == 1, outcomes  # exactly one state owns gold, and every run of it knows
        assert all(ours for state, ours in outcomes if state in owners), outcomes
        assert not list(root.glob(".tmp*")) and not list(root.glob("*.tmp*"))


def can_unshare() -> bool:
    return shutil.which("unshare") is not None and subprocess.run(["unshare", "--uts", "true"], capture_output=True).returncode == 0


@pytest.fixture
def luigid(tmp_path: Path):
    yield from start_luigid(tmp_path)


@pytest.mark.skipif(not can_unshare(), reason="needs root and unshare --uts to give a worker another host name")
def test_two_hosts_on_one_data_root_build_gold_once_from_the_owner_state(tmp_path: Path, bronze: Path, luigid: int) -> None:
    shared = fresh(tmp_path, bronze, "shared")

    def host(name: str, *extra: str) -> subprocess.Popen:
        cfg = tmp_path / f"{name}.cfg"
        cfg.write_text(f"[pipeline]\nstate_dir = {tmp_path / name / 'state'}\nchunk_rows = 1500\nsmall_file_bytes = 0\n")
        command = [sys.executable, str(REPO / "run.py"), "--data-root", str(shared), "--workers", "2", "--scheduler-host",
                   "127.0.0.1", "--scheduler-port", str(luigid), *extra]
        return subprocess.Popen(["unshare", "--uts", "sh", "-c", f'hostname {name} && exec "$@"', "sh", *command], cwd=REPO,
                                env={**os.environ, "LUIGI_CONFIG_PATH": str(cfg)}, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)

    first = host("host-a", "--take-gold")
    deadline = time.monotonic() + 60
    while not (shared / "_gold_owner.json").exists():
        if first.poll() is not None or time.monotonic() > deadline:
            first.kill()
            raise AssertionError(f"host A never claimed gold ({shared / '_gold_owner.json'} not written "
                                 f"{'before it ended' if first.returncode is not None else 'within 60 s'}):\n{first.communicate()[0]}")
        time.sleep(0.05)
    second = host("host-b")
    outputs = [p.communicate(timeout=300)[0] for p in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outputs
    assert "gold of" in outputs[1] and "is built on host host-a" in outputs[1]
    done = api(luigid, "task_list", {"status": "DONE", "upstream_status": "", "search": ""})
    names = [task["name"] for task in done.values()]
    assert names.count("SilverToGold") == 1 and names.count("Report") == 1
    chunks = [line for out in outputs for line in out.splitlines() if " silver " in line and " chunk " in line]
    assert len(chunks) == len(list((shared / "silver").rglob("part-*.parquet"))) == 8, "every chunk ran once"
    assert (tmp_path / "host-a" / "state" / "gold_state.sqlite").exists()
    assert not (tmp_path / "host-b" / "state" / "gold_state.sqlite").exists()
    one_host = fresh(tmp_path, bronze, "one-host")
    run_gold(one_host)
    expected = read_gold(one_host)
    assert_gold_equal(read_gold(shared), expected, "two hosts vs one")
    # Gold moves only when asked: host B takes it, rebuilds its own state from silver, same gold.
    moved = host("host-b", "--take-gold", "--until", "gold")
    out = moved.communicate(timeout=300)[0]
    assert moved.returncode == 0, out
    assert "take-gold: gold of" in out and "no longer on host-a" in out
    assert_gold_equal(read_gold(shared), expected, "after --take-gold on host B")


# --- task history ----------------------------------------------------------------------------------

def test_luigid_task_history_records_the_run(tmp_path: Path, bronze: Path) -> None:
    history = tmp_path / "history.db"
    config = tmp_path / "luigid.cfg"
    config.write_text(f"[scheduler]\nrecord_task_history = true\n[task_history]\ndb_connection = sqlite:///{history}\n")
    root = fresh(tmp_path, bronze, "data")
    for port in start_luigid(tmp_path, config):
        result = run_cli("--data-root", str(root), "--until", "gold", "--workers", "2", "--scheduler-host", "127.0.0.1",
                         "--scheduler-port", str(port))
        assert result.returncode == 0, result.stdout + result.stderr
        deadline = time.monotonic() + 20
        names: set[str] = set()
        while "SilverToGold" not in names:
            assert time.monotonic() < deadline, f"luigid's task history had no SilverToGold 20 s after the run: {sorted(names)}"
            if history.exists():
                with sqlite3.connect(history) as db:
                    names = {row[0] for row in db.execute("SELECT name FROM tasks")}
            if "SilverToGold" not in names:
                time.sleep(0.2)
        assert {"Pipeline", "SilverToGold", "SmallFilesToSilver"} <= names, names


# --- progress in the luigid UI -------------------------------------------------------------------

def test_the_ui_shows_chunk_steps_and_chunks_done_while_they_run(tmp_path: Path, luigid: int) -> None:
    root = tmp_path / "data"
    generate_bronze(root / "bronze", rows=60_000, files=1, seed=9)
    command = [sys.executable, str(REPO / "run.py"), "--data-root", str(root), "--until", "silver", "--workers", "2",
               "--scheduler-host", "127.0.0.1", "--scheduler-port", str(luigid), "--pipeline-chunk-rows", "2000"]
    run = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    file_messages: set[str] = set()
    chunk_percents: set[int] = set()
    deadline = time.monotonic() + 300
    while run.poll() is None:
        if time.monotonic() > deadline:
            run.kill()
            raise AssertionError(f"the run was still going 300 s after it started:\n{run.communicate()[0][-3000:]}")
        for status in ("RUNNING", "PENDING"):
            for task in api(luigid, "task_list", {"status": status, "upstream_status": "", "search": ""}).values():
                if task["name"] == "BronzeFileToSilver" and task.get("status_message"):
                    file_messages.add(task["status_message"])
                if task["name"] == "BronzeChunkToSilver" and task.get("progress_percentage") is not None:
                    chunk_percents.add(int(task["progress_percentage"]))
        time.sleep(0.02)
    assert run.returncode == 0, run.stdout.read()
    moving = {m for m in file_messages if m.endswith("/30 chunks done") and not m.startswith(("0/", "30/"))}
    assert len(moving) >= 3, f"the file task's count of chunks done did not move: {sorted(file_messages)}"
    assert chunk_percents & {10, 35, 70}, f"chunk tasks showed only {sorted(chunk_percents)}"


def _report_steps(steps: int, progress=None) -> int:
    for step in range(steps):
        progress(step, f"step {step}")
    return steps


def test_a_warm_worker_call_reports_progress_while_it_runs() -> None:
    from tasks import warm_workers

    heard: list[tuple[int, str]] = []
    with warm_workers.warm_workers(2):
        assert warm_workers.call("steps", _report_steps, 3, progress=lambda p, m: heard.append((p, m))) == 3
    assert heard == [(0, "step 0"), (1, "step 1"), (2, "step 2")]
    heard.clear()
    assert warm_workers.call("steps", _report_steps, 2, progress=lambda p, m: heard.append((p, m))) == 2  # in process
    assert heard == [(0, "step 0"), (1, "step 1")]


# --- Luigi's private internals (tasks/luigi_private.py), pinned to the versions checked ---------

def test_luigi_is_a_version_the_private_reaches_were_checked_with() -> None:
    import luigi

    from tasks import luigi_private

    assert luigi.__version__ in luigi_private.CHECKED_WITH, (
        f"Luigi {luigi.__version__}: check every function of tasks/luigi_private.py against it (the tests below "
        f"exercise each), then add it to CHECKED_WITH {luigi_private.CHECKED_WITH}")


def test_the_config_and_command_line_reaches(tmp_path: Path) -> None:
    from luigi.configuration import LuigiConfigParser, get_config

    from tasks import luigi_private
    from tasks.config import REPO_CONFIG, SECTION_CLASSES

    assert LuigiConfigParser._config_paths[0] == str(REPO_CONFIG)  # layered first at import: every other file wins
    first = tmp_path / "first.cfg"
    first.write_text("[probe_first]\nkey = from the first file\n[pipeline]\nchunk_rows = 7\n")
    paths = list(LuigiConfigParser._config_paths)
    try:
        luigi_private.layer_config_first(str(first))
        config = get_config()
        assert config.get("probe_first", "key") == "from the first file"  # read again, in the new order
        assert config.get("pipeline", "chunk_rows") == "500000"  # ... and the files after it win
    finally:
        LuigiConfigParser._config_paths[:] = paths
        LuigiConfigParser._instance = None
    with luigi_private.command_line(["Pipeline", "--cleaning-max-quantity", "15"]):
        assert SECTION_CLASSES["cleaning"]().max_quantity == "15"
    with pytest.raises(SystemExit), contextlib.redirect_stderr(io.StringIO()):
        with luigi_private.command_line(["Pipeline", "--cleaning-max-quantitty", "15"]):
            pass
    import warnings

    import luigi

    with warnings.catch_warnings(record=True) as heard:
        warnings.simplefilter("default")
        luigi_private.quiet_rpc_retry_warnings()
        config = get_config()
        config.add_section("probe_section")
        config.set("probe_section", "rpc_retry_attempts", "3")  # as Luigi's own `core` class meets [core] rpc_retry_*
        config.set("probe_section", "probe_not_consumed", "1")
        try:
            type("probe_section", (luigi.Config,), {"__module__": __name__})()
        finally:
            config.remove_section("probe_section")
    said = [str(w.message) for w in heard]
    assert not [m for m in said if "rpc_retry_attempts" in m], said
    assert [m for m in said if m.startswith("The configuration contains the parameter 'probe_not_consumed'")], said


def test_the_run_and_worker_reaches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from tasks import luigi_private
    from tests.luigi_probe import PROBE_ENV

    monkeypatch.setenv(PROBE_ENV, str(tmp_path))
    run = ["--local-scheduler", "--log-level", "CRITICAL"]
    with luigi_private.command_line(["Pipeline"]):  # an outer command line, as run.py holds one, is set aside
        assert luigi_private.run_command(["ProbeRoot", "--workers", "2", *run]) == 0
    assert json.loads((tmp_path / "target-process.json").read_text()) == {"task_process": True, "has_scheduler": True}
    assert luigi_private.run_command(["ProbeRoot", "--name", "here", *run]) == 0
    assert json.loads((tmp_path / "here-process.json").read_text()) == {"task_process": False, "has_scheduler": True}
    assert not luigi_private.in_task_process() and luigi_private.scheduler_of(luigi_private_probe_task()) is None
    assert luigi_private.run_command(["ProbeFails", *run]) == 1  # [retcode] task_failed
    assert luigi_private.run_command(["ProbeCannotSchedule", *run]) == 2  # [retcode] scheduling_error
    assert luigi_private.run_command(["ProbeNeedsVanishing", *run]) == 1
    assert json.loads((tmp_path / "vanished.json").read_text()) is True


def luigi_private_probe_task():
    from tests.luigi_probe import ProbeTarget

    task = ProbeTarget(name="unscheduled")
    task.set_status_message = lambda message: None  # what a task outside a worker has: no reporter
    return task


def test_a_worker_waits_for_tasks_another_worker_holds_and_exits_0(tmp_path: Path, luigid: int) -> None:
    """Worker B finds the task it needs held by worker A: it waits for it (tasks/luigi_private.py
    wait_for_other_workers), then ends with exit 0 and the root done, as A does."""
    env = {"PIPELINE_LUIGI_PROBE": str(tmp_path), "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    command = [str(LUIGI), "--module", "tests.luigi_probe", "ProbeRoot", "--seconds", "6", "--scheduler-host", "127.0.0.1",
               "--scheduler-port", str(luigid)]
    first = subprocess.Popen(command, cwd=tmp_path, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while not (tmp_path / "target-process.json").exists():  # A runs the task now
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()[0][-3000:]
        time.sleep(0.05)
    second = subprocess.run(command, cwd=tmp_path, env={**os.environ, **env}, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stdout + second.stderr
    assert (tmp_path / "target.done").exists()  # B ended only once A's task was done
    assert first.wait(timeout=60) == 0
