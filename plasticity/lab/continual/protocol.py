"""The class-incremental protocol: every method, the same embeddings, task order and sample order.

Protocol (van de Ven, Tuytelaars & Tolias 2022, "Three types of incremental learning": class-IL):

1. The classes are permuted with `numpy.random.default_rng(seed)` and cut into `tasks` groups
   of equal size (`numpy.array_split`); seed s of a run is task order s.
2. Task i's training samples (all training samples of its classes) arrive in an order drawn
   from the same generator; every method learns them in that order, task after task, with no
   access to earlier tasks' data except what it stores itself.
3. After each task every method predicts the whole in-scope test split, closed-set among the
   classes seen so far; a[i][j] = accuracy on the test samples of task j's classes. Unseen
   tasks score 0, so the matrix is complete (`plasticity.observe.forgetting`).
4. Final average accuracy = mean of the last row; average forgetting (Chaudhry et al. 2018) and
   backward transfer (Lopez-Paz & Ranzato 2017) from the same matrix. Class-incremental
   forgetting mixes two causes: a method changing what it learned, and new classes competing
   for old tasks' inputs (even a memory that never changes loses accuracy on task 1 when it must
   choose among 150 classes instead of 10). To separate them, a second matrix scores each task
   with the prediction restricted to that task's own classes (the task-incremental reading,
   a[i][j] = 0 before task j is learned); its forgetting (`task_il_forgetting`) counts only
   changes to what was learned.
5. After the last task: out-of-scope metrics on in-scope test vs the out-of-scope test split
   (`metrics.py`); risk–coverage on those queries (in-scope test only if there is no OOS split);
   stored vectors / training samples; learn throughput = training samples / seconds spent in
   learning (all tasks); predict throughput = test queries / median seconds of 3 batched
   predictions of the whole test split. Encoding is timed apart (`embedding.py`).

Hyperparameters come from `settings.py` (chosen on the val split or a held-out part of train by
`selection.py`, never on test).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from plasticity.errors import ConfigError, brief
from plasticity.lab.continual.baselines import ContinualMethod, KNearestNeighbours, LinearHead, NearestClassMean, StructuralMethod
from plasticity.lab.continual.embedding import Embedded
from plasticity.lab.continual.metrics import mean_curve, oos_metrics, risk_coverage, roc_points
from plasticity.lab.continual.settings import Settings
from plasticity.memory.structural import StructuralMemory
from plasticity.observe.forgetting import forgetting_report

METHODS = ("structural", "finetune", "joint", "replay", "ncm", "knn")
"""Every method, in running order: replay's buffer is sized by the structural memory's storage."""


def check_tasks(n_classes: int, tasks: int) -> None:
    """ConfigError unless `tasks` groups of disjoint classes can be cut from `n_classes` classes."""
    if not 1 <= tasks <= n_classes:
        raise ConfigError(f"tasks must be between 1 and the number of classes ({n_classes}); got {tasks}")


def task_classes(n_classes: int, tasks: int, seed: int) -> list[np.ndarray]:
    """The classes of each task for task order `seed`."""
    check_tasks(n_classes, tasks)
    return np.array_split(np.random.default_rng(seed).permutation(n_classes), tasks)


@dataclass(frozen=True)
class Stream:
    """One task order: the classes of each task and the order its training samples arrive in."""

    classes: list[np.ndarray]
    samples: list[np.ndarray]

    @classmethod
    def make(cls, labels: np.ndarray, n_classes: int, tasks: int, seed: int) -> Stream:
        groups = task_classes(n_classes, tasks, seed)
        rng = np.random.default_rng([seed, 1])  # a stream of its own, so the class order does not shift with it
        return cls(groups, [rng.permutation(np.flatnonzero(np.isin(labels, group))) for group in groups])


def build_method(name: str, data: Embedded, settings: Settings, seed: int, budget: int) -> ContinualMethod:
    """A fresh method; `budget` is the replay buffer size in vectors."""
    n_features = data.train.x.shape[1]
    if name == "structural":
        return StructuralMethod(StructuralMemory(**settings.memory, random_state=seed), data.n_classes)
    if name in ("finetune", "joint", "replay"):
        return LinearHead(name, n_features, data.n_classes, settings.head, seed, buffer_size=budget if name == "replay" else 0)
    if name == "ncm":
        return NearestClassMean(data.n_classes)
    if name == "knn":
        return KNearestNeighbours(data.n_classes, settings.knn_k)
    raise ValueError(f"unknown method {name!r}; choose from {', '.join(METHODS)}")


def run_method(method: ContinualMethod, data: Embedded, stream: Stream, tick: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """Train `method` task by task on `stream` and measure everything the protocol reports."""
    train, test = data.train, data.test
    task_of_test = [np.isin(test.y, group) for group in stream.classes]
    accuracy = np.zeros((len(stream.classes), len(stream.classes)))
    within_task = np.zeros_like(accuracy)
    learn_seconds = 0.0
    for i, index in enumerate(stream.samples):
        keys = [train.texts[k] for k in index] if train.texts is not None else [f"train[{k}]" for k in index]
        start = time.perf_counter()
        method.learn_task(train.x[index], train.y[index], keys)
        learn_seconds += time.perf_counter() - start
        scores = method.scores(test.x)
        correct = scores.argmax(axis=1) == test.y
        accuracy[i] = [correct[mask].mean() for mask in task_of_test]
        for j, (group, mask) in enumerate(zip(stream.classes[: i + 1], task_of_test, strict=False)):
            within_task[i, j] = (group[scores[mask][:, group].argmax(axis=1)] == test.y[mask]).mean()
        tick()
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        predictions = method.predict(test.x)
        timings.append(time.perf_counter() - start)
    correct = predictions == test.y
    in_scope = method.in_scope_score(test.x)
    n_train = sum(len(index) for index in stream.samples)
    result: dict[str, Any] = {
        **asdict(forgetting_report(accuracy)),
        "task_il_accuracy": within_task.tolist(),
        "task_il_forgetting": forgetting_report(within_task).average_forgetting,
        "stored_vectors": method.stored_vectors(),
        "stored_fraction": method.stored_vectors() / n_train,
        "learn_seconds": learn_seconds,
        "learn_per_second": n_train / learn_seconds,
        "predict_per_second": len(test.y) / statistics.median(timings),
    }
    if "test" in data.oos:
        out_of_scope = method.in_scope_score(data.oos["test"].x)
        result["oos"] = oos_metrics(in_scope, out_of_scope)
        result["roc"] = roc_points(in_scope, out_of_scope)
        result["risk_coverage"] = risk_coverage(np.r_[in_scope, out_of_scope], np.r_[correct, np.zeros(len(out_of_scope), bool)])
    else:
        result["risk_coverage"] = risk_coverage(in_scope, correct)
    if isinstance(method, StructuralMethod):
        result["structure"] = structure_report(method.memory, data)
    return result


def structure_report(memory: StructuralMemory, data: Embedded) -> dict[str, Any]:
    """The memory's size and events, and its abstention decisions at its own tolerance."""
    report: dict[str, Any] = {
        "topics": memory.n_topics_,
        "concepts": memory.n_concepts_,
        "stored": memory.stored_items(),
        "events": dict(memory.events_),
        "tolerance": memory.tolerance,
    }
    if memory.tolerance is not None:
        report["in_scope_answered"] = float((memory.abstention_score(data.test.x) <= memory.tolerance).mean())
        if "test" in data.oos:
            report["oos_rejected"] = float((memory.abstention_score(data.oos["test"].x) > memory.tolerance).mean())
    return report


def run_dataset(
    data: Embedded, settings: Settings, tasks: int, seeds: int, methods: Sequence[str] = METHODS, progress: bool = True
) -> dict[str, list[dict[str, Any]]]:
    """Every method on every task order 0..seeds−1: {method: [result of seed 0, 1, ...]}."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ConfigError(f"unknown method(s) {brief(', '.join(unknown))}; choose from {', '.join(METHODS)}")
    ordered = [m for m in METHODS if m in methods]
    results: dict[str, list[dict[str, Any]]] = {m: [] for m in ordered}
    bar = tqdm(total=seeds * len(ordered) * tasks, desc=f"continual {data.name}", unit="task", disable=not progress)
    for seed in range(seeds):
        stream = Stream.make(data.train.y, data.n_classes, tasks, seed)
        budget = settings.replay_budget
        for name in ordered:
            torch.manual_seed(seed)
            bar.set_postfix_str(f"seed {seed} {name}")
            method = build_method(name, data, settings, seed, budget)
            result = run_method(method, data, stream, bar.update)
            result["seed"] = seed
            result["tasks"] = [group.tolist() for group in stream.classes]
            if name == "replay":
                result["replay_budget"] = budget
            results[name].append(result)
            if name == "structural":
                budget = result["stored_vectors"]  # replay gets the same number of stored vectors
    bar.close()
    return results


def _std(values: list[float]) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def _mean_std(runs: list[dict[str, Any]], key: Callable[[dict[str, Any]], float | None]) -> tuple[float | None, float | None]:
    values = [key(run) for run in runs]
    if any(v is None for v in values):
        return None, None
    return float(np.mean(values)), _std(values)


def summarize(dataset: str, results: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One summary object per method (the continual summary format of docs/report.md, plus more keys)."""
    summary = []
    for method, runs in results.items():
        tasks = len(runs[0]["accuracy"])
        entry: dict[str, Any] = {"method": method, "dataset": dataset, "n_seeds": len(runs), "seeds": [r["seed"] for r in runs]}
        entry["tasks"] = [f"task {i + 1}" for i in range(tasks)]
        for name, key in [
            ("final_accuracy", lambda r: r["final_average_accuracy"]),
            ("forgetting", lambda r: r["average_forgetting"]),
            ("backward_transfer", lambda r: r["backward_transfer"]),
            ("task_il_forgetting", lambda r: r["task_il_forgetting"]),
        ]:
            entry[f"{name}_mean"], entry[f"{name}_std"] = _mean_std(runs, key)
        has_oos = "oos" in runs[0]
        entry["oos_auroc"], entry["oos_auroc_std"] = _mean_std(runs, lambda r: r["oos"]["auroc"]) if has_oos else (None, None)
        entry["oos_recall_at_95_precision"], _ = _mean_std(runs, lambda r: r["oos"]["oos_recall"]) if has_oos else (None, None)
        entry["in_scope_recall_at_95_precision"], _ = _mean_std(runs, lambda r: r["oos"]["in_scope_recall"]) if has_oos else (None, None)
        for key in ("stored_fraction", "stored_vectors", "learn_per_second", "predict_per_second"):
            entry[key], entry[f"{key}_std"] = _mean_std(runs, lambda r, k=key: r[k])
        entry["accuracy_matrix"] = np.mean([r["accuracy"] for r in runs], axis=0).tolist()
        if has_oos:
            entry["roc"] = mean_curve([r["roc"] for r in runs], "fpr", "tpr")
        entry["risk_coverage"] = mean_curve([r["risk_coverage"] for r in runs], "coverage", "risk")
        if method == "structural":
            structures = [r["structure"] for r in runs]
            entry["concepts_mean"] = float(np.mean([s["concepts"] for s in structures]))
            entry["topics_mean"] = float(np.mean([s["topics"] for s in structures]))
            entry["tolerance"] = structures[0]["tolerance"]
            for key in ("in_scope_answered", "oos_rejected"):
                if key in structures[0]:
                    entry[f"{key}_mean"] = float(np.mean([s[key] for s in structures]))
        summary.append(entry)
    return summary
