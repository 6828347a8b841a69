"""Aggregate per-run results into per-(rule, dataset) summaries with ratios to backprop.

Spread is the sample standard deviation over seeds (ddof = 1; 0 for a single seed). Ratios to
`bp` compare means measured in the same bench run: accuracy_ratio_to_bp = mean accuracy of the
rule / mean accuracy of bp; time_ratio_to_bp = mean epoch_seconds of the rule / that of bp.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

BASELINE = "bp"


def _std(values: list[float]) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def summarize(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One object per (rule, dataset), in the order the pairs first appear in `runs`."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for run in runs:
        groups[(run["rule"], run["dataset"])].append(run)
    summary = []
    for (rule, dataset), members in groups.items():
        accuracies = [m["test_accuracy"] for m in members]
        seconds = [m["epoch_seconds"] for m in members]
        summary.append(
            {
                "rule": rule,
                "dataset": dataset,
                "n_seeds": len(members),
                "seeds": sorted(m["seed"] for m in members),
                "test_accuracy_mean": float(np.mean(accuracies)),
                "test_accuracy_std": _std(accuracies),
                "epoch_seconds_mean": float(np.mean(seconds)),
                "epoch_seconds_std": _std(seconds),
                "diverged": sum(1 for m in members if m.get("status") == "diverged"),
            }
        )
    baseline = {s["dataset"]: s for s in summary if s["rule"] == BASELINE}
    for entry in summary:
        base = baseline.get(entry["dataset"])
        entry["accuracy_ratio_to_bp"] = entry["test_accuracy_mean"] / base["test_accuracy_mean"] if base else None
        entry["time_ratio_to_bp"] = entry["epoch_seconds_mean"] / base["epoch_seconds_mean"] if base else None
    return summary
