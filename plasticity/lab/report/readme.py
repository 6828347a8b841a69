"""The README's first-screen results, written by a command and never by hand.

`plasticity report runs/demo --readme README.md` replaces the section between
`<!-- bench:demo -->` and `<!-- /bench:demo -->` with the table of the first bench found in
runs/demo and draws its learning curves to docs/demo.png (next to the README), which the
section shows. Rerunning the command after a new `plasticity demo` refreshes both. The README
must exist and be UTF-8 text; it is checked before anything is drawn or written.
"""

from __future__ import annotations

from pathlib import Path

from plasticity.errors import ConfigError, brief
from plasticity.lab.bench.markdown import HEADERS, markdown_rows, write_section
from plasticity.lab.report.build import settings_text, table_rows, training_caption
from plasticity.lab.report.collect import collect
from plasticity.lab.report.training_plots import accuracy_of, metric_figure

SECTION = "demo"
FIGURE = "docs/demo.png"
DEMO_RECORD = "demo.json"


def check_readme(readme: str | Path) -> Path:
    """`readme` as a path, after checking it is an existing UTF-8 text file (not a folder, not
    a typo that would create a new file); a ConfigError that says what to give otherwise."""
    path = Path(readme)
    if not str(readme).strip() or not path.is_file():
        what = "is empty" if not str(readme).strip() else "is a folder" if path.is_dir() else "does not exist"
        raise ConfigError(f"--readme {brief(str(readme))} {what}; give the README file whose demo section to rewrite")
    try:
        path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"--readme {brief(str(readme))} cannot be read as UTF-8 text ({error}); give the README file") from None
    return path


def write_readme(runs_dir: str | Path, readme: str | Path) -> Path:
    """Write the results section of `readme` from the runs under `runs_dir`; returns the figure's path."""
    readme = check_readme(readme)
    collection = collect(runs_dir)
    if not collection.training:
        raise ConfigError(f"no bench or train results under {runs_dir} to put in {readme}; give the folder of a bench or demo")
    runs = collection.training[0]
    figure = readme.parent / FIGURE
    if figure.parent.exists() and not figure.parent.is_dir():
        raise ConfigError(f"{figure.parent} is a file, and the README's figure goes to {figure}; move that file away")
    metric_figure(runs, accuracy_of, "test accuracy (%)", "test accuracy", figure, scale=100)
    origin = "`plasticity demo`" if (Path(runs_dir) / DEMO_RECORD).exists() else f"the runs in `{runs_dir}`"
    body = "\n".join(
        [
            f"![Test accuracy per epoch, per rule and dataset]({FIGURE})",
            "",
            f"*{training_caption('curves', runs)}*",
            "",
            markdown_rows(HEADERS, table_rows(runs)),
            "",
            settings_text(runs),
            f"Made by {origin}; this section and the plot are rewritten by `plasticity report {runs_dir} --readme {readme}`.",
        ]
    )
    write_section(readme, SECTION, body)
    return figure
