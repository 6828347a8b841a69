"""Continual-learning metrics on hand-computed accuracy matrices."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pytest

from plasticity.observe.forgetting import (
    average_forgetting,
    backward_transfer,
    final_average_accuracy,
    forgetting_report,
    validate_accuracy_matrix,
)

# Rows: after training task i; columns: accuracy on task j.
THREE_TASKS = [
    [0.90, 0.10, 0.05],
    [0.60, 0.80, 0.10],
    [0.50, 0.70, 0.95],
]


def test_three_tasks_by_hand():
    # Final average: (0.50 + 0.70 + 0.95) / 3 = 0.7166…
    assert final_average_accuracy(THREE_TASKS) == pytest.approx(2.15 / 3)
    # Forgetting: task 0: max(0.90, 0.60) − 0.50 = 0.40; task 1: max(0.10, 0.80) − 0.70 = 0.10.
    assert average_forgetting(THREE_TASKS) == pytest.approx(0.25)
    # BWT: task 0: 0.50 − 0.90 = −0.40; task 1: 0.70 − 0.80 = −0.10.
    assert backward_transfer(THREE_TASKS) == pytest.approx(-0.25)


def test_forgetting_uses_the_best_earlier_row_not_the_diagonal():
    # Task 0 improves after task 1 (0.7 → 0.9) and then drops to 0.6.
    a = [[0.7, 0.0, 0.0], [0.9, 0.8, 0.0], [0.6, 0.8, 0.9]]
    assert average_forgetting(a) == pytest.approx(((0.9 - 0.6) + (0.8 - 0.8)) / 2)
    assert backward_transfer(a) == pytest.approx(((0.6 - 0.7) + (0.8 - 0.8)) / 2)


def test_positive_backward_transfer_and_zero_forgetting():
    a = [[0.5, 0.2], [0.7, 0.9]]
    assert backward_transfer(a) == pytest.approx(0.2)
    assert average_forgetting(a) == pytest.approx(-0.2)  # Chaudhry's max − final can be negative


def test_single_task_has_no_forgetting_numbers():
    report = forgetting_report([[0.8]])
    assert report.final_average_accuracy == pytest.approx(0.8)
    assert report.average_forgetting is None and report.backward_transfer is None


def test_report_is_json_ready():
    report = forgetting_report(np.array(THREE_TASKS))
    data = json.loads(json.dumps(asdict(report)))
    assert data["accuracy"] == THREE_TASKS
    assert data["average_forgetting"] == pytest.approx(0.25)


@pytest.mark.parametrize(
    "bad",
    [
        [[0.5, 0.5]],  # not square
        [],  # empty
        [[0.5, 0.5], [0.5, float("nan")]],  # missing evaluation
        [[90.0, 10.0], [80.0, 95.0]],  # percentages
        [[-0.1, 0.5], [0.5, 0.5]],
    ],
)
def test_invalid_matrices_are_rejected(bad):
    with pytest.raises(ValueError):
        validate_accuracy_matrix(bad)
