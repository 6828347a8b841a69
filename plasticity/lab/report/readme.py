"""The README's first-screen results: the table and learning curves of a demo's runs.

The docs tool (`python tools/docs.py`) puts `demo_section` between the README's
`<!-- bench:demo -->` and `<!-- /bench:demo -->` markers and draws `demo_figure` to docs/demo.png,
which the section shows, both from the stored demo (`demo_runs`: the first bench found in its
folder); nothing here writes a doc.
"""

from __future__ import annotations

from pathlib import Path

from plasticity.errors import ConfigError
from plasticity.lab.bench.markdown import HEADERS, markdown_rows
from plasticity.lab.report.build import settings_text, table_rows, training_caption
from plasticity.lab.report.collect import TrainingRuns, collect
from plasticity.lab.report.training_plots import accuracy_of, metric_figure

FIGURE = "docs/demo.png"
"""Where the section's figure lies, relative to the README."""
DEMO_RECORD = "demo.json"


def demo_runs(runs_dir: str | Path) -> TrainingRuns:
    """The first bench (or set of train runs) under `runs_dir`, as the report reads it."""
    collection = collect(runs_dir)
    if not collection.training:
        raise ConfigError(f"no bench or train results under {runs_dir}; give the folder of a bench or demo")
    return collection.training[0]


def demo_section(runs: TrainingRuns) -> str:
    """The README's demo section: the figure at FIGURE, its caption, the table and the settings."""
    return "\n".join(
        [
            f"![Test accuracy per epoch, per rule and dataset]({FIGURE})",
            "",
            f"*{training_caption('curves', runs)}*",
            "",
            markdown_rows(HEADERS, table_rows(runs)),
            "",
            settings_text(runs),
        ]
    )


def demo_figure(runs: TrainingRuns, path: str | Path) -> None:
    """Draw the runs' test accuracy per epoch to `path` (a PNG)."""
    path = Path(path)
    if path.parent.exists() and not path.parent.is_dir():
        raise ConfigError(f"{path.parent} is a file, and the README's figure goes to {path}; move that file away")
    metric_figure(runs, accuracy_of, "test accuracy (%)", "test accuracy", path, scale=100)
