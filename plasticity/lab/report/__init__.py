"""The report of a results folder: an offline HTML page with tables, plots and cards, and the README's demo section.

`build_report(RUNS_DIR)` → RUNS_DIR/report/index.html; `write_readme(RUNS_DIR, "README.md")` puts
the first bench's table and learning curves between the README's demo markers; `check_readme`
checks that README before anything is written. A results file that fails its checks raises
`plasticity.records.ResultsError`, naming the file and the field.
"""

from plasticity.lab.report.build import build_report
from plasticity.lab.report.readme import check_readme, write_readme

__all__ = ["build_report", "check_readme", "write_readme"]
