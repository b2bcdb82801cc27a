"""The HTML report: renders the gold tables into one self-contained page (see reports.render).

Nothing is imported here: `reports.render` pulls in matplotlib (about 0.3 s), which only the
report task needs, not every run that merely checks whether the report is done.
"""
