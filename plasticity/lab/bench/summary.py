"""Aggregate per-run results into per-(label, dataset) summaries with ratios to backprop.

A run's label is its rule's name unless a bench gave a configuration variant its own label
(`fa-lr1e-3`); records without a label (older results) count under their rule.

Spread is the sample standard deviation over seeds (ddof = 1). A run that diverged before
finishing an epoch has no accuracy or time: means and spreads are over the runs that have them
(None if no run has), `n_measured` counts those runs, and `diverged` counts every diverged run.
Over a single measured run the spread is 0.0 and means nothing: the tables print none, only
"(n = 1)". Ratios to `bp` compare means measured in the same bench run: accuracy_ratio_to_bp =
mean accuracy of the rule / mean accuracy of bp; time_ratio_to_bp = mean epoch_seconds of the
rule / that of bp. The bp of a dataset is its run labelled `bp`, or the first bp variant when no
plain bp ran.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from plasticity.results import DIVERGED, RunRecord, SummaryRow

BASELINE = "bp"


def _mean(values: list[float | None]) -> float | None:
    """Mean of the values a run has; None when none has one (every seed diverged in its first epoch)."""
    known = [v for v in values if v is not None]
    return float(np.mean(known)) if known else None


def _std(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.std(known, ddof=1)) if len(known) > 1 else (0.0 if known else None)


def _ratio(value: float | None, base: float | None) -> float | None:
    return value / base if value is not None and base else None


def _row(members: list[RunRecord]) -> SummaryRow:
    """The runs of one (label, dataset) over their seeds, without ratios to bp."""
    accuracies = [m.test_accuracy for m in members]
    seconds = [m.epoch_seconds for m in members]
    return SummaryRow(
        rule=members[0].rule,
        label=members[0].name,
        dataset=members[0].dataset,
        n_seeds=len(members),
        seeds=sorted(m.seed for m in members),
        test_accuracy_mean=_mean(accuracies),
        test_accuracy_std=_std(accuracies),
        n_measured=sum(1 for value in accuracies if value is not None),
        epoch_seconds_mean=_mean(seconds),
        epoch_seconds_std=_std(seconds),
        diverged=sum(1 for m in members if m.status == DIVERGED),
        accuracy_ratio_to_bp=None,
        time_ratio_to_bp=None,
    )


def summarize(runs: Sequence[RunRecord]) -> list[SummaryRow]:
    """One row per (label, dataset), in the order the pairs first appear in `runs`."""
    groups: dict[tuple[str, str], list[RunRecord]] = defaultdict(list)
    for run in runs:
        groups[(run.name, run.dataset)].append(run)
    rows = [_row(members) for members in groups.values()]
    baseline: dict[str, SummaryRow] = {}
    for row in rows:  # the plain `bp` run of a dataset, else its first bp variant
        if row.rule == BASELINE and (row.dataset not in baseline or row.label == BASELINE):
            baseline[row.dataset] = row
    return [_with_ratios(row, baseline.get(row.dataset)) for row in rows]


def _with_ratios(row: SummaryRow, base: SummaryRow | None) -> SummaryRow:
    """`row` with its ratios to the dataset's bp row (none without one)."""
    if base is None:
        return row
    return replace(
        row,
        accuracy_ratio_to_bp=_ratio(row.test_accuracy_mean, base.test_accuracy_mean),
        time_ratio_to_bp=_ratio(row.epoch_seconds_mean, base.epoch_seconds_mean),
    )
