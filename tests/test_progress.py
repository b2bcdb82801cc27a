"""The live progress line and the run's own work, from journal events alone (no run needed)."""
from __future__ import annotations

from pipeline.running.progress import progress_line, run_work
from pipeline.storage import journal


def events(*chunks: tuple[int, int], gold_started: bool = False, gold: bool = False) -> list[dict]:
    found = [{"event": journal.CHUNK, "rows_read": rows, "bytes": size} for rows, size in chunks]
    found += [{"event": journal.GOLD_STARTED}] if gold_started else []
    found += [{"event": journal.GOLD, "rows_merged": 7, "tables_written": ["a", "b"]}] if gold else []
    return found


def test_silver_line_counts_rows_estimates_the_total_and_the_time_left() -> None:
    work = run_work(events((1_000_000, 100_000_000), (1_000_000, 100_000_000)))
    assert (work.rows_cleaned, work.bytes_cleaned, work.chunks_cleaned) == (2_000_000, 200_000_000, 2)
    line = progress_line(work, pending=800_000_000, seconds=2.0)
    assert line == "silver: 2,000,000 of about 8,000,000 rows cleaned (25% of 800.0 MB), 1,000,000 rows/s, about 6 s left"


def test_the_line_moves_to_gold_and_the_run_keeps_only_its_own_gold_record() -> None:
    assert progress_line(run_work(events((5, 10), gold_started=True)), 10, 1.0).startswith("gold: merging")
    done = run_work(events((5, 10), gold_started=True, gold=True))
    assert not done.merging and done.gold == {"rows_merged": 7, "tables_written": ["a", "b"]}
    assert progress_line(done, 10, 1.0) == "gold: 7 rows merged, 2 tables written; rendering the report ..."


def test_a_journal_line_being_written_is_left_for_the_next_read(tmp_path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_text('{"event": "chunk", "rows_read": 1, "bytes": 2}\n{"event": "ch')
    assert journal.read_journal(path) == [{"event": "chunk", "rows_read": 1, "bytes": 2}]
