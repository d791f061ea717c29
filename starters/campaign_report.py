"""The post-mortem pack of an employee sale: CSV files and PNG charts
(sell-through by category, orders per hour after opening, returns by reason),
each compared with the previous campaigns, from the figures the API answers
(`GET /v1/campaigns/{id}/report`)."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display, no GUI toolkit

import matplotlib.pyplot as plt  # after choosing the backend

SCALARS = ("orders", "units", "revenue_minor", "return_rate")


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_pack(report: dict[str, Any], out: Path) -> list[Path]:
    """Write the pack into `out`; the files written, in order."""
    out.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Any] = report["figures"]
    previous: list[dict[str, Any]] = report.get("previous", [])
    names = [p["campaign_id"] for p in previous]
    written: list[Path] = []

    written.append(
        _write_csv(
            out / "figures.csv",
            ["metric", figures["campaign_id"], *names],
            [[m, figures.get(m), *(p.get(m) for p in previous)] for m in SCALARS],
        )
    )
    categories = sorted(
        {
            *figures["sell_through_by_category"],
            *(c for p in previous for c in p.get("sell_through_by_category", {})),
        }
    )
    this = [figures["sell_through_by_category"].get(c, 0.0) for c in categories]
    before = [
        _mean(
            [
                p["sell_through_by_category"][c]
                for p in previous
                if c in p.get("sell_through_by_category", {})
            ]
        )
        for c in categories
    ]
    written.append(
        _write_csv(
            out / "sell_through_by_category.csv",
            ["category", "sell_through", "previous_mean"],
            list(zip(categories, this, before, strict=True)),
        )
    )
    hours = sorted(
        {int(h) for h in figures["orders_per_hour"]}
        | {int(h) for p in previous for h in p.get("orders_per_hour", {})}
    )
    per_hour = [figures["orders_per_hour"].get(str(h), 0) for h in hours]
    per_hour_before = [
        _mean([p.get("orders_per_hour", {}).get(str(h), 0) for p in previous]) for h in hours
    ]
    written.append(
        _write_csv(
            out / "orders_per_hour.csv",
            ["hour_after_opening", "orders", "previous_mean"],
            list(zip(hours, per_hour, per_hour_before, strict=True)),
        )
    )
    reasons = sorted(
        {
            *figures["returns_by_reason"],
            *(r for p in previous for r in p.get("returns_by_reason", {})),
        }
    )
    returns = [figures["returns_by_reason"].get(r, 0) for r in reasons]
    returns_before = [
        _mean([p.get("returns_by_reason", {}).get(r, 0) for p in previous]) for r in reasons
    ]
    written.append(
        _write_csv(
            out / "returns_by_reason.csv",
            ["reason", "units", "previous_mean"],
            list(zip(reasons, returns, returns_before, strict=True)),
        )
    )
    written.append(
        _write_csv(
            out / "top_skus.csv",
            ["sku", "units", "revenue_minor"],
            [[s["sku"], s["units"], s["revenue_minor"]] for s in figures["top_skus"]],
        )
    )
    written.append(
        _write_csv(
            out / "participation_by_entity.csv",
            ["legal_entity", "participation"],
            sorted(figures["participation_by_entity"].items()),
        )
    )
    label = figures["campaign_id"]
    written.append(
        _bars(
            out / "sell_through_by_category.png",
            "Sell-through by category",
            categories,
            this,
            before if previous else None,
            label,
            percent=True,
        )
    )
    written.append(
        _line(
            out / "orders_per_hour.png",
            hours,
            per_hour,
            per_hour_before if previous else None,
            label,
        )
    )
    written.append(
        _bars(
            out / "returns_by_reason.png",
            "Returned or cancelled units by reason",
            reasons,
            returns,
            returns_before if previous else None,
            label,
        )
    )
    return written


def _bars(
    path: Path,
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    previous: Sequence[float] | None,
    label: str,
    *,
    percent: bool = False,
) -> Path:
    fig, ax = plt.subplots(figsize=(8, 4.5))
    try:
        positions = range(len(labels))
        width = 0.4 if previous is not None else 0.8
        scale = 100 if percent else 1
        ax.bar(
            [p - (width / 2 if previous else 0) for p in positions],
            [v * scale for v in values],
            width,
            label=label,
        )
        if previous is not None:
            ax.bar(
                [p + width / 2 for p in positions],
                [v * scale for v in previous],
                width,
                label="previous campaigns (mean)",
            )
        ax.set_xticks(list(positions), list(labels), rotation=20, ha="right")
        ax.set_title(title)
        ax.set_ylabel("%" if percent else "units")
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path


def _line(
    path: Path,
    hours: Sequence[int],
    values: Sequence[float],
    previous: Sequence[float] | None,
    label: str,
) -> Path:
    fig, ax = plt.subplots(figsize=(8, 4.5))
    try:
        ax.plot(list(hours), list(values), marker="o", label=label)
        if previous is not None:
            ax.plot(list(hours), list(previous), linestyle="--", label="previous campaigns (mean)")
        ax.set_title("Orders per hour after opening")
        ax.set_xlabel("hours after opening")
        ax.set_ylabel("orders")
        ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)
    return path
