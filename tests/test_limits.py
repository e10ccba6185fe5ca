"""The limits: one table in code, the same table in the README, each overridable and never broken by a typo."""

import logging
from pathlib import Path

from common.limits import LIMITS, limit, markdown_table

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_lists_every_limit_with_its_default():
    assert markdown_table() in README.read_text(encoding="utf-8")


def test_a_limit_follows_its_environment_variable_and_ignores_a_bad_value(monkeypatch, caplog):
    monkeypatch.setenv("LANTERN_MAX_INPUT_CHARS", "12000")
    assert limit("input_chars") == 12000
    for bad in ("lots", "-5", "0", "nan", "inf"):
        monkeypatch.setenv("LANTERN_MAX_INPUT_CHARS", bad)
        with caplog.at_level(logging.WARNING):
            assert limit("input_chars") == LIMITS["input_chars"].default
        assert "LANTERN_MAX_INPUT_CHARS" in caplog.text
