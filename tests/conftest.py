"""Shared fixtures: tiny bronze folders on disk and ways to run the real pipeline on them."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
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
