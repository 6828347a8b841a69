"""Learning and prediction throughput of the structural memory against scikit-learn and FAISS.

    python benchmarks/memory_speed.py                          # CLINC150 MiniLM embeddings (cached)
    python benchmarks/memory_speed.py --data synthetic         # random 384-d data of the same size
    python benchmarks/memory_speed.py --out runs/memory_speed.json

Data: CLINC150's in-scope train (15,000) and test (4,500) queries embedded by all-MiniLM-L6-v2
through the embedding cache (`plasticity.lab.continual.embedding.embed`; computed once if it is
missing), or with `--data synthetic` random data of the same shape: 150 classes in 384
dimensions, 100 training and 30 test samples per class around random class means, unit rows.
The classes are cut into `--tasks` class-incremental tasks (task order 0 of the protocol,
`plasticity.lab.continual.protocol.Stream`).

Timed, each on `--threads` 1 and 2 (threadpoolctl limits BLAS and OpenMP; FAISS's own OpenMP
count too), median of `--repeats` repeats after one warm-up, the methods and thread counts
interleaved within each repeat:

- **learn** = training samples / seconds to learn every task in turn:
  - `structural`: `StructuralMemory.partial_fit` once per task (CLINC150's stored settings);
  - `nearest centroid`: scikit-learn's `NearestCentroid` has no partial_fit, so after each task it
    is fitted again on everything seen so far; `nearest centroid, one fit` fits it once on the
    whole training set, a lower bound on its cost that no incremental stream can reach;
  - `k-NN`: `KNeighborsClassifier(algorithm="brute", metric="cosine")`, k = 10, fitted after each
    task on everything seen (a brute-force fit only stores the samples);
  - `faiss`: `faiss.IndexFlatIP` on unit rows (inner product = cosine), `add` once per task, the
    majority label of the 10 nearest; skipped, and said so, when `faiss` is not installed.
- **predict** = test queries / seconds of one batched prediction of the whole test split, closed
  set (the memory with `tolerance=None`, as every other method, which cannot abstain);
  `structural, abstaining` is the memory's `predict` at its stored tolerance (the abstention score
  is computed too). On t threads the memory scores its chunks of 1,024 queries t at a time
  (`n_jobs=t`, one BLAS thread each); the other methods use t BLAS threads.

Accuracy on the test split after the last task is printed beside the speeds, to show each method
did the task. Writes only where it is told: `--out FILE.json`.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
from sklearn.neighbors import KNeighborsClassifier, NearestCentroid
from threadpoolctl import threadpool_limits

from plasticity.io import atomic_write_json, file_to_write
from plasticity.lab.continual.protocol import Stream
from plasticity.lab.continual.settings import CHOSEN
from plasticity.memory.structural import StructuralMemory

THREADS = (1, 2)
K = 10
DATA = ("clinc150", "synthetic")


@dataclass(frozen=True)
class Data:
    """Train and test rows (float32) with class indices, and the class-incremental stream."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    stream: Stream


def synthetic(n_classes: int = 150, per_class: int = 100, test_per_class: int = 30, dim: int = 384, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Random data shaped like CLINC150's embeddings: unit rows around random class means."""
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((n_classes, dim))

    def draw(per: int) -> tuple[np.ndarray, np.ndarray]:
        y = np.repeat(np.arange(n_classes), per)
        x = means[y] + 2.0 * rng.standard_normal((len(y), dim))
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), y

    x_train, y_train = draw(per_class)
    x_test, y_test = draw(test_per_class)
    return x_train, y_train, x_test, y_test


def load_data(args: argparse.Namespace) -> Data:
    if args.data == "synthetic":
        x_train, y_train, x_test, y_test = synthetic(args.classes, args.per_class, args.test_per_class, args.dim)
    else:
        from plasticity.lab.continual.embedding import embed

        embedded = embed("clinc150", args.root, cache_dir=args.cache_dir, progress=False)
        x_train, y_train, x_test, y_test = embedded.train.x, embedded.train.y, embedded.test.x, embedded.test.y
    n_classes = int(y_train.max()) + 1
    if not 1 <= args.tasks <= n_classes:
        raise SystemExit(f"--tasks must be between 1 and the number of classes ({n_classes}); got {args.tasks}")
    return Data(args.data, x_train, y_train, x_test, y_test, Stream.make(y_train, n_classes, args.tasks, seed=0))


class Faiss:
    """k nearest by inner product on unit rows (FAISS IndexFlatIP), majority label."""

    def __init__(self, dim: int, n_classes: int, k: int = K) -> None:
        import faiss

        self.index, self.k, self.n_classes = faiss.IndexFlatIP(dim), k, n_classes
        self.labels = np.zeros(0, dtype=np.int64)

    def add(self, X: np.ndarray, y: np.ndarray) -> None:
        self.index.add(_unit(X))
        self.labels = np.concatenate([self.labels, y])

    def predict(self, X: np.ndarray) -> np.ndarray:
        _, nearest = self.index.search(_unit(X), min(self.k, len(self.labels)))
        votes = np.zeros((len(X), self.n_classes), dtype=np.int64)
        np.add.at(votes, (np.arange(len(X))[:, None], self.labels[nearest]), 1)
        return votes.argmax(axis=1)


def _unit(X: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12), dtype=np.float32)


@dataclass
class Case:
    """A method: `learn(data)` learns every task and returns the fitted model; `predict(model, X, threads)`."""

    name: str
    learn: Callable[[Data], object] | None
    predict: Callable[[object, np.ndarray, int], np.ndarray] | None
    note: str = ""
    learned_by: str | None = None  # a predict-only case uses the model another case learned


def _seen_so_far(data: Data, fit: Callable[[np.ndarray, np.ndarray], object]) -> object:
    """Fit afresh after each task on everything seen so far (for estimators without partial_fit)."""
    model = None
    for i in range(len(data.stream.samples)):
        index = np.concatenate(data.stream.samples[: i + 1])
        model = fit(data.x_train[index], data.y_train[index])
    return model


def cases(memory_params: dict, has_faiss: bool) -> list[Case]:
    def structural(data: Data) -> StructuralMemory:
        memory = StructuralMemory(**memory_params, random_state=0)
        for index in data.stream.samples:
            memory.partial_fit(data.x_train[index], data.y_train[index])
        return memory

    def closed_set(memory: StructuralMemory, X: np.ndarray, threads: int) -> np.ndarray:
        tolerance = memory.tolerance
        memory.set_params(tolerance=None)
        try:
            return on_threads(memory, X, threads)
        finally:
            memory.set_params(tolerance=tolerance)

    def on_threads(memory: StructuralMemory, X: np.ndarray, threads: int) -> np.ndarray:
        """`predict` at the memory's tolerance, scoring `threads` chunks of queries at once."""
        memory.set_params(n_jobs=threads)
        return memory.predict(X)

    def faiss_learn(data: Data) -> Faiss:
        index = Faiss(data.x_train.shape[1], int(data.y_train.max()) + 1)
        for part in data.stream.samples:
            index.add(data.x_train[part], data.y_train[part])
        return index

    every = [
        Case("structural", structural, closed_set, "partial_fit per task; predict closed set (tolerance None)"),
        Case(
            "structural, abstaining",
            None,
            on_threads,
            f"predict at its tolerance {memory_params.get('tolerance')} (abstention score computed)",
            learned_by="structural",
        ),
        Case(
            "nearest centroid",
            lambda data: _seen_so_far(data, lambda X, y: NearestCentroid().fit(X, y)),
            lambda model, X, threads: model.predict(X),
            "no partial_fit: refitted after each task on everything seen; euclidean",
        ),
        Case(
            "nearest centroid, one fit",
            lambda data: NearestCentroid().fit(data.x_train, data.y_train),
            None,
            "one fit on the whole training set (a lower bound: not incremental)",
        ),
        Case(
            "k-NN",
            lambda data: _seen_so_far(data, lambda X, y: KNeighborsClassifier(K, algorithm="brute", metric="cosine").fit(X, y)),
            lambda model, X, threads: model.predict(X),
            f"brute force, cosine, k = {K}; fitted after each task on everything seen",
        ),
    ]
    if has_faiss:
        every.append(Case("faiss", faiss_learn, lambda model, X, threads: model.predict(X), f"IndexFlatIP on unit rows, add per task, k = {K} majority"))
    return every


def _faiss_threads(threads: int) -> None:
    try:
        import faiss
    except ImportError:
        return
    faiss.omp_set_num_threads(threads)


@dataclass
class Row:
    method: str
    threads: int
    note: str
    learn_seconds: list[float] = field(default_factory=list)
    predict_seconds: list[float] = field(default_factory=list)
    learn_per_second: float | None = None
    predict_per_second: float | None = None
    accuracy: float | None = None


def measure(data: Data, memory_params: dict, threads: tuple[int, ...], repeats: int, has_faiss: bool) -> list[Row]:
    """Median learn and predict throughput of every case on every thread count (see the module)."""
    every = cases(memory_params, has_faiss)
    rows = {(case.name, t): Row(case.name, t, case.note) for case in every for t in threads}
    models: dict[tuple[str, int], object] = {}
    for repeat in range(repeats + 1):  # repeat 0 is the warm-up, not recorded
        order = threads if repeat % 2 == 0 else threads[::-1]  # alternate which thread count goes first
        for t in order:
            with threadpool_limits(limits=t):
                _faiss_threads(t)
                for case in every:
                    row = rows[(case.name, t)]
                    if case.learn is not None:
                        start = time.perf_counter()
                        models[(case.name, t)] = case.learn(data)
                        if repeat:
                            row.learn_seconds.append(time.perf_counter() - start)
                    if case.predict is not None:
                        model = models[(case.learned_by or case.name, t)]
                        start = time.perf_counter()
                        predicted = case.predict(model, data.x_test, t)
                        if repeat:
                            row.predict_seconds.append(time.perf_counter() - start)
                        row.accuracy = float((np.asarray(predicted) == data.y_test).mean())
    for row in rows.values():
        if row.learn_seconds:
            row.learn_per_second = len(data.y_train) / statistics.median(row.learn_seconds)
        if row.predict_seconds:
            row.predict_per_second = len(data.y_test) / statistics.median(row.predict_seconds)
    return list(rows.values())


def markdown(rows: list[dict], setup: str, skipped: list[str]) -> str:
    """The table of a measurement (rows as written to --out)."""
    threads = sorted({row["threads"] for row in rows})
    methods = list(dict.fromkeys(row["method"] for row in rows))
    by = {(row["method"], row["threads"]): row for row in rows}

    def number(value: float | None) -> str:
        return "—" if value is None else f"{value:,.0f}"

    head = " | ".join(
        [*(f"learn / s, {t} thread{'s' if t > 1 else ''}" for t in threads), *(f"predict / s, {t} thread{'s' if t > 1 else ''}" for t in threads)]
    )
    lines = [f"Setup: {setup}.", "", f"| method | {head} | test accuracy | how |", "|---|" + "---:|" * (2 * len(threads)) + "---:|---|"]
    for method in methods:
        first = by[(method, threads[0])]
        cells = [number(by[(method, t)]["learn_per_second"]) for t in threads] + [number(by[(method, t)]["predict_per_second"]) for t in threads]
        accuracy = "—" if first["accuracy"] is None else f"{100 * first['accuracy']:.2f}%"
        lines.append(f"| {method} | {' | '.join(cells)} | {accuracy} | {first['note']} |")
    lines += [f"\nSkipped: {reason}." for reason in skipped]
    return "\n".join(lines)


def _threads(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected thread counts ≥ 1, comma-separated; got {text!r}")
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/memory_speed.py", description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", choices=DATA, default="clinc150", help="clinc150 (MiniLM embeddings, cached) or synthetic (default: clinc150)")
    parser.add_argument("--root", help="CLINC150's folder (default: the plasticity cache's clinc150 folder)")
    parser.add_argument("--cache-dir", help="the embedding cache (default: <plasticity cache>/embeddings)")
    parser.add_argument("--tasks", type=int, default=15, help="class-incremental tasks (default: 15)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats, after one warm-up (default: 5)")
    parser.add_argument("--threads", type=_threads, default=THREADS, help="thread counts, comma-separated (default: 1,2)")
    synthetic_sizes = parser.add_argument_group("--data synthetic (default: CLINC150's sizes)")
    synthetic_sizes.add_argument("--classes", type=int, default=150)
    synthetic_sizes.add_argument("--per-class", type=int, default=100, help="training samples per class")
    synthetic_sizes.add_argument("--test-per-class", type=int, default=30)
    synthetic_sizes.add_argument("--dim", type=int, default=384)
    parser.add_argument("--out", type=file_to_write, metavar="FILE.json", help="also write the measurement to this JSON file")
    args = parser.parse_args(argv)
    if args.repeats < 1 or min(args.classes, args.per_class, args.test_per_class, args.dim) < 1:
        parser.error("--repeats and the synthetic sizes must be ≥ 1")
    try:
        import faiss  # noqa: F401

        has_faiss, skipped = True, []
    except ImportError:
        has_faiss, skipped = False, ["faiss (not installed: pip install faiss-cpu)"]
    data = load_data(args)
    memory_params = dict(CHOSEN["clinc150"].memory)
    rows = [asdict(row) for row in measure(data, memory_params, args.threads, args.repeats, has_faiss)]
    setup = (
        f"{data.name}: {len(data.y_train):,} training samples in {args.tasks} tasks, {len(data.y_test):,} test queries, "
        f"{data.x_train.shape[1]} dimensions; median of {args.repeats} repeats; memory settings {memory_params}; "
        f"{platform.processor() or platform.machine()}, numpy {np.__version__}"
    )
    print(markdown(rows, setup, skipped))
    if args.out:
        atomic_write_json(args.out, {"setup": setup, "memory": memory_params, "skipped": skipped, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
