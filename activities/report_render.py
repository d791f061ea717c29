"""Report outputs people use: a CSV per table, a PNG per chart (matplotlib,
no display: the Agg backend), and one self-contained HTML page per run with
the tables and the charts inlined as data URIs."""

from __future__ import annotations

import base64
import csv
import html
import io
from datetime import datetime
from typing import Any

from domain.reports.model import (
    Cell,
    ChartKind,
    ReportChart,
    ReportContent,
    ReportDefinition,
    ReportParams,
    ReportTable,
)

CHART_SIZE_INCHES = (8.0, 4.0)
CHART_DPI = 100


def render_csv(table: ReportTable) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table.columns)
    for row in table.rows:
        writer.writerow(["" if cell is None else cell for cell in row])
    return out.getvalue().encode("utf-8")


def _pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (no display, no GUI toolkit),
    imported on the first chart: a worker that never draws never pays for it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def render_png(chart: ReportChart) -> bytes:
    """The chart as a PNG of 800x400 pixels; an empty chart says so in the
    picture rather than drawing empty axes."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=CHART_SIZE_INCHES, dpi=CHART_DPI)
    try:
        positions = list(range(len(chart.categories)))
        if not chart.categories or not chart.series:
            axes.text(0.5, 0.5, "no data in this period", ha="center", va="center")
            axes.set_axis_off()
        elif chart.kind is ChartKind.LINE:
            for label, values in chart.series.items():
                axes.plot(positions, values, marker="o", label=label)
        else:
            width = 0.8 / max(len(chart.series), 1)
            for number, (label, values) in enumerate(chart.series.items()):
                offsets = [p + (number - (len(chart.series) - 1) / 2) * width for p in positions]
                axes.bar(offsets, values, width=width, label=label)
        if chart.categories and chart.series:
            axes.set_xticks(positions)
            axes.set_xticklabels(chart.categories, rotation=30, ha="right", fontsize=8)
            axes.set_ylabel(chart.y_label)
            if len(chart.series) > 1:
                axes.legend(fontsize=8)
        axes.set_title(chart.title)
        figure.tight_layout()
        out = io.BytesIO()
        figure.savefig(out, format="png")
        return out.getvalue()
    finally:
        plt.close(figure)


def _cell(value: Cell) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return html.escape(str(value))


def _table_html(table: ReportTable) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
    if table.rows:
        body = "".join(
            "<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>" for row in table.rows
        )
    else:
        body = f'<tr><td colspan="{len(table.columns)}">no rows in this period</td></tr>'
    return (
        f'<section id="{table.name}"><h2>{html.escape(table.title)}</h2>'
        f'<p class="file"><a href="{table.name}.csv">{table.name}.csv</a></p>'
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></section>"
    )


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:70em}
table{border-collapse:collapse;margin:.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;font-size:.9em}
th{background:#f3f3f3}
dl.headline{display:grid;grid-template-columns:max-content auto;gap:.2em 1em}
dl.headline dt{font-weight:600}
img{max-width:100%;border:1px solid #eee}
p.file,p.meta{color:#666;font-size:.85em}
"""


def render_html(
    definition: ReportDefinition,
    params: ReportParams,
    content: ReportContent,
    charts: dict[str, bytes],
    *,
    run_id: str,
    generated_at: datetime,
) -> str:
    """One page that needs nothing else: tables, and the charts as data URIs."""
    filters = ", ".join(
        f"{k} {v}" for k, v in (("market", params.market), ("channel", params.channel)) if v
    )
    headline = "".join(
        f"<dt>{html.escape(k)}</dt><dd>{_cell(v)}</dd>" for k, v in content.headline.items()
    )
    images = "".join(
        f'<figure><img alt="{html.escape(c.title)}" '
        f'src="data:image/png;base64,{base64.b64encode(charts[c.name]).decode()}">'
        f"<figcaption>{html.escape(c.title)}</figcaption></figure>"
        for c in content.charts
        if c.name in charts
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in content.notes)
    span = f"{params.period_from:%Y-%m-%d %H:%M %Z} to {params.period_to:%Y-%m-%d %H:%M %Z}"
    title = f"{definition.title}: {span}"
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f'<p class="meta">Run {html.escape(run_id)}, generated {generated_at:%Y-%m-%d %H:%M} UTC'
        f"{html.escape('; ' + filters) if filters else ''}; for {html.escape(definition.audience)}"
        f"; period start included, end excluded.</p>"
        f'<dl class="headline">{headline}</dl>'
        f"{images}"
        f"{''.join(_table_html(t) for t in content.tables)}"
        f"{'<h2>Notes</h2><ul>' + notes + '</ul>' if notes else ''}"
        "</body></html>\n"
    )
