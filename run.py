#!/usr/bin/env python
"""Command line: parse arguments, apply maintenance, run the root task as Luigi's own command does
(tasks/root.py holds the run's policy), print the summary, exit with Luigi's code.

    python run.py [--data-root DIR] [--workers N] [--scheduler-host H [--scheduler-port P]]
                  [--until L] [--reprocess PATH] [--forget PATH] [--rebuild-gold] [--reprocess-all]
                  [--take-gold] [--<section>-<key> VALUE ...]
    python run.py generate --rows N [--files F] [--seed S] [--day-offset K] [--force] [--data-root DIR]
    python run.py status [--data-root DIR]
    python run.py history [--data-root DIR] [--json]
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import PipelineError

if TYPE_CHECKING:  # the modules are imported where used: a --help or a usage error starts fast
    from pipeline.running.history import Outcome, RunId, SilverSnapshot
    from pipeline.running.run_log import RunLog
    from pipeline.settings import Settings
    from pipeline.storage.layout import DataLayout
    from tasks.root import Pipeline

SAMPLE_ROOT = "sample_data"
SAMPLE_ROWS = 1_000_000
SAMPLE_FILES = 8
SAMPLE_SEED = 42
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
EXIT_TERMINATED = 143  # 128 + SIGTERM


COMMANDS = ("run", "generate", "status", "history")


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-root", help="data folder (default: [pipeline] data_root in luigi.cfg, 'data')")
    parser.add_argument("--json", action="store_true",
                        help="print the command's account as one JSON object on stdout; the human lines go to stderr")


def _at_least(low: int):
    """An argparse type: an integer of at least `low` (a usage error, exit 2, otherwise)."""
    def parse(text: str) -> int:
        value = int(text)
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value
    parse.__name__ = "integer"  # argparse names the type in its message for a non-integer
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run.py", description="Bronze CSV -> silver Parquet -> gold tables -> HTML report, restartable and exactly once.",
        epilog="With no command, `run` is meant: `python run.py --workers 4` is `python run.py run --workers 4`. "
               "A run-only setting can be overridden for one run Luigi's way, e.g. --pipeline-chunk-rows 100000; one that "
               "shapes silver is refused there and goes in luigi.cfg (`run --help` lists them; README, Configuration). "
               "Each command has its own --help.")
    commands = parser.add_subparsers(dest="command", title="commands", metavar="{run,generate,status,history}")
    from pipeline.running.overrides import help_lines

    run = commands.add_parser("run", help="run everything pending: bronze -> silver -> gold -> report (the default)",
                              description="run everything pending: bronze -> silver -> gold -> report",
                              epilog="\n".join(help_lines()), formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_common(run)
    run.add_argument("--workers", type=_at_least(1), default=None,
                     help="parallel Luigi worker processes (default: this machine's usable cores)")
    run.add_argument("--scheduler-host", help="use the luigid at this host instead of the local scheduler")
    run.add_argument("--scheduler-port", type=_at_least(1), default=8082,
                     help="the port of that luigid (default: 8082); ignored without --scheduler-host")
    run.add_argument("--reprocess", action="append", default=[], metavar="PATH",
                     help="redo this bronze file (relative to the bronze folder) and everything derived from it; repeatable")
    run.add_argument("--forget", action="append", default=[], metavar="PATH",
                     help="drop the silver of a bronze file that is gone from the bronze folder and rebuild gold without it; repeatable")
    run.add_argument("--reprocess-all", action="store_true",
                     help="redo silver of every file under the current settings and rebuild gold (after a settings change)")
    run.add_argument("--until", choices=("silver", "gold", "report"), default="report",
                     help="stop after this layer (default: report, i.e. everything)")
    run.add_argument("--rebuild-gold", action="store_true", help="drop the Silver -> Gold state and gold, and rebuild them from all silver")
    run.add_argument("--take-gold", action="store_true",
                     help="build gold on this host from now on (several hosts on one data root: see docs/OPERATIONS.md)")
    run.add_argument("--verbose", action="store_true",
                     help="show Luigi's own log, and a line per chunk also on a terminal (instead of the live progress line)")
    run.add_argument("--open", action="store_true", help="open the HTML report in the default browser at the end")
    generate = commands.add_parser("generate", help="write a deterministic dirty sample into DATA_ROOT/bronze/",
                                   description="write a deterministic dirty sample into DATA_ROOT/bronze/")
    generate.add_argument("--rows", type=_at_least(0), required=True, help="records to write in all (about 94 bytes each)")
    generate.add_argument("--files", type=_at_least(1), default=10, help="files to spread them over, evenly (default: 10)")
    generate.add_argument("--seed", type=_at_least(0), default=42,
                          help="random seed: the same arguments always give the same bytes (default: 42)")
    generate.add_argument("--day-offset", type=_at_least(0), default=0, metavar="K",
                          help="write the K-th next day's export beside earlier ones: new order ids (a few repeat the day "
                               "before's, as real duplicates do), sales on 2026-11-30 + K days, files sales_data_part_K00001... "
                               "sorting after earlier days' (default: 0, the sample itself)")
    generate.add_argument("--date-folders", action="store_true", help="put files under hive-style date=YYYY-MM-DD/ folders")
    generate.add_argument("--force", action="store_true", help="overwrite existing files of the same names")
    _add_common(generate)
    status = commands.add_parser("status", help="what is done and what is pending, layer by layer",
                                 description="what is done and what is pending, layer by layer (read-only)")
    _add_common(status)
    history = commands.add_parser("history", help="the records of past runs, newest last (runs/history/ under the data root)",
                                  description="the records of past runs, newest last: when, exit code, files new / changed / "
                                              "gone / failed, rows, new orders, gold's totals after each (read-only)")
    _add_common(history)
    return parser


def parse_args(argv: list[str]) -> argparse.Namespace:
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help")):
        argv = ["run", *argv]
    parser = build_parser()
    args, args.luigi_overrides = parser.parse_known_args(argv)
    if args.command == "run":
        if args.workers is None:
            from pipeline.cores import usable_cores

            args.workers = usable_cores()
    args.account = {"command": args.command}
    return args


def _setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    log = logging.getLogger("pipeline")
    log.handlers[:] = [handler]
    log.setLevel(logging.INFO)
    log.propagate = False


def command_generate(args: argparse.Namespace) -> int:
    from pipeline.errors import ConfigError
    from pipeline.generator import generate_bronze
    from pipeline.storage.layout import DataLayout
    from tasks.config import load_settings

    settings = load_settings(args.data_root)
    layout = DataLayout.of(settings.data_root, settings.state_dir)
    started = time.monotonic()
    if layout.remote:  # generated on this host's disk, then uploaded file by file
        import tempfile

        with tempfile.TemporaryDirectory(prefix="generate-", dir=layout.scratch_dir if layout.scratch_dir.exists() else None) as local:
            made = generate_bronze(Path(local), rows=args.rows, files=args.files, seed=args.seed,
                                   date_folders=args.date_folders, overwrite=True, day_offset=args.day_offset)
            relative = [p.relative_to(local).as_posix() for p in made]
            if not args.force and any(layout.store.exists(layout.bronze_dir / r) for r in relative):
                raise ConfigError(f"{layout.bronze_dir} already holds generated files; pass --force to replace them")
            for path, name in zip(made, relative):
                layout.store.upload(path, layout.bronze_dir / name)
    else:
        made = generate_bronze(layout.bronze_dir, rows=args.rows, files=args.files, seed=args.seed,
                               date_folders=args.date_folders, overwrite=args.force, day_offset=args.day_offset)
        relative = [p.relative_to(layout.bronze_dir).as_posix() for p in made]
    seconds = time.monotonic() - started
    rate = args.rows / seconds if seconds > 0 else 0
    print(f"generated {args.rows:,} rows in {len(made)} files under {layout.bronze_dir} in {seconds:.1f} s ({rate:,.0f} rows/s)")
    args.account.update(data_root=layout.uri, rows=args.rows, files=relative)
    return 0


def _shown_layout(args: argparse.Namespace, what: str) -> tuple[Settings, DataLayout]:
    """The settings and the data root a read-only command shows: the user's, or the embedded sample's
    when the user has no input yet and the quick start made one (said in one line)."""
    from pipeline.storage.layout import DataLayout
    from tasks.config import load_settings

    settings = load_settings(args.data_root)
    layout = DataLayout.of(settings.data_root, settings.state_dir)
    sample = DataLayout(Path(SAMPLE_ROOT))
    if _no_user_input(args, settings, layout) and sample.bronze_dir.exists():
        print(f"No CSV files under {layout.bronze_dir}: showing {what} in {sample.root}/")
        layout = sample
    return settings, layout


def command_status(args: argparse.Namespace) -> int:
    from pipeline.bronze.discovery import scan_bronze
    from pipeline.running.inventory import file_status, gone_files, header_problem, mostly_rejected_line, mostly_rejected_of, silver_totals
    from pipeline.running.silver_settings import settings_problem

    settings, layout = _shown_layout(args, "the embedded sample")
    files, refused = scan_bronze(layout.bronze_dir, settings.bronze_glob, layout.store)
    account = args.account
    account.update(data_root=str(layout.root), files=[], not_read=refused)
    print(f"data root {layout.root}: {len(files)} bronze files")
    for line in refused:
        print(f"  NOT READ {line}")
    pending = 0
    unreadable: set[str] = set()
    for f in files:
        try:
            s = file_status(layout, f)
        except ValueError:
            print(f"  {f.relative_path}: its silver manifest is unreadable: run with --reprocess {f.relative_path}")
            account["files"].append({"source_file": f.relative_path, "state": "unreadable"})
            pending += 1
            unreadable.add(f.relative_path)
            continue
        # what the run would refuse, said now
        unreadable_because = None if s.scanned else header_problem(f, layout.store, settings.column_aliases)
        if s.changed:
            state, line = "changed", "CHANGED since ingest: run with --reprocess " + s.source_file
        elif s.silver_done:
            state, line = "done", f"silver done ({s.chunks_total} chunks)"
        elif s.scanned:
            state, line = "pending", f"silver pending: {s.chunks_done}/{s.chunks_total} chunks done"
        elif unreadable_because:
            state, line = "unreadable", "UNREADABLE: " + unreadable_because.removeprefix(f"{s.source_file}: ")
            unreadable.add(s.source_file)
        else:
            state, line = "pending", "pending: not scanned yet"
        pending += not s.silver_done
        account["files"].append({"source_file": s.source_file, "state": state, "chunks_done": s.chunks_done,
                                 "chunks_total": s.chunks_total})
        print(f"  {s.source_file}: {line}")
    gone = gone_files(layout, [f.relative_path for f in files])
    for path in gone:
        print(f"  {path}: GONE from bronze since it was ingested: restore it, or run with --forget {path}")
    print(f"bronze -> silver: {len(files) - pending} of {len(files)} files done, {pending} pending"
          + (f", {len(gone)} gone" if gone else ""))
    warned = mostly_rejected_of(silver_totals(layout, files).summaries, settings.rejected_share_warning)
    for entry in warned:
        print(f"  WARNING {mostly_rejected_line(entry)}")
    problem = settings_problem(layout, settings)
    if problem:
        print(f"SETTINGS: {problem}")
    account.update(gone=gone, settings_problem=problem, silver_files_done=len(files) - pending, silver_files_pending=pending,
                   mostly_rejected=warned)
    scanned = [f.relative_path for f in files if layout.store.exists(layout.manifest_path(f.relative_path))]
    _print_gold_status(layout, [name for name in scanned if name not in unreadable], account)
    # Read-only, but not "all is well" when something waits for the user: exit 1 (and `ok: false`).
    changed = [entry["source_file"] for entry in account["files"] if entry["state"] in ("changed", "unreadable")]
    needs_action = [*changed, *gone, *refused, *([problem] if problem else [])]
    account["needs_action"] = needs_action
    return EXIT_FAILED if needs_action else 0


def command_history(args: argparse.Namespace) -> int:
    """The records of past runs, newest last (read-only)."""
    from pipeline.running.history import history_table, read_records

    settings, layout = _shown_layout(args, "the embedded sample's runs")
    if not layout.remote and not Path(layout.root).is_dir():
        raise PipelineError(f"data root {layout.root} does not exist (pass --data-root DIR)")
    records, unreadable = read_records(layout)
    for line in unreadable:
        print(f"WARNING {line}")
    if records:
        print("\n".join(history_table(records)))
    print(f"{len(records)} run(s) recorded under {layout.run_history_dir} (the newest last; each with its .log beside it)")
    args.account.update(data_root=layout.uri, runs=records, unreadable=unreadable)
    return 0


@dataclasses.dataclass
class RunContext:
    """What the run's record is made of, from the moment the run started."""

    run: RunId
    layout: DataLayout
    before: SilverSnapshot  # silver and gold before the run
    present: list[str]  # the bronze files found
    root: Pipeline  # the root task: its plan and journal
    keep: int  # [pipeline] run_history_keep
    outcome: Outcome | None = None  # computed once, after the work
    changed_nothing: bool = False  # nothing ran and no maintenance was asked for: silver is as `before` saw it


def _run_outcome(args: argparse.Namespace) -> Outcome:
    """What this run changed (pipeline.running.history.Outcome), read once after its work."""
    from pipeline.running.history import changed_files, outcome_of
    from pipeline.storage.journal import FAILED, read_journal
    from tasks.failures import settled_files

    context = args.history
    if context.outcome is None:
        plan = context.root.plan()
        events = read_journal(plan.journal)
        runnable = {f.relative_path for f in plan.run.runnable}
        set_aside = [name for name in context.present if name not in runnable]  # refused by the plan
        failed = {e["source_file"] for e in events if e["event"] == FAILED and e.get("source_file")}
        context.outcome = outcome_of(context.layout, context.before, context.present, changed_files(context.layout, set_aside),
                                     [*set_aside, *failed, *settled_files(events)],
                                     after=context.before if context.changed_nothing else None)
    return context.outcome


def _print_outcome(args: argparse.Namespace) -> None:
    """The end of the summary: the files new to silver and what gold holds now."""
    from pipeline.running.history import summary_lines

    outcome = _run_outcome(args)
    for line in summary_lines(outcome):
        print(line)
    args.account.update(new_files=outcome.new, gold_totals=outcome.gold)


def _keep_history(args: argparse.Namespace, argv: list[str], code: int, log: RunLog) -> None:
    """This run's record and log under runs/history/. A run refused before it started (usage,
    configuration, settings, an unwritable folder: exit 2, "nothing written") has none."""
    from pipeline.running.history import build_record, write_record

    context = getattr(args, "history", None)
    if context is None:
        return
    try:
        outcome = _run_outcome(args)
    except (PipelineError, OSError, ValueError, KeyError):  # e.g. the data root went away: the record says less
        outcome = None
    account = args.account
    record = build_record(context.run, ["run.py", *argv], context.layout.uri, time.time(), code, outcome,
                          account.get("failures") or [], account.get("not_read") or [], account.get("error"))
    try:
        account["run_record"] = str(write_record(context.layout, record, log.text(), context.keep))
    except (PipelineError, OSError) as err:
        print(f"WARNING the run's record could not be written under {context.layout.run_history_dir}: {err}", file=sys.stderr)


def _print_gold_status(layout, scanned_files: list[str], account: dict) -> None:
    from pipeline.gold.merge import silver_parts
    from pipeline.running.inventory import gold_status
    from pipeline.timestamps import utc_iso

    names = [p.name for p in silver_parts(layout, scanned_files) if layout.store.exists(p.path)]
    status = gold_status(layout, names)
    print(f"silver -> gold: {status.parts_merged} of {status.parts_total} silver parts merged, "
          f"{status.parts_total - status.parts_merged} pending")
    merge = "running" if status.merge_running else "interrupted" if status.unfinished_batch else "idle"
    if merge == "running":
        print("  running now: a live run or command on this data root holds the gold lock (Silver -> Gold, report or maintenance)")
    elif merge == "interrupted":
        print(f"  an interrupted merge of {status.unfinished_batch} parts will resume at the next run")
    written = utc_iso(status.gold_written_at, "seconds") if status.gold_written_at is not None else None
    if written is None:
        print("gold: not written yet")
    else:
        print(f"gold: {len(status.gold_tables)} tables in {layout.gold_dir}, last written {written}")
    report = str(layout.report_path) if layout.store.exists(layout.report_path) else None
    print(f"report: {report}" if report else "report: not written yet")
    account.update(silver_parts_total=status.parts_total, silver_parts_merged=status.parts_merged, merge=merge,
                   gold_tables=status.gold_tables, gold_written_at=written, report=report)


def _no_user_input(args: argparse.Namespace, settings, layout) -> bool:
    """No --data-root and no CSV in the default bronze folder: the embedded sample stands in."""
    from pipeline.bronze.discovery import discover_bronze

    if args.data_root is not None or layout.remote:
        return False
    return not (layout.bronze_dir.exists() and discover_bronze(layout.bronze_dir, settings.bronze_glob))


def _resolve_root(args: argparse.Namespace):
    """The data root to run on; with no input at all, the embedded sample in its own folder."""
    from pipeline.bronze.discovery import discover_bronze
    from pipeline.storage.layout import DataLayout
    from tasks.config import load_settings

    settings = load_settings(args.data_root)
    layout = DataLayout.of(settings.data_root, settings.state_dir)
    if _no_user_input(args, settings, layout):
        from pipeline.generator import generate_bronze

        sample = DataLayout(Path(SAMPLE_ROOT))
        print(f"No CSV files under {layout.bronze_dir}: running on the embedded sample, {SAMPLE_ROWS:,} generated rows "
              f"(seed {SAMPLE_SEED}) in {sample.root}/. Put your files in {layout.bronze_dir}/ or pass --data-root.")
        if not (sample.bronze_dir.exists() and discover_bronze(sample.bronze_dir, settings.bronze_glob)):
            generate_bronze(sample.bronze_dir, rows=SAMPLE_ROWS, files=SAMPLE_FILES, seed=SAMPLE_SEED)
        settings = load_settings(str(sample.root))
        layout = DataLayout.of(sample.root, settings.state_dir)
    return settings, layout


def command_run(args: argparse.Namespace) -> int:
    """Maintenance first (run.py's own commands), then the root task exactly as `luigi --module
    tasks Pipeline ...` runs it (tasks/root.py holds the run's whole policy), then the summary."""
    from pipeline.running.history import silver_snapshot, this_run
    from pipeline.running.maintenance import Maintenance
    from pipeline.running.preflight import apply_request, discover_inputs, ensure_writable
    from tasks.luigi_private import run_command
    from tasks.report import report_worker
    from tasks.root import Pipeline
    from tasks.warm_workers import warm_workers

    settings, layout = _resolve_root(args)
    ensure_writable(layout, args.until)
    files, refused = discover_inputs(layout, settings)
    args.account.update(data_root=str(layout.root), until=args.until, workers=args.workers, not_read=refused)
    if "local_scheduler" not in _scheduler_options(args):
        _ensure_scheduler_reachable(args)  # before a maintenance command deletes data, and in a few seconds
    request = Maintenance(tuple(args.reprocess), tuple(args.forget), args.rebuild_gold, args.reprocess_all, args.take_gold)
    before = silver_snapshot(layout)  # silver and gold before this run (and its maintenance) changed them
    apply_request(layout, settings, files, request, say=print)
    root = Pipeline(data_root=str(layout.root), until=args.until)
    plan = root.plan()
    # The run has started (every refusal "with nothing written" is behind it): from here it is recorded.
    args.history = RunContext(this_run(args.started_at), layout, before, [f.relative_path for f in files], root,
                              settings.run_history_keep)
    runnable = plan.run.runnable
    args.account.update(files=len(runnable), failures=list(plan.run.errors))
    if root.complete():  # what Luigi finds first too: nothing is run, exit 0
        args.history.changed_nothing = not request.requested
        _print_nothing_to_do(args, layout, plan)
        return 0
    nothing_new = plan.top.complete() or not (plan.run.gold_files or runnable)  # only the plan's errors to tell
    if not nothing_new:
        print(f"running {len(runnable)} bronze files from {layout.bronze_dir} with {args.workers} worker(s)")
    started = time.monotonic()
    with contextlib.ExitStack() as workers:
        if not nothing_new:
            _import_before_forking()
            workers.enter_context(warm_workers(args.workers))
            if args.until == "report":
                workers.enter_context(report_worker())
        with _live_progress(args, layout, runnable, plan.journal, started):
            code = run_command(_luigi_argv(args, layout))
    return _report_run(args, layout, root, code, time.monotonic() - started, nothing_new)


def _import_before_forking() -> None:
    """pyarrow imports pandas (about 0.25 s of CPU) the first time it converts a Python or numpy
    value, and every process of a run does that: each warm worker in its first chunk, Silver -> Gold
    in its set-up. Imported once here, before the warm workers and Luigi's task processes are
    forked, they all inherit it (bench/README.md, "Start-up": 3M rows 6.64-6.82 -> 6.09-6.62 s).
    Not for a run with nothing to do, whose answer is all start-up."""
    import pandas  # noqa: F401


def _luigi_argv(args: argparse.Namespace, layout) -> list[str]:
    """The `luigi` command line of this run (after `luigi --module tasks`)."""
    from tasks.root import Pipeline

    options = _scheduler_options(args)
    scheduler = (["--scheduler-host", options["scheduler_host"], "--scheduler-port", str(options["scheduler_port"])]
                 if "scheduler_host" in options else ["--local-scheduler"] if options else [])
    return [Pipeline.get_task_family(), "--data-root", str(layout.root), "--until", args.until, "--workers", str(args.workers),
            "--log-level", "INFO" if args.verbose else "CRITICAL", *scheduler, *args.luigi_overrides]


def _print_nothing_to_do(args: argparse.Namespace, layout, plan) -> None:
    from pipeline.running.inventory import silver_totals

    _print_errors(plan.run.errors)
    runnable = plan.run.runnable
    totals = silver_totals(layout, runnable, plan.run.summaries)  # nothing ran since the plan read them
    # "Nothing to do" only when what was asked for is current: a run that may not build gold says so.
    done_up_to = "silver (gold is not built by this run: see above)" if plan.notes else args.until
    print(f"Nothing to do: all {len(runnable)} files are already done up to {done_up_to} "
          f"({totals.rows_read:,} rows read, {totals.rows_valid:,} valid). Gold: {layout.gold_dir}")
    _print_outcome(args)
    args.account.update(nothing_to_do=True, gold_built_here=not plan.notes, silver=_totals_account(totals),
                        report=_show_report(layout, args.open))


def _report_run(args: argparse.Namespace, layout, root, code: int, seconds: float, nothing_new: bool) -> int:
    """The summary of a run from its journal; the exit code is Luigi's, as the `luigi` command's."""
    from pipeline.running.progress import run_work
    from pipeline.storage.journal import LEFT_OUT, read_journal
    from tasks.failures import failure_lines

    plan = root.plan()
    events = read_journal(plan.journal)
    lines = plan.run.errors + failure_lines(root.failures())
    if nothing_new:
        if plan.run.gold_files or plan.run.runnable:
            _print_nothing_to_do(args, layout, plan)
        else:
            _print_errors(lines)
            print("no bronze file can run; nothing done")
        args.account["failures"] = lines
        return code
    _print_summary(args, layout, plan.run.runnable, run_work(events), seconds)
    _print_outcome(args)
    left_out = next((e["files"] for e in reversed(events) if e["event"] == LEFT_OUT), [])
    _print_errors(lines)
    if left_out:
        print(f"gold does not include {', '.join(left_out)} (failed above); run again once fixed")
    args.account.update(failures=lines, left_out=left_out, report=_show_report(layout, args.open))
    if code and not lines:
        print(f"FAILED {layout.root}: the run's {args.until} is not complete: another worker or command on this data root "
              "changed it meanwhile (e.g. --rebuild-gold), or the scheduler went away (--verbose shows Luigi's log); run again")
    if code:
        print(f"run finished with {max(len(lines), 1)} problem(s) (the FAILED lines above); exit {code}.")
    return code


@contextlib.contextmanager
def _live_progress(args: argparse.Namespace, layout, runnable, journal_file: Path, started: float):
    """On a terminal: one line, rewritten in place, instead of a line per chunk (200 lines at 100M
    rows). Logs and CI (no terminal), and --verbose, keep the per-chunk lines."""
    import threading

    if args.verbose or not sys.stdout.isatty():
        yield
        return
    from pipeline.running.progress import pending_bytes, progress_line, run_work
    from pipeline.storage.journal import read_journal
    from tasks.base import STEP_LOG

    logging.getLogger(STEP_LOG).setLevel(logging.WARNING)
    pending = pending_bytes(layout, [f.relative_path for f in runnable])
    stop = threading.Event()
    shown = [0]

    def show() -> None:
        work = run_work(read_journal(journal_file))
        line = progress_line(work, pending, time.monotonic() - started)
        sys.stdout.write("\r" + line.ljust(shown[0]))
        sys.stdout.flush()
        shown[0] = len(line)

    def loop() -> None:
        show()
        while not stop.wait(0.5):
            show()

    thread = threading.Thread(target=loop, name="progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        sys.stdout.write("\r" + " " * shown[0] + "\r")
        sys.stdout.flush()


def _print_errors(lines: list[str]) -> None:
    for line in lines:
        print(f"FAILED {line}")


def _scheduler_options(args: argparse.Namespace) -> dict:
    """--scheduler-host wins; else `[core] scheduler_host`/`scheduler_url` in luigi.cfg; else local."""
    from luigi.configuration import get_config

    if args.scheduler_host:
        return {"scheduler_host": args.scheduler_host, "scheduler_port": args.scheduler_port}
    config = get_config()
    if config.has_option("core", "scheduler_host") or config.has_option("core", "scheduler_url"):
        return {}
    return {"local_scheduler": True}


def _ensure_scheduler_reachable(args: argparse.Namespace) -> None:
    """One connection to the scheduler the run will use, in a few seconds, before anything is changed."""
    import socket
    from urllib.parse import urlparse

    from luigi.configuration import get_config

    from pipeline.errors import EnvironmentProblem

    if args.scheduler_host:
        host, port = args.scheduler_host, args.scheduler_port
    else:
        config = get_config()
        url = urlparse(config.get("core", "scheduler_url", "") or "")
        host = url.hostname or config.get("core", "scheduler_host", "localhost")
        port = url.port or config.getint("core", "scheduler_port", 8082)
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as err:
        raise EnvironmentProblem(f"scheduler {host}:{port} cannot be reached ({err.strerror or err}); is luigid running "
                                 "there? nothing was changed") from None


def _show_report(layout, open_it: bool) -> str | None:
    """Print where the report is; with --open, open it in the default browser."""
    if not layout.store.exists(layout.report_path):
        return None
    uri = str(layout.report_path) if layout.remote else Path(layout.report_path).resolve().as_uri()
    print(f"report: {layout.report_path} ({uri})")
    if open_it:
        import webbrowser

        if not webbrowser.open(uri):
            print(f"could not start a browser here; open {uri} yourself")
    return str(layout.report_path)


def _totals_account(totals) -> dict:
    return {"files": totals.files, "chunks": totals.chunks, "rows_read": totals.rows_read, "rows_valid": totals.rows_valid,
            "rows_rejected": dict(totals.rows_rejected)}


def _warn_mostly_rejected(layout, totals) -> list[dict]:
    from pipeline.running.inventory import mostly_rejected_line, mostly_rejected_of
    from tasks.config import settings_for_root

    found = mostly_rejected_of(totals.summaries, settings_for_root(str(layout.root)).rejected_share_warning)
    for entry in found:
        print(f"WARNING {mostly_rejected_line(entry)}")
    return found


def _print_summary(args: argparse.Namespace, layout, files, work, seconds: float) -> None:
    from pipeline.running.inventory import silver_totals

    totals = silver_totals(layout, files)
    rate = work.rows_cleaned / seconds if seconds > 0 else 0.0
    print("")
    print(f"silver: {totals.files} of {len(files)} files, {totals.chunks} chunks, {totals.rows_read:,} rows read, "
          f"{totals.rows_valid:,} valid, {sum(totals.rows_rejected.values()):,} rejected")
    for reason, count in totals.rows_rejected.items():
        print(f"  rejected {reason}: {count:,}")
    gold = work.gold  # this run's own Silver -> Gold, never another run's on the same data root
    if gold:
        if gold.get("state_rebuilt_because"):
            print(f"gold: the Silver -> Gold state was rebuilt from all silver in input order: {gold['state_rebuilt_because']}")
        print(f"gold: merged {gold['rows_merged']:,} silver rows ({gold['new_unique_orders']:,} new unique orders) in "
              f"{gold['merge_seconds']:.1f} s, wrote {len(gold['tables_written'])} tables to {layout.gold_dir}")
    print(f"this run: {work.rows_cleaned:,} rows cleaned, whole run {seconds:.1f} s ({rate:,.0f} rows/s) with {args.workers} worker(s)")
    warned = _warn_mostly_rejected(layout, totals)  # the summaries silver_totals read, not read again
    args.account.update(seconds=round(seconds, 3), silver=_totals_account(totals), gold=gold, mostly_rejected=warned,
                        this_run={"rows_cleaned": work.rows_cleaned, "chunks_cleaned": work.chunks_cleaned,
                                  "small_file_groups": work.small_file_groups, "rows_per_second": round(rate)})


@contextlib.contextmanager
def _luigi_command_line(overrides: list[str]):
    """Luigi's own command line for the rest of the run (and every process it forks): the
    options run.py does not know, such as `--cleaning-max-quantity 15`, are Luigi's to parse."""
    import io

    from tasks.luigi_private import command_line
    from tasks.root import Pipeline

    captured = io.StringIO()
    line = command_line([Pipeline.get_task_family(), *overrides])
    try:
        with contextlib.redirect_stderr(captured):
            line.__enter__()
    except SystemExit:
        lines = captured.getvalue().strip().splitlines()
        raise PipelineError(f"{lines[-1].split(': error: ', 1)[-1] if lines else 'bad options'} (see python run.py --help)") from None
    try:
        yield
    finally:
        line.__exit__(None, None, None)


class Terminated(BaseException):
    """SIGTERM: stop like Ctrl-C does."""


_MAIN_PID = os.getpid()


def _terminated(_signum: int, _frame: object) -> None:
    if os.getpid() != _MAIN_PID:  # a process forked from the run, before it set its own handlers
        os._exit(EXIT_TERMINATED)
    raise Terminated()


def _interrupted(_signum: int, _frame: object) -> None:
    """Ctrl-C reaches the whole process group: only the run itself answers it; a process it forked
    (a Luigi task process still checking its inputs) ignores it and dies with the run."""
    if os.getpid() == _MAIN_PID:
        raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    from pipeline.running.run_log import RunLog

    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    args.started_at = time.time()
    with RunLog() if args.command == "run" else contextlib.nullcontext() as log:  # what a run prints, for its log
        try:
            if not args.json:
                code = _main(args)
            else:  # --json: stdout carries exactly one JSON object; every human line goes to stderr.
                with contextlib.redirect_stdout(sys.stderr):
                    code = _main(args)
        except BaseException as bug:  # a bug (its traceback follows): recorded with the exit code it will end with
            args.account["error"] = f"{type(bug).__name__}: {bug}"
            ended = (EXIT_INTERRUPTED if isinstance(bug, KeyboardInterrupt) else EXIT_TERMINATED if isinstance(bug, Terminated)
                     else bug.code if isinstance(bug, SystemExit) and isinstance(bug.code, int) else EXIT_FAILED)
            _keep_history(args, argv, ended, log)
            raise
        try:
            _keep_history(args, argv, code, log)
        except (KeyboardInterrupt, Terminated) as stop:  # stopped while the record was written: said as any stop
            print("interrupted: run the same command again to resume", file=sys.stderr)
            code = EXIT_TERMINATED if isinstance(stop, Terminated) else EXIT_INTERRUPTED
    if not args.json:
        return code
    args.account.update(exit_code=code, ok=code == 0)
    print(json.dumps(args.account, sort_keys=True, default=str), flush=True)
    return code


def _fail(args: argparse.Namespace, message: str, code: int = EXIT_USAGE) -> int:
    print(f"ERROR {message}", file=sys.stderr)
    args.account["error"] = message
    return code


def _main(args: argparse.Namespace) -> int:
    import configparser

    from pipeline.errors import environment_line

    _setup_logging(getattr(args, "verbose", False))
    import warnings

    # Luigi warns and goes on without a LUIGI_CONFIG_PATH that names no file; we stop, in one line.
    # (Luigi warns as it is imported, so this filter is set here, before the first import of it.)
    warnings.filterwarnings("ignore", message="Config file does not exist")
    try:
        from luigi.configuration import get_config

        import tasks.config  # noqa: F401 - layers the repo's luigi.cfg under LUIGI_CONFIG_PATH

        get_config()  # parse every config file now, so a malformed one fails here in one line
        problem = tasks.config.config_path_problem()
        if problem:
            raise PipelineError(problem)
    except PipelineError as err:
        return _fail(args, str(err))
    except configparser.Error as err:
        return _fail(args, f"config: {' '.join(str(err).split())}")
    signal.signal(signal.SIGTERM, _terminated)
    signal.signal(signal.SIGINT, _interrupted)
    try:
        with _luigi_command_line(args.luigi_overrides):
            if args.command == "generate":
                return command_generate(args)
            if args.command == "status":
                return command_status(args)
            if args.command == "history":
                return command_history(args)
            return command_run(args)
    except (KeyboardInterrupt, Terminated) as stop:
        # Every output is atomic and every task process and warm worker dies with this process
        # (PR_SET_PDEATHSIG): nothing is half written, and the next run resumes where this stopped.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("interrupted: run the same command again to resume", file=sys.stderr)
        args.account["error"] = "interrupted"
        return EXIT_TERMINATED if isinstance(stop, Terminated) else EXIT_INTERRUPTED
    except PipelineError as err:  # the project's own errors are one line; a bug shows its traceback (exit 1)
        return _fail(args, str(err))
    except OSError as err:  # permissions, a full disk, a read-only file system: the machine, not the data
        return _fail(args, environment_line(err))


if __name__ == "__main__":
    try:
        code = main()
    except KeyboardInterrupt:  # a Ctrl-C in the last instants, after main's own handling
        print("interrupted: run the same command again to resume", file=sys.stderr)
        code = EXIT_INTERRUPTED
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the run is over: the exit code stands
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sys.exit(code)
