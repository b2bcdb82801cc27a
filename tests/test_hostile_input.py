"""Hostile bronze files: each fails alone with one line, or its bad rows are quarantined; nothing is lost.

The corpus is built here (small; the several-MB field is generated), next to one good file whose
results must not change whatever its neighbours hold.
"""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from tests.conftest import HEADER, run_cli, write_bronze

GOOD_ROWS = [
    "A1,Widget,electronics,2,10.00,0.1,north,2024-01-05,a@b.co",
    "A2,Gadget,fashion,1,5.50,0,south,2024-01-06,c@d.co",
]
GOOD = HEADER + "\n" + "\n".join(GOOD_ROWS) + "\n"
ROW = "B{n},Thing,electronics,1,1.00,0,east,2024-02-01,x@y.co"

# name -> (content, expected outcome): ("fails", text in the one-line error) or ("rows", read, valid, malformed)
CORPUS: dict[str, tuple[bytes, tuple]] = {
    "invalid_utf8.csv": ((HEADER + "\n" + ROW.format(n=1) + "\n").encode() + b"B2,\xff\xfeBad,electronics,1,1.00,0,east,2024-02-01,x@y.co\n"
                         + (ROW.format(n=3) + "\n").encode(), ("rows", 3, 2, 1)),
    "unterminated_quote.csv": ((HEADER + "\n" + ROW.format(n=1) + '\nB2,"never closed,electronics,1,1.00,0,east,2024-02-01,x@y.co\n'
                                + ROW.format(n=3) + "\n").encode(), ("rows", 2, 1, 1)),
    # The quote opens the last field of the last record and never closes: the field count is right,
    # and a parser that closes quotes at the end of its input once read it as a valid row.
    "open_quote_last_field.csv": ((HEADER + "\n" + ROW.format(n=1) + '\nB2,Thing,electronics,1,1.00,0,east,2024-02-01,"x@y.co\n').encode(),
                                  ("rows", 2, 1, 1)),
    "huge_field.csv": ((HEADER + "\n" + 'B1,"' + "x" * 3_000_000 + '",electronics,1,1.00,0,east,2024-02-01,x@y.co\n'
                        + ROW.format(n=2) + "\n").encode(), ("rows", 2, 2, 0)),
    "empty.csv": (b"", ("fails", "empty.csv: no header row")),
    "header_only.csv": ((HEADER + "\n").encode(), ("rows", 0, 0, 0)),
    "duplicate_columns.csv": (b"order_id,quantity,unit_price,Quantity\n1,2,3,4\n", ("fails", "duplicate_columns.csv: duplicate column(s) quantity")),
    "no_required.csv": (b"product_name,region\nx,north\n", ("fails", "no_required.csv: missing required column(s) order_id, quantity, unit_price")),
    "binary.csv": (bytes(range(256)) * 40, ("fails", "binary.csv:")),
    "nul_bytes.csv": ((HEADER + "\n" + ROW.format(n=1) + "\n").encode() + b"B2,Th\x00ing,electronics,1,1.00,0,east,2024-02-01,x@y.co\n", ("rows", 2, 1, 1)),
    "semicolons.csv": (HEADER.replace(",", ";").encode() + b"\n1;x;electronics;1;1.00;0;east;2024-02-01;x@y.co\n",
                       ("fails", "semicolons.csv: missing required column(s) order_id, quantity, unit_price")),
    "long_lines.csv": ((HEADER + "\n" + "\n".join(ROW.format(n=i) for i in range(3)) + "\n"
                        + "B9," + "y" * 200_000 + ",electronics,1,1.00,0,east,2024-02-01,x@y.co\n").encode(), ("rows", 4, 4, 0)),
    "odd_numbers.csv": ((HEADER + "\nC1,x,electronics,1e400,1.00,0,east,2024-02-01,\nC2,x,electronics,-0,1.00,0,east,2024-02-01,\n"
                         "C3,x,electronics,0x10,1.00,0,east,2024-02-01,\nC4,x,electronics,١٢,1.00,0,east,2024-02-01,\n"
                         "C5,x,electronics,1,1e400,0,east,2024-02-01,\nC6,x,electronics,1,-0,0,east,2024-02-01,\n"
                         "C7,x,electronics,1,0x10,0,east,2024-02-01,\nC8,x,electronics,1,١٢,0,east,2024-02-01,\n").encode(), ("rows", 8, 0, 0)),
}


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    root = tmp_path_factory.mktemp("hostile") / "data"
    write_bronze(root, {"good.csv": GOOD, **{name: content for name, (content, _) in CORPUS.items()}})
    return root, run_cli("--data-root", str(root), "--workers", "2")


def file_metrics(root: Path, name: str) -> dict | None:
    path = root / "silver" / name / "_file_metrics.json"
    return json.loads(path.read_text()) if path.exists() else None


def test_the_run_completes_and_exits_non_zero(hostile_run) -> None:
    root, result = hostile_run
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_each_hostile_file_fails_alone_or_is_accounted_for(hostile_run, name: str) -> None:
    root, result = hostile_run
    expected = CORPUS[name][1]
    metrics = file_metrics(root, name)
    if expected[0] == "fails":
        lines = [line for line in result.stdout.splitlines() if expected[1] in line]
        assert lines, result.stdout
        assert metrics is None
        assert not (root / "silver" / name).exists() or not list((root / "silver" / name).glob("part-*.parquet"))
        return
    _, read, valid, malformed = expected
    assert metrics is not None, result.stdout
    assert metrics["rows_read"] == read
    assert metrics["rows_valid"] == valid
    assert metrics["rows_rejected"]["malformed_row"] == malformed
    assert metrics["rows_read"] == metrics["rows_valid"] + sum(metrics["rows_rejected"].values())


def test_malformed_rows_keep_their_raw_text(hostile_run) -> None:
    root, _ = hostile_run
    quarantine = pq.read_table(root / "quarantine" / "invalid_utf8.csv" / "part-00001.parquet")
    row = quarantine.filter(pc.equal(quarantine["reason"], "malformed_row")).to_pylist()[0]
    assert row["source_row"] == 2 and row["raw_text"].startswith("B2,") and "\ufffd" in row["raw_text"]


def test_odd_numbers_are_rejected_with_their_reasons(hostile_run) -> None:
    root, _ = hostile_run
    metrics = file_metrics(root, "odd_numbers.csv")
    assert metrics["rows_rejected"]["invalid_quantity"] == 4
    assert metrics["rows_rejected"]["invalid_unit_price"] == 4


def test_the_good_file_is_unaffected_by_its_neighbours(hostile_run, tmp_path: Path) -> None:
    root, _ = hostile_run
    alone = tmp_path / "alone"
    write_bronze(alone, {"good.csv": GOOD})
    assert run_cli("--data-root", str(alone)).returncode == 0
    got = pq.read_table(root / "silver" / "good.csv" / "part-00001.parquet")
    expected = pq.read_table(alone / "silver" / "good.csv" / "part-00001.parquet")
    assert got.equals(expected)
    assert file_metrics(root, "good.csv") == file_metrics(alone, "good.csv")


def test_no_temporary_files_are_left(hostile_run) -> None:
    root, _ = hostile_run
    assert not list(root.rglob(".tmp-*"))


def test_symlink_out_of_the_bronze_folder_is_refused_and_others_run(tmp_path: Path) -> None:
    secret = tmp_path / "outside" / "secret.csv"
    secret.parent.mkdir()
    secret.write_text(HEADER + "\nS1,x,electronics,1,1.00,0,east,2024-02-01,x@y.co\n")
    root = tmp_path / "data"
    write_bronze(root, {"good.csv": GOOD})
    (root / "bronze" / "leak.csv").symlink_to(secret)
    result = run_cli("--data-root", str(root), "--until", "gold")
    assert result.returncode == 1
    assert "leak.csv: points outside the bronze folder" in result.stdout
    assert file_metrics(root, "good.csv")["rows_valid"] == 2
    assert not (root / "silver" / "leak.csv").exists()
    ids = pq.read_table(root / "gold" / "data_quality.parquet").column("source_file").to_pylist()
    assert ids == ["good.csv"]


def test_gold_and_report_never_hold_customer_emails(hostile_run) -> None:
    root, _ = hostile_run
    for path in (root / "gold").glob("*.parquet"):
        table = pq.read_table(path)
        assert "customer_email" not in table.column_names
        for column in table.column_names:
            if str(table.schema.field(column).type) == "string":
                assert not any("@" in (v or "") for v in table.column(column).to_pylist()), (path.name, column)
    assert "@y.co" not in (root / "report" / "index.html").read_text() and "a@b.co" not in (root / "report" / "index.html").read_text()
