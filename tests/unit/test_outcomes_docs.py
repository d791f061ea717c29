"""docs/risk.md shows the outcome table of domain/outcomes.py and the money
thresholds of domain/money_thresholds.py; a change to either must reach the
page operators read."""

from __future__ import annotations

from pathlib import Path

from domain.money_thresholds import MONEY_THRESHOLDS, MoneyThresholds
from domain.outcomes import OUTCOME_EFFECTS

PAGE = (Path(__file__).resolve().parents[2] / "docs" / "risk.md").read_text()


def _rows(first_cell: str) -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    for line in PAGE.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) > 1:
            rows.setdefault(cells[0].strip("`"), cells[1:])
    assert first_cell in rows
    return rows


def test_the_outcome_table_matches_the_code() -> None:
    rows = _rows("cancelled")
    for outcome, effect in OUTCOME_EFFECTS.items():
        writers, note, counters, value = rows[outcome.value]
        assert writers == ", ".join(effect.writers), outcome
        assert note == effect.note, outcome
        assert counters == (", ".join(f"`{c.value}`" for c in effect.counters) or "—"), outcome
        assert (value != "—") is effect.adds_returned_value, outcome


def test_the_threshold_table_matches_the_code() -> None:
    rows = _rows("EUR")
    fields = [f for f in MoneyThresholds.model_fields if f.endswith("_minor")]
    for currency, t in MONEY_THRESHOLDS.items():
        assert rows[currency] == [f"{getattr(t, f):,}" for f in fields], currency
