"""Gold stays readable while it changes: a reader polling gold/ during a merge of new files, a
`--rebuild-gold` and a `--reprocess-all` always finds all eight tables, each a whole Parquet file.

The reader is a real second process's view, reading as fast as it can for the whole run. It opens
each file once: pyarrow (and pandas through it) opens a path twice, for the schema and then for the
data, so a read by path that lands exactly on a replacement can pair the old footer with the new
bytes and fail with a Parquet error (seen in CI); the promise tested here is that every open finds
a whole table, old or new.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.generator import generate_bronze
from tests.conftest import REPO
from tests.gold_helpers import GOLD_NAMES, layered_config, run_gold

CONFIG = "[pipeline]\nchunk_rows = 3000\nsilver_buckets = 8\n"


@pytest.fixture(scope="module")
def in_gold(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    base = tmp_path_factory.mktemp("readable")
    env = layered_config(base / "config", CONFIG)
    root = base / "data"
    generate_bronze(root / "bronze", rows=30_000, files=3, seed=3)
    generate_bronze(base / "later", rows=10_000, files=1, seed=4)
    run_gold(root, env)
    return root, env


def poll_while_running(root: Path, env: dict[str, str], *args: str) -> tuple[int, int, list[str]]:
    """Run `run.py --until gold args` and read every gold table again and again until it ends:
    (reads made, exit code, what a reader could not read)."""
    command = [sys.executable, str(REPO / "run.py"), "--data-root", str(root), "--until", "gold", *args]
    proc = subprocess.Popen(command, cwd=REPO, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    reads, problems = 0, []
    while proc.poll() is None:
        for name in GOLD_NAMES:
            path = root / "gold" / f"{name}.parquet"
            try:
                with open(path, "rb") as handle:  # one open: pq.read_table(path) opens a path twice (schema, then data)
                    pq.read_table(handle)
                reads += 1
            except (OSError, ValueError) as error:
                problems.append(f"{name}: {type(error).__name__}: {error}")
    output = proc.stdout.read().decode() if proc.stdout else ""
    assert proc.returncode == 0, output
    return reads, proc.returncode, problems


# --rebuild-gold unpublishes gold as --reprocess-all does (the kept case): it is the slow tier's.
@pytest.mark.parametrize("command", [["--new-file"], pytest.param(["--rebuild-gold"], marks=pytest.mark.slow), ["--reprocess-all"]],
                         ids=["merge of a new file", "rebuild-gold", "reprocess-all"])
def test_a_reader_finds_every_gold_table_whole_throughout(in_gold: tuple[Path, dict[str, str]], tmp_path: Path,
                                                          command: list[str]) -> None:
    source, env = in_gold
    root = tmp_path / "data"
    shutil.copytree(source, root)
    if command == ["--new-file"]:
        (root / "bronze" / "zz").mkdir()
        shutil.copy(next((source.parent / "later").rglob("*.csv")), root / "bronze" / "zz" / "later.csv")
        command = []
    reads, _, problems = poll_while_running(root, env, *command)
    assert reads > len(GOLD_NAMES), "the run ended before the reader read gold once: nothing was checked"
    assert problems == [], problems[:5]
