"""Figures of continual runs: the accuracy matrix as a heat map, and abstention curves.

The heat map shows a[i][j], the accuracy on task j after training tasks 0..i: forgetting is
the colour fading down a column below its diagonal cell. The ROC curve shows how well the
method's "unknown" answer separates out-of-scope inputs; the risk–coverage curve shows the
error rate among the inputs it still answers, as it abstains on more of them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from plasticity.observe.forgetting import forgetting_report
from plasticity.report.continual import CURVES, task_names
from plasticity.report.figures import legend_below, palette, panels, save

MATRICES_PER_ROW = 3


def accuracy_matrices(entries: list[dict[str, Any]], path: Path) -> Path | None:
    """One heat map per entry with an accuracy matrix, each cell labelled in percent."""
    shown = [e for e in entries if "accuracy_matrix" in e]
    if not shown:
        return None
    size = max(len(e["accuracy_matrix"]) for e in shown)
    columns = min(len(shown), MATRICES_PER_ROW)
    rows = -(-len(shown) // columns)
    figure, axes = panels(rows, columns, width=max(3.8, 0.55 * size + 2.4), height=max(3.4, 0.5 * size + 2.0), whole_x=False)
    cells = [ax for row in axes for ax in row]
    for ax in cells[len(shown) :]:
        ax.set_visible(False)
    for ax, entry in zip(cells, shown):
        report = forgetting_report(entry["accuracy_matrix"])
        names = task_names(entry)
        image = ax.imshow(report.accuracy, vmin=0.0, vmax=1.0, cmap="viridis")
        for i, row in enumerate(report.accuracy):
            for j, value in enumerate(row):
                ax.text(
                    j, i, f"{100 * value:.0f}", ha="center", va="center", fontsize=8, color="white" if value < 0.6 else "black"
                )
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
        ax.set_yticks(range(len(names)), names)
        ax.set_xlabel("evaluated on task")
        ax.set_ylabel("after training task")
        ax.grid(False)
        forgetting = "—" if report.average_forgetting is None else f"{100 * report.average_forgetting:.1f}%"
        ax.set_title(
            f"{entry['method']} on {entry['dataset']}\nfinal {100 * report.final_average_accuracy:.1f}%, forgetting {forgetting}"
        )
        figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="accuracy (fraction)")
    figure.tight_layout()
    return save(figure, path)


def abstention_curves(entries: list[dict[str, Any]], key: str, path: Path) -> Path | None:
    """`key` ("roc" or "risk_coverage") curves: one panel per dataset, a line per method."""
    shown = [e for e in entries if key in e]
    if not shown:
        return None
    x_name, y_name = CURVES[key]
    datasets = list(dict.fromkeys(e["dataset"] for e in shown))
    colours = palette(list(dict.fromkeys(e["method"] for e in shown)))
    figure, axes = panels(1, len(datasets), width=4.4, height=3.8, whole_x=False)
    for ax, dataset in zip(axes[0], datasets):
        for entry in (e for e in shown if e["dataset"] == dataset):
            curve = entry[key]
            label = entry["method"]
            if key == "roc" and entry.get("oos_auroc") is not None:
                label += f" (AUROC {entry['oos_auroc']:.3f})"
            ax.plot(curve[x_name], curve[y_name], color=colours[entry["method"]], label=label, lw=1.6)
        if key == "roc":
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
    legend_below(figure, columns=3)
    return save(figure, path)


def continual_figures(entries: list[dict[str, Any]], folder: Path, prefix: str) -> dict[str, Path]:
    """Every continual figure the entries have data for, keyed by what it shows."""
    made = {
        "matrix": accuracy_matrices(entries, folder / f"{prefix}-matrix.png"),
        "roc": abstention_curves(entries, "roc", folder / f"{prefix}-roc.png"),
        "risk_coverage": abstention_curves(entries, "risk_coverage", folder / f"{prefix}-risk-coverage.png"),
    }
    return {name: path for name, path in made.items() if path is not None}
