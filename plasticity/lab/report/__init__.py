"""The report of a results folder: an offline HTML page with tables, plots and cards, and the README's demo section.

`build_report(RUNS_DIR)` → RUNS_DIR/report/index.html; `readme.demo_section` and `readme.demo_figure`
give the README's table and learning curves of a demo, which the docs tool writes. The report reads
records (`plasticity.results`) and imports neither torch nor a rule; a results file that fails its
checks raises `plasticity.results.ResultsError`, naming the file and the field.
"""

from plasticity.lab.report.build import build_report

__all__ = ["build_report"]
