"""Charts as inline SVG strings: vector, text as text, deterministic bytes, readable on a phone.

Two helpers cover every chart: `column_chart` (x categories, optionally stacked series) and
`bar_chart` (horizontal bars, one or more panels stacked). Each chart in the report is one call
with its own title, axis labels and value kind.

Readable at every width: an SVG scales as a whole, so a page-wide chart shown on a 390 px phone
would draw its 10 pt labels at 4 px. Bar charts are therefore drawn narrow (NARROW_INCHES) and
shown at most at their natural size, which fits a phone at about 1:1; column charts over time need
the width of a desktop, so they are drawn twice, wide and narrow, and the page's CSS shows the one
that fits (`wide` / `narrow` classes, see reports.template). Smallest text: 9 pt, which is at least
9 CSS px wherever a chart is shown (tests/test_report.py measures it in Chromium).

Text is SVG text (`svg.fonttype = none`), not glyph outlines: smaller pages, faster rendering,
selectable and searchable labels. The layout is measured with DejaVu Sans; the page names narrower
fallbacks after it, so a viewer without it gets labels that still fit.

Determinism: a fixed `svg.hashsalt` makes matplotlib's ids stable and `metadata` drops the date.
No pyplot: figures are created directly, so no GUI backend and no global figure state is involved.
"""
from __future__ import annotations

import io
import re
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import matplotlib
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import PathPatch, Rectangle
from matplotlib.path import Path
from matplotlib.ticker import FuncFormatter, MaxNLocator

from reports.formatting import FLOAT_FORMATS, label, text

# A colour-blind-safe palette (Tableau 10, reordered); series keep their colour in every chart.
PALETTE: tuple[str, ...] = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2",
                            "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac")
PRIMARY = PALETTE[0]
TEXT_COLOR = "#222222"
GRID_COLOR = "#dddddd"
WIDE_INCHES = 9.6  # 691 pt = 922 CSS px: the page column on a desktop, text shown at 1:1
NARROW_INCHES = 4.5  # 324 pt = 432 CSS px: on a 390 px phone (a 362 px column) 9 pt is still 10 CSS px
NARROW_TITLE_CHARS = 40  # a bold 12 pt title wraps after about this many characters in a narrow chart
NARROW_LABEL_CHARS = 24  # bar labels (product keys) beside bars in a narrow chart
SMALL_TEXT = 9  # pt: legend and bar values; the smallest text of any chart
NICE_STEPS = [1, 2, 2.5, 5, 10]  # axis ticks at 1, 2, 2.5 or 5 times a power of ten, never 800 or 1,200
FONT_STACK = "'DejaVu Sans', Arial, Helvetica, sans-serif"

RC = {
    "svg.hashsalt": "sales-report",
    "svg.fonttype": "none",
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
    "legend.fontsize": SMALL_TEXT,
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


def _svg(fig: Figure, chart_id: str, title: str, variant: str) -> str:
    """The figure as an inline <svg> element whose ids cannot clash with other charts on the page."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", metadata=SVG_METADATA)
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg"):]  # no XML declaration or DOCTYPE inside HTML
    svg = re.sub(r"\s*<metadata>.*?</metadata>", "", svg, flags=re.S)
    svg = re.sub(r'id="([^"]+)"', rf'id="{chart_id}-\1"', svg)
    svg = re.sub(r'(href="#|url\(#)', rf"\1{chart_id}-", svg)
    svg = svg.replace("font-family: 'DejaVu Sans'", f"font-family: {FONT_STACK}")
    return svg.replace("<svg ", f'<svg class="chart {variant}" id="{chart_id}" role="img" aria-label="{text(title)}" ', 1)


def _new_figure(title: str, width: float, height: float) -> Figure:
    """A figure whose bold title sits at its top left, like a heading; wrapped when the figure is narrow."""
    fig = Figure(figsize=(width, height), layout="constrained")
    fig.get_layout_engine().set(wspace=0.06, hspace=0.08)
    shown = title if width >= WIDE_INCHES else textwrap.fill(title, NARROW_TITLE_CHARS)
    fig.suptitle(shown, x=0.0, ha="left", fontsize=RC["axes.titlesize"], fontweight="bold")
    return fig


def _title_lines(title: str) -> int:
    return len(textwrap.wrap(title, NARROW_TITLE_CHARS)) or 1


def _column_path(bottoms: Sequence[float], tops: Sequence[float], width: float = 0.8) -> Path:
    """Every column of one series as one compound path: a chart of 120 months x 5 regions is 5
    shapes to lay out and draw, not 600 rectangles (most of the report's render time)."""
    vertices: list[tuple[float, float]] = []
    for index, (bottom, top) in enumerate(zip(bottoms, tops)):
        if top != bottom:
            left, right = index - width / 2, index + width / 2
            vertices += [(left, bottom), (left, top), (right, top), (right, bottom), (left, bottom)]
    codes = [Path.MOVETO, Path.LINETO, Path.LINETO, Path.LINETO, Path.CLOSEPOLY] * (len(vertices) // 5)
    return Path(vertices or [(0.0, 0.0)], codes or None)


def _columns(ax: Axes, x_labels: Sequence[str], data: ColumnSeries, kind: str, max_ticks: int) -> list[Rectangle]:
    """Stacked columns, one path per series; returns legend handles in series order."""
    bottoms = [0.0] * len(x_labels)
    handles = []
    for index, (name, values) in enumerate(data.series.items()):
        color = data.colors.get(name, PALETTE[index % len(PALETTE)])
        tops = [b + v for b, v in zip(bottoms, values)]
        ax.add_patch(PathPatch(_column_path(bottoms, tops), facecolor=color, linewidth=0))
        handles.append(Rectangle((0, 0), 1, 1, facecolor=color, linewidth=0, label=label(name)))
        bottoms = tops
    positions = range(len(x_labels))
    step = max(1, -(-len(x_labels) // max_ticks))
    ax.set_xticks(list(positions)[::step], [label(x) for x in x_labels][::step], rotation=45, ha="right",
                  rotation_mode="anchor")
    ax.set_xlim(-0.6, len(x_labels) - 0.4)
    top = max(bottoms, default=0.0)
    ax.set_ylim(0, top * 1.05 if top > 0 else 1)  # what ax.bar's autoscaling gives: 0 at the bottom, 5 % above
    ax.yaxis.set_major_locator(MaxNLocator(nbins=6, steps=NICE_STEPS))
    ax.yaxis.set_major_formatter(_formatter(kind))
    ax.grid(axis="y")
    return handles


def _column_variant(chart_id: str, title: str, x_labels: Sequence[str], data: ColumnSeries, y_label: str,
                    x_label: str, kind: str, max_ticks: int, narrow: bool) -> str:
    width = NARROW_INCHES if narrow else WIDE_INCHES
    fig = _new_figure(title, width, 3.4 + 0.2 * _title_lines(title) if narrow else 4.4)
    ax = fig.subplots()
    handles = _columns(ax, x_labels, data, kind, 6 if narrow else max_ticks)
    ax.set_xlabel(x_label)
    ax.set_ylabel(y_label)
    if len(data.series) > 1:
        if narrow:  # above the plot, in rows: no room beside it
            ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncols=3, borderaxespad=0.2)
        else:  # reversed, so the legend reads top to bottom like the stack
            ax.legend(handles=handles[::-1], loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _svg(fig, f"{chart_id}-narrow" if narrow else chart_id, title, "narrow" if narrow else "wide")


def column_chart(chart_id: str, title: str, x_labels: Sequence[str], data: ColumnSeries, y_label: str,
                 x_label: str, kind: str = "money", max_ticks: int = 16) -> str:
    """Vertical columns over ordered x categories (months, days); several series are stacked.
    Two <svg>s: the page-wide one (id `chart_id`) and a phone-width one (`chart_id`-narrow)."""
    with matplotlib.rc_context(RC):
        return "".join(_column_variant(chart_id, title, x_labels, data, y_label, x_label, kind, max_ticks, narrow)
                       for narrow in (False, True))


def _bars(ax: Axes, labels: Sequence[str], panel: Panel) -> None:
    fmt = FLOAT_FORMATS[panel.kind]
    positions = list(range(len(labels)))
    bars = ax.barh(positions, panel.values, height=0.7, color=list(panel.colors or [PRIMARY]), linewidth=0)
    ax.bar_label(bars, labels=[fmt(v) for v in panel.values], padding=3, fontsize=SMALL_TEXT, color=TEXT_COLOR)
    ax.set_yticks(positions, [label(x, NARROW_LABEL_CHARS) for x in labels])
    ax.set_ylim(len(labels) - 0.5, -0.5)  # first label on top
    top = max([float(v) for v in panel.values] + [0.0])
    ax.set_xlim(0, top * 1.3 if top > 0 else 1)  # room for the value labels
    ax.xaxis.set_major_locator(MaxNLocator(nbins=3, steps=NICE_STEPS))
    ax.xaxis.set_major_formatter(_formatter(panel.kind))
    ax.grid(axis="x")
    ax.set_xlabel(panel.axis_label)
    if panel.title:
        ax.set_title(panel.title, fontsize=10)


def bar_chart(chart_id: str, title: str, labels: Sequence[str], panels: Sequence[Panel]) -> str:
    """Horizontal bars, first label on top, each bar labelled with its value; several panels are
    stacked, each with the labels. Drawn phone-narrow: shown at most at its natural size."""
    rows = max(len(labels), 2)
    height = 0.25 * _title_lines(title) + sum(0.75 + (0.25 if p.title else 0) + 0.3 * rows for p in panels)
    with matplotlib.rc_context(RC):
        fig = _new_figure(title, NARROW_INCHES, height)
        for ax, panel in zip(fig.subplots(len(panels), 1, squeeze=False)[:, 0], panels):
            _bars(ax, labels, panel)
        return _svg(fig, chart_id, title, "compact")
