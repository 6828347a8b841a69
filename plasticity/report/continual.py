"""The continual-learning summary format a report renders (the contract for `plasticity.memory`).

A continual run writes `summary.json`: a JSON list with one object per (method, dataset).
The report recognises the file by its content (every object has a `method`), checks it with
`check_entries`, and shows a table, the accuracy matrix as a heat map, and the abstention ROC
and risk–coverage curves when present. Fractions are in [0, 1], never percentages.

    method                  str, required: what learned ("memory", "bp-finetune", ...)
    dataset                 str, required
    final_accuracy_mean     number, required: mean over tasks of the accuracy after the last task
    final_accuracy_std      number: sample std over seeds
    forgetting_mean/_std    number: average forgetting (Chaudhry et al. 2018)
    backward_transfer_mean  number: BWT (Lopez-Paz & Ranzato 2017)
    oos_auroc               number: AUROC of "unknown" (out-of-scope) detection
    stored_fraction         number: fraction of training examples the memory kept
    n_seeds, seeds          int, list of int
    tasks                   list of task names (str, or list of class names), one per task
    accuracy_matrix         T×T list: [i][j] = accuracy on task j after training tasks 0..i
                            (mean over seeds; `plasticity.observe.forgetting`'s convention)
    roc                     {"fpr": [...], "tpr": [...]}: abstention ROC, out-of-scope = positive
    risk_coverage           {"coverage": [...], "risk": [...]}: error rate among the accepted
                            examples against the fraction accepted, as the threshold moves

Other keys are allowed and ignored, so the format can grow without breaking reports.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from plasticity.observe.forgetting import validate_accuracy_matrix

NUMBERS = (
    "final_accuracy_mean",
    "final_accuracy_std",
    "forgetting_mean",
    "forgetting_std",
    "backward_transfer_mean",
    "oos_auroc",
    "stored_fraction",
)
CURVES = {"roc": ("fpr", "tpr"), "risk_coverage": ("coverage", "risk")}


def is_continual_summary(payload: Any) -> bool:
    """True for a non-empty list of objects that all name a `method`."""
    return isinstance(payload, list) and bool(payload) and all(isinstance(e, dict) and "method" in e for e in payload)


def _curve(entry: dict[str, Any], key: str) -> None:
    x_name, y_name = CURVES[key]
    curve = entry[key]
    if not isinstance(curve, dict) or x_name not in curve or y_name not in curve:
        raise ValueError(f"`{key}` must be an object with lists `{x_name}` and `{y_name}`")
    x, y = curve[x_name], curve[y_name]
    if not isinstance(x, list) or not isinstance(y, list) or len(x) != len(y) or len(x) < 2:
        raise ValueError(f"`{key}.{x_name}` and `{key}.{y_name}` must be lists of equal length ≥ 2")
    if not all(isinstance(v, (int, float)) and 0.0 <= v <= 1.0 for v in x + y):
        raise ValueError(f"`{key}` values must be fractions in [0, 1]")


def _check_entry(entry: dict[str, Any]) -> None:
    for key in ("method", "dataset"):
        if not isinstance(entry.get(key), str) or not entry[key]:
            raise ValueError(f"`{key}` must be a non-empty string; got {entry.get(key)!r}")
    if "final_accuracy_mean" not in entry:
        raise ValueError("missing `final_accuracy_mean`")
    for key in NUMBERS:
        value = entry.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)):
            raise ValueError(f"`{key}` must be a finite number or null; got {value!r}")
    if "accuracy_matrix" in entry:
        matrix = validate_accuracy_matrix(entry["accuracy_matrix"])
        tasks = entry.get("tasks")
        if tasks is not None and (not isinstance(tasks, list) or len(tasks) != len(matrix)):
            raise ValueError(f"`tasks` must list one name per task ({len(matrix)}); got {tasks!r}")
    for key in CURVES:
        if key in entry:
            _curve(entry, key)


def check_entries(entries: Sequence[dict[str, Any]], source: Path) -> list[dict[str, Any]]:
    """The entries, after checking each against the format; errors name the file and the entry."""
    for index, entry in enumerate(entries):
        try:
            _check_entry(entry)
        except ValueError as error:
            raise ValueError(f"{source}: entry {index} ({entry.get('method')!r} on {entry.get('dataset')!r}): {error}") from None
    return list(entries)


def task_names(entry: dict[str, Any]) -> list[str]:
    """Axis labels for the accuracy matrix: the entry's task names, else "task 1", "task 2", ..."""
    size = len(entry["accuracy_matrix"])
    tasks = entry.get("tasks") or [f"task {i + 1}" for i in range(size)]
    return [",".join(map(str, task)) if isinstance(task, list) else str(task) for task in tasks]
