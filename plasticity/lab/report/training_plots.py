"""Figures of training runs: final accuracies, learning curves, ΣPI and Ω traces, alignment angles.

Every curve is the mean over seeds at each epoch, with a band from the lowest to the highest
seed (with three seeds a standard-deviation band would pretend to know the distribution).
A figure is only drawn when some run recorded its numbers (observers are optional); each
function returns the path it wrote, or None. How a run ended is drawn, never hidden: an
unfinished run's line is dashed (and its dot hollow), and a label whose runs diverged says so
in the legend.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

from plasticity.lab.report.collect import TrainingRuns
from plasticity.lab.report.figures import Axes, legend_below, palette, panels, save
from plasticity.results import DIVERGED, CurvePoint, RunRecord

Pick = Callable[[CurvePoint], float | None]
Layers = Callable[[CurvePoint], list[float] | None]


def seed_band(runs: list[RunRecord], pick: Pick) -> tuple[np.ndarray, ...] | None:
    """(epochs, mean, min, max) over the runs' curves of the value `pick` reads from each point."""
    by_epoch: dict[int, list[float]] = defaultdict(list)
    for run in runs:
        for point in run.curve:
            value = pick(point)
            if value is not None and math.isfinite(value):
                by_epoch[point.epoch].append(value)
    if not by_epoch:
        return None
    epochs = sorted(by_epoch)
    values = [by_epoch[e] for e in epochs]
    return (
        np.array(epochs),
        np.array([np.mean(v) for v in values]),
        np.array([min(v) for v in values]),
        np.array([max(v) for v in values]),
    )


def _layer(layers: Layers, index: int, hidden_only: bool = False) -> Pick:
    """The `index`-th value of a point's per-layer list; with `hidden_only`, never the list's
    last value (the output layer of the run's own network, whatever its depth)."""
    last = 1 if hidden_only else 0
    return lambda point: layers(point)[index] if len(layers(point) or ()) - last > index else None


def accuracy_of(point: CurvePoint) -> float:
    return point.test_accuracy


def accuracy_points(runs: TrainingRuns, path: Path) -> Path:
    """Final test accuracy per label, one panel per dataset: mean over seeds ± sample std.

    Dots rather than bars: the differences are a few points near the top of the scale, and a
    bar's length would claim a zero baseline that a cut axis no longer shows.
    """
    colours = palette(runs.labels)
    figure, axes = panels(1, len(runs.datasets), width=max(3.4, 0.6 * len(runs.labels) + 1.8), whole_x=False)
    for ax, dataset in zip(axes[0], runs.datasets, strict=True):
        entries = [s for s in runs.summary if s.dataset == dataset]
        for x, entry in enumerate(entries):
            if entry.test_accuracy_mean is None:
                continue  # every seed diverged before its first epoch ended: the table says so
            colour = colours[entry.label]
            spread = len(runs.measured(entry.label, dataset)) > 1  # one seed has none
            ax.errorbar(
                x,
                100 * entry.test_accuracy_mean,
                yerr=100 * entry.test_accuracy_std if spread else None,
                fmt="o",
                ms=7,
                capsize=4,
                color=colour,
                mfc="none" if entry.label in runs.unfinished else colour,
            )
        ax.set_xticks(range(len(entries)), [s.label for s in entries], rotation=30, ha="right")
        ax.set_xlim(-0.6, len(entries) - 0.4)
        ax.margins(y=0.15)
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"{dataset}: final test accuracy")
    figure.tight_layout()
    return save(figure, path)


def _bands(runs: TrainingRuns, dataset: str, labels: list[str], pick: Pick) -> dict[str, tuple[np.ndarray, ...]]:
    bands = {label: seed_band(runs.runs(label, dataset), pick) for label in labels}
    return {label: band for label, band in bands.items() if band is not None}


def legend_name(runs: TrainingRuns, label: str, dataset: str) -> str:
    """The label, with "(k of n diverged)" when some of its runs on `dataset` diverged."""
    members = runs.runs(label, dataset)
    diverged = sum(1 for r in members if r.state() == DIVERGED)
    return f"{label} ({diverged} of {len(members)} diverged)" if diverged else label


def _draw(ax: Axes, runs: TrainingRuns, dataset: str, bands: dict[str, tuple[np.ndarray, ...]], scale: float = 1.0) -> None:
    """A line per label (dashed for unfinished runs) with its seed band; a dot where a line has
    a single epoch, which a line alone would not show."""
    colours = palette(runs.labels)
    for label, (epochs, mean, low, high) in bands.items():
        style = "--" if label in runs.unfinished else "-"
        marker = "o" if len(epochs) == 1 else None
        ax.plot(epochs, scale * mean, color=colours[label], label=legend_name(runs, label, dataset), lw=1.6, ls=style, marker=marker)
        ax.fill_between(epochs, scale * low, scale * high, color=colours[label], alpha=0.15, lw=0)


def metric_figure(runs: TrainingRuns, pick: Pick, ylabel: str, title: str, path: Path, scale: float = 1.0, log: bool = False) -> Path | None:
    """One panel per dataset with a line per label: `pick`'s value against the epoch."""
    bands = {dataset: _bands(runs, dataset, runs.labels, pick) for dataset in runs.datasets}
    if not any(bands.values()):
        return None
    figure, axes = panels(1, len(runs.datasets))
    for ax, dataset in zip(axes[0], runs.datasets, strict=True):
        _draw(ax, runs, dataset, bands[dataset], scale)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{dataset}: {title}")
        if log:
            ax.set_yscale("log")
    legend_below(figure)
    return save(figure, path)


def layer_figure(runs: TrainingRuns, layers: Layers, what: str, path: Path, skip_rules: tuple[str, ...] = (), hidden_only: bool = False) -> Path | None:
    """Rows: datasets; columns: layers. Angles (degrees) that `layers` reads (a per-layer list) per epoch.

    hidden_only: leave out the last value of every run's list, its output layer (for update
    angles: it learns from the output error directly, so its angle to backprop says nothing
    about the rule). It is left out per run, so a network with fewer hidden layers (softhebb's
    one) draws nothing in the later panels instead of its output layer.
    """
    labels = [label for label in runs.labels if runs.rule_of(label) not in skip_rules]
    lengths = [len(layers(p) or ()) for r in runs.records if r.name in labels for p in r.curve]
    width = max(lengths, default=0) - (1 if hidden_only else 0)
    if width < 1:
        return None
    figure, axes = panels(len(runs.datasets), width, width=4.2, height=3.0)
    for row, dataset in zip(axes, runs.datasets, strict=True):
        for index, ax in enumerate(row):
            _draw(ax, runs, dataset, _bands(runs, dataset, labels, _layer(layers, index, hidden_only)))
            ax.axhline(90, color="grey", ls=":", lw=1)
            ax.set_ylim(0, 120)
            ax.set_xlabel("epoch")
            ax.set_ylabel("angle (degrees)")
            ax.set_title(f"{dataset}: {what} {index + 1}")
    legend_below(figure)
    return save(figure, path)


def training_figures(runs: TrainingRuns, folder: Path, prefix: str) -> dict[str, Path]:
    """Every figure the runs have numbers for, keyed by what it shows; files `prefix-*.png`."""
    made = {
        "accuracy": accuracy_points(runs, folder / f"{prefix}-accuracy.png"),
        "curves": metric_figure(runs, accuracy_of, "test accuracy (%)", "test accuracy", folder / f"{prefix}-curves.png", scale=100),
        "loss": metric_figure(
            runs,
            lambda point: point.train_loss,
            "training loss (cross-entropy, nats)",
            "training loss",
            folder / f"{prefix}-loss.png",
            log=True,
        ),
        "pi": metric_figure(runs, lambda point: point.pi, "ΣPI (mean per step, 0–1)", "ΣPI", folder / f"{prefix}-pi.png"),
        "omega": metric_figure(runs, lambda point: point.omega, "Ω, O-information (nats)", "synergy Ω, last hidden layer", folder / f"{prefix}-omega.png"),
        "alignment": layer_figure(
            runs,
            lambda point: point.update_angle,
            "update angle to bp, hidden layer",
            folder / f"{prefix}-alignment.png",
            skip_rules=("bp",),
            hidden_only=True,
        ),
        "feedback": layer_figure(runs, lambda point: point.feedback_angle, "feedback angle, matrix", folder / f"{prefix}-feedback.png"),
    }
    return {name: path for name, path in made.items() if path is not None}
