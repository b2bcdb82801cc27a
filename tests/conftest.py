"""Shared fixtures: tiny bronze folders on disk and ways to run the real pipeline on them."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ["tests.s3_server"]  # a real S3-compatible server for the object-storage tests

REPO = Path(__file__).resolve().parent.parent

# Hypothesis: reproducible in CI (the same examples every run), random locally, where new examples help.
from hypothesis import settings as hypothesis_settings  # noqa: E402

hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
hypothesis_settings.load_profile("ci" if os.environ.get("CI") else "default")

TIERS = {
    "unit": ["test_chunking", "test_cleaning_oracle", "test_cleaning_rules", "test_date_parsing", "test_dedup",
             "test_gold_units", "test_hashing", "test_seen_runs", "test_package_map", "test_progress", "test_reader_triage", "test_settings_model"],
    "e2e": ["test_bronze_pipeline", "test_change_safety", "test_compressed_input", "test_generator", "test_gold",
            "test_gold_files", "test_gold_with_pandas", "test_header_and_config", "test_hostile_input", "test_line_endings",
            "test_no_wrong_number", "test_dedup_key", "test_gold_orders", "test_gold_readable",
            "test_operator_errors", "test_run_account", "test_small_files", "test_run_history", "test_command_line"],
    "crash": ["test_atomic", "test_faults", "test_gold_crash", "test_signals", "test_warm_workers"],
    "scheduler": ["test_luigi_native", "test_scheduler"],
    "browser": ["test_report"],
    "object_storage": ["test_object_storage", "test_object_lease"],
}
_TIER_OF = {module: tier for tier, modules in TIERS.items() for module in modules}


# The modules that take longest, longest first: `-n 2 --dist loadfile` hands whole modules to the
# workers in collection order, so starting with these keeps one long module from running alone at
# the end (a clean-clone CI run: 411 s with them where they fell alphabetically).
LONGEST_FIRST = ("test_object_storage", "test_gold_crash", "test_luigi_native", "test_scheduler", "test_change_safety",
                 "test_no_wrong_number", "test_object_lease", "test_signals", "test_small_files", "test_report")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test with its module's tier (a module without one is an error, not a silent gap),
    and run the longest modules first (LONGEST_FIRST)."""
    for item in items:
        module = Path(str(item.fspath)).stem
        if module not in _TIER_OF:
            raise pytest.UsageError(f"tests/{module}.py has no tier: add it to TIERS in tests/conftest.py")
        item.add_marker(getattr(pytest.mark, _TIER_OF[module]))
    rank = {module: i for i, module in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(Path(str(item.fspath)).stem, len(rank)))  # stable: file order otherwise


HEADER = "order_id,product_name,category,quantity,unit_price,discount_percent,region,sale_date,customer_email"


def write_bronze(root: Path, files: dict[str, str | bytes]) -> Path:
    """Create `root/bronze/<name>` for each file; text is written as UTF-8 bytes unchanged."""
    bronze = root / "bronze"
    for name, content in files.items():
        path = bronze / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return bronze


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run `python run.py ...` as a user would, from the repo root."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, str(REPO / "run.py"), *args], cwd=REPO, env=full_env,
                          capture_output=True, text=True, timeout=timeout)


def config_file(tmp_path: Path, extra: str = "") -> Path:
    """A config layered over the repo's luigi.cfg via LUIGI_CONFIG_PATH (its keys win)."""
    path = tmp_path / "luigi-test.cfg"
    path.write_text(extra)
    return path


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    return root
