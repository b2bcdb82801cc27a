"""The HTML around the content: page skeleton, CSS (screen and print), tables and sections.

Self-contained on purpose: no scripts, no web fonts, no external style sheets, so the page opens
from the file system, offline, and prints as it looks.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from reports.formatting import data_text, text

RUN_BEGIN = "<!-- run:begin -->"
RUN_END = "<!-- run:end -->"

CSS = """
:root { --ink: #222; --muted: #5f6368; --rule: #d9d9d9; --accent: #4e79a7; --band: #f5f7fa; }
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; color: var(--ink); background: #fff;
       font: 15px/1.5 "DejaVu Sans", "Segoe UI", Helvetica, Arial, sans-serif; }
main { max-width: 980px; margin: 0 auto; padding: 24px 28px 48px; }
header.page { border-bottom: 3px solid var(--accent); margin-bottom: 8px; }
h1 { font-size: 28px; margin: 8px 0 4px; }
h2 { font-size: 21px; margin: 36px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--rule); }
h3 { font-size: 16px; margin: 22px 0 8px; }
p.lead, p.note { color: var(--muted); margin: 4px 0 12px; }
nav.toc { font-size: 14px; margin: 6px 0 10px; }
nav.toc a { color: var(--accent); text-decoration: none; margin-right: 14px; white-space: nowrap; }
.cards { display: grid; grid-template-columns: repeat(3, minmax(0, 1fr)); gap: 12px; margin: 12px 0; }
.card { background: var(--band); border: 1px solid var(--rule); border-radius: 6px; padding: 12px 14px; }
.card .label { font-size: 13px; color: var(--muted); text-transform: uppercase; letter-spacing: .03em; }
.card .value { font-size: 24px; font-weight: bold; font-variant-numeric: tabular-nums; margin-top: 2px;
               overflow-wrap: anywhere; }
.card .detail { font-size: 13px; color: var(--muted); }
figure { margin: 14px 0 18px; break-inside: avoid; page-break-inside: avoid; }
/* a chart is shown at most at its natural size (its width attribute) and shrinks with the screen;
   a chart drawn twice (reports.charts) shows its phone-width drawing on narrow screens */
svg.chart { display: block; max-width: 100%; height: auto; }
svg.chart.narrow { display: none; }
.with-note { display: grid; grid-template-columns: auto minmax(0, 1fr); gap: 0 24px; align-items: start; }
.with-note figure { margin-top: 0; }
.side-note p { margin: 0 0 8px; }
p.asof { font-size: 16px; margin: 6px 0 2px; }
p.asof code { overflow-wrap: anywhere; }  /* a long file name breaks rather than widen the page */
.attention, .clean { padding: 8px 14px; margin: 12px 0 6px; border-radius: 4px; border: 1px solid var(--rule); }
.attention { border-left: 6px solid #e15759; background: #fdf2f2; }
.clean { border-left: 6px solid #59a14f; background: #f2f8f1; }
.unverified { border-left: 6px solid #bab0ac; background: var(--band); }
.attention ul { margin: 4px 0; padding-left: 20px; }
.attention li { overflow-wrap: anywhere; margin: 2px 0; }
td.num.wrap { white-space: normal; min-width: 7em; }
.attention h2, .clean h2 { font-size: 17px; margin: 4px 0 6px; padding: 0; border: 0; }
.attention p, .clean p { margin: 4px 0; }
.scroll { overflow-x: auto; margin: 8px 0 16px; }  /* a table too wide for the screen scrolls here, not the page */
table { border-collapse: collapse; margin: 0; font-size: 14px; break-inside: auto; }
caption { text-align: left; font-weight: bold; padding: 4px 0; }
th, td { padding: 4px 10px; border-bottom: 1px solid var(--rule); vertical-align: top; }
th { text-align: left; background: var(--band); font-weight: bold; }
th.num, td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.num, .nowrap { white-space: nowrap; }
/* text from input (names, file paths, ids): a long word breaks rather than widen the table, but the
   column keeps room for a few words (a whole usual id) when the table has to scroll anyway */
td.text, td.path { overflow-wrap: anywhere; min-width: 6em; }
td.id { overflow-wrap: anywhere; min-width: 9em; }
tr { break-inside: avoid; page-break-inside: avoid; }
.pair { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 0 28px; align-items: start; }
.pair table { width: 100%; }
tfoot td { font-weight: bold; border-top: 2px solid var(--rule); }
.empty { padding: 14px; background: var(--band); border: 1px dashed var(--rule); color: var(--muted); }
footer { margin-top: 40px; font-size: 13px; color: var(--muted); border-top: 1px solid var(--rule); padding-top: 8px; }
code { font-size: 13px; }
.wide table { font-size: 13px; }
.wide th, .wide td { padding: 4px 6px; }
@media (max-width: 760px) { .cards { grid-template-columns: repeat(2, minmax(0, 1fr)); } .pair, .with-note { display: block; } }
@media screen and (max-width: 760px) {
  svg.chart.wide { display: none; }
  svg.chart.narrow { display: block; }
  .card .value { font-size: 20px; }
  .wide td.text, .wide td.path { min-width: 11em; }  /* the anomaly table scrolls here anyway: keep names readable */
}
@media screen and (max-width: 520px) {
  main { padding: 16px 14px 32px; }
  h1 { font-size: 24px; }
  .cards { grid-template-columns: minmax(0, 1fr); }
  table { font-size: 13px; }
  th, td { padding: 4px 6px; }
}
@media print {
  @page { size: A4; margin: 14mm 12mm; }
  body { font-size: 11pt; }
  main { max-width: none; padding: 0; }
  nav.toc { display: none; }
  h2 { break-after: avoid; page-break-after: avoid; }
  .card { background: none; }
  a { color: inherit; text-decoration: none; }
  .scroll { overflow: visible; }
  .wide table { font-size: 8pt; }
  td.path { word-break: break-all; }  /* paper cannot scroll: break long file names anywhere */
  .pair { display: grid; }
}
"""


@dataclass(frozen=True)
class Column:
    """A table column: its heading and whether it holds numbers (right-aligned)."""

    heading: str
    numeric: bool = False
    css: str = ""  # extra classes: "nowrap" (dates), "id" (an order id: whole unless far longer than usual),
                   # "path" (breaks after '/', else anywhere), "text" (free text from input: a long word breaks)

    @property
    def classes(self) -> str:
        names = " ".join(n for n in ("num" if self.numeric else "", self.css) if n)
        return f' class="{names}"' if names else ""


def scroll_box(table_html: str, css: str = "") -> str:
    """A table in its own sideways-scrolling box: a table that cannot fit a narrow screen scrolls
    there, and the page itself never gets wider than the window."""
    return f'<div class="{" ".join(n for n in ("scroll", css) if n)}">{table_html}</div>'


def table(columns: Sequence[Column], rows: Sequence[Sequence[str]], caption: str | None = None,
          footer: Sequence[str] | None = None, css: str = "") -> str:
    """An HTML table of already-formatted cells, in its scroll box (with the extra classes `css`, such as
    "wide": many columns, set smaller); cells are escaped here, once."""
    def cell(column: Column, value: str, tag: str) -> str:
        html = data_text(value)
        if "path" in column.css:  # long file paths break between folders first
            html = html.replace("/", "/<wbr>")
        return f"<{tag}{column.classes}>{html}</{tag}>"

    def cells(values: Sequence[str], tag: str) -> str:
        return "".join(cell(c, v, tag) for c, v in zip(columns, values))

    head = f"<thead><tr>{cells([c.heading for c in columns], 'th')}</tr></thead>"
    body = "".join(f"<tr>{cells(row, 'td')}</tr>" for row in rows)
    foot = f"<tfoot><tr>{cells(footer, 'td')}</tr></tfoot>" if footer else ""
    title = f"<caption>{text(caption)}</caption>" if caption else ""
    return scroll_box(f"<table>{title}{head}<tbody>{body}</tbody>{foot}</table>", css)


def key_values(pairs: Sequence[tuple[str, str]], caption: str | None = None) -> str:
    """A two-column table of labelled facts (the run section)."""
    rows = "".join(f'<tr><th scope="row">{text(k)}</th><td class="num">{data_text(v)}</td></tr>' for k, v in pairs)
    title = f"<caption>{text(caption)}</caption>" if caption else ""
    return scroll_box(f"<table>{title}<tbody>{rows}</tbody></table>")


def pair(left: str, right: str) -> str:
    """Two small blocks side by side (stacked on narrow screens)."""
    return f'<div class="pair"><div>{left}</div><div>{right}</div></div>'


def figure(svg: str) -> str:
    return f"<figure>{svg}</figure>"


def paragraph(message: str, css_class: str = "note") -> str:
    return f'<p class="{css_class}">{text(message)}</p>'


def empty(message: str) -> str:
    return f'<div class="empty">{text(message)}</div>'


def card(label: str, value: str, detail: str = "") -> str:
    extra = f'<div class="detail">{text(detail)}</div>' if detail else ""
    return f'<div class="card"><div class="label">{text(label)}</div><div class="value">{data_text(value)}</div>{extra}</div>'


@dataclass(frozen=True)
class Section:
    anchor: str
    title: str
    body: str


def section(part: Section) -> str:
    return f'<section id="{part.anchor}"><h2>{text(part.title)}</h2>\n{part.body}\n</section>'


def with_note(block: str, note: str) -> str:
    """A chart with a few lines about it beside it (below it on narrow screens)."""
    return f'<div class="with-note"><div>{block}</div><div class="side-note">{note}</div></div>'


def run_dependent(html: str) -> str:
    """Marks a block that depends on the run, not on gold alone: the same gold gives the same page
    outside such blocks (tests/test_report.py strips them to compare)."""
    return f"{RUN_BEGIN}\n{html}\n{RUN_END}"


def page(title: str, lead: str, sections: Sequence[Section], footer: str, notices: str = "") -> str:
    """The whole document; sections appear in order and in the table of contents; `lead` (HTML) is
    part of the title block, `notices` (HTML) come right under it, before the contents."""
    toc = "\n".join(f'<a href="#{s.anchor}">{text(s.title)}</a>' for s in sections)
    body = "\n".join(section(s) for s in sections)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{text(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n"
        f'<header class="page"><h1>{text(title)}</h1>{lead}</header>\n{notices}'
        f'<nav class="toc" aria-label="Contents">{toc}</nav>\n'
        f"{body}\n<footer>{text(footer)}</footer>\n</main>\n</body>\n</html>\n"
    )
