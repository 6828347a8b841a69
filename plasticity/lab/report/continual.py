"""The continual-learning summary format a report renders (the contract for `plasticity.memory`).

A continual run writes `summary.json`: a JSON list with one object per (method, dataset).
The report recognises the file by its content (some object names a `method`), checks every
entry with `check_entries`, and shows a table, the accuracy matrix as a heat map, and the
abstention ROC and risk–coverage curves when present. Fractions are in [0, 1], never
percentages; any number may be null (not measured), and a wrong one stops the report.

    method                  str, required: what learned ("memory", "bp-finetune", ...)
    dataset                 str, required
    final_accuracy_mean     fraction, required: mean over tasks of the accuracy after the last task
    final_accuracy_std      fraction: sample std over seeds
    forgetting_mean         number in [-1, 1]: average forgetting (Chaudhry et al. 2018); _std a fraction
    backward_transfer_mean  number in [-1, 1]: BWT (Lopez-Paz & Ranzato 2017)
    oos_auroc               fraction: AUROC of "unknown" (out-of-scope) detection
    stored_fraction         number ≥ 0: vectors the method keeps per training example (above 1
                            for a method that keeps every example and more, as the joint head does)
    n_seeds, seeds          int ≥ 1, list of n_seeds ints ≥ 0
    tasks                   list of task names (str, or list of class names), one per task
    accuracy_matrix         T×T list of fractions: [i][j] = accuracy on task j after training
                            tasks 0..i (mean over seeds; `plasticity.observe.forgetting`'s convention)
    roc                     {"fpr": [...], "tpr": [...]}: abstention ROC, out-of-scope = positive
    risk_coverage           {"coverage": [...], "risk": [...]}: error rate among the accepted
                            examples against the fraction accepted, as the threshold moves

Other keys are allowed and ignored, so the format can grow without breaking reports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from plasticity.errors import brief
from plasticity.records import (
    CHANGE,
    COUNT,
    FRACTION,
    INDICES,
    LIST,
    NAME,
    OBJECT,
    SHARE,
    Kind,
    Place,
    ResultsError,
)

FIELDS = {
    "final_accuracy_mean": FRACTION,
    "final_accuracy_std": FRACTION,
    "forgetting_mean": CHANGE,
    "forgetting_std": FRACTION,
    "backward_transfer_mean": CHANGE,
    "oos_auroc": FRACTION,
    "stored_fraction": SHARE,
}
CURVES = {"roc": ("fpr", "tpr"), "risk_coverage": ("coverage", "risk")}
# What one summary may hold, so that its figures stay small (a heat map per entry, a cell per
# pair of tasks); several times what a continual run writes.
MAX_ENTRIES = 24
MAX_TASKS = 30
FRACTIONS = Kind("a list of fractions in [0, 1]", lambda v: isinstance(v, list) and all(FRACTION.test(x) for x in v))
TASK = Kind("a task name (a string, or a list of class names)", lambda v: isinstance(v, (str, list)))


def is_continual_summary(payload: Any) -> bool:
    """True for a list in which some object names a `method`: a continual summary, to be checked
    whole (a bench's summary.json names a `rule` and a `label` instead)."""
    return isinstance(payload, list) and any(isinstance(e, dict) and "method" in e for e in payload)


def _check_curve(entry: dict[str, Any], key: str, place: Place) -> None:
    """The entry's `key` curve, when present: two lists of fractions of the same length ≥ 2."""
    x_name, y_name = CURVES[key]
    curve = place.field(entry, key, OBJECT, required=False)
    if curve is None:
        return
    x, y = (place.at(key).field(curve, name, FRACTIONS) for name in (x_name, y_name))
    if len(x) != len(y) or len(x) < 2:
        place.at(key).fail(f"must hold `{x_name}` and `{y_name}` of equal length ≥ 2; got lengths {len(x)} and {len(y)}")


def _check_matrix(entry: dict[str, Any], place: Place) -> None:
    """The entry's accuracy matrix, when present: square, of fractions, with a name per task."""
    matrix = place.field(entry, "accuracy_matrix", LIST, required=False)
    if matrix is None:
        return
    for i, row in enumerate(matrix):
        place.at("accuracy_matrix").at(i).check(row, FRACTIONS)
    if not matrix or any(len(row) != len(matrix) for row in matrix):
        place.at("accuracy_matrix").fail(f"must be a non-empty square (tasks × tasks) matrix; got rows of lengths {brief([len(r) for r in matrix])}")
    if len(matrix) > MAX_TASKS:
        place.at("accuracy_matrix").fail(f"must have at most {MAX_TASKS} tasks; got {len(matrix)}")
    tasks = place.field(entry, "tasks", LIST, required=False, null=True)
    if tasks is not None:
        for i, task in enumerate(tasks):
            place.at("tasks").at(i).check(task, TASK)
        if len(tasks) != len(matrix):
            place.at("tasks").fail(f"must name one task per row of `accuracy_matrix` ({len(matrix)}); got {len(tasks)}")


def _check_entry(entry: Any, place: Place) -> None:
    """One entry of a continual summary, against the format of this module's docstring."""
    place.check(entry, OBJECT)
    for key in ("method", "dataset"):
        place.field(entry, key, NAME)
    place.field(entry, "final_accuracy_mean", FRACTION, null=True)
    for key, kind in FIELDS.items():
        place.field(entry, key, kind, required=False, null=True)
    n_seeds = place.field(entry, "n_seeds", COUNT, required=False)
    seeds = place.field(entry, "seeds", INDICES, required=False)
    if n_seeds is not None and seeds is not None and len(seeds) != n_seeds:
        place.at("seeds").fail(f"must list `n_seeds` ({n_seeds}) seeds; got {brief(seeds)}")
    _check_matrix(entry, place)
    for key in CURVES:
        _check_curve(entry, key, place)


def _entry_name(index: int, entry: Any) -> str:
    """ "entry 2 ('memory' on 'digits')", or "entry 2" when it names neither."""
    named = isinstance(entry, dict) and ("method" in entry or "dataset" in entry)
    return f"entry {index}" + (f" ({brief(entry.get('method'))} on {brief(entry.get('dataset'))})" if named else "")


def check_entries(entries: list[Any], source: Path) -> list[dict[str, Any]]:
    """The entries, after checking each against the format; errors name the file, the entry and the key."""
    if len(entries) > MAX_ENTRIES:
        raise ResultsError(f"{source}: {len(entries)} entries, more than a report draws ({MAX_ENTRIES}); split them into several files")
    first: dict[tuple[str, str], int] = {}
    for index, entry in enumerate(entries):
        place = Place(source, _entry_name(index, entry))
        _check_entry(entry, place)
        pair = (entry["method"], entry["dataset"])
        if pair in first:
            place.fail(f"repeats the method and dataset of entry {first[pair]}: one entry per (method, dataset)")
        first[pair] = index
    return list(entries)


def task_names(entry: dict[str, Any]) -> list[str]:
    """Axis labels for the accuracy matrix: the entry's task names, else "task 1", "task 2", ..."""
    size = len(entry["accuracy_matrix"])
    tasks = entry.get("tasks") or [f"task {i + 1}" for i in range(size)]
    return [",".join(map(str, task)) if isinstance(task, list) else str(task) for task in tasks]
