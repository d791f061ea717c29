"""The post-mortem pack: its CSV files carry this campaign's figures beside
the previous campaigns' mean, and its charts are real PNG images."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from starters.campaign_report import write_pack


def _figures(campaign_id: str, **changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "campaign_id": campaign_id,
        "name": campaign_id,
        "currency": "EUR",
        "orders": 10,
        "units": 12,
        "revenue_minor": 1_200_000,
        "return_rate": 0.25,
        "sell_through_by_category": {"handbags": 0.5, "shoes": 1.0},
        "sell_through_by_sku": {},
        "top_skus": [{"sku": "HB-1", "units": 6, "revenue_minor": 600_000}],
        "participation_by_entity": {"Maison SAS": 0.4},
        "orders_per_hour": {"0": 7, "2": 3},
        "returns_by_reason": {"returned": 3},
    }
    values.update(changes)
    return values


def _rows(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8") as f:
        return list(csv.reader(f))


def test_the_pack_compares_with_the_previous_campaigns(tmp_path: Path) -> None:
    report = {
        "figures": _figures("ES-3"),
        "previous": [
            _figures("ES-2", sell_through_by_category={"handbags": 0.9}, orders_per_hour={"0": 1}),
            _figures("ES-1", sell_through_by_category={"handbags": 0.7, "watches": 0.2}),
        ],
    }
    written = write_pack(report, tmp_path)
    assert sorted(p.name for p in written) == sorted(
        [
            "figures.csv",
            "sell_through_by_category.csv",
            "orders_per_hour.csv",
            "returns_by_reason.csv",
            "top_skus.csv",
            "participation_by_entity.csv",
            "sell_through_by_category.png",
            "orders_per_hour.png",
            "returns_by_reason.png",
        ]
    )
    assert _rows(tmp_path / "figures.csv")[:2] == [
        ["metric", "ES-3", "ES-2", "ES-1"],
        ["orders", "10", "10", "10"],
    ]
    by_category = {r[0]: r[1:] for r in _rows(tmp_path / "sell_through_by_category.csv")[1:]}
    # handbags: this campaign 0.5, the previous ones' mean (0.9 + 0.7) / 2.
    assert by_category["handbags"] == ["0.5", "0.8"]
    assert by_category["watches"] == ["0.0", "0.2"]
    hours = {r[0]: r[1:] for r in _rows(tmp_path / "orders_per_hour.csv")[1:]}
    assert hours == {"0": ["7", "4.0"], "2": ["3", "1.5"]}
    for chart in ("sell_through_by_category.png", "orders_per_hour.png", "returns_by_reason.png"):
        data = (tmp_path / chart).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000


def test_a_first_campaign_has_no_comparison(tmp_path: Path) -> None:
    write_pack({"figures": _figures("ES-1"), "previous": []}, tmp_path)
    assert _rows(tmp_path / "figures.csv")[0] == ["metric", "ES-1"]
    assert (tmp_path / "returns_by_reason.png").stat().st_size > 5_000
