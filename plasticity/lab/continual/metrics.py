"""Out-of-scope detection and selective-classification metrics, with exact definitions.

Inputs are confidence scores s (higher: more likely in scope) for in-scope queries and for
out-of-scope (OOS) queries; a threshold t accepts a query when s ≥ t.

- AUROC (out-of-scope = positive, "unknown" score = −s): the probability that a random OOS
  query scores below a random in-scope one, ties counting one half (`sklearn.metrics.roc_auc_score`).
- Operating point at in-scope precision p (default 0.95): in-scope precision(t) = in-scope
  accepted / all accepted. t_p is the lowest threshold with precision ≥ p (the one that answers
  the most in-scope queries). Reported there: OOS recall = fraction of OOS queries rejected, and
  in-scope recall = fraction of in-scope queries accepted. Precision depends on the ratio of OOS
  to in-scope queries (CLINC150's test: 1000 to 4500); t_p is found on the test scores, as an
  evaluation metric, not used for anything else.
- Risk–coverage (Geifman & El-Yaniv 2017, "Selective classification for deep neural networks"):
  queries sorted by s, the top fraction c is answered; risk(c) = errors among the answered
  (a wrong class, or any answer to an OOS query) / answered. Sampled at coverages 0.01 … 1.00.
- ROC curves of several seeds are averaged vertically (Fawcett 2006, §8.1): true-positive rate
  interpolated at false-positive rates 0, 0.01, …, 1 and averaged.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

GRID = np.linspace(0.0, 1.0, 101)
COVERAGES = np.linspace(0.01, 1.0, 100)


def oos_metrics(in_scope: np.ndarray, out_of_scope: np.ndarray, precision: float = 0.95) -> dict[str, float | None]:
    """AUROC and the operating point at `precision` in-scope precision (definitions above)."""
    in_scope, out_of_scope = np.asarray(in_scope, dtype=np.float64), np.asarray(out_of_scope, dtype=np.float64)
    if not len(in_scope) or not len(out_of_scope):
        raise ValueError("need at least one in-scope and one out-of-scope score")
    truth = np.r_[np.zeros(len(in_scope)), np.ones(len(out_of_scope))]
    auroc = float(roc_auc_score(truth, -np.r_[in_scope, out_of_scope]))
    thresholds = np.unique(np.r_[in_scope, out_of_scope])  # ascending: the first that qualifies answers the most
    accepted_in = len(in_scope) - np.searchsorted(np.sort(in_scope), thresholds, side="left")
    accepted_out = len(out_of_scope) - np.searchsorted(np.sort(out_of_scope), thresholds, side="left")
    qualifies = accepted_in >= precision * (accepted_in + accepted_out)
    qualifies &= accepted_in > 0
    if not qualifies.any():
        return {"auroc": auroc, "oos_recall": None, "in_scope_recall": None}
    first = int(np.argmax(qualifies))
    return {
        "auroc": auroc,
        "oos_recall": float(1.0 - accepted_out[first] / len(out_of_scope)),
        "in_scope_recall": float(accepted_in[first] / len(in_scope)),
    }


def roc_points(in_scope: np.ndarray, out_of_scope: np.ndarray) -> dict[str, list[float]]:
    """ROC of "unknown" detection (OOS = positive) with tpr interpolated at fpr = 0, 0.01, …, 1."""
    truth = np.r_[np.zeros(len(in_scope)), np.ones(len(out_of_scope))]
    fpr, tpr, _ = roc_curve(truth, -np.r_[in_scope, out_of_scope])
    return {"fpr": GRID.tolist(), "tpr": np.interp(GRID, fpr, tpr).tolist()}


def risk_coverage(scores: np.ndarray, correct: np.ndarray) -> dict[str, list[float]]:
    """Risk (error rate among answered) at coverages 0.01 … 1, answering the highest scores first."""
    scores, correct = np.asarray(scores, dtype=np.float64), np.asarray(correct, dtype=bool)
    if len(scores) != len(correct) or not len(scores):
        raise ValueError("scores and correct must be non-empty and of equal length")
    order = np.argsort(-scores, kind="stable")
    errors = np.cumsum(~correct[order])
    answered = np.maximum(np.ceil(COVERAGES * len(scores)).astype(int), 1)
    return {"coverage": COVERAGES.tolist(), "risk": (errors[answered - 1] / answered).tolist()}


def mean_curve(curves: list[dict[str, list[float]]], x: str, y: str) -> dict[str, list[float]]:
    """Pointwise mean of curves sampled on the same grid (vertical averaging)."""
    if not curves:
        raise ValueError("no curves to average")
    return {x: curves[0][x], y: np.mean([c[y] for c in curves], axis=0).tolist()}
