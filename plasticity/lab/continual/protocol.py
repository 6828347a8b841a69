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
   predictions of the whole test split. Encoding is timed apart (`embedding.py`). The structural
   memory's shape: its concepts, topics and coarse groups, and its split classes (classes with
   more than one concept); on a dataset with a domain map, its coarse level against the domains
   (`coarse.py`).

Hyperparameters come from `settings.py` (chosen on the val split or a held-out part of train by
`selection.py`, never on test).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from plasticity.errors import ConfigError, brief
from plasticity.lab.continual.baselines import (
    ContinualMethod,
    JointLogisticRegression,
    KNearestNeighbours,
    LinearHead,
    NearestClassMean,
    StructuralMethod,
)
from plasticity.lab.continual.coarse import Domains, class_centroids, coarse_scores, coarse_summary
from plasticity.lab.continual.embedding import Embedded
from plasticity.lab.continual.metrics import mean_curve, oos_metrics, risk_coverage, roc_points
from plasticity.lab.continual.settings import Settings
from plasticity.lab.executor import Executor, Failed, RemoteError, ray_session, run_tasks
from plasticity.memory.structural import StructuralMemory
from plasticity.observe.forgetting import forgetting_report
from plasticity.results import (
    ContinualEntry,
    ContinualSeedResult,
    Curve,
    MemoryStructure,
    MemorySummary,
    OosScores,
    RiskCoverage,
    Roc,
)
from plasticity.threads import torch_threads

RANDOM, DATA_ORDER = "random", "data"
CLASS_ORDERS = (RANDOM, DATA_ORDER)
METHODS = ("structural", "finetune", "joint", "logreg", "replay", "ncm", "knn")
"""Every method, in running order: replay's buffer is sized by the structural memory's storage."""


def check_tasks(n_classes: int, tasks: int) -> None:
    """ConfigError unless `tasks` groups of disjoint classes can be cut from `n_classes` classes."""
    if not 1 <= tasks <= n_classes:
        raise ConfigError(f"tasks must be between 1 and the number of classes ({n_classes}); got {tasks}")


def task_classes(n_classes: int, tasks: int, seed: int, order: np.ndarray | None = None) -> list[np.ndarray]:
    """The classes of each task for task order `seed`: a permutation drawn from the seed, or the
    classes in `order` when it is given (the same for every seed)."""
    check_tasks(n_classes, tasks)
    return np.array_split(np.random.default_rng(seed).permutation(n_classes) if order is None else order, tasks)


def first_seen(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """The classes in the order they first appear in `labels` (classes that never do: last, ascending)."""
    _, first = np.unique(labels, return_index=True)
    seen = labels[np.sort(first)]
    return np.concatenate([seen, np.setdiff1d(np.arange(n_classes), seen)]).astype(np.int64)


@dataclass(frozen=True)
class Stream:
    """One task order: the classes of each task and the order its training samples arrive in."""

    classes: list[np.ndarray]
    samples: list[np.ndarray]

    @classmethod
    def make(cls, labels: np.ndarray, n_classes: int, tasks: int, seed: int, class_order: str = RANDOM) -> Stream:
        """class_order: "random" (a permutation per seed) or "data" (the order in which the classes
        first appear in `labels`, for every seed; the seed still draws the order of the samples)."""
        groups = task_classes(n_classes, tasks, seed, first_seen(labels, n_classes) if class_order == DATA_ORDER else None)
        rng = np.random.default_rng([seed, 1])  # a stream of its own, so the class order does not shift with it
        return cls(groups, [rng.permutation(np.flatnonzero(np.isin(labels, group))) for group in groups])


def build_method(name: str, data: Embedded, settings: Settings, seed: int, budget: int) -> ContinualMethod:
    """A fresh method; `budget` is the replay buffer size in vectors."""
    n_features = data.train.x.shape[1]
    if name == "structural":
        return StructuralMethod(StructuralMemory(**settings.memory, random_state=seed), data.n_classes)
    if name in ("finetune", "joint", "replay"):
        return LinearHead(name, n_features, data.n_classes, settings.head, seed, buffer_size=budget if name == "replay" else 0)
    if name == "logreg":
        return JointLogisticRegression(data.n_classes, settings.logreg_c)
    if name == "ncm":
        return NearestClassMean(data.n_classes)
    if name == "knn":
        return KNearestNeighbours(data.n_classes, settings.knn_k)
    raise ValueError(f"unknown method {name!r}; choose from {', '.join(METHODS)}")


def run_method(
    method: ContinualMethod,
    data: Embedded,
    stream: Stream,
    seed: int,
    tick: Callable[[], None] = lambda: None,
    replay_budget: int | None = None,
    domains: Domains | None = None,
) -> ContinualSeedResult:
    """Train `method` task by task on `stream` (task order `seed`) and measure everything the
    protocol reports; `replay_budget`: the replay buffer's size, for the replay method; `domains`:
    the dataset's domain map, against which the structural memory's coarse level is scored."""
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
    oos, roc = None, None
    if "test" in data.oos:
        out_of_scope = method.in_scope_score(data.oos["test"].x)
        oos, roc = OosScores(**oos_metrics(in_scope, out_of_scope)), Roc(**roc_points(in_scope, out_of_scope))
        answered = RiskCoverage(**risk_coverage(np.r_[in_scope, out_of_scope], np.r_[correct, np.zeros(len(out_of_scope), bool)]))
    else:
        answered = RiskCoverage(**risk_coverage(in_scope, correct))
    report = forgetting_report(accuracy)
    return ContinualSeedResult(
        accuracy=report.accuracy,
        final_average_accuracy=report.final_average_accuracy,
        average_forgetting=report.average_forgetting,
        backward_transfer=report.backward_transfer,
        task_il_accuracy=within_task.tolist(),
        task_il_forgetting=forgetting_report(within_task).average_forgetting,
        stored_vectors=method.stored_vectors(),
        stored_fraction=method.stored_vectors() / n_train,
        learn_seconds=learn_seconds,
        learn_per_second=n_train / learn_seconds,
        predict_per_second=len(test.y) / statistics.median(timings),
        oos=oos,
        roc=roc,
        risk_coverage=answered,
        structure=structure_report(method.memory, data, domains) if isinstance(method, StructuralMethod) else None,
        seed=seed,
        tasks=[group.tolist() for group in stream.classes],
        replay_budget=replay_budget,
    )


def structure_report(memory: StructuralMemory, data: Embedded, domains: Domains | None = None) -> MemoryStructure:
    """The memory's size and events, its coarse groups and split classes, its abstention decisions
    at its own tolerance and, given the dataset's `domains`, its coarse level scored against them."""
    answered, rejected = None, None
    if memory.tolerance is not None:
        answered = float((memory.abstention_score(data.test.x) <= memory.tolerance).mean())
        if "test" in data.oos:
            rejected = float((memory.abstention_score(data.oos["test"].x) > memory.tolerance).mean())
    groups = [[int(label) for label in group] for group in memory.coarse_groups()]
    per_class = memory.concept_counts()
    coarse = None
    if domains is not None:
        centroids = class_centroids(data.train.x, data.train.y, data.n_classes)
        coarse = coarse_scores(groups, StructuralMethod(memory, data.n_classes).predict(data.test.x), data.test.y, centroids, domains)
    return MemoryStructure(
        topics=memory.n_topics_,
        concepts=memory.n_concepts_,
        stored=memory.stored_items(),
        events=dict(memory.events_),
        tolerance=memory.tolerance,
        in_scope_answered=answered,
        oos_rejected=rejected,
        groups=len(groups),
        coarse_groups=groups,
        split_classes=sum(1 for n in per_class.values() if n > 1),
        extra_concepts=sum(per_class.values()) - len(per_class),
        coarse=coarse,
    )


def run_order(
    data: Embedded,
    settings: Settings,
    tasks: int,
    seed: int,
    methods: Sequence[str],
    tick: Callable[[], object] = lambda: None,
    note: Callable[[str], object] = lambda text: None,
    class_order: str = RANDOM,
    domains: Domains | None = None,
) -> dict[str, ContinualSeedResult]:
    """Every method of `methods` (in their order) on task order `seed`; `tick()` after each task
    learned, `note(text)` as each method starts. Replay stores as many vectors as the structural
    memory did when that ran before it. `domains`: the dataset's domain map, if it has one."""
    stream = Stream.make(data.train.y, data.n_classes, tasks, seed, class_order)
    budget = settings.replay_budget
    results = {}
    for name in methods:
        torch.manual_seed(seed)
        note(f"seed {seed} {name}")
        method = build_method(name, data, settings, seed, budget)
        results[name] = run_method(method, data, stream, seed, tick, replay_budget=budget if name == "replay" else None, domains=domains)
        if name == "structural":
            budget = results[name].stored_vectors  # replay gets the same number of stored vectors
    return results


def order_task(
    data: Embedded,
    settings: Settings,
    tasks: int,
    seed: int,
    methods: Sequence[str],
    class_order: str,
    threads: int | None,
    domains: Domains | None = None,
) -> dict[str, ContinualSeedResult]:
    """`run_order` as a Ray task runs it, with `threads` torch and BLAS threads."""
    with torch_threads(threads):
        return run_order(data, settings, tasks, seed, methods, class_order=class_order, domains=domains)


def run_dataset(
    data: Embedded,
    settings: Settings,
    tasks: int,
    seeds: int,
    methods: Sequence[str] = METHODS,
    progress: bool = True,
    executor: Executor | None = None,
    threads: int | None = None,
    class_order: str = RANDOM,
    domains: Domains | None = None,
) -> dict[str, list[ContinualSeedResult]]:
    """Every method on every task order 0..seeds−1: {method: [result of seed 0, 1, ...]};
    `class_order` as in `Stream.make`; `domains`: the dataset's domain map (`coarse.py`), if any.

    executor: here, one order after another (default), or on Ray a task per order (with `threads`
    threads, on the embeddings the driver put in Ray's object store); an order that fails there
    stops the experiment with its traceback (`RemoteError`) once the others have finished."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ConfigError(f"unknown method(s) {brief(', '.join(unknown))}; choose from {', '.join(METHODS)}")
    ordered = [m for m in METHODS if m in methods]
    if executor is not None and executor.remote:
        per_order = _remote_orders(data, settings, tasks, seeds, ordered, class_order, progress, executor, threads, domains)
    else:
        bar = tqdm(total=seeds * len(ordered) * tasks, desc=f"continual {data.name}", unit="task", disable=not progress)
        per_order = [run_order(data, settings, tasks, seed, ordered, bar.update, bar.set_postfix_str, class_order, domains) for seed in range(seeds)]
        bar.close()
    return {name: [order[name] for order in per_order] for name in ordered}


def _remote_orders(
    data: Embedded,
    settings: Settings,
    tasks: int,
    seeds: int,
    methods: list[str],
    class_order: str,
    progress: bool,
    executor: Executor,
    threads: int | None,
    domains: Domains | None = None,
) -> list[dict[str, ContinualSeedResult]]:
    """`run_order` of every seed as a Ray task; the results in seed order."""
    done: dict[int, dict[str, ContinualSeedResult]] = {}
    failed: list[str] = []
    with ray_session(executor) as ray, tqdm(total=seeds, desc=f"continual {data.name}", unit="order", disable=not progress) as bar:
        shared = ray.put(data)
        jobs = [(seed, (shared, settings, tasks, seed, methods, class_order, threads, domains)) for seed in range(seeds)]
        for seed, where, result in run_tasks(ray, executor, order_task, jobs):
            if isinstance(result, Failed):
                failed.append(f"task order {seed} failed{f' on {where}' if where else ''}: {result.error}\n{result.traceback}")
            else:
                done[seed] = result
            bar.update(1)
    if failed:
        raise RemoteError("\n".join(failed))
    return [done[seed] for seed in range(seeds)]


def _std(values: list[float]) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def _mean_std(runs: list[ContinualSeedResult], key: Callable[[ContinualSeedResult], float | None]) -> tuple[float | None, float | None]:
    values = [key(run) for run in runs]
    if any(v is None for v in values):
        return None, None
    return float(np.mean(values)), _std(values)


def _mean_curve(curves: list[Curve]) -> Curve:
    """The curves averaged pointwise (`metrics.mean_curve`), as a curve of their kind."""
    kind = type(curves[0])
    return kind(**mean_curve([curve.to_json() for curve in curves], *kind.axes))


def _mean_of(structures: list[MemoryStructure], key: Callable[[MemoryStructure], float | None]) -> float | None:
    """The mean of a field over the task orders; None when some order lacks it."""
    values = [key(s) for s in structures]
    return None if any(v is None for v in values) else float(np.mean(values))


def _memory_summary(structures: list[MemoryStructure]) -> MemorySummary:
    """The structural memory's size, coarse level and abstention, mean over the task orders."""
    coarse = [s.coarse for s in structures]
    return MemorySummary(
        concepts_mean=float(np.mean([s.concepts for s in structures])),
        topics_mean=float(np.mean([s.topics for s in structures])),
        tolerance=structures[0].tolerance,
        in_scope_answered_mean=_mean_of(structures, lambda s: s.in_scope_answered),
        oos_rejected_mean=_mean_of(structures, lambda s: s.oos_rejected),
        groups_mean=_mean_of(structures, lambda s: s.groups),
        split_classes_mean=_mean_of(structures, lambda s: s.split_classes),
        extra_concepts_mean=_mean_of(structures, lambda s: s.extra_concepts),
        coarse=coarse_summary(coarse, [s.coarse_groups for s in structures]) if all(c is not None for c in coarse) else None,
    )


def summarize(dataset: str, results: dict[str, list[ContinualSeedResult]]) -> list[ContinualEntry]:
    """One summary entry per method (`plasticity.results.ContinualEntry`)."""
    return [_entry(method, dataset, runs) for method, runs in results.items()]


def _entry(method: str, dataset: str, runs: list[ContinualSeedResult]) -> ContinualEntry:
    """The summary entry of one method's task orders: means and sample spreads over them."""
    final = _mean_std(runs, lambda r: r.final_average_accuracy)
    forgetting = _mean_std(runs, lambda r: r.average_forgetting)
    transfer = _mean_std(runs, lambda r: r.backward_transfer)
    task_il = _mean_std(runs, lambda r: r.task_il_forgetting)
    has_oos = runs[0].oos is not None
    auroc = _mean_std(runs, lambda r: r.oos.auroc) if has_oos else (None, None)
    oos_recall = _mean_std(runs, lambda r: r.oos.oos_recall)[0] if has_oos else None
    in_scope_recall = _mean_std(runs, lambda r: r.oos.in_scope_recall)[0] if has_oos else None
    stored_fraction = _mean_std(runs, lambda r: r.stored_fraction)
    stored_vectors = _mean_std(runs, lambda r: r.stored_vectors)
    learn = _mean_std(runs, lambda r: r.learn_per_second)
    predict = _mean_std(runs, lambda r: r.predict_per_second)
    structures = [r.structure for r in runs if r.structure is not None]
    return ContinualEntry(
        method=method,
        dataset=dataset,
        n_seeds=len(runs),
        seeds=[r.seed for r in runs],
        tasks=[f"task {i + 1}" for i in range(len(runs[0].accuracy))],
        final_accuracy_mean=final[0],
        final_accuracy_std=final[1],
        forgetting_mean=forgetting[0],
        forgetting_std=forgetting[1],
        backward_transfer_mean=transfer[0],
        backward_transfer_std=transfer[1],
        task_il_forgetting_mean=task_il[0],
        task_il_forgetting_std=task_il[1],
        oos_auroc=auroc[0],
        oos_auroc_std=auroc[1],
        oos_recall_at_95_precision=oos_recall,
        in_scope_recall_at_95_precision=in_scope_recall,
        stored_fraction=stored_fraction[0],
        stored_fraction_std=stored_fraction[1],
        stored_vectors=stored_vectors[0],
        stored_vectors_std=stored_vectors[1],
        learn_per_second=learn[0],
        learn_per_second_std=learn[1],
        predict_per_second=predict[0],
        predict_per_second_std=predict[1],
        accuracy_matrix=np.mean([r.accuracy for r in runs], axis=0).tolist(),
        roc=_mean_curve([r.roc for r in runs]) if has_oos else None,
        risk_coverage=_mean_curve([r.risk_coverage for r in runs]),
        memory=_memory_summary(structures) if method == "structural" else None,
    )
