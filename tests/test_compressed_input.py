"""Compressed bronze input: `*.csv.gz` and `*.csv.zst` give exactly the silver rows and gold numbers
of the same data uncompressed (only source_file names differ), through a staged plain copy that is
gone once the file's silver is done; a corrupt stream fails that file alone in one line."""
from __future__ import annotations

import dataclasses
import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pipeline.bronze.discovery import scan_bronze
from pipeline.bronze.silver import chunk_source, parse_manifest_chunk, process_chunk, read_manifest, scan_to_manifest, summarise_file
from pipeline.bronze.small_files import process_small_files, silver_units
from pipeline.errors import ChangedInputError, CompressedInputError
from pipeline.generator import generate_bronze
from pipeline.settings import Settings
from pipeline.storage.layout import DataLayout
from pipeline.storage.store import LOCAL_FILES
from tests.conftest import HEADER, REPO, run_cli
from tests.gold_helpers import assert_gold_equal, read_gold, run_gold

SUFFIX = {"gzip": ".gz", "zstd": ".zst"}
RUN_OPTIONS = ("--pipeline-chunk-rows", "2500", "--workers", "2")
CHUNK_ROWS = 2500
GOOD_ROW = b"A1,Widget,electronics,2,10.00,0.1,north,2024-01-05,a@b.co\n"


def compress(path: Path, codec: str, target: Path) -> Path:
    """`path` compressed into `target` + suffix: gzip by Python's gzip module (what `gzip` and most
    tools write), zstd by pyarrow; streamed in blocks."""
    out_path = target.with_name(target.name + SUFFIX[codec])
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "rb") as source:
        sink = gzip.open(out_path, "wb") if codec == "gzip" else pa.output_stream(str(out_path), compression="zstd")
        with sink:
            for block in iter(lambda: source.read(1 << 20), b""):
                sink.write(block)
    return out_path


def root_from(generated: Path, root: Path, codecs: list[str | None]) -> Path:
    """A data root whose bronze holds the generated files, the i-th compressed with codecs[i]."""
    for path, codec in zip(sorted(generated.rglob("*.csv")), codecs):
        target = root / "bronze" / path.relative_to(generated)
        if codec is None:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        else:
            compress(path, codec, target)
    return root


def plain_names(table: pa.Table) -> pa.Table:
    """`source_file` as plain text without a compression suffix: `a.csv.gz` reads as `a.csv`."""
    if "source_file" not in table.schema.names:
        return table
    position = table.schema.get_field_index("source_file")
    names = pc.replace_substring_regex(pc.cast(table.column(position), pa.string()), r"\.(gz|zst)$", "")
    return table.set_column(position, "source_file", names)


def layer_rows(root: Path, layer: str) -> pa.Table:
    """Every row of a layer (silver or quarantine), names made plain, in (source_file, source_row) order."""
    tables = [plain_names(pq.read_table(p).replace_schema_metadata(None)) for p in sorted((root / layer).rglob("*.parquet"))]
    return pa.concat_tables(tables).sort_by([("source_file", "ascending"), ("source_row", "ascending")])


def plain_gold(root: Path) -> dict[str, pa.Table]:
    return {name: plain_names(table) for name, table in read_gold(root).items()}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three dirty files of 8,000 rows in date folders (about 3 chunks each at 2,500 rows)."""
    bronze = tmp_path_factory.mktemp("generated") / "bronze"
    generate_bronze(bronze, rows=24_000, files=3, seed=11, date_folders=True)
    return bronze


CODECS = {"plain": [None, None, None], "gzip": ["gzip", "gzip", "gzip"], "zstd": ["zstd", "zstd", "zstd"],
          "mixed": ["zstd", None, "gzip"]}


class Runs:
    """The same data run to gold plain, all gzip, all zstd, and mixed (both codecs and a plain
    file); each data root is made and run on first use, once per module."""

    def __init__(self, generated: Path, base: Path) -> None:
        self.generated, self.base, self.roots = generated, base, {}

    def __getitem__(self, kind: str) -> Path:
        if kind not in self.roots:
            root = root_from(self.generated, self.base / kind, CODECS[kind])
            run_gold(root, None, *RUN_OPTIONS)
            self.roots[kind] = root
        return self.roots[kind]


@pytest.fixture(scope="module")
def runs(generated: Path, tmp_path_factory: pytest.TempPathFactory) -> Runs:
    return Runs(generated, tmp_path_factory.mktemp("runs"))


# By default the mixed root (a zstd, a plain and a gzip file); every file of one codec is the slow tier.
@pytest.mark.parametrize("kind", [pytest.param("gzip", marks=pytest.mark.slow), pytest.param("zstd", marks=pytest.mark.slow),
                                  "mixed"])
def test_compressed_bronze_gives_the_silver_quarantine_and_gold_of_plain_csv(runs: Runs, kind: str) -> None:
    root, plain = runs[kind], runs["plain"]
    bronze_names = sorted(p.relative_to(root / "bronze").as_posix() for p in (root / "bronze").rglob("*.*"))
    assert len(bronze_names) == 3 and sum(n.endswith((".gz", ".zst")) for n in bronze_names) == (2 if kind == "mixed" else 3)
    for name in bronze_names:  # a compressed file spans several chunks, read in parallel from its staged copy
        assert len(read_manifest(LOCAL_FILES, DataLayout.of(root).manifest_path(name)).chunks) >= 3
    for layer in ("silver", "quarantine"):
        assert layer_rows(root, layer).equals(layer_rows(plain, layer)), f"{kind}: {layer} differs from the plain run"
    assert_gold_equal(plain_gold(root), plain_gold(plain), kind)


def test_staged_copies_are_gone_once_silver_is_done_and_a_rerun_has_nothing_to_do(runs: Runs) -> None:
    root = runs["mixed"]  # a gzip and a zstd file, each staged
    staging = DataLayout.of(root).staging_dir
    assert not staging.exists() or not any(staging.iterdir()), f"staged copies left: {list(staging.iterdir())}"
    again = run_gold(root, None, *RUN_OPTIONS)
    assert "Nothing to do" in again.stdout, again.stdout


def test_a_corrupt_or_truncated_compressed_file_fails_alone_in_one_line(generated: Path, runs: Runs, tmp_path: Path) -> None:
    root = root_from(generated, tmp_path / "corrupt", [None, "gzip", "zstd"])
    bronze = root / "bronze"
    whole = gzip.compress((HEADER + "\n").encode() + GOOD_ROW * 50)
    (bronze / "truncated.csv.gz").write_bytes(whole[: len(whole) - 9])
    (bronze / "garbage.csv.zst").write_bytes(b"order_id,quantity\nthis is no zstd frame\n")
    result = run_cli("--data-root", str(root), "--until", "gold", *RUN_OPTIONS)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output
    failed = [line for line in output.splitlines() if line.startswith("FAILED")]
    assert failed == [
        "FAILED garbage.csv.zst: not a valid zstd stream (ZSTD decompress failed: Unknown frame descriptor); "
        "fix or replace the file, then run again",
        "FAILED truncated.csv.gz: not a valid gzip stream (truncated: the file ends inside the compressed stream); "
        "fix or replace the file, then run again",
    ], output
    assert layer_rows(root, "silver").equals(layer_rows(runs["plain"], "silver"))  # the other files all reached silver
    assert_gold_equal(plain_gold(root), plain_gold(runs["plain"]), "gold without the corrupt files")


def test_a_stream_truncated_after_its_head_fails_the_scan_in_one_line_and_leaves_no_staged_copy(tmp_path: Path) -> None:
    """Past the 4 MiB head the run checks up front, the scan's staging meets the truncation."""
    layout = DataLayout.of(tmp_path)
    data = (HEADER + "\n").encode() + GOOD_ROW * 120_000  # 7 MB decompressed
    for codec in ("gzip", "zstd"):
        name = f"long.csv{SUFFIX[codec]}"
        whole = gzip.compress(data, compresslevel=1) if codec == "gzip" else pa.Codec("zstd").compress(data, asbytes=True)
        (layout.bronze_dir).mkdir(exist_ok=True)
        (layout.bronze_dir / name).write_bytes(whole[: int(len(whole) * 0.9)])
        with pytest.raises(CompressedInputError) as raised:
            scan_to_manifest(layout, name, Settings())
        assert str(raised.value).startswith(f"{layout.bronze_dir / name}: not a valid {codec} stream (")
        assert "\n" not in str(raised.value)
        assert not layout.manifest_path(name).exists()
        assert not layout.staging_dir.exists() or not list(layout.staging_dir.iterdir())


def _chunks_by_hand(root: Path, name: str, settings: Settings, between=None) -> pa.Table:
    """Scan, every chunk, and the summary, called directly; `between(layout, manifest)` runs after the scan."""
    layout = DataLayout.of(root)
    manifest = scan_to_manifest(layout, name, settings)
    if between is not None:
        between(layout, manifest)
    for chunk in manifest.chunks:
        process_chunk(layout, name, chunk.index, settings)
    summarise_file(layout, manifest)
    return layer_rows(root, "silver")


def test_a_staged_copy_deleted_or_cut_short_before_the_chunks_is_staged_again(generated: Path, tmp_path: Path) -> None:
    settings = dataclasses.replace(Settings(), chunk_rows=CHUNK_ROWS)
    source = sorted(generated.rglob("*.csv"))[0]
    relative = source.relative_to(generated).as_posix()
    plain = root_from(generated, tmp_path / "plain", [None])
    expected = _chunks_by_hand(plain, relative, settings)
    seen: list[Path] = []

    def delete_staged(layout: DataLayout, manifest) -> None:
        staged = layout.staged_copies(manifest.source_file)
        assert len(staged) == 1 and staged[0].stat().st_size >= manifest.chunks[-1].end
        seen.append(staged[0])
        for chunk in manifest.chunks:  # a caller that passes the compressed file itself gets the same records, streamed
            streamed = parse_manifest_chunk(layout.bronze_dir / manifest.source_file, manifest, chunk.index)
            assert streamed.raw.equals(parse_manifest_chunk(staged[0], manifest, chunk.index).raw)
        staged[0].unlink()  # deleted, or the chunks run on another machine

    def cut_staged(layout: DataLayout, manifest) -> None:
        staged = layout.staged_copies(manifest.source_file)[0]
        with open(staged, "r+b") as handle:
            handle.truncate(manifest.chunks[-1].end // 2)

    for codec, between in (("gzip", delete_staged), ("zstd", cut_staged)):
        root = root_from(generated, tmp_path / codec, [codec])
        got = _chunks_by_hand(root, relative + SUFFIX[codec], settings, between)
        assert got.equals(expected), codec
        assert not list(DataLayout.of(root).staging_dir.iterdir()), "the staged copy outlived the file's silver"
    assert seen and seen[0].parent == DataLayout.of(tmp_path / "gzip").staging_dir


def test_a_compressed_file_changed_after_its_scan_is_never_read_from_a_stale_staged_copy(generated: Path, tmp_path: Path) -> None:
    settings = dataclasses.replace(Settings(), chunk_rows=CHUNK_ROWS)
    root = root_from(generated, tmp_path / "changed", ["gzip"])
    layout = DataLayout.of(root)
    name = sorted(p.relative_to(layout.bronze_dir).as_posix() for p in layout.bronze_dir.rglob("*.gz"))[0]
    manifest = scan_to_manifest(layout, name, settings)
    for path in layout.staged_copies(name):
        path.unlink()
    (layout.bronze_dir / name).write_bytes(gzip.compress((HEADER + "\n").encode() + GOOD_ROW * 10))
    with pytest.raises(ChangedInputError, match="changed since it was ingested"):
        process_chunk(layout, name, 0, settings)
    with pytest.raises(ChangedInputError, match="changed while it was being decompressed"):
        chunk_source(layout, manifest)  # restaging checks the compressed bytes against the manifest
    assert not list(layout.staging_dir.iterdir())


def test_discovery_finds_each_compressed_form_once_in_natural_order_and_never_a_staged_copy(tmp_path: Path) -> None:
    bronze = tmp_path / "bronze"
    names = ["d/part_10.csv", "d/part_2.csv.gz", "d/part_2.csv", "part_1.csv.zst", "part_3.csv.bak", "part_4.csv.gz.tmp",
             "notes.txt.gz", ".tmp-part_5.csv.gz.host-1.x"]
    for name in names:
        (bronze / name).parent.mkdir(parents=True, exist_ok=True)
        (bronze / name).write_text(HEADER + "\n")
    (tmp_path / "staging").mkdir()
    (tmp_path / "staging" / "part_9.csv.gz.0123456789.a-b.csv").write_text(HEADER + "\n")
    found, refused = scan_bronze(bronze, "**/*.csv")
    assert [f.relative_path for f in found] == ["d/part_2.csv", "d/part_2.csv.gz", "d/part_10.csv", "part_1.csv.zst"]
    assert refused == []
    assert [f.relative_path for f in scan_bronze(bronze, "d/*_2.csv")[0]] == ["d/part_2.csv", "d/part_2.csv.gz"]


def test_compressed_files_always_take_the_per_file_path(generated: Path, tmp_path: Path) -> None:
    units = silver_units([("a.csv", 10), ("b.csv.gz", 10), ("c.csv", 10), ("d.csv.zst", 10), ("e.csv", 10)], 1 << 20)
    assert [(u.files, u.grouped) for u in units] == [
        (("a.csv",), True), (("b.csv.gz",), False), (("c.csv",), True), (("d.csv.zst",), False), (("e.csv",), True)]
    # Given one anyway, the group path reads it through its staged copy and leaves none behind.
    settings = dataclasses.replace(Settings(), chunk_rows=CHUNK_ROWS)
    plain = root_from(generated, tmp_path / "plain", [None])
    root = root_from(generated, tmp_path / "zstd", ["zstd"])
    name = [p.relative_to(root / "bronze").as_posix() for p in (root / "bronze").rglob("*.zst")][0]
    outcome = process_small_files(DataLayout.of(root), [name], settings)
    assert outcome.done == [name] and not outcome.failures
    process_small_files(DataLayout.of(plain), [name.removesuffix(".zst")], settings)
    assert layer_rows(root, "silver").equals(layer_rows(plain, "silver"))
    assert not list(DataLayout.of(root).staging_dir.iterdir())


MEMORY_PROBE = """
import json, sys, tracemalloc, zlib
from pathlib import Path
import pyarrow as pa
from pipeline.storage.fingerprint import fingerprint_file
from pipeline.storage.store import LOCAL_FILES
from pipeline.bronze.compressed import stage_copy
source, staged = Path(sys.argv[1]), Path(sys.argv[2])
fingerprint = fingerprint_file(LOCAL_FILES, source)
pool = pa.default_memory_pool()
start = pool.max_memory()
tracemalloc.start()
stage_copy(source, staged, fingerprint.size, fingerprint.crc32)
print(json.dumps({"python_peak": tracemalloc.get_traced_memory()[1], "arrow_peak": pool.max_memory() - start,
                  "staged": staged.stat().st_size}))
"""


@pytest.mark.parametrize("codec", ["gzip", "zstd"])
def test_staging_memory_is_bounded_by_the_block_size_not_the_file(tmp_path: Path, codec: str) -> None:
    """96 MiB of CSV that compresses about 1000:1 is staged holding a few MiB at a time."""
    plain = tmp_path / "big.csv"
    block = (HEADER + "\n").encode() + GOOD_ROW * ((1 << 20) // len(GOOD_ROW))
    with open(plain, "wb") as handle:
        for _ in range(96):
            handle.write(block)
    source = compress(plain, codec, tmp_path / "bronze" / "big.csv")
    assert source.stat().st_size < 2 << 20
    result = subprocess.run([sys.executable, "-c", MEMORY_PROBE, str(source), str(tmp_path / "staged.csv")],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    measured = json.loads(result.stdout)
    assert measured["staged"] == plain.stat().st_size
    assert measured["python_peak"] < 12 << 20, measured  # a 4 MiB block and its copy, not 96 MiB
    assert measured["arrow_peak"] < 8 << 20, measured


def test_the_default_glob_walks_once_and_finds_and_refuses_what_the_glob_would(tmp_path: Path) -> None:
    """`**/*.csv` is one walk of the folder (no stat for a regular file): every kind of path named like
    an input is found or refused as the glob route (`*.csv`, `sub/*.csv`) decides it in its folder."""
    import os

    bronze, outside = tmp_path / "bronze", tmp_path / "elsewhere"
    for name in ["a.csv", "B.CSV", "c.Csv.gz", "d.csv.bak", ".tmp-e.csv", "sub/f.csv", "sub/deep/g.csv", "dir.csv/h.csv",
                 "sub/x.zst.csv", "sub/y.csv.zst"]:
        (bronze / name).parent.mkdir(parents=True, exist_ok=True)
        (bronze / name).write_text(HEADER + "\n")
    (outside / "i.csv").parent.mkdir(parents=True)
    (outside / "i.csv").write_text(HEADER + "\n")
    os.mkfifo(bronze / "fifo.csv")
    os.symlink(outside / "i.csv", bronze / "out.csv")
    os.symlink("nowhere", bronze / "broken.csv")
    os.symlink("a.csv", bronze / "inlink.csv")
    os.symlink("loop.csv", bronze / "loop.csv")
    os.symlink(outside, bronze / "linkdir")
    os.symlink("deep", bronze / "sub/innerlink")  # inside, still not walked
    found, refused = scan_bronze(bronze, "**/*.csv")
    assert [f.relative_path for f in found] == ["B.CSV", "a.csv", "c.Csv.gz", "dir.csv/h.csv", "inlink.csv", "sub/deep/g.csv",
                                                "sub/f.csv", "sub/x.zst.csv", "sub/y.csv.zst"]
    assert all(f.absolute_path == bronze / f.relative_path for f in found)
    assert refused == [
        "broken.csv: a symlink whose target does not exist; not read",
        "dir.csv: a folder named like an input file; not read (its files are matched by the glob on their own)",
        "fifo.csv: not a regular file (a FIFO, socket or device?); not read",
        "linkdir/: a symlinked folder; its files are not read (copy or bind-mount it instead)",
        "loop.csv: a symlink loop (or a link that cannot be followed); not read",
        "out.csv: points outside the bronze folder (a symlink?); refusing to read it",
        "sub/innerlink/: a symlinked folder; its files are not read (copy or bind-mount it instead)",
    ]
    top, top_refused = scan_bronze(bronze, "*.csv")  # pathlib's glob, folder by folder
    sub, _ = scan_bronze(bronze, "sub/*.csv")
    assert [f.relative_path for f in [*top, *sub]] == [f.relative_path for f in found if "/" not in f.relative_path or
                                                        f.relative_path.startswith("sub/") and f.relative_path.count("/") == 1]
    assert top_refused == [line for line in refused if "/" not in line.split(":")[0]]
