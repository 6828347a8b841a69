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

Time is compared only on one machine. When the runs of a row and of its bp ran on more than one
host (a bench on a Ray cluster; `RunRecord.host`), the time ratio is formed over the seeds whose run
and bp run shared a host (means over those seeds; `time_ratio_note` names them when some seeds were
left out), and with no such seed there is no ratio (the note says so). Runs without a host (written before hosts were recorded) count as one.

Runs that failed (`RunFailure`: raised, or their Ray worker died) count in `n_seeds` and `failed`,
and have no accuracy or time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from plasticity.results import DIVERGED, RunFailure, RunRecord, SummaryRow

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


def _row(members: list[RunRecord], failures: list[RunFailure]) -> SummaryRow:
    """The runs of one (label, dataset) over their seeds, without ratios to bp."""
    accuracies = [m.test_accuracy for m in members]
    seconds = [m.epoch_seconds for m in members]
    first = members[0] if members else failures[0]
    return SummaryRow(
        rule=first.rule,
        label=first.label or first.rule,
        dataset=first.dataset,
        n_seeds=len(members) + len(failures),
        seeds=sorted(m.seed for m in [*members, *failures]),
        test_accuracy_mean=_mean(accuracies),
        test_accuracy_std=_std(accuracies),
        n_measured=sum(1 for value in accuracies if value is not None),
        epoch_seconds_mean=_mean(seconds),
        epoch_seconds_std=_std(seconds),
        diverged=sum(1 for m in members if m.status == DIVERGED),
        accuracy_ratio_to_bp=None,
        time_ratio_to_bp=None,
        failed=len(failures) or None,
    )


def summarize(runs: Sequence[RunRecord], failures: Sequence[RunFailure] = ()) -> list[SummaryRow]:
    """One row per (label, dataset), in the order the pairs first appear in `runs` (then in `failures`)."""
    groups: dict[tuple[str, str], list[RunRecord]] = defaultdict(list)
    failed: dict[tuple[str, str], list[RunFailure]] = defaultdict(list)
    for run in runs:
        groups[(run.name, run.dataset)].append(run)
    for failure in failures:
        groups.setdefault((failure.label, failure.dataset), [])
        failed[(failure.label, failure.dataset)].append(failure)
    rows = {pair: _row(members, failed[pair]) for pair, members in groups.items()}
    baseline: dict[str, tuple[str, str]] = {}
    for pair, row in rows.items():  # the plain `bp` run of a dataset, else its first bp variant
        if row.rule == BASELINE and (row.dataset not in baseline or row.label == BASELINE):
            baseline[row.dataset] = pair
    out = []
    for pair, row in rows.items():
        base = baseline.get(row.dataset)
        out.append(row if base is None else _with_ratios(row, groups[pair], rows[base], groups[base]))
    return out


def _with_ratios(row: SummaryRow, members: list[RunRecord], base: SummaryRow, base_members: list[RunRecord]) -> SummaryRow:
    """`row` with its ratios to the dataset's bp row; time only between runs of one host."""
    accuracy = _ratio(row.test_accuracy_mean, base.test_accuracy_mean)
    if len({m.host for m in [*members, *base_members]}) <= 1:
        return replace(row, accuracy_ratio_to_bp=accuracy, time_ratio_to_bp=_ratio(row.epoch_seconds_mean, base.epoch_seconds_mean))
    bp_runs = {m.seed: m for m in base_members if m.epoch_seconds is not None}
    pairs = [(m, bp_runs[m.seed]) for m in members if m.epoch_seconds is not None and m.seed in bp_runs and bp_runs[m.seed].host == m.host]
    if not pairs:
        return replace(row, accuracy_ratio_to_bp=accuracy, time_ratio_note="no seed ran on the same host as bp's")
    time = _ratio(_mean([m.epoch_seconds for m, _ in pairs]), _mean([b.epoch_seconds for _, b in pairs]))
    if len(pairs) == sum(1 for m in members if m.epoch_seconds is not None):
        return replace(row, accuracy_ratio_to_bp=accuracy, time_ratio_to_bp=time)
    seeds = ", ".join(str(m.seed) for m, _ in pairs)
    return replace(row, accuracy_ratio_to_bp=accuracy, time_ratio_to_bp=time, time_ratio_note=f"over seeds {seeds}, those run on bp's host")
