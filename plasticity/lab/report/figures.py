"""What every report figure shares: the off-screen backend, one colour per run label, saving.

Matplotlib's Agg backend draws to memory only, so reports build on machines without a
display (CI, servers). Each label keeps its colour in every figure of a report, so a reader
can follow one rule from the bars to the curves to the angles. A figure is never bigger than
MAX_INCHES a side: results with very many datasets, layers or tasks get smaller panels, not an
image too large to allocate.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from plasticity.io import atomic_write  # noqa: E402

MAX_INCHES = 40.0  # 4,400 pixels at savefig.dpi: far beyond any real report, far below Agg's limit

plt.rcParams.update(
    {
        "figure.dpi": 100,
        "savefig.dpi": 110,
        "font.size": 10,
        "axes.titlesize": 11,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "legend.fontsize": 9,
        "legend.frameon": False,
    }
)


def palette(labels: Sequence[str]) -> dict[str, tuple[float, ...]]:
    """A fixed colour per label (tab10, then tab20 beyond ten labels); bp is always black."""
    others = [label for label in labels if label != "bp"]
    cmap = plt.get_cmap("tab10" if len(others) <= 10 else "tab20")
    colours: dict[str, tuple[float, ...]] = {"bp": (0.0, 0.0, 0.0, 1.0)}
    colours.update({label: cmap(index % cmap.N) for index, label in enumerate(others)})
    return colours


def panels(rows: int, cols: int, width: float = 4.6, height: float = 3.4, whole_x: bool = True) -> tuple[Figure, list[list[Axes]]]:
    """A figure with a rows × cols grid of axes, always indexable as axes[row][col].

    whole_x: x ticks on whole numbers only (epochs); False for fractions such as ROC axes.
    Each side is at most MAX_INCHES (the panels shrink to fit).
    """
    size = (min(width * cols, MAX_INCHES), min(height * rows, MAX_INCHES))
    figure, axes = plt.subplots(rows, cols, figsize=size, squeeze=False)
    if whole_x:
        for ax in axes.flat:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return figure, [list(row) for row in axes]


def legend_below(figure: Figure, columns: int = 6) -> None:
    """One legend under the panels with every label drawn in any of them, so no curve is covered."""
    entries: dict[str, Any] = {}
    for axes in figure.axes:
        for handle, label in zip(*axes.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    if entries:
        figure.legend(list(entries.values()), list(entries), loc="lower center", ncol=min(columns, len(entries)), bbox_to_anchor=(0.5, 0.0))
        rows = (len(entries) - 1) // columns + 1
        figure.tight_layout(rect=(0, min(0.3, 0.05 + 0.2 * rows / (figure.get_figheight() + 1)), 1, 1))
    else:
        figure.tight_layout()


def save(figure: Figure, path: Path) -> Path:
    """Write the figure as PNG (atomically: never a half-written image) and free it."""
    try:
        with atomic_write(path) as handle:
            figure.savefig(handle, format="png")
    finally:
        plt.close(figure)  # reports draw many figures in one process
    return path
