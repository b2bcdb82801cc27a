"""Ctrl-C and SIGTERM: one line, exit 130 / 143, nothing of the run left behind (no failure log,
no temporary file, no process), and the next run resumes to the same gold."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.generator import generate_bronze
from tests.conftest import REPO
from tests.gold_helpers import assert_gold_equal, copy_bronze, read_gold, run_gold, temp_files

ARGS = ["--until", "gold", "--workers", "2", "--pipeline-chunk-rows", "20000", "--pipeline-small-file-bytes", "0"]


@pytest.fixture(scope="module")
def bronze(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("signals") / "bronze"
    generate_bronze(folder, rows=400_000, files=4, seed=8)
    return folder


def _interrupt(tmp_path: Path, bronze: Path, tries: int) -> None:
    reference = tmp_path / "reference"
    copy_bronze(bronze, reference)
    run_gold(reference, None, *ARGS)
    expected = read_gold(reference)
    rng = random.Random(5)
    for attempt in range(tries):
        root = tmp_path / f"try-{attempt}"
        copy_bronze(bronze, root)
        terminal = attempt % 2 == 0  # Ctrl-C reaches the whole process group; SIGTERM only run.py
        run = subprocess.Popen([sys.executable, str(REPO / "run.py"), "--data-root", str(root), *ARGS], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
        time.sleep(rng.uniform(0.8, 2.5))  # the thing under test: a random instant of the run (bounded)
        if terminal:
            os.killpg(run.pid, signal.SIGINT)
        else:
            run.send_signal(signal.SIGTERM)
        stdout, stderr = run.communicate(timeout=60)
        label = f"try {attempt} ({'SIGINT' if terminal else 'SIGTERM'})"
        if run.returncode == 0:  # the run had finished before the signal: nothing to check
            continue
        assert run.returncode == (130 if terminal else 143), f"{label}: exit {run.returncode}\n{stdout}\n{stderr}"
        assert stderr.strip().splitlines() == ["interrupted: run the same command again to resume"], f"{label}\n{stderr}"
        assert "Traceback" not in stdout, label
        # Task processes and warm workers die with run.py (PR_SET_PDEATHSIG): wait for that, 10 s at most.
        deadline = time.monotonic() + 10
        while leftover := subprocess.run(["pgrep", "-f", f"run.py --data-root {root}"], capture_output=True, text=True).stdout:
            assert time.monotonic() < deadline, f"{label}: processes of the run are still alive 10 s after it ended: {leftover}"
            time.sleep(0.05)
        assert not list((root / "runs").glob("journal-*")), label
        final = subprocess.run([sys.executable, str(REPO / "run.py"), "--data-root", str(root), *ARGS], cwd=REPO,
                               capture_output=True, text=True, timeout=300)
        assert final.returncode == 0, f"{label}\n{final.stdout}\n{final.stderr}"
        assert_gold_equal(read_gold(root), expected, label)
        assert not temp_files(root), label


def test_ctrl_c_and_sigterm_stop_the_run_in_one_line_and_the_next_run_resumes(tmp_path: Path, bronze: Path) -> None:
    _interrupt(tmp_path, bronze, tries=int(os.environ.get("SIGNAL_TRIES", "2")))


@pytest.mark.slow
def test_signals_at_random_instants_soak(tmp_path: Path, bronze: Path) -> None:
    _interrupt(tmp_path, bronze, tries=int(os.environ.get("SIGNAL_SOAK_TRIES", "5")))
