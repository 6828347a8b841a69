"""Hyperparameter selection on held-out data (never the test split).

Held-out data: the dataset's val split (CLINC150), else a stratified 20% of train
(`embedding.held_out`); models are fitted on the rest of train.

- Structural memory: coordinate search over `GRID` in its order, from `START`: each parameter in
  turn tries its values with the others fixed at their choice so far; each candidate is trained
  class-incrementally on task order 0 and scored on the held-out split after the last task.
  The value kept follows the one-standard-error rule (Breiman et al. 1984, "Classification and
  Regression Trees"; Hastie, Tibshirani & Friedman, ESL §7.10): among the candidates whose
  held-out accuracy is within one standard error sqrt(a(1−a)/n) of the best a, the one that
  stores the fewest vectors (ties: the more accurate, then the earlier in the grid). Then, when the dataset has out-of-scope validation
  queries, `radius_prior` by held-out AUROC (in-scope val vs oos_val). Finally `tolerance` is
  set to the 95th percentile of the held-out in-scope abstention scores, so that 95% of
  in-scope validation queries are answered.
- Backprop head: learning rate × epochs of the head trained jointly on the fit part, by held-out
  accuracy; the same setting serves finetune, joint and replay.
- k-NN: k by held-out accuracy.
- Logistic regression: C by held-out accuracy of the model fitted on the whole fit part (ties:
  the smaller C, the stronger penalty).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from plasticity.lab.continual.baselines import HeadConfig, JointLogisticRegression, KNearestNeighbours, LinearHead, StructuralMethod
from plasticity.lab.continual.embedding import Embedded, Part, held_out
from plasticity.lab.continual.metrics import oos_metrics
from plasticity.lab.continual.protocol import Stream
from plasticity.lab.continual.settings import Settings
from plasticity.memory.structural import StructuralMemory

START: dict[str, Any] = {"rank": 5, "evolution_threshold": 1.0, "beam": 3, "topic_threshold": 1.0, "own_covariance": 0.1, "shrinkage": 0.1}
"""Where the coordinate search starts (fixed here, so that the choice does not depend on library defaults)."""
GRID: dict[str, tuple[Any, ...]] = {
    # The class decision first: whether the covariance model suits the data (it does not on raw
    # pixels) changes which rank is best.
    "own_covariance": (None, 0.05, 0.1, 0.2, 0.4),
    "shrinkage": (0.02, 0.1, 0.3),
    "rank": (0, 3, 5, 8, 12, 20, 32),
    "evolution_threshold": (0.5, 1.0, 2.0),
    "beam": (3, 5, None),
    "topic_threshold": (0.8, 1.0, 1.3),
}
RADIUS_PRIORS = (10.0, 100.0, 1000.0, 10000.0)
ANSWERED = 0.95
HEAD_GRID = {"lr": (1e-3, 1e-2), "epochs": (10, 30)}
KNN_GRID = (1, 3, 5, 10, 20)
LOGREG_GRID = (0.01, 0.1, 1.0, 10.0, 100.0)


def _memory_on(fit: Part, n_classes: int, tasks: int, params: dict[str, Any]) -> StructuralMemory:
    memory = StructuralMemory(**params)
    stream = Stream.make(fit.y, n_classes, tasks, seed=0)
    for index in stream.samples:
        memory.partial_fit(fit.x[index], fit.y[index])
    return memory


def _closed_set_accuracy(memory: StructuralMemory, part: Part, n_classes: int) -> float:
    return float((StructuralMethod(memory, n_classes).predict(part.x) == part.y).mean())


def one_standard_error(trials: list[dict[str, Any]], n: int) -> dict[str, Any]:
    """The trial storing the fewest vectors among those within one standard error of the best accuracy."""
    best = max(t["held_out_accuracy"] for t in trials)
    margin = float(np.sqrt(best * (1.0 - best) / n))
    eligible = [(t["stored_vectors"], -t["held_out_accuracy"], i) for i, t in enumerate(trials) if t["held_out_accuracy"] >= best - margin]
    return trials[min(eligible)[2]]


def select(data: Embedded, tasks: int, base: Settings, progress: bool = True) -> tuple[Settings, dict[str, Any]]:
    """Settings chosen on held-out data, and the record of every trial."""
    fit, held = held_out(data)
    record: dict[str, Any] = {"held_out": "val split" if data.val is not None else "stratified 20% of train", "structural": []}
    params = {**START, **base.memory}
    bar = tqdm(total=sum(len(values) for values in GRID.values()), desc=f"select {data.name}", unit="trial", disable=not progress)
    for name, values in GRID.items():
        trials = []
        for value in values:
            candidate = {**params, name: value}
            memory = _memory_on(fit, data.n_classes, tasks, candidate)
            trials.append(
                {"params": candidate, "held_out_accuracy": _closed_set_accuracy(memory, held, data.n_classes), "stored_vectors": memory.stored_items()["total"]}
            )
            bar.update()
        kept = one_standard_error(trials, len(held.y))
        params[name] = kept["params"][name]
        record["structural"] += trials
    bar.close()
    record["structural_held_out_accuracy"] = kept["held_out_accuracy"]
    if "val" in data.oos:
        aurocs = {}
        for prior in RADIUS_PRIORS:
            memory = _memory_on(fit, data.n_classes, tasks, {**params, "radius_prior": prior})
            aurocs[prior] = oos_metrics(-memory.abstention_score(held.x), -memory.abstention_score(data.oos["val"].x))["auroc"]
        params["radius_prior"] = max(aurocs, key=lambda prior: (aurocs[prior], -RADIUS_PRIORS.index(prior)))
        record["radius_prior_auroc"] = {str(prior): value for prior, value in aurocs.items()}
    memory = _memory_on(fit, data.n_classes, tasks, params)
    params["tolerance"] = round(float(np.quantile(memory.abstention_score(held.x), ANSWERED)), 4)

    head_trials = []
    for lr in HEAD_GRID["lr"]:
        for epochs in HEAD_GRID["epochs"]:
            config = HeadConfig(lr=lr, epochs=epochs, batch_size=base.head.batch_size)
            head = LinearHead("joint", fit.x.shape[1], data.n_classes, config, seed=0)
            head.learn_task(fit.x, fit.y)
            head_trials.append((float((head.predict(held.x) == held.y).mean()), lr, epochs))
    accuracy, lr, epochs = max(head_trials, key=lambda t: t[0])
    record["head"] = [{"lr": t[1], "epochs": t[2], "held_out_accuracy": t[0]} for t in head_trials]

    knn_trials = []
    for k in KNN_GRID:
        knn = KNearestNeighbours(data.n_classes, k)
        knn.learn_task(fit.x, fit.y)
        knn_trials.append((float((knn.predict(held.x) == held.y).mean()), k))
    record["knn"] = [{"k": t[1], "held_out_accuracy": t[0]} for t in knn_trials]

    logreg_trials = []
    for c in LOGREG_GRID:
        logreg = JointLogisticRegression(data.n_classes, C=c)
        logreg.learn_task(fit.x, fit.y)
        logreg_trials.append((float((logreg.predict(held.x) == held.y).mean()), c))
    record["logreg"] = [{"C": t[1], "held_out_accuracy": t[0]} for t in logreg_trials]
    chosen = replace(
        base,
        memory=params,
        head=HeadConfig(lr=lr, epochs=epochs, batch_size=base.head.batch_size),
        knn_k=max(knn_trials, key=lambda t: t[0])[1],
        logreg_c=max(logreg_trials, key=lambda t: t[0])[1],
    )
    record["chosen"] = chosen.to_dict()
    return chosen, record
