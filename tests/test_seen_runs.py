"""A bucket's runs of seen keys: few of them whatever the number of batches, none past its cap,
and the dedup answers of many compacted batches equal those of one batch."""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from pipeline.bronze.hashing import xxh64
from pipeline.gold.dedup import SeenSegment, first_wins
from pipeline.gold.seen_runs import Run, merge_runs, runs_from_json, runs_to_absorb, runs_to_json


def _after(runs: list[Run], batch: int, new_rows: int, cap: int) -> list[Run]:
    taken = runs_to_absorb(runs, new_rows, cap)
    size = new_rows + sum(r.rows for r in runs[len(runs) - taken:])
    return runs[: len(runs) - taken] + ([Run(batch, size)] if size else [])


def test_equal_batches_count_in_binary_so_runs_stay_logarithmic() -> None:
    runs: list[Run] = []
    for batch in range(1, 16):
        runs = _after(runs, batch, 10, cap=10**9)
        assert [r.rows for r in runs] == [10 * (1 << bit) for bit in reversed(range(8)) if batch & (1 << bit)]


def test_a_run_never_grows_past_the_cap_and_full_runs_are_left_alone() -> None:
    runs: list[Run] = []
    for batch in range(200):
        runs = _after(runs, batch, 7, cap=100)
        assert all(r.rows <= 100 for r in runs)
    full = [r for r in runs if r.rows > 50]
    assert len(runs) - len(full) <= 4  # the small ones: a binary counter below the cap
    assert sum(r.rows for r in runs) == 200 * 7


def test_an_empty_batch_adds_no_run_and_a_big_one_absorbs_nothing_larger() -> None:
    runs = [Run(0, 40), Run(1, 5)]
    assert runs_to_absorb(runs, 0, cap=100) == 0
    assert runs_to_absorb(runs, 5, cap=100) == 1  # 5 joins 5; 40 > 10 stays
    assert runs_to_absorb(runs, 50, cap=100) == 2
    assert runs_to_absorb(runs, 60, cap=100) == 1  # 60 + 5 + 40 would pass the cap
    assert runs_from_json(runs_to_json(runs)) == runs


def test_merged_runs_are_sorted_by_hash_and_keep_every_key() -> None:
    rng = np.random.default_rng(3)
    tables = [first_wins(*_rows([f"K{i}" for i in rng.integers(0, 10**6, size=300)]), []).new_keys for _ in range(3)]
    merged = merge_runs(tables)
    hashes = merged.column("key_hash").to_numpy()
    assert (hashes[1:] >= hashes[:-1]).all()
    assert sorted(merged.column("key").to_pylist()) == sorted(k for t in tables for k in t.column("key").to_pylist())


def test_many_compacted_batches_give_the_answers_of_one() -> None:
    rng = np.random.default_rng(11)
    ids = [f"O{int(i)}" for i in rng.integers(0, 4000, size=12_000)]
    whole = first_wins(*_rows(ids), []).keep.to_pylist()
    runs: list[tuple[Run, pa.Table]] = []
    kept: list[bool] = []
    for batch, start in enumerate(range(0, len(ids), 700)):
        result = first_wins(*_rows(ids[start:start + 700]), [SeenSegment.from_table(t) for _, t in runs])
        kept += result.keep.to_pylist()
        taken = runs_to_absorb([r for r, _ in runs], result.new_keys.num_rows, cap=1500)
        absorbed = [t for _, t in runs[len(runs) - taken:]]
        run = merge_runs([*absorbed, result.new_keys])
        runs = runs[: len(runs) - taken] + ([(Run(batch, run.num_rows), run)] if run.num_rows else [])
    assert kept == whole and sum(whole) == len(set(ids))
    assert len(runs) < 18 and all(r.rows <= 1500 for r, _ in runs)


def _rows(ids: list[str]) -> tuple[pa.Array, np.ndarray]:
    return pa.array(ids, pa.string()), xxh64(pa.array(ids))
