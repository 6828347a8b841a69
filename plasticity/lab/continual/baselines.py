"""The methods a class-incremental run compares, behind one small interface.

Every method sees the same embeddings, the same task order and the same sample order:

- `structural`: `StructuralMemory`, one partial_fit call per task.
- `finetune`: a linear softmax head trained by backprop (Adam, cross-entropy) on each task in
  turn, starting from the previous task's weights: the catastrophic-forgetting baseline.
- `joint`: the same head retrained from scratch, after each task, on all data seen so far: the
  upper bound, which needs every training sample stored.
- `replay`: `finetune` plus a class-balanced buffer of earlier samples mixed into every task's
  training (experience replay; Rolnick et al. 2019, Chaudhry et al. 2019) holding as many
  vectors as the structural memory stores.
- `logreg`: scikit-learn's multinomial logistic regression (L2, lbfgs) retrained from scratch, after
  each task, on all data seen so far: a second jointly trained upper bound, fitted to convergence
  rather than for a fixed number of epochs, its C chosen on held-out data.
- `ncm`: nearest class mean with cosine similarity (Mensink et al. 2013), means updated exactly.
- `knn`: scikit-learn's k-nearest neighbours with cosine distance over every sample seen.

Predictions are closed-set over the classes seen so far (a head's logits of unseen classes are
masked). `in_scope_score` is each method's confidence that an input is in scope (higher: more),
used for out-of-scope AUROC: the memory's negated abstention score, the head's maximum softmax
probability (Hendrycks & Gimpel 2017; logreg's too), NCM's maximum cosine, k-NN's mean cosine similarity to the
k neighbours. `stored_vectors` counts the d-dimensional vectors a method keeps to go on learning
and predicting.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from threadpoolctl import threadpool_limits

from plasticity.memory.structural import StructuralMemory
from plasticity.threads import torch_threads


class ContinualMethod(ABC):
    """A learner that receives tasks one after another; classes are indices 0..n_classes−1."""

    name: str

    @abstractmethod
    def learn_task(self, X: np.ndarray, y: np.ndarray, keys: list[str] | None = None) -> None:
        """Learn one task's samples (in the given order)."""

    @abstractmethod
    def scores(self, X: np.ndarray) -> np.ndarray:
        """(n, n_classes) class scores, higher is better; −inf for classes not seen yet."""

    @abstractmethod
    def in_scope_score(self, X: np.ndarray) -> np.ndarray:
        """Confidence that each input belongs to a known class (higher: more)."""

    @abstractmethod
    def stored_vectors(self) -> int:
        """d-dimensional vectors kept in memory."""

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Closed-set class indices among the classes seen so far."""
        return np.argmax(self.scores(X), axis=1)


def _unit(X: np.ndarray) -> np.ndarray:
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


def _spread(values: np.ndarray, columns: np.ndarray, n_classes: int) -> np.ndarray:
    """Scores of some classes placed in a (n, n_classes) matrix; −inf elsewhere."""
    out = np.full((len(values), n_classes), -np.inf)
    out[:, columns] = values
    return out


class StructuralMethod(ContinualMethod):
    name = "structural"

    def __init__(self, memory: StructuralMemory, n_classes: int) -> None:
        self.memory, self.n_classes = memory, n_classes

    def learn_task(self, X: np.ndarray, y: np.ndarray, keys: list[str] | None = None) -> None:
        self.memory.partial_fit(X, y, keys=keys)

    def scores(self, X: np.ndarray) -> np.ndarray:
        # Closed-set decision values, like every other method here; abstention is scored apart.
        decision = self.memory.decision_function(X)
        if decision.ndim == 1:
            decision = np.stack([-decision, decision], axis=1) / 2.0
        return _spread(decision, self.memory.classes_.astype(np.int64), self.n_classes)

    def in_scope_score(self, X: np.ndarray) -> np.ndarray:
        return -self.memory.abstention_score(X)

    def stored_vectors(self) -> int:
        return self.memory.stored_items()["total"]


class NearestClassMean(ContinualMethod):
    name = "ncm"

    def __init__(self, n_classes: int) -> None:
        self.n_classes = n_classes
        self.sums: dict[int, np.ndarray] = {}

    def learn_task(self, X: np.ndarray, y: np.ndarray, keys: list[str] | None = None) -> None:
        for label in np.unique(y):
            self.sums[int(label)] = self.sums.get(int(label), 0.0) + _unit(X[y == label]).sum(axis=0)
        self.labels = np.array(sorted(self.sums))
        self.means = _unit(np.stack([self.sums[label] for label in self.labels]))

    def scores(self, X: np.ndarray) -> np.ndarray:
        return _spread(_unit(X) @ self.means.T, self.labels, self.n_classes)

    def in_scope_score(self, X: np.ndarray) -> np.ndarray:
        return (_unit(X) @ self.means.T).max(axis=1)

    def stored_vectors(self) -> int:
        return len(self.sums)


class KNearestNeighbours(ContinualMethod):
    name = "knn"

    def __init__(self, n_classes: int, k: int = 10) -> None:
        self.n_classes, self.k = n_classes, k
        self.X: list[np.ndarray] = []
        self.y: list[np.ndarray] = []

    def learn_task(self, X: np.ndarray, y: np.ndarray, keys: list[str] | None = None) -> None:
        self.X.append(X)
        self.y.append(y)
        data = np.concatenate(self.X)
        self.model = KNeighborsClassifier(n_neighbors=min(self.k, len(data)), metric="cosine", algorithm="brute")
        self.model.fit(data, np.concatenate(self.y))

    def scores(self, X: np.ndarray) -> np.ndarray:
        # The share of the k neighbours in each class (scikit-learn's predict_proba; its argmax is predict).
        return _spread(self.model.predict_proba(X), self.model.classes_, self.n_classes)

    def in_scope_score(self, X: np.ndarray) -> np.ndarray:
        distances, _ = self.model.kneighbors(X)
        return 1.0 - distances.mean(axis=1)

    def stored_vectors(self) -> int:
        return sum(len(part) for part in self.X)


@dataclass(frozen=True)
class HeadConfig:
    """Training of the backprop linear head (same for finetune, joint and replay)."""

    lr: float = 1e-3
    epochs: int = 20
    batch_size: int = 64


class LinearHead(ContinualMethod):
    """A linear softmax head on the frozen embeddings, trained by backprop with Adam.

    mode: "finetune" (train on each task from the previous weights), "joint" (retrain from
    scratch on everything seen after each task) or "replay" (finetune + a class-balanced buffer
    of `buffer_size` earlier samples).
    """

    def __init__(self, mode: str, n_features: int, n_classes: int, config: HeadConfig, seed: int, buffer_size: int = 0) -> None:
        if mode not in ("finetune", "joint", "replay"):
            raise ValueError(f"mode must be finetune, joint or replay; got {mode!r}")
        self.name = mode
        self.mode, self.config, self.seed = mode, config, seed
        self.n_features, self.n_classes = n_features, n_classes
        self.buffer_size = buffer_size
        self.generator = torch.Generator().manual_seed(seed)
        self.head = self._new_head()
        self.seen = torch.zeros(n_classes, dtype=torch.bool)
        self.X_seen: list[np.ndarray] = []  # joint: everything; replay: the buffer
        self.y_seen: list[np.ndarray] = []

    def _new_head(self) -> torch.nn.Linear:
        head = torch.nn.Linear(self.n_features, self.n_classes)
        bound = 1.0 / np.sqrt(self.n_features)
        with torch.no_grad():
            head.weight.copy_(torch.rand(head.weight.shape, generator=self.generator) * 2 * bound - bound)
            head.bias.zero_()
        return head

    def learn_task(self, X: np.ndarray, y: np.ndarray, keys: list[str] | None = None) -> None:
        self.seen[torch.as_tensor(np.unique(y))] = True
        if self.mode == "joint":
            self.X_seen.append(X)
            self.y_seen.append(y)
            self.head = self._new_head()
            self._train(np.concatenate(self.X_seen), np.concatenate(self.y_seen))
        elif self.mode == "replay":
            self._train(np.concatenate([X, *self.X_seen]), np.concatenate([y, *self.y_seen]))
            self._refill_buffer(X, y)
        else:
            self._train(X, y)

    def _train(self, X: np.ndarray, y: np.ndarray) -> None:
        x, target = torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y, dtype=torch.int64)
        optimizer = torch.optim.Adam(self.head.parameters(), lr=self.config.lr)
        mask = torch.where(self.seen, 0.0, float("-inf"))
        # One thread: a (64 × d) by (d × classes) step is too small to split, and on a busy
        # 2-core machine the threads' synchronisation costs more than the arithmetic.
        with torch_threads(1):
            for _ in range(self.config.epochs):
                order = torch.randperm(len(x), generator=self.generator)
                for start in range(0, len(x), self.config.batch_size):
                    batch = order[start : start + self.config.batch_size]
                    loss = torch.nn.functional.cross_entropy(self.head(x[batch]) + mask, target[batch])
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()

    def _refill_buffer(self, X: np.ndarray, y: np.ndarray) -> None:
        """Keep an equal share of `buffer_size` per seen class (random samples, seeded)."""
        X_all, y_all = np.concatenate([X, *self.X_seen]), np.concatenate([y, *self.y_seen])
        classes = np.unique(y_all)
        share = self.buffer_size // max(len(classes), 1)
        rng = np.random.default_rng(self.seed)
        keep = np.concatenate([rng.permutation(np.flatnonzero(y_all == c))[:share] for c in classes]) if share else np.zeros(0, dtype=np.int64)
        self.X_seen, self.y_seen = [X_all[keep]], [y_all[keep]]

    @torch.no_grad()
    def _logits(self, X: np.ndarray) -> torch.Tensor:
        return self.head(torch.as_tensor(X, dtype=torch.float32)) + torch.where(self.seen, 0.0, float("-inf"))

    def scores(self, X: np.ndarray) -> np.ndarray:
        return self._logits(X).double().numpy()

    def in_scope_score(self, X: np.ndarray) -> np.ndarray:
        return torch.softmax(self._logits(X), dim=1).max(dim=1).values.numpy()

    def stored_vectors(self) -> int:
        return int(self.seen.sum()) + sum(len(part) for part in self.X_seen)


LOGREG_MAX_ITER = 1000  # lbfgs iterations allowed: far more than a fit to LOGREG_TOL takes on the stored datasets
LOGREG_TOL = 1e-5
"""lbfgs's gradient tolerance: tighter than scikit-learn's default 1e-4, which stops measurably short of
the optimum on CLINC150's embeddings (docs/memory.md, Baselines)."""


class JointLogisticRegression(ContinualMethod):
    """scikit-learn's `LogisticRegression` (lbfgs; multinomial over three classes or more, binary
    logistic over two; L2 penalty of strength 1/C) fitted from scratch on every sample seen so far
    after each task, like `joint`: it keeps every training sample (and a weight row per class).

    From scratch rather than from the previous task's weights: a warm start is faster but changes
    the numbers (measured in docs/memory.md, Baselines).
    """

    name = "logreg"

    def __init__(self, n_classes: int, C: float = 1.0, max_iter: int = LOGREG_MAX_ITER, tol: float = LOGREG_TOL) -> None:
        self.n_classes, self.C, self.max_iter, self.tol = n_classes, C, max_iter, tol
        self.X: list[np.ndarray] = []
        self.y: list[np.ndarray] = []
        self.model: LogisticRegression | None = None
        self.classes = np.zeros(0, dtype=np.int64)
        self.iterations: list[int] = []  # lbfgs iterations of each fit

    def learn_task(self, X: np.ndarray, y: np.ndarray, keys: list[str] | None = None) -> None:
        self.X.append(X)
        self.y.append(y)
        data, labels = np.concatenate(self.X), np.concatenate(self.y)
        self.classes = np.unique(labels)
        if len(self.classes) < 2:  # nothing to tell apart yet: every input is the one class
            self.model = None
            return
        # One BLAS thread: on the 2-core machine of docs/memory.md a CLINC150 fit took twice as long on two.
        with threadpool_limits(limits=1, user_api="blas"):
            self.model = LogisticRegression(C=self.C, max_iter=self.max_iter, tol=self.tol).fit(data, labels)
        self.iterations.append(int(np.max(self.model.n_iter_)))

    def _logits(self, X: np.ndarray) -> np.ndarray:
        """(n, classes seen) logits, whose softmax is the model's probabilities."""
        if self.model is None:
            return np.zeros((len(X), len(self.classes)))
        logits = self.model.decision_function(X)
        if logits.ndim == 1:  # two classes: the log-odds d of the second; softmax(−d/2, d/2) = (1 − σ(d), σ(d))
            logits = np.stack([-logits, logits], axis=1) / 2.0
        return logits

    def scores(self, X: np.ndarray) -> np.ndarray:
        # Logits rather than log-probabilities, which underflow to −inf far from a class.
        return _spread(self._logits(X), self.classes, self.n_classes)

    def in_scope_score(self, X: np.ndarray) -> np.ndarray:
        logits = self._logits(X)
        weights = np.exp(logits - logits.max(axis=1, keepdims=True))
        return 1.0 / weights.sum(axis=1)  # the largest softmax probability

    def stored_vectors(self) -> int:
        return len(self.classes) + sum(len(part) for part in self.X)
