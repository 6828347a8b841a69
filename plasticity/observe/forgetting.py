"""Continual-learning metrics from an accuracy matrix.

a[i][j] is the accuracy on task j (a fraction in [0, 1]) measured after training on tasks
0..i, for T tasks; the matrix must be square and complete (evaluate every task, seen or not,
after each task). With the last row a[T−1]:

- final average accuracy: mean_j a[T−1][j] over all T tasks.
- average forgetting (Chaudhry et al. 2018, "Riemannian Walk for Incremental Learning",
  ECCV): f_j = max_{i<T−1} a[i][j] − a[T−1][j] for each j < T−1, averaged over those j.
  The max runs over every earlier row, as in the paper's definition.
- backward transfer (Lopez-Paz & Ranzato 2017, "Gradient Episodic Memory", NeurIPS):
  BWT = mean_{j<T−1} (a[T−1][j] − a[j][j]); negative means forgetting.

Forgetting and backward transfer need at least two tasks; for T = 1 they are None.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def validate_accuracy_matrix(accuracy: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """The matrix as float64 (T, T), after checking it is square, finite and in [0, 1]."""
    a = np.asarray(accuracy, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] == 0:
        raise ValueError(f"accuracy must be a non-empty square (tasks × tasks) matrix; got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError("accuracy matrix contains NaN or inf; evaluate every task after every task")
    if a.min() < 0 or a.max() > 1:
        raise ValueError(f"accuracies must be fractions in [0, 1] (not percentages); got range [{a.min()}, {a.max()}]")
    return a


def final_average_accuracy(accuracy: Sequence[Sequence[float]] | np.ndarray) -> float:
    """Mean of the last row: accuracy on all tasks after training on all of them."""
    return float(validate_accuracy_matrix(accuracy)[-1].mean())


def average_forgetting(accuracy: Sequence[Sequence[float]] | np.ndarray) -> float | None:
    """Chaudhry et al. (2018) average forgetting over tasks 0..T−2; None for one task."""
    a = validate_accuracy_matrix(accuracy)
    if a.shape[0] < 2:
        return None
    best_before = a[:-1, :-1].max(axis=0)
    return float((best_before - a[-1, :-1]).mean())


def backward_transfer(accuracy: Sequence[Sequence[float]] | np.ndarray) -> float | None:
    """Lopez-Paz & Ranzato (2017) backward transfer over tasks 0..T−2; None for one task."""
    a = validate_accuracy_matrix(accuracy)
    if a.shape[0] < 2:
        return None
    return float((a[-1, :-1] - np.diag(a)[:-1]).mean())


@dataclass(frozen=True)
class ForgettingReport:
    """The accuracy matrix and the three summary numbers (JSON-ready via dataclasses.asdict)."""

    accuracy: list[list[float]]
    final_average_accuracy: float
    average_forgetting: float | None
    backward_transfer: float | None


def forgetting_report(accuracy: Sequence[Sequence[float]] | np.ndarray) -> ForgettingReport:
    """Validate the matrix once and compute every metric from it."""
    a = validate_accuracy_matrix(accuracy)
    return ForgettingReport(
        accuracy=a.tolist(),
        final_average_accuracy=final_average_accuracy(a),
        average_forgetting=average_forgetting(a),
        backward_transfer=backward_transfer(a),
    )
