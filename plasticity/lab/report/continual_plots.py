"""Figures of continual runs: the accuracy matrix as a heat map, and abstention curves.

The heat map shows a[i][j], the accuracy on task j after training tasks 0..i: forgetting is
the colour fading down a column below its diagonal cell. The ROC curve shows how well the
method's "unknown" answer separates out-of-scope inputs; the risk–coverage curve shows the
error rate among the inputs it still answers, as it abstains on more of them.

Methods often draw the same curve (two baselines that never abstain answer alike), and one
line would hide the other. So each method has its own line style and markers (staggered along
the curve), a curve that coincides with curves drawn after it is drawn wider underneath them,
and the legend names the methods whose curves coincide (within SAME everywhere).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from plasticity.lab.report.figures import legend_below, palette, panels, save
from plasticity.observe.forgetting import forgetting_report
from plasticity.results import ContinualEntry, Curve, Roc

MATRICES_PER_ROW = 3
LABELLED_TASKS = 12  # cells of a bigger matrix carry no number: it would not fit
LINESTYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
MARKS = 8  # markers along each curve
SAME = 0.005  # curves closer than this everywhere coincide on the page (less than a line's width)


def accuracy_matrices(entries: list[ContinualEntry], path: Path) -> Path | None:
    """One heat map per entry with an accuracy matrix, each cell labelled in percent (up to LABELLED_TASKS tasks)."""
    shown = [e for e in entries if e.accuracy_matrix is not None]
    if not shown:
        return None
    size = max(len(e.accuracy_matrix) for e in shown)
    columns = min(len(shown), MATRICES_PER_ROW)
    rows = -(-len(shown) // columns)
    figure, axes = panels(rows, columns, width=max(3.8, 0.55 * size + 2.4), height=max(3.4, 0.5 * size + 2.0), whole_x=False)
    cells = [ax for row in axes for ax in row]
    for ax in cells[len(shown) :]:
        ax.set_visible(False)
    for ax, entry in zip(cells[: len(shown)], shown, strict=True):
        report = forgetting_report(entry.accuracy_matrix)
        names = entry.task_names()
        image = ax.imshow(report.accuracy, vmin=0.0, vmax=1.0, cmap="viridis")
        for i, row in enumerate(report.accuracy if len(report.accuracy) <= LABELLED_TASKS else ()):
            for j, value in enumerate(row):
                ax.text(j, i, f"{100 * value:.0f}", ha="center", va="center", fontsize=8, color="white" if value < 0.6 else "black")
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
        ax.set_yticks(range(len(names)), names)
        ax.set_xlabel("evaluated on task")
        ax.set_ylabel("after training task")
        ax.grid(False)
        forgetting = "—" if report.average_forgetting is None else f"{100 * report.average_forgetting:.1f}%"
        ax.set_title(f"{entry.method} on {entry.dataset}\nfinal {100 * report.final_average_accuracy:.1f}%, forgetting {forgetting}")
        figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="accuracy (fraction)")
    figure.tight_layout()
    return save(figure, path)


Points = tuple[np.ndarray, np.ndarray]


def _same(a: Points, b: Points) -> bool:
    """Whether two (x, y) curves have the same points, to within SAME."""
    return a[0].shape == b[0].shape and all(bool(np.all(np.abs(u - v) <= SAME)) for u, v in zip(a, b, strict=True))


def coinciding(curves: dict[str, Points]) -> dict[str, list[str]]:
    """method → the other methods whose curve has the same points, to within SAME everywhere."""
    return {m: [o for o in curves if o != m and _same(curves[m], curves[o])] for m in curves}


def _label(entry: ContinualEntry, roc: bool, twins: list[str]) -> str:
    """The legend entry of a method: its AUROC on a ROC, and the methods it coincides with."""
    label = entry.method
    if roc and entry.oos_auroc is not None:
        label += f" (AUROC {entry.oos_auroc:.3f})"
    return label + (f" (same curve as {', '.join(twins)})" if twins else "")


def abstention_curves(entries: list[ContinualEntry], pick: Callable[[ContinualEntry], Curve | None], path: Path) -> Path | None:
    """The curves `pick` reads (an entry's ROC or risk–coverage): one panel per dataset, a line per
    method, every line visible (see the module's docstring)."""
    shown = [e for e in entries if pick(e) is not None]
    if not shown:
        return None
    roc = isinstance(pick(shown[0]), Roc)
    datasets = list(dict.fromkeys(e.dataset for e in shown))
    methods = list(dict.fromkeys(e.method for e in shown))
    colours = palette(methods)
    figure, axes = panels(1, len(datasets), width=4.4, height=3.8, whole_x=False)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        drawn = [e for e in shown if e.dataset == dataset]
        curves = {e.method: tuple(np.asarray(values) for values in pick(e).points()) for e in drawn}
        twins = coinciding(curves)
        for order, entry in enumerate(drawn):
            method = entry.method
            style = methods.index(method)
            x, y = curves[method]
            step = max(1, len(x) // MARKS)
            above = sum(1 for later in drawn[order + 1 :] if later.method in twins[method])
            ax.plot(
                x,
                y,
                color=colours[method],
                label=_label(entry, roc, twins[method]),
                lw=1.6 + 1.8 * above,
                ls=LINESTYLES[style % len(LINESTYLES)],
                marker=MARKERS[style % len(MARKERS)],
                markevery=(style * step // len(methods), step),
                mfc="none",
                ms=6,
            )
        if roc:
            ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1, label="chance")
            ax.set_xlabel("false positive rate (in-scope flagged unknown)")
            ax.set_ylabel("true positive rate (out-of-scope flagged)")
            ax.set_title(f"{dataset}: abstention ROC")
        else:
            ax.set_xlabel("coverage (fraction answered)")
            ax.set_ylabel("risk (error rate among answered)")
            ax.set_title(f"{dataset}: risk–coverage")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
    legend_below(figure, columns=1)  # one method a row: a name with its twins is long
    return save(figure, path)


def continual_figures(entries: list[ContinualEntry], folder: Path, prefix: str) -> dict[str, Path]:
    """Every continual figure the entries have data for, keyed by what it shows."""
    made = {
        "matrix": accuracy_matrices(entries, folder / f"{prefix}-matrix.png"),
        "roc": abstention_curves(entries, lambda e: e.roc, folder / f"{prefix}-roc.png"),
        "risk_coverage": abstention_curves(entries, lambda e: e.risk_coverage, folder / f"{prefix}-risk-coverage.png"),
    }
    return {name: path for name, path in made.items() if path is not None}
