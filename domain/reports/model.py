"""What a report is, independent of any one report: its parameters, the
tables and charts it produces, and the run a schedule or a person starts.

Pure: the reports are computed here from rows the store reads
(store/reports.py); rendering (CSV, PNG, HTML) and storage are in
activities/reports.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Self

from pydantic import Field, field_validator, model_validator

from domain.common import StewardModel

# One run covers at most this much: a longer period is a mistake (a year
# typed for a month), and its query would hold the database for long.
MAX_PERIOD = timedelta(days=400)

Cell = str | int | float | None


class ReportTable(StewardModel):
    """One table of a report: written as `<name>.csv` and shown in the HTML page."""

    name: str = Field(pattern=r"^[a-z0-9_]+$")
    title: str
    columns: list[str]
    rows: list[list[Cell]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _rows_fit_columns(self) -> Self:
        for number, row in enumerate(self.rows):
            if len(row) != len(self.columns):
                raise ValueError(
                    f"table {self.name}: row {number} has {len(row)} cells, "
                    f"{len(self.columns)} columns"
                )
        return self

    def column(self, name: str) -> list[Cell]:
        index = self.columns.index(name)
        return [row[index] for row in self.rows]

    def row_by(self, **key: Cell) -> list[Cell] | None:
        """The first row whose named columns hold these values (tests, summaries)."""
        indexes = {self.columns.index(k): v for k, v in key.items()}
        for row in self.rows:
            if all(row[i] == v for i, v in indexes.items()):
                return row
        return None


class ChartKind(StrEnum):
    BAR = "bar"
    LINE = "line"


class ReportChart(StewardModel):
    """A chart drawn as `<name>.png`: one series per key, over `categories`."""

    name: str = Field(pattern=r"^[a-z0-9_]+$")
    title: str
    kind: ChartKind = ChartKind.BAR
    categories: list[str]
    series: dict[str, list[float]]
    y_label: str = ""

    @model_validator(mode="after")
    def _series_fit_categories(self) -> Self:
        for label, values in self.series.items():
            if len(values) != len(self.categories):
                raise ValueError(f"chart {self.name}: series {label!r} does not fit the categories")
        return self


class ReportContent(StewardModel):
    """What one report computed: headline figures, tables, charts, notes."""

    headline: dict[str, Cell] = Field(default_factory=dict)
    tables: list[ReportTable] = Field(default_factory=list)
    charts: list[ReportChart] = Field(default_factory=list)
    # How a figure was measured where it matters (business hours or wall clock...).
    notes: list[str] = Field(default_factory=list)

    def table(self, name: str) -> ReportTable:
        for table in self.tables:
            if table.name == name:
                return table
        raise KeyError(name)


class ReportParams(StewardModel):
    """The period [period_from, period_to) and the optional filters."""

    period_from: datetime
    period_to: datetime
    market: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    channel: str | None = Field(default=None, min_length=1, max_length=40, pattern=r"^[a-z0-9_-]+$")
    # The time zone days and weeks are cut in (charts by day).
    timezone: str = "UTC"

    @field_validator("period_from", "period_to")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("must carry a time zone offset")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.period_to <= self.period_from:
            raise ValueError("period_to must be after period_from")
        if self.period_to - self.period_from > MAX_PERIOD:
            raise ValueError(f"a period is at most {MAX_PERIOD.days} days")
        return self


@dataclass(frozen=True)
class ReportDefinition:
    """One entry of the catalogue: `compute(data, params)` over the rows the
    store's fetcher of the same name reads."""

    name: str
    title: str
    audience: str
    compute: Callable[[Any, ReportParams], ReportContent]
    description: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)
