"""The README's first-screen results, written by a command and never by hand.

`plasticity report runs/demo --readme README.md` replaces the section between
`<!-- bench:demo -->` and `<!-- /bench:demo -->` with the table of the first bench found in
runs/demo and draws its learning curves to docs/demo.png (next to the README), which the
section shows. Rerunning the command after a new `plasticity demo` refreshes both.
"""

from __future__ import annotations

from pathlib import Path

from plasticity.bench.markdown import table, write_section
from plasticity.report.build import TRAINING_CAPTIONS, settings_text
from plasticity.report.collect import collect
from plasticity.report.training_plots import accuracy_of, metric_figure

SECTION = "demo"
FIGURE = "docs/demo.png"
DEMO_RECORD = "demo.json"


def write_readme(runs_dir: str | Path, readme: str | Path) -> Path:
    """Write the results section of `readme` from the runs under `runs_dir`; returns the figure's path."""
    collection = collect(runs_dir)
    if not collection.training:
        raise ValueError(f"no bench or train results under {runs_dir} to put in {readme}")
    runs = collection.training[0]
    figure = Path(readme).parent / FIGURE
    metric_figure(runs, accuracy_of, "test accuracy (%)", "test accuracy", figure, scale=100)
    origin = "`plasticity demo`" if (Path(runs_dir) / DEMO_RECORD).exists() else f"the runs in `{runs_dir}`"
    body = "\n".join(
        [
            f"![Test accuracy per epoch, per rule and dataset]({FIGURE})",
            "",
            f"*{TRAINING_CAPTIONS['curves']}*",
            "",
            table(runs.summary),
            "",
            settings_text(runs),
            f"Made by {origin}; this section and the plot are rewritten by `plasticity report {runs_dir} --readme {readme}`.",
        ]
    )
    write_section(readme, SECTION, body)
    return figure
