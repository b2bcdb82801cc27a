"""The rule maps in pipeline/bronze/__init__.py and pipeline/gold/__init__.py name functions and
tests that exist: a rename that leaves the map behind fails here."""
from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("package", ["pipeline.bronze", "pipeline.gold"])
def test_every_function_and_test_the_package_map_names_exists(package: str) -> None:
    doc = importlib.import_module(package).__doc__ or ""
    functions = re.findall(r"`([a-z_]+)\.([A-Za-z_]+)`", doc)
    modules = re.findall(r"`([a-z_]+)`", doc)
    tests = set(re.findall(r"\b(test_[a-z_]+)\b", doc))
    assert functions and tests, doc
    for module, name in functions:
        assert hasattr(importlib.import_module(f"{package}.{module}"), name), f"{package}.{module}.{name}"
    for module in modules:
        importlib.import_module(f"{package}.{module}")
    for test in tests:
        assert (REPO / "tests" / f"{test}.py").exists(), test
