"""The HTML report: renders the gold tables into one self-contained page (see reports.render)."""
from reports.render import load_run_info, render_report, write_report

__all__ = ["load_run_info", "render_report", "write_report"]
