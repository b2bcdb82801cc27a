"""The command line as documented: a help text for every option of every command, usage errors of
the command they belong to, and the one rule for settings given on the command line (a setting that
shapes silver is refused there with the luigi.cfg line to write instead; run-only ones are allowed)."""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import pyarrow.parquet as pq

import run
from pipeline.running.overrides import flag, overridable
from pipeline.settings import SETTINGS
from tests.conftest import REPO, run_cli
from tests.gold_helpers import layered_config


def _parsers() -> dict[str, argparse.ArgumentParser]:
    top = run.build_parser()
    found = {"run.py": top}
    for action in top._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update(action.choices)
    return found


def test_every_option_of_every_command_has_a_help_text() -> None:
    parsers = _parsers()
    assert set(parsers) == {"run.py", *run.COMMANDS}
    for name, parser in parsers.items():
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                assert all(choice.help for choice in action._choices_actions), name
                continue
            assert action.help and action.help != argparse.SUPPRESS and action.help.strip(), (name, action.option_strings)
    for command in run.COMMANDS:  # and each prints it
        shown = run_cli(command, "--help")
        assert shown.returncode == 0 and shown.stdout.startswith(f"usage: run.py {command}"), shown.stderr


def test_workers_0_is_a_usage_error_of_the_run_command(tmp_path: Path) -> None:
    for argv in (["--workers", "0"], ["run", "--workers", "0"]):
        result = run_cli(*argv, "--data-root", str(tmp_path))
        assert result.returncode == 2 and result.stdout == "", result.stdout
        assert result.stderr.startswith("usage: run.py run "), result.stderr
        assert result.stderr.rstrip().endswith("run.py run: error: argument --workers: must be >= 1, got 0"), result.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_run_help_lists_which_settings_may_be_given_for_one_run() -> None:
    shown = run_cli("run", "--help").stdout
    for spec in SETTINGS:
        assert flag(spec) in shown, spec.name
    assert "--cleaning-max-quantity" in shown.split("settings that shape silver go in luigi.cfg")[1]


def _silver(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.stat().st_mtime_ns for p in sorted((root / "silver").rglob("*"))}


def test_a_silver_setting_is_refused_on_the_command_line_with_the_line_for_luigi_cfg(tmp_path: Path) -> None:
    root = tmp_path / "data"
    assert run_cli("generate", "--rows", "2000", "--files", "2", "--data-root", str(root)).returncode == 0
    refused = run_cli("--data-root", str(root), "--cleaning-max-quantity", "15")
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.count("\n") == 1 and refused.stderr.startswith("ERROR config [cleaning] max_quantity: shapes silver")
    assert "luigi.cfg" in refused.stderr and "under [cleaning]: max_quantity = 15," in refused.stderr
    assert "`python run.py --reprocess-all`" in refused.stderr
    assert sorted(p.name for p in root.iterdir()) == ["bronze"]  # nothing written
    percent = run_cli("--data-root", str(root), "--cleaning-date-formats", '["%d.%m.%Y"]')  # as a config file spells it
    assert percent.returncode == 2 and 'date_formats = ["%%d.%%m.%%Y"]' in percent.stderr, percent.stderr
    bad = run_cli("--data-root", str(root), "--cleaning-max-quantity", "many")  # a bad value is told as such first
    assert bad.returncode == 2 and "cannot read 'many'" in bad.stderr

    assert run_cli("--data-root", str(root), "--until", "silver").returncode == 0
    before = _silver(root)
    with_reprocess = run_cli("--data-root", str(root), "--until", "silver", "--reprocess-all", "--cleaning-max-quantity", "15")
    assert with_reprocess.returncode == 2 and "max_quantity = 15" in with_reprocess.stderr
    assert _silver(root) == before  # nothing deleted
    # the way the refusal says: the file, --reprocess-all once, and then the nightly plain run is fine
    env = layered_config(tmp_path / "cfg", "[cleaning]\nmax_quantity = 15\n")
    applied = run_cli("--data-root", str(root), "--until", "silver", "--reprocess-all", env=env)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    nightly = run_cli("--data-root", str(root), "--until", "silver", env=env)
    assert nightly.returncode == 0 and "Nothing to do" in nightly.stdout, nightly.stdout + nightly.stderr


def test_run_only_settings_may_be_given_for_one_run_and_the_next_plain_run_goes_on(tmp_path: Path) -> None:
    root = tmp_path / "data"
    assert run_cli("generate", "--rows", "2000", "--files", "2", "--data-root", str(root)).returncode == 0
    once = run_cli("--data-root", str(root), "--until", "gold", "--pipeline-chunk-rows", "300", "--gold-top-products-n", "3")
    assert once.returncode == 0, once.stdout + once.stderr
    assert pq.read_table(root / "gold" / "top_products.parquet").num_rows == 3
    plain = run_cli("--data-root", str(root), "--until", "gold")
    assert plain.returncode == 0, plain.stdout + plain.stderr
    assert pq.read_table(root / "gold" / "top_products.parquet").num_rows == 10  # luigi.cfg's value again


def test_every_setting_flag_in_the_docs_is_a_setting_and_runs_as_the_docs_say() -> None:
    """README's examples run as written: a silver setting's flag only where the paragraph says it ends in exit 2."""
    by_flag = {flag(spec): spec for spec in SETTINGS}
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for paragraph in page.read_text(encoding="utf-8").split("\n\n"):
            for found in re.findall(r"--(?:pipeline|cleaning|gold)-[a-z-]+", paragraph):
                assert found in by_flag, f"{page.name}: {found} is no setting"
                assert overridable(by_flag[found]) or "exit 2" in paragraph, f"{page.name}: {found} is refused on the command line"
