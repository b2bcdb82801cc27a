"""Charts as inline SVG strings: deterministic bytes, no fonts or network needed to view them.

Two helpers cover every chart: `column_chart` (x categories, optionally stacked series) and
`bar_chart` (horizontal bars, one or more panels sharing the labels). Each chart in the report
is one call with its own title, axis labels and value kind.

Determinism: a fixed `svg.hashsalt` makes matplotlib's ids stable, `metadata` drops the date,
and `svg.fonttype = path` draws text as glyph outlines, so the SVG looks the same in every
browser and printer and does not depend on installed fonts. No pyplot: figures are created
directly, so no GUI backend and no global figure state is involved.
"""
from __future__ import annotations

import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import matplotlib
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from reports.formatting import FLOAT_FORMATS, label, text

# A colour-blind-safe palette (Tableau 10, reordered); series keep their colour in every chart.
PALETTE: tuple[str, ...] = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2",
                            "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")
PRIMARY = PALETTE[0]
TEXT_COLOR = "#222222"
GRID_COLOR = "#dddddd"
WIDTH_INCHES = 9.6  # 691 pt = 922 CSS px: the width of the page column, so text is shown ~1:1
NICE_STEPS = [1, 2, 2.5, 5, 10]  # axis ticks at 1, 2, 2.5 or 5 times a power of ten, never 800 or 1,200

RC = {
    "svg.hashsalt": "sales-report",
    "svg.fonttype": "path",
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.titlesize": 12,
    "axes.titlelocation": "left",
    "axes.labelsize": 10,
    "axes.labelcolor": TEXT_COLOR,
    "axes.edgecolor": "#888888",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.axisbelow": True,
    "xtick.color": TEXT_COLOR,
    "ytick.color": TEXT_COLOR,
    "grid.color": GRID_COLOR,
    "grid.linewidth": 0.8,
    "legend.frameon": False,
    "legend.fontsize": 9,
    "path.simplify": False,
    "text.parse_math": False,  # a "$" in a label is a dollar sign, never TeX
}
SVG_METADATA = {"Date": None, "Creator": None, "Format": None, "Type": None}


@dataclass(frozen=True)
class Panel:
    """One set of horizontal bars: values, what they measure, and how to format them."""

    values: Sequence[float]
    axis_label: str
    kind: str = "money"  # a key of FLOAT_FORMATS
    colors: Sequence[str] | None = None
    title: str | None = None


@dataclass(frozen=True)
class ColumnSeries:
    """Named series of a column chart; several are stacked in the given order."""

    series: Mapping[str, Sequence[float]]
    colors: Mapping[str, str] = field(default_factory=dict)


def series_colors(names: Iterable[str]) -> dict[str, str]:
    """A fixed colour per name (alphabetical order), so a region has one colour in every chart."""
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(sorted(set(names)))}


def _formatter(kind: str) -> FuncFormatter:
    fmt = FLOAT_FORMATS[kind]
    return FuncFormatter(lambda value, _pos: fmt(value))


def _svg(fig: Figure, chart_id: str, title: str) -> str:
    """The figure as an inline <svg> element whose ids cannot clash with other charts on the page."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata=SVG_METADATA)
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg"):]  # no XML declaration or DOCTYPE inside HTML
    svg = re.sub(r"\s*<metadata>.*?</metadata>", "", svg, flags=re.S)
    svg = re.sub(r'id="([^"]+)"', rf'id="{chart_id}-\1"', svg)
    svg = re.sub(r'(href="#|url\(#)', rf"\1{chart_id}-", svg)
    return svg.replace("<svg ", f'<svg class="chart" id="{chart_id}" role="img" aria-label="{text(title)}" ', 1)


def _new_figure(title: str, height: float) -> Figure:
    """A page-wide figure whose bold title sits at its top left, like a heading."""
    fig = Figure(figsize=(WIDTH_INCHES, height), layout="constrained")
    fig.get_layout_engine().set(wspace=0.06)
    fig.suptitle(title, x=0.0, ha="left", fontsize=RC["axes.titlesize"], fontweight="bold")
    return fig


def column_chart(chart_id: str, title: str, x_labels: Sequence[str], data: ColumnSeries, y_label: str,
                 x_label: str, kind: str = "money", max_ticks: int = 16) -> str:
    """Vertical columns over ordered x categories (months, days); several series are stacked."""
    with matplotlib.rc_context(RC):
        fig = _new_figure(title, 4.4)
        ax = fig.subplots()
        positions = range(len(x_labels))
        bottoms = [0.0] * len(x_labels)
        for index, (name, values) in enumerate(data.series.items()):
            color = data.colors.get(name, PALETTE[index % len(PALETTE)])
            ax.bar(positions, values, bottom=bottoms, width=0.8, color=color, label=label(name), linewidth=0)
            bottoms = [b + v for b, v in zip(bottoms, values)]
        step = max(1, -(-len(x_labels) // max_ticks))
        ax.set_xticks(list(positions)[::step], [label(x) for x in x_labels][::step], rotation=45, ha="right",
                      rotation_mode="anchor")
        ax.set_xlim(-0.6, len(x_labels) - 0.4)
        ax.yaxis.set_major_locator(MaxNLocator(nbins=6, steps=NICE_STEPS))
        ax.yaxis.set_major_formatter(_formatter(kind))
        ax.grid(axis="y")
        ax.set_xlabel(x_label)
        ax.set_ylabel(y_label)
        if len(data.series) > 1:
            handles, names = ax.get_legend_handles_labels()
            # Reversed, so the legend reads top to bottom like the stack.
            ax.legend(handles[::-1], names[::-1], loc="upper left", bbox_to_anchor=(1.0, 1.0))
        return _svg(fig, chart_id, title)


def bar_chart(chart_id: str, title: str, labels: Sequence[str], panels: Sequence[Panel]) -> str:
    """Horizontal bars, first label on top, each bar labelled with its value; panels share labels."""
    with matplotlib.rc_context(RC):
        fig = _new_figure(title, 1.1 + 0.34 * max(len(labels), 2))
        axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
        positions = list(range(len(labels)))
        for ax, panel in zip(axes, panels):
            fmt = FLOAT_FORMATS[panel.kind]
            bars = ax.barh(positions, panel.values, height=0.7, color=list(panel.colors or [PRIMARY]), linewidth=0)
            ax.bar_label(bars, labels=[fmt(v) for v in panel.values], padding=3, fontsize=9, color=TEXT_COLOR)
            ax.set_yticks(positions, [label(x) for x in labels])
            ax.set_ylim(len(labels) - 0.5, -0.5)  # first label on top
            top = max([float(v) for v in panel.values] + [0.0])
            ax.set_xlim(0, top * 1.22 if top > 0 else 1)  # room for the value labels
            ax.xaxis.set_major_locator(MaxNLocator(nbins=4 if len(panels) == 1 else 3, steps=NICE_STEPS))
            ax.xaxis.set_major_formatter(_formatter(panel.kind))
            ax.grid(axis="x")
            ax.set_xlabel(panel.axis_label)
            if panel.title:
                ax.set_title(panel.title, fontsize=10)
        return _svg(fig, chart_id, title)
