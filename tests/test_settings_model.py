"""One settings table (pipeline.settings.SETTINGS) drives the config reader, the fingerprints and
the README: luigi.cfg, the table, the defaults and README must agree, and what each setting
reaches decides what a change of it does to silver, the state and gold."""
from __future__ import annotations

import ast
import configparser
import hashlib
from pathlib import Path

import pytest

from pipeline import settings as model
from pipeline.gold.merge import SilverPart, stale_state_reason
from pipeline.settings import SETTINGS, Reach, Settings, changed_keys, gold_fingerprint, silver_fingerprint, state_values
from tests.conftest import REPO

# The bronze -> silver code: a change to what these modules do can change what silver holds.
SILVER_CODE = ("bronze/silver", "bronze/chunking", "bronze/cleaning", "contract", "bronze/hashing", "bronze/header", "storage/parquet_io",
               "bronze/reader")
# (SILVER_CODE_VERSION, digest of that code without comments and docstrings) it was last reviewed at.
REVIEWED = (4, "782f7f511e90ee6e")  # 2026-12-04: parquet_io's SmallPartPool holds whole order rows and parses fetched bytes; silver written as before


def _code_digest() -> str:
    digest = hashlib.blake2b(digest_size=8)
    for name in SILVER_CODE:
        tree = ast.parse((REPO / "pipeline" / f"{name}.py").read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
        digest.update(name.encode() + ast.dump(tree).encode())
    return digest.hexdigest()


def test_silver_code_changes_are_reviewed_against_the_silver_code_version() -> None:
    version, digest = REVIEWED
    assert (model.SILVER_CODE_VERSION, _code_digest()) == (version, digest), (
        "the bronze -> silver code changed. If silver written by the old code differs for the same input, bump "
        "pipeline.settings.SILVER_CODE_VERSION (old silver is then refused until --reprocess-all). Either way set "
        f"REVIEWED in this test to ({model.SILVER_CODE_VERSION if version == model.SILVER_CODE_VERSION else 'the new version'}, "
        f"{_code_digest()!r}).")


def test_luigi_cfg_has_every_setting_of_the_table_and_its_defaults() -> None:
    parser = configparser.ConfigParser()  # Luigi's interpolation: %% is a literal %
    parser.read(REPO / "luigi.cfg")
    for section in {spec.section for spec in SETTINGS}:
        assert set(parser.options(section)) == {s.key for s in SETTINGS if s.section == section}, section
    defaults = Settings()
    for spec in SETTINGS:
        parsed = spec.parse(parser.get(spec.section, spec.key))
        assert model._canonical(parsed) == model._canonical(getattr(defaults, spec.field)), spec.name


def test_every_settings_field_is_in_the_table_once() -> None:
    assert sorted(spec.field for spec in SETTINGS) == sorted(model.settings_fields())
    assert len({spec.name for spec in SETTINGS}) == len(SETTINGS)


def test_readme_configuration_table_is_the_generated_one() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert model.settings_table_markdown() in readme, "regenerate it: python -m pipeline.settings"


@pytest.mark.parametrize("spec", SETTINGS, ids=lambda spec: spec.name)
def test_each_setting_moves_exactly_the_fingerprints_its_reach_says(spec: model.SettingSpec) -> None:
    base = Settings()
    changed = _another_value(spec)
    other = base.with_changes(**{spec.field: changed})
    moved = (silver_fingerprint(base) != silver_fingerprint(other), state_values(base) != state_values(other),
             gold_fingerprint(base) != gold_fingerprint(other))
    expected = {Reach.SILVER: (True, True, True), Reach.STATE: (False, True, True), Reach.GOLD: (False, False, True)}
    assert moved == expected.get(spec.reach, (False, False, False)), spec.name


def _another_value(spec: model.SettingSpec) -> object:
    value = getattr(Settings(), spec.field)
    if spec.field == "region_aliases":
        return {**value, "central": ["central"]}
    if spec.field == "column_aliases":
        return {**value, "quantity": [*value["quantity"], "pieces"]}
    if spec.field == "category_aliases":
        return {**value, "toys": ["games"]}
    if spec.field == "date_formats":
        return tuple(reversed(value))
    if spec.field == "default_region":
        return "south"
    if spec.field == "gold_mode":
        return "overwrite"
    if spec.field == "dedup_key":
        return ("order_id", "product_key")
    if spec.field == "bronze_glob":
        return "*.csv"
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return max(1, value // 2)
    if isinstance(value, float):
        return value / 2
    return value + "-other"


def test_changed_keys_names_only_what_differs_and_tuples_equal_lists() -> None:
    assert changed_keys({"a": [1, 2], "b": 1}, {"a": (1, 2), "b": 2, "c": 0}) == ["b", "c"]


# --- when the Silver -> Gold state can be continued (pure: no files) ------------------------------

PARTS = [SilverPart(f"f{i}.csv", 0, Path(f"f{i}")) for i in (1, 2, 3)]
SUMS = {p.name: f"crc{i}" for i, p in enumerate(PARTS)}
EXPECTED = state_values(Settings())


def _reason(merged: dict, batch: list | None = None, recorded: object = EXPECTED, parts=PARTS, sums=SUMS) -> str | None:
    return stale_state_reason(merged, batch, recorded, EXPECTED, parts, sums)


def test_a_state_that_is_a_prefix_of_todays_parts_is_continued() -> None:
    assert _reason({}) is None
    assert _reason({PARTS[0].name: "crc0"}) is None
    assert _reason({PARTS[0].name: "crc0"}, batch=[PARTS[1].name]) is None
    assert _reason({}, recorded=None) is None


@pytest.mark.parametrize("merged, batch, recorded, words", [
    ({PARTS[0].name: "crc0", PARTS[2].name: "crc2"}, None, EXPECTED, "f2.csv sorts before files already merged"),
    ({PARTS[0].name: "other"}, None, EXPECTED, "changed since it was merged"),
    ({"gone.csv#00001": "x"}, None, EXPECTED, "sorts before"),
    ({PARTS[0].name: "crc0"}, [PARTS[2].name], EXPECTED, "interrupted merge"),
    ({PARTS[0].name: "crc0"}, None, {**EXPECTED, "[gold] anomaly_top_n": 5}, "anomaly_top_n 5 -> 20"),
    ({PARTS[0].name: "crc0"}, None, None, "no record of its settings"),
])
def test_a_state_that_is_not_a_prefix_is_rebuilt(merged: dict, batch: list | None, recorded: object, words: str) -> None:
    reason = _reason(merged, batch, recorded)
    assert reason is not None and words in reason, reason


def test_merged_parts_beyond_todays_inputs_are_a_reason() -> None:
    reason = _reason({p.name: SUMS[p.name] for p in PARTS}, parts=PARTS[:2])
    assert reason is not None and "no longer an input" in reason
