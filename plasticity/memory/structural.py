"""`StructuralMemory`: an append-only concept tree over frozen embeddings, learned without gradients.

The tree (DESIGN.md §5; research/dbm.md §2 "learning is restructuring"):

    root ── topic ── concept ── sub-concept ...
            (label-mixed,       (label-pure: centroid + principal subspace,
             routing only)       radius, count, exemplar reservoir)

Learning is event by event, taken in blocks of `batch_size` samples (the decisions of a block are
taken against the memory as it stood at its start; a new class grows through sub-blocks of 1, 2,
4, … samples; see `_learn_block`). A sample x of class c is routed from the root to the `beam`
nearest topics (squared distance to their centroids); among the concepts of class c under those
topics, the nearest in residual distance δ (see `concepts.py`) is its candidate ℓ.

- absorb: δ_ℓ(x)² ≤ λ (the minimal evolution threshold `evolution_threshold`): x updates ℓ's
  statistics and the running counts of ℓ's topic and the root. Nothing else changes.
- leftover: otherwise (too far, or no class-c concept in the beam) x is kept, unabsorbed, as a
  leftover of its nearest class-c concept ℓ ("keep explicit leftovers").
- new concept (structural event, gated by the minimal evolution threshold): when ℓ holds
  `min_support` leftovers G, their benefit is the mean drop in squared residual if they get a
  concept of their own, B = mean_{x∈G}(δ_ℓ(x)² − ‖x − x̄_G‖²). If B > λ, a new concept is
  created from G as a child of ℓ (a finer sub-concept); otherwise G is folded into ℓ (absorbed).
  Leftovers still pending when a partial_fit call ends lack the support and are folded.
- new class: the first sample of a class creates its concept under the nearest topic if that
  topic's centroid is within `topic_threshold` (squared distance), else under a new topic.

Append-only: nodes are never deleted, never re-parented, and a concept's statistics change only
when it absorbs samples of its own class, so in class-incremental learning the concepts of earlier
tasks are left exactly as they were (tested). Topics and the root keep aggregate counts.

Prediction scores every concept under the query's `beam` nearest topics in one vectorised pass:
the decision for class c is the best Gaussian log-likelihood among its concepts, each concept's
covariance mixing its principal subspace with the pooled within-concept covariance (regularised
discriminant analysis, Friedman 1989; `own_covariance`), or −min_{ℓ of class c} δ_ℓ(x)². It
abstains (returns `unknown_label`) when x lies outside every scored concept's radius ×
`tolerance`, i.e. when its abstention score min_ℓ δ_ℓ(x)/ρ_ℓ exceeds `tolerance`; the radius is
shrunk toward the pooled radius of all concepts, ρ_ℓ² = (R_ℓ + n₀ρ̄²)/(n_ℓ + n₀) with R_ℓ the
concept's residual scatter, n_ℓ its count and n₀ = `radius_prior` (a few samples do not give a
reliable radius).

The coarse level (`coarse_groups`, granularity.py) groups classes by Ward's criterion on their
centroids, recomputed after every call from the concepts, independent of the classes' order.

References: BIRCH clustering features and thresholds (Zhang, Ramakrishnan & Livny 1996);
vigilance-gated category creation in ARTMAP (Carpenter, Grossberg & Reynolds 1991); subspace
classifiers (Watanabe 1967; Oja 1983); reservoir sampling (Vitter 1985, algorithm R); the
reject option (Chow 1970); regularised discriminant analysis (Friedman 1989); Ward's method (Ward
1963); parallel updates of means and scatters (Chan, Golub & LeVeque 1979).
"""

from __future__ import annotations

import functools
import math
import os
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from scipy import linalg, sparse
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, column_or_1d
from threadpoolctl import ThreadpoolController

from plasticity.errors import ConfigError, brief
from plasticity.memory.concepts import MAX_ABS, NO_LABEL, ROOT, ConceptStore
from plasticity.memory.explanation import Exemplar, Explanation, PathStep
from plasticity.memory.granularity import class_statistics, ward_groups
from plasticity.memory.persist import MemoryFileError, read_memory_file, write_memory_file

EVENTS = ("absorb", "leftover", "new_concept", "fold", "new_topic")
_TINY_VARIANCE = 2.0**-500
"""Pooled within-concept variance below which own_covariance falls back to δ²: whitening by a
smaller variance would overflow the squared distances of queries of ordinary size."""
_CHUNK = 1024  # queries scored at once: bounds memory at chunk × concepts × (rank + 1) floats per table

STRUCTURAL = ("rank", "normalize", "n_exemplars", "random_state")
"""Parameters fixed by the first partial_fit, because they shape what is stored: the subspaces'
size, the geometry inputs are stored in, the reservoirs and their generator. Changing one later
raises ConfigError (fit starts over); every other parameter takes effect at the next call."""


def _whole(value: Any, low: int) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= low


def _real(value: Any, low: float, strict: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return False
    try:
        finite = math.isfinite(float(value))
    except OverflowError:  # an integer too large for a float
        return False
    return finite and (value > low if strict else value >= low)


def _label_like(value: Any) -> bool:
    """A string or a finite number (not a bool): what a class label, and so the unknown label, can be."""
    return isinstance(value, str) or _real(value, -math.inf, strict=True)


_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "rank": (lambda v: _whole(v, 0), "a whole number ≥ 0"),
    "evolution_threshold": (lambda v: _real(v, 0.0, strict=True), "a number > 0"),
    "min_support": (lambda v: _whole(v, 2), "a whole number ≥ 2"),
    "topic_threshold": (lambda v: _real(v, 0.0, strict=False), "a number ≥ 0"),
    "beam": (lambda v: v is None or _whole(v, 1), "a whole number ≥ 1, or None for all topics"),
    "tolerance": (lambda v: v is None or _real(v, 0.0, strict=True), "a number > 0, or None to never abstain"),
    "radius_prior": (lambda v: _real(v, 0.0, strict=False), "a number ≥ 0"),
    "granularity": (lambda v: v is None or _whole(v, 1), "a whole number ≥ 1, or None"),
    "coarse_threshold": (lambda v: _real(v, 0.0, strict=False), "a number ≥ 0"),
    "own_covariance": (lambda v: v is None or (_real(v, 0.0, strict=False) and v < 1), "a number in [0, 1), or None for the subspace distance"),
    "shrinkage": (lambda v: _real(v, 0.0, strict=True) and v <= 1, "a number in (0, 1]"),
    "batch_size": (lambda v: _whole(v, 1), "a whole number ≥ 1"),
    "n_jobs": (lambda v: v is None or _whole(v, 1) or (_whole(v, -1) and v == -1), "a whole number ≥ 1, -1 for every CPU, or None for 1"),
    "unknown_label": (lambda v: v is None or _label_like(v), "a string or a number, or None for a value no class has"),
    "n_exemplars": (lambda v: _whole(v, 0), "a whole number ≥ 0"),
    "normalize": (lambda v: isinstance(v, (bool, np.bool_)), "true or false"),
    "random_state": (lambda v: v is None or _whole(v, 0) or isinstance(v, np.random.RandomState), "None, a whole number ≥ 0 or a numpy RandomState"),
}


def check_params(params: Mapping[str, Any]) -> None:
    """ConfigError unless every item names a StructuralMemory parameter and holds a valid value;
    the message lists every problem. The estimator runs it at every call; the `continual`
    command runs it on its --set values before any work."""
    unknown = [name for name in params if name not in _RULES]
    if unknown:
        names = ", ".join(brief(name) for name in unknown)
        raise ConfigError(f"unknown StructuralMemory parameter(s) {names}; the parameters are {', '.join(_RULES)}")
    bad = [f"{name}={brief(value)} (must be {_RULES[name][1]})" for name, value in params.items() if not _RULES[name][0](value)]
    if bad:
        raise ConfigError(f"invalid StructuralMemory parameter(s): {'; '.join(bad)}")


class StructuralMemory(ClassifierMixin, BaseEstimator):
    """An online, append-only concept tree that classifies, abstains and explains.

    Parameters
    ----------
    rank: directions in each concept's principal subspace (0: centroid only).
    evolution_threshold: λ, the minimal evolution threshold, in squared distance units: the
        largest δ² a concept absorbs, and the mean benefit a new concept must exceed.
    min_support: leftovers a concept must collect before a new concept is considered.
    topic_threshold: squared distance from a new class's first sample to the nearest topic
        centroid up to which the class joins that topic instead of opening a new one.
    beam: topics explored when routing (None: all).
    tolerance: abstain when the abstention score (distance in radii) exceeds it; None never abstains.
    radius_prior: n₀, pseudo-count of the pooled radius in each concept's radius.
    granularity: the level whose label `predict` returns: 1 = the coarse level (the matched
        class's group, see `coarse_groups`; its label is the group's class with the most samples),
        k ≥ 2 = the matched concept's ancestor at depth k (its majority label); None = the
        matched concept's own label.
    own_covariance: α, the weight of a concept's own principal covariance in the covariance that
        decides between classes (regularised discriminant analysis, Friedman 1989): Σ_ℓ = A +
        α·U_ℓᵀ diag(e_ℓ/n_ℓ) U_ℓ with A = (1 − α)·((1 − γ)·W̄ + γ·tr(W̄)/d·I), W̄ the pooled
        within-concept covariance; class decisions use the Gaussian log-likelihood
        −½[(x − μ_ℓ)ᵀ Σ_ℓ⁻¹ (x − μ_ℓ) + log det Σ_ℓ]. None decides by the subspace distance δ².
    shrinkage: γ, the shrinkage of W̄ toward a multiple of the identity (Ledoit & Wolf 2004's target).
    batch_size: samples learned at once: the decisions of a block (absorb, leftover) are taken
        against the memory as it stood at the block's start, and each concept absorbs its share
        of the block in one exact merge. 1 learns one sample at a time.
    n_jobs: threads that score queries (predict, decision_function, abstention_score, ...): batches
        of more than 1,024 queries are scored in chunks of 1,024, that many chunks at once, each on
        one BLAS thread; None (the default) is 1, -1 every CPU. The chunks are the same whatever the
        number, so the answers are those of one thread on one BLAS thread, bit for bit (more BLAS
        threads may move decision values in their last bits). Learning is sequential.
    coarse_threshold: τ, how far the coarse level groups classes: Ward merges of class centroids
        up to a cost of τ·ρ̄², ρ̄² the mean squared distance of a sample to its class centroid
        (granularity.py); 0 gives one group per class.
    unknown_label: what `predict` returns when it abstains; it may not be a class label. None (the
        default) picks a value no class has, of the classes' type, so that `score` works on
        abstentions: min(classes_) − 1 for numbers (−1 for classes 0…K−1), "unknown" for strings
        ("_" appended while that is a class). `unknown_label_` holds the value in use.
    n_exemplars: size of each concept's reservoir of stored samples (for explanations).
    normalize: divide every input by its L2 norm (cosine geometry), as is usual for sentence
        embeddings; inputs of any scale, 2^±1000 included, give the same unit vectors. Without
        it, inputs beyond ±2^256 are refused (squared distances would overflow).
    random_state: seed of the exemplar reservoirs (the only randomness): None, an int, or a numpy
        RandomState (a seed is drawn from it at the first partial_fit, as scikit-learn does).

    `rank`, `normalize`, `n_exemplars` and `random_state` shape what is stored: changing one with
    `set_params` after the first `partial_fit` raises ConfigError (`fit` starts over). The others
    take effect at the next call. Invalid values raise ConfigError (a ValueError) at the next call.

    The defaults are the values `plasticity continual --data clinc150 --select` chose on CLINC150's
    validation split with all-MiniLM-L6-v2 embeddings (docs/memory.md), except `batch_size` (a speed
    setting) and `coarse_threshold` (not tuned: see granularity.py); other encoders may prefer others.
    """

    def __init__(
        self,
        rank: int = 3,
        evolution_threshold: float = 2.0,
        min_support: int = 5,
        topic_threshold: float = 1.3,
        beam: int | None = None,
        tolerance: float | None = None,
        radius_prior: float = 1000.0,
        granularity: int | None = None,
        coarse_threshold: float = 2.0,
        own_covariance: float | None = 0.1,
        shrinkage: float = 0.3,
        batch_size: int = 1024,
        n_jobs: int | None = None,
        unknown_label: Any = None,
        n_exemplars: int = 3,
        normalize: bool = True,
        random_state: int | np.random.RandomState | None = 0,
    ) -> None:
        self.rank = rank
        self.evolution_threshold = evolution_threshold
        self.min_support = min_support
        self.topic_threshold = topic_threshold
        self.beam = beam
        self.tolerance = tolerance
        self.radius_prior = radius_prior
        self.granularity = granularity
        self.coarse_threshold = coarse_threshold
        self.own_covariance = own_covariance
        self.shrinkage = shrinkage
        self.batch_size = batch_size
        self.n_jobs = n_jobs
        self.unknown_label = unknown_label
        self.n_exemplars = n_exemplars
        self.normalize = normalize
        self.random_state = random_state

    # =========================================================================== learning
    def fit(self, X: Any, y: Any, keys: list[str] | None = None) -> StructuralMemory:
        """Forget everything, then learn (X, y) in order, one sample at a time."""
        for name in ("store_", "classes_", "labels_", "n_features_in_"):
            self.__dict__.pop(name, None)
        return self.partial_fit(X, y, keys=keys)

    def partial_fit(self, X: Any, y: Any, classes: Any = None, keys: list[str] | None = None) -> StructuralMemory:
        """Learn (X, y) in order, one sample at a time, on top of what is already stored.

        classes: labels to declare now (they may also appear for the first time in later calls:
            class-incremental learning needs no list of all classes up front).
        keys: one string per sample kept with it if it enters an exemplar reservoir (e.g. the
            text of a query); default: the sample's position in the stream of all samples seen.
        """
        check_params(self.get_params())
        X = self._check_X(X, reset=not hasattr(self, "store_"))
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if len(y) != len(X):
            raise ConfigError(f"X has {len(X)} samples but y has {len(y)} labels; give one label per sample")
        if keys is not None and len(keys) != len(X):
            raise ConfigError(f"keys has {len(keys)} entries for {len(X)} samples; give one key per sample, or none")
        declared = [] if classes is None else np.asarray(classes).ravel().tolist()
        # Checked before anything is learned: one kind of label (classes_ is sorted), none the unknown label.
        labels = {*(self.labels_.tolist() if hasattr(self, "labels_") else []), *declared, *y.tolist()}
        if len({isinstance(label, str) for label in labels}) > 1:
            raise ConfigError("class labels must be all strings or all numbers; these labels (with the classes already learned) mix both")
        if self.unknown_label is not None:
            check_unknown_label(self.unknown_label, labels)
        if not hasattr(self, "store_"):
            self._start(X.shape[1])
        indices = self._class_indices(y, declared)
        call = self.n_calls_
        first_key = self.n_samples_seen_
        keys = [str(key) for key in keys] if keys is not None else [str(first_key + i) for i in range(len(X))]
        # Learning is a stream of small matrix operations: a second BLAS thread only adds
        # synchronisation (many times slower on a busy 2-core machine, in a one-off measurement).
        with _threadpools().limit(limits=1, user_api="blas"):
            for start in range(0, len(X), int(self.batch_size)):
                stop = start + int(self.batch_size)
                self._learn_block(X[start:stop], indices[start:stop], keys[start:stop], call)
                self.store_.flush()
            for concept in list(self._pending):
                self._fold(concept)
            self.store_.flush()
            self.store_.absorb_moment(X)
        self.rng_state_ = self._rng.bit_generator.state
        self.n_samples_seen_ += len(X)
        self.n_calls_ += 1
        self._compile()
        return self

    def _check_X(self, X: Any, reset: bool) -> np.ndarray:
        """X as float64 rows in the memory's geometry (unit rows with `normalize`), checked."""
        X = check_array(X, dtype=np.float64)
        if reset:
            self.n_features_in_ = X.shape[1]
        else:
            self._check_structure()
            if X.shape[1] != self.n_features_in_:
                raise ConfigError(f"X has {X.shape[1]} features, but {type(self).__name__} is expecting {self.n_features_in_} features as input")
        if self.normalize:
            return _unit_rows(X)
        peak = float(np.abs(X).max())
        if peak > MAX_ABS:
            raise ConfigError(
                f"X holds values up to {peak:.3g}: without normalize=True the memory squares distances, which would overflow "
                f"beyond ±{MAX_ABS:.3g}; rescale X or use normalize=True"
            )
        return X

    def _check_structure(self) -> None:
        """ConfigError if a STRUCTURAL parameter differs from the value the memory first learned with."""
        changed = [name for name in STRUCTURAL if not _same(getattr(self, name), self._structure[name])]
        if changed:
            now = ", ".join(f"{name}={brief(getattr(self, name))}" for name in changed)
            then = ", ".join(f"{name}={brief(self._structure[name])}" for name in changed)
            raise ConfigError(
                f"{now} cannot take effect: this memory learned with {then}, which shapes what it stored; set it back, or call fit() to start over"
            )

    def _start(self, dim: int) -> None:
        # A subspace spanning most of the space would put every point at distance ~0 from every
        # concept; at most a quarter of the directions keeps the residual discriminative.
        self._structure = {name: getattr(self, name) for name in STRUCTURAL}
        self.store_ = ConceptStore(dim, min(int(self.rank), dim // 4))
        self.store_.add_node(parent=-1, label=NO_LABEL, created=0)
        self.labels_ = np.array([], dtype=object)  # class labels in order of first appearance (node labels index it)
        self.classes_ = np.array([])
        self.events_ = dict.fromkeys(EVENTS, 0)
        self.n_samples_seen_ = 0
        self.n_calls_ = 0
        self.exemplar_nodes_: list[int] = []
        self.exemplar_vectors_: list[np.ndarray] = []
        self.exemplar_keys_: list[str] = []
        self.rng_state_ = _generator(self.random_state).bit_generator.state
        self._rebuild_index()

    def _rebuild_index(self) -> None:
        """Lookup structures derived from the stored tree (rebuilt after loading)."""
        store = self.store_
        self._topics: list[int] = [n for n in range(store.size) if store.depth[n] == 1]
        self._topic_of: list[int] = [store.ancestors(n)[1] if store.depth[n] >= 1 else -1 for n in range(store.size)]
        self._aggregates: dict[int, tuple[int, int]] = {n: (self._topic_of[n], ROOT) for n in range(store.size) if store.label[n] != NO_LABEL}
        self._by_label: dict[int, list[int]] = {}
        for node in range(store.size):
            if store.label[node] != NO_LABEL:
                self._by_label.setdefault(int(store.label[node]), []).append(node)
        self._slots: dict[int, list[int]] = {}
        for slot, node in enumerate(self.exemplar_nodes_):
            self._slots.setdefault(node, []).append(slot)
        self._pending: dict[int, list[tuple[np.ndarray, str]]] = {}
        self._rng = np.random.default_rng()
        self._rng.bit_generator.state = self.rng_state_
        if self.n_concepts_:
            self._compile()

    def _class_indices(self, y: np.ndarray, declared: list[Any]) -> np.ndarray:
        """Node label indices of y, appending labels never seen before (declared ones first); keeps classes_ sorted."""
        known = {label: i for i, label in enumerate(self.labels_.tolist())}
        new = [label for label in dict.fromkeys([*declared, *y.tolist()]) if label not in known]
        if new:
            self.labels_ = np.concatenate([self.labels_, np.array(new, dtype=object)]) if len(self.labels_) else np.array(new, dtype=object)
            known.update({label: len(known) + i for i, label in enumerate(new)})
            self.classes_ = np.array(sorted(self.labels_.tolist()))
            self.store_.ensure_classes(len(self.labels_))
        return np.array([known[label] for label in y.tolist()], dtype=np.int64)

    def _learn_block(self, X: np.ndarray, labels: np.ndarray, keys: list[str], call: int) -> None:
        """Learn a block of samples against the memory as it stood at the block's start (see
        `batch_size`), class by class. A class new to the memory opens its concept with its first
        sample and learns the rest of the block in sub-blocks of 1, 2, 4, … samples, each against
        the concepts as the previous ones left them, so that no sample is judged by a concept much
        smaller than its own sub-block."""
        newcomers = {}
        for label in dict.fromkeys(labels.tolist()):
            rows = np.flatnonzero(labels == label)
            if self._by_label.get(label):
                self._learn_rows(X, rows, label, keys, call)
            else:
                self._new_class(X[rows[0]], label, keys[rows[0]], call)
                newcomers[label] = rows[1:]
        start, size = 0, 1
        while any(len(rows) > start for rows in newcomers.values()):
            self.store_.flush()  # the sub-blocks of every new class advance together, one fold per step
            for label, rows in newcomers.items():
                if len(rows) > start:
                    self._learn_rows(X, rows[start : start + size], label, keys, call)
            start, size = start + size, 2 * size

    def _learn_rows(self, X: np.ndarray, rows: np.ndarray, label: int, keys: list[str], call: int) -> None:
        """Samples X[rows] of class index `label`, all at once: each is absorbed by its nearest
        concept of the class within its beam if δ² ≤ λ, else left over at its nearest concept of the class."""
        concepts = np.array(self._by_label[label])
        d2 = self.store_.residual_distance2(X[rows], concepts)
        allowed = self._beam_mask(X[rows], concepts)
        near = d2 if allowed is None else np.where(allowed, d2, np.inf)
        best = near.argmin(axis=1)
        absorbed = near[np.arange(len(rows)), best] <= self.evolution_threshold
        for concept in np.unique(concepts[best[absorbed]]):
            chosen = rows[absorbed][concepts[best[absorbed]] == concept]
            self._absorb(int(concept), X[chosen], label, [keys[i] for i in chosen])
        if absorbed.all():
            return
        owners = concepts[d2[~absorbed].argmin(axis=1)]
        self.events_["leftover"] += len(owners)
        for owner, i in zip(owners.tolist(), rows[~absorbed].tolist(), strict=True):
            self._pending.setdefault(owner, []).append((X[i], keys[i]))
        for owner in dict.fromkeys(owners.tolist()):
            if len(self._pending.get(owner, ())) >= self.min_support:
                self._resolve(owner, call)

    def _beam_mask(self, X: np.ndarray, concepts: np.ndarray) -> np.ndarray | None:
        """(samples, concepts) True where the concept is under one of the sample's `beam` nearest
        topics; None when the beam holds every topic."""
        inside = _within_beam(X, self.store_.mean[self._topics], self.beam)
        if inside is None:
            return None
        position = {topic: i for i, topic in enumerate(self._topics)}
        return inside[:, [position[self._topic_of[c]] for c in concepts.tolist()]]

    def _resolve(self, owner: int, call: int) -> None:
        """The minimal evolution threshold: a new sub-concept for the leftovers, or fold them in."""
        group = self._pending[owner]
        vectors = np.stack([x for x, _ in group])
        # δ to the owner as its subspace stood at the block's start (its columns fold after the block).
        now = self.store_.residual_distance2(vectors, np.array([owner]))[:, 0]
        own = ((vectors - vectors.mean(axis=0)) ** 2).sum(axis=1)
        if float(np.mean(now - own)) <= self.evolution_threshold:
            self._fold(owner)
            return
        del self._pending[owner]
        label = int(self.store_.label[owner])
        child = self._add_concept(parent=owner, label=label, call=call)
        self.events_["new_concept"] += 1
        self._absorb(child, vectors, label, [key for _, key in group])

    def _fold(self, owner: int) -> None:
        """Absorb a concept's pending leftovers into it."""
        group = self._pending.pop(owner)
        self._absorb(owner, np.stack([x for x, _ in group]), int(self.store_.label[owner]), [key for _, key in group])
        self.events_["fold"] += 1

    def _new_class(self, x: np.ndarray, label: int, key: str, call: int) -> None:
        store = self.store_
        topic = None
        if self._topics:
            distances = ((store.mean[self._topics] - x) ** 2).sum(axis=1)
            nearest = int(np.argmin(distances))
            if distances[nearest] <= self.topic_threshold:
                topic = self._topics[nearest]
        if topic is None:
            topic = store.add_node(parent=ROOT, label=NO_LABEL, created=call)
            self._topics.append(topic)
            self._topic_of.append(topic)
            self.events_["new_topic"] += 1
        concept = self._add_concept(parent=topic, label=label, call=call)
        self.events_["new_concept"] += 1
        self._absorb(concept, x[None, :], label, [key])

    def _add_concept(self, parent: int, label: int, call: int) -> int:
        concept = self.store_.add_node(parent=parent, label=label, created=call)
        self._topic_of.append(self._topic_of[parent])
        self._aggregates[concept] = (self._topic_of[parent], ROOT)
        self._by_label.setdefault(label, []).append(concept)
        return concept

    def _absorb(self, concept: int, X: np.ndarray, label: int, keys: list[str]) -> None:
        """Absorb the samples X (m, d) into `concept`, its topic and the root."""
        self._keep_exemplars(concept, X, keys)
        self.store_.absorb(concept, X, label)
        # The topic and the root keep aggregate statistics; a parent concept keeps only its own cell's.
        self.store_.absorb_aggregate(self._aggregates[concept], X, label)
        self.events_["absorb"] += len(X)

    def _keep_exemplars(self, concept: int, X: np.ndarray, keys: list[str]) -> None:
        """Reservoir sampling (Vitter 1985, algorithm R) over the concept's absorbed samples, in
        order: the t-th is kept while the reservoir has room, else it replaces slot j for a uniform
        j < t when j < `n_exemplars` (one draw per sample beyond the reservoir, drawn at once)."""
        if not self.n_exemplars:
            return
        slots = self._slots.setdefault(concept, [])
        seen = int(self.store_.count[concept])
        room = min(self.n_exemplars - len(slots), len(X))
        for i in range(room):
            slots.append(len(self.exemplar_nodes_))
            self.exemplar_nodes_.append(concept)
            self.exemplar_vectors_.append(X[i].copy())
            self.exemplar_keys_.append(keys[i])
        if room == len(X):
            return
        draws = self._rng.integers(np.arange(seen + room + 1, seen + len(X) + 1))
        for i, j in zip(range(room, len(X)), draws.tolist(), strict=True):
            if j < self.n_exemplars:
                self.exemplar_vectors_[slots[j]] = X[i].copy()
                self.exemplar_keys_[slots[j]] = keys[i]

    # =========================================================================== scoring
    def _compile(self) -> None:
        """Lay out concept and topic arrays for vectorised scoring (after every partial_fit call)."""
        store = self.store_
        position = {label: i for i, label in enumerate(self.classes_.tolist())}
        in_classes = np.array([position[label] for label in self.labels_.tolist()], dtype=np.int64)  # label index → classes_ column
        concepts = np.flatnonzero(store.label[: store.size] != NO_LABEL)
        # Grouped by class in classes_ order: for reduceat, and so that the first nearest concept
        # is a concept of the first best class (argmin over concepts = argmax over classes).
        concepts = concepts[np.argsort(in_classes[store.label[concepts]], kind="stable")]
        labels = store.label[concepts]
        class_of = in_classes[labels]
        means = store.mean[concepts]
        basis = store.basis[concepts].transpose(1, 0, 2).reshape(-1, store.dim)  # direction-major: every first direction, then every second, ...
        # One product X @ [−2·means; basis]^T carries nearly all the cost of scoring (−2 is exact in
        # floating point and saves a pass). It stays in float64: in float32 a query's distances
        # would depend (at 1e-7) on the rest of its batch.
        residual, count = store.residual_scatter(concepts), store.count[concepts]
        topics = np.array(self._topics)
        topic_position = {topic: i for i, topic in enumerate(self._topics)}
        starts = np.flatnonzero(np.r_[True, class_of[1:] != class_of[:-1]])
        self._cache: dict[tuple[float, float], dict[str, np.ndarray]] = {}
        self._tables = {
            "concepts": concepts,
            "class_of": class_of,
            "columns": class_of[starts],
            "weights": np.concatenate([-2.0 * means, basis]),
            "sq_means": (means * means).sum(axis=1),
            "offsets": np.einsum("lrd,ld->rl", store.basis[concepts], means).ravel(),
            "residual": residual,
            "count": count,
            "pooled": residual.sum() / max(count.sum(), 1),
            "topic_means": store.mean[topics] if len(topics) else np.zeros((0, store.dim)),
            "topic_of": np.array([topic_position[self._topic_of[c]] for c in concepts], dtype=np.int64),
            "starts": starts,
        }
        # The coarse level's inputs, per class in classes_ order (sorted: independent of arrival order).
        counts, centroids, spread = class_statistics(count.astype(np.float64), means, store.scatter[concepts], labels, len(self.labels_))
        order = np.argsort(in_classes)
        self._tables.update(class_counts=counts[order], class_centroids=centroids[order], spread=spread)

    def _radius(self) -> np.ndarray:
        """ρ_ℓ of every scored concept (table order) at the current `radius_prior`: computed at each
        call from the compiled statistics, so that `set_params(radius_prior=...)` takes effect at once."""
        t = self._tables
        prior = float(self.radius_prior)
        radius = np.sqrt((t["residual"] + prior * t["pooled"]) / np.maximum(t["count"] + prior, 1e-12))
        return np.maximum(radius, 1e-12)

    def _discriminant(self) -> dict[str, np.ndarray]:
        """The class-decision tables of the covariance model of `own_covariance` at the current
        (α, γ), cached until the next partial_fit. With A = (1 − α)((1 − γ)W̄ + γ tr(W̄)/d I) =
        C Cᵀ (Cholesky), queries are whitened by C⁻¹ (z = C⁻¹x, so ‖z − μ̃‖² = (x − μ)ᵀ A⁻¹ (x − μ));
        by Woodbury's identity, with P_ℓ = sqrt(α e_ℓ/n_ℓ)·U_ℓ C⁻ᵀ and K_ℓ = I + P_ℓ P_ℓᵀ = L_ℓ L_ℓᵀ,
        (x − μ)ᵀ Σ_ℓ⁻¹ (x − μ) = ‖z − μ̃‖² − ‖Q_ℓ(z − μ̃)‖² with μ̃ = C⁻¹μ,
        Q_ℓ = L_ℓ⁻¹ P_ℓ, and log det Σ_ℓ = log det A + log det K_ℓ (the first is the same for
        every concept and dropped). So the decision is a subspace distance in whitened space,
        scored by `_table_distances` like δ², plus a bias log det K_ℓ. Empty when the pooled
        within-concept variance is below `_TINY_VARIANCE`: δ² decides then."""
        key = (float(self.own_covariance), float(self.shrinkage))
        if key in self._cache:
            return self._cache[key]
        alpha, gamma = key
        store, concepts = self.store_, self._tables["concepts"]
        within = store.within(concepts)
        target = np.trace(within) / store.dim
        if not target > _TINY_VARIANCE:
            self._cache[key] = {}  # nothing to whiten with (one sample per concept, or inputs below ~2^-250)
            return self._cache[key]
        # γ > 0 keeps every eigenvalue of A ≥ (1 − α)γ·tr(W̄)/d > 0: A is positive definite.
        cholesky = np.linalg.cholesky((1.0 - alpha) * ((1.0 - gamma) * within + gamma * target * np.eye(store.dim)))
        whiten = linalg.solve_triangular(cholesky, np.eye(store.dim), lower=True).T  # C⁻ᵀ: the rows of X @ whiten are C⁻¹x
        means = store.mean[concepts] @ whiten
        table = {"whiten": whiten, "sq_means": (means * means).sum(axis=1), "bias": np.zeros(len(concepts))}
        if store.rank:
            scale = np.sqrt(alpha * store.energy[concepts] / store.count[concepts][:, None])
            spread = ((store.basis[concepts] * scale[:, :, None]).reshape(-1, store.dim) @ whiten).reshape(len(concepts), store.rank, store.dim)
            factor = np.linalg.cholesky(np.eye(store.rank) + spread @ spread.transpose(0, 2, 1))
            directions = np.linalg.solve(factor, spread)
            table["bias"] = 2.0 * np.log(np.diagonal(factor, axis1=1, axis2=2)).sum(axis=1)
            table["offsets"] = np.einsum("lrd,ld->rl", directions, means).ravel()
            table["weights"] = np.concatenate([-2.0 * means, directions.transpose(1, 0, 2).reshape(-1, store.dim)])
        else:
            table["offsets"], table["weights"] = np.zeros(0), -2.0 * means
        # z·w = (C⁻¹x)·w = x·(C⁻ᵀw): the whitening folds into the weights, so scoring is one product of the raw queries.
        table["weights"] = table["weights"] @ whiten.T
        self._cache[key] = table
        return table

    def _table_distances(self, products: np.ndarray, table: dict[str, np.ndarray], sq: np.ndarray | None) -> np.ndarray:
        """‖x − m_ℓ‖² − ‖B_ℓ(x − m_ℓ)‖² (+ bias_ℓ) for every query and concept, worked out in place
        from `products`, the queries times the table's weights [−2·m; B] (means m, then the
        directions B direction by direction: every concept's first, then every concept's second,
        ...), with the offsets B_ℓ m_ℓ, the means' squared norms, and the queries' squared norms
        `sq`. With sq None the term ‖x‖², the same for every concept, is left out: the ranking of
        concepts is unchanged, the values are shifted per query."""
        n_concepts = len(table["sq_means"])
        d2 = products[:, :n_concepts]
        d2 += table["sq_means"][None, :]
        inside = products[:, n_concepts:]  # one block of n_concepts columns per direction
        inside -= table["offsets"][None, :]
        np.square(inside, out=inside)
        for j in range(self.store_.rank):
            d2 -= inside[:, j * n_concepts : (j + 1) * n_concepts]
        if sq is not None:
            d2 += sq[:, None]
            np.clip(d2, 0.0, None, out=d2)
        if "bias" in table:
            d2 += table["bias"][None, :]
        return d2

    def _joint_weights(self) -> np.ndarray:
        """The δ² table's weights above the covariance model's, for scoring both in one product."""
        table = self._discriminant()
        if "joint" not in table:
            table["joint"] = np.concatenate([self._tables["weights"], table["weights"]])
        return table["joint"]

    def _outside_beam(self, X: np.ndarray) -> np.ndarray | None:
        """(queries, concepts) True where the concept is not under one of the query's `beam`
        nearest topics; None when the beam holds every topic."""
        inside = _within_beam(X, self._tables["topic_means"], self.beam)
        return None if inside is None else ~inside[:, self._tables["topic_of"]]

    def _score(self, X: Any, abstention: bool = True, exact: bool = True, decisions: bool = True) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
        """Per query: (per-class decision values in classes_ order, or None when `decisions` is
        False; the best concept's column in the tables, whose class is the best class; the
        abstention score, or None when `abstention` is False). Decisions use the covariance model
        of `own_covariance` (or δ² when it is None); the abstention score always uses δ and ρ.
        exact=False leaves out of the covariance model's decisions the query's own term ‖z‖²
        (one d × d product per query), where only their ranking matters (predict, predict_proba)."""
        check_is_fitted(self, "store_")
        check_params(self.get_params())
        X = self._check_X(X, reset=False)
        chunks = [X[start : start + _CHUNK] for start in range(0, len(X), _CHUNK)]
        jobs = min(len(chunks), _cpus() if self.n_jobs == -1 else int(self.n_jobs or 1))
        if jobs == 1:
            return self._score_chunks(chunks, 1, abstention, exact, decisions)
        # One BLAS thread throughout, tables included: BLAS threads left spinning after a call take the workers' cores.
        with _threadpools().limit(limits=1, user_api="blas"):
            return self._score_chunks(chunks, jobs, abstention, exact, decisions)

    def _score_chunks(
        self, chunks: list[np.ndarray], jobs: int, abstention: bool, exact: bool, decisions: bool
    ) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
        """`_score` of checked queries in chunks, `jobs` chunks at once (NumPy and BLAS release the GIL)."""
        t = self._tables
        inverse_r2 = self._radius() ** -2.0 if abstention else None
        discriminant = None if self.own_covariance is None else self._discriminant()
        if discriminant is not None and not discriminant:  # no usable within-concept variance: δ² decides
            discriminant = None
        # One product of the queries with every table needed: δ²'s (for abstention, or to decide when
        # there is no covariance model) above the covariance model's.
        with_d2 = abstention or discriminant is None
        if discriminant is None:
            weights = t["weights"]
        else:
            weights = self._joint_weights() if with_d2 else discriminant["weights"]

        def score(chunk: np.ndarray) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
            outside = self._outside_beam(chunk)
            products = chunk @ weights.T
            d2 = self._table_distances(products[:, : len(t["weights"])], t, np.einsum("nd,nd->n", chunk, chunk)) if with_d2 else None
            if discriminant is None:
                dec = d2
            else:
                whitened = chunk @ discriminant["whiten"] if exact else None
                own = products[:, len(weights) - len(discriminant["weights"]) :]
                dec = self._table_distances(own, discriminant, None if whitened is None else np.einsum("nd,nd->n", whitened, whitened))
            if outside is not None:
                for table in {id(v): v for v in (d2, dec) if v is not None}.values():
                    table[outside] = np.inf
            decision = None
            if decisions:
                decision = np.full((len(dec), len(self.classes_)), -np.inf)
                decision[:, t["columns"]] = -np.minimum.reduceat(dec, t["starts"], axis=1)
            if abstention:
                d2 *= inverse_r2[None, :]  # min δ/ρ = sqrt(min δ²/ρ²)
            return decision, dec.argmin(axis=1), np.sqrt(d2.min(axis=1)) if abstention else None

        if jobs == 1:
            parts = [score(chunk) for chunk in chunks]
        else:
            with ThreadPoolExecutor(jobs) as pool:
                parts = list(pool.map(score, chunks))
        values, best, scores = zip(*parts, strict=True)
        return np.concatenate(values) if decisions else None, np.concatenate(best), np.concatenate(scores) if abstention else None

    # =========================================================================== prediction
    def decision_function(self, X: Any) -> np.ndarray:
        """−min δ² over each class's concepts (n, n_classes); for two classes, class 1's minus class 0's (n,)."""
        decision = self._score(X, abstention=False)[0]
        return decision[:, 1] - decision[:, 0] if len(self.classes_) == 2 else decision

    def predict_proba(self, X: Any) -> np.ndarray:
        """softmax over classes of the decision values / 2 (the covariance model's log-likelihood), or with
        own_covariance=None of −min δ² / (2ρ̄²), ρ̄² the pooled mean squared residual (uncalibrated)."""
        temperature = 2.0 if self.own_covariance is not None else 2.0 * max(float(self._tables["pooled"]), 1e-12)
        decision = self._score(X, abstention=False, exact=False)[0] / temperature
        decision -= decision.max(axis=1, keepdims=True)
        weights = np.exp(decision)
        return weights / weights.sum(axis=1, keepdims=True)

    def abstention_score(self, X: Any) -> np.ndarray:
        """min over scored concepts of δ/ρ: how many radii the query lies from the nearest concept."""
        return self._score(X)[2]

    def predict(self, X: Any) -> np.ndarray:
        """Class labels; the unknown label where the abstention score exceeds `tolerance`."""
        _, best, abstention = self._score(X, abstention=self.tolerance is not None, exact=False, decisions=False)
        if self.granularity is None:
            labels = self.classes_[self._tables["class_of"][best]]
        elif int(self.granularity) == 1:
            labels = self._group_labels()[self._tables["class_of"][best]]
        else:
            concepts = self._tables["concepts"][best]
            labels = np.array([self._ancestor_label(int(c)) for c in concepts], dtype=self.classes_.dtype)
        if self.tolerance is None:
            return labels
        value = self.unknown_label_
        unknown = abstention > float(self.tolerance)
        if not unknown.any():
            return labels
        # The dtype widens to hold the value (numbers with numbers, strings with strings); only a
        # value of another kind than the classes (a string among numbers) makes the array `object`.
        kind = np.asarray(value).dtype
        numeric = labels.dtype.kind in "biuf"
        same = numeric == (kind.kind in "biuf") and (numeric or labels.dtype.kind == kind.kind == "U")
        labels = labels.astype(np.result_type(labels.dtype, kind) if same else object)
        labels[unknown] = value
        return labels

    @property
    def unknown_label_(self) -> Any:
        """The value `predict` returns when it abstains: `unknown_label`, or for None a value no
        class has, of the classes' type (see the class docstring). ConfigError if it is a class."""
        check_is_fitted(self, "store_")
        classes = self.classes_.tolist()
        if self.unknown_label is not None:
            check_unknown_label(self.unknown_label, set(classes))
            return self.unknown_label
        if all(isinstance(label, str) for label in classes):
            value = "unknown"
            while value in classes:
                value += "_"
            return value
        return min(classes) - 1

    def _group_labels(self) -> np.ndarray:
        """For each class of classes_, the label of its group: the group's class with the most samples
        (the first in classes_ on ties)."""
        group, counts = self._groups(), self._tables["class_counts"]
        representative = {g: np.flatnonzero(group == g)[np.argmax(counts[group == g])] for g in np.unique(group)}
        return self.classes_[[representative[g] for g in group]]

    def _ancestor_label(self, concept: int) -> Any:
        """The majority label of the concept's ancestor at depth `granularity` (≥ 2)."""
        path = self.store_.ancestors(concept)
        node = path[min(int(self.granularity), len(path) - 1)]
        return self.labels_[int(np.argmax(self.store_.hist[node]))]

    def _groups(self) -> np.ndarray:
        """Group index of each class of classes_ at the current `coarse_threshold` (granularity.py)."""
        t = self._tables
        return ward_groups(t["class_centroids"], t["spread"], float(self.coarse_threshold))

    def coarse_groups(self) -> list[list[Any]]:
        """The coarse level: a partition of classes_ into groups (lists of labels, each sorted as
        classes_ is, in order of their first class), by Ward's criterion on the class centroids up
        to a merge cost of `coarse_threshold`·ρ̄² (granularity.py). It depends on the classes'
        statistics only, not on the order they were learned in."""
        check_is_fitted(self, "store_")
        check_params(self.get_params())
        group = self._groups()
        return [[_plain(label) for label in self.classes_[group == g]] for g in range(int(group.max()) + 1)]

    def decision_path(self, X: Any) -> sparse.csr_matrix:
        """Indicator matrix (n_samples, n_nodes): the nodes from the root to each query's matched concept."""
        best = self._score(X, abstention=False, exact=False, decisions=False)[1]
        concepts = self._tables["concepts"][best]
        rows, cols = [], []
        for i, concept in enumerate(concepts):
            path = self.store_.ancestors(int(concept))
            rows += [i] * len(path)
            cols += path
        return sparse.csr_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(len(concepts), self.store_.size))

    def explain(self, X: Any, n_exemplars: int = 3) -> list[Explanation]:
        """For each query: the path with distances and radii, the runner-up class, the nearest exemplars."""
        decision, best, abstention = self._score(X)
        predictions = self.predict(X)
        Xn = self._check_X(X, reset=False)
        t = self._tables
        store = self.store_
        explanations = []
        for i, x in enumerate(Xn):
            concept = int(t["concepts"][best[i]])
            path = store.ancestors(concept)
            steps = [self._step(node, x) for node in path]
            ranked = np.argsort(-decision[i])
            runner = ranked[1] if len(ranked) > 1 and np.isfinite(decision[i, ranked[1]]) else None
            runner_up = None if runner is None else (_plain(self.classes_[runner]), float(np.sqrt(-decision[i, runner])))
            explanations.append(
                Explanation(
                    prediction=_plain(predictions[i]),
                    abstained=self.tolerance is not None and bool(abstention[i] > float(self.tolerance)),
                    abstention_score=float(abstention[i]),
                    tolerance=None if self.tolerance is None else float(self.tolerance),
                    path=steps,
                    runner_up=runner_up,
                    exemplars=self._nearest_exemplars(x, concept, n_exemplars),
                )
            )
        return explanations

    def _label_value(self, index: int) -> Any:
        return _plain(self.labels_[index])

    def _step(self, node: int, x: np.ndarray) -> PathStep:
        store = self.store_
        kind = "root" if node == ROOT else "topic" if store.label[node] == NO_LABEL else "concept"
        shrunk = None
        if kind == "concept":
            distance = float(np.sqrt(store.residual_distance2(x, np.array([node]))[0, 0]))
            shrunk = float(self._radius()[np.flatnonzero(self._tables["concepts"] == node)[0]])
        else:
            distance = float(np.linalg.norm(x - store.mean[node]))
        counts = store.hist[node]
        labels = [(self._label_value(int(j)), int(counts[j])) for j in np.argsort(-counts, kind="stable")[:5] if counts[j] > 0]
        return PathStep(
            node=node,
            kind=kind,
            depth=int(store.depth[node]),
            count=int(store.count[node]),
            distance=distance,
            radius=float(store.radius(np.array([node]))[0]),
            abstention_radius=shrunk,
            labels=labels,
            created=int(store.created[node]),
        )

    def _nearest_exemplars(self, x: np.ndarray, concept: int, n: int) -> list[Exemplar]:
        """The stored samples closest to x among the matched concept and its nearest relatives' reservoirs."""
        slots = list(self._slots.get(concept, []))
        for relative in self._by_label.get(int(self.store_.label[concept]), []):
            if relative != concept:
                slots += self._slots.get(relative, [])
        if not slots or n <= 0:
            return []
        vectors = np.stack([self.exemplar_vectors_[s] for s in slots])
        distances = np.linalg.norm(vectors - x, axis=1)
        return [
            Exemplar(
                key=self.exemplar_keys_[slots[j]],
                label=self._label_value(int(self.store_.label[self.exemplar_nodes_[slots[j]]])),
                concept=int(self.exemplar_nodes_[slots[j]]),
                distance=float(distances[j]),
            )
            for j in np.argsort(distances)[:n]
        ]

    # =========================================================================== size and persistence
    @property
    def n_concepts_(self) -> int:
        check_is_fitted(self, "store_")
        return int((self.store_.label[: self.store_.size] != NO_LABEL).sum())

    @property
    def n_topics_(self) -> int:
        check_is_fitted(self, "store_")
        return len(self._topics)

    def stored_items(self) -> dict[str, int]:
        """Vectors of dimension d the memory keeps: nodes, subspace directions, exemplars, and the
        second moment's d(d+1)/2 distinct entries (it is symmetric) as ⌈(d+1)/2⌉ vectors."""
        check_is_fitted(self, "store_")
        store = self.store_
        directions = int((store.energy[: store.size] > 0).sum())
        moment = (store.dim + 2) // 2
        return {
            "nodes": store.size,
            "directions": directions,
            "exemplars": len(self.exemplar_nodes_),
            "moment": moment,
            "total": store.size + directions + len(self.exemplar_nodes_) + moment,
        }

    def topic_summary(self, top: int = 8) -> list[dict[str, Any]]:
        """Each topic (the coarsest level): id, samples, concepts under it, its `top` largest classes."""
        check_is_fitted(self, "store_")
        store = self.store_
        summary = []
        for topic in self._topics:
            counts = store.hist[topic]
            summary.append(
                {
                    "topic": topic,
                    "samples": int(store.count[topic]),
                    "concepts": sum(1 for node, owner in enumerate(self._topic_of) if owner == topic and store.label[node] != NO_LABEL),
                    "classes": [(self._label_value(int(j)), int(counts[j])) for j in np.argsort(-counts, kind="stable")[:top] if counts[j] > 0],
                    "n_classes": int((counts > 0).sum()),
                }
            )
        return summary

    def concept_counts(self) -> Counter:
        """Number of concepts per class label."""
        check_is_fitted(self, "store_")
        return Counter(self._label_value(int(label)) for label in self.store_.label[: self.store_.size] if label != NO_LABEL)

    def save(self, path: str | os.PathLike) -> None:
        """Write parameters and learned state to `path` (safetensors arrays + JSON, atomic; no
        pickle; format in persist.py). ConfigError if a parameter cannot be saved (a RandomState
        as random_state) or was changed in a way the memory refuses."""
        check_is_fitted(self, "store_")
        params = self.get_params()
        check_params(params)
        self._check_structure()
        store = self.store_
        arrays = {f"node.{name}": value for name, value in store.state().items()}
        arrays["exemplar.node"] = np.array(self.exemplar_nodes_, dtype=np.int64)
        arrays["exemplar.vector"] = np.stack(self.exemplar_vectors_) if self.exemplar_vectors_ else np.zeros((0, store.dim))
        arrays["root.moment"] = store.packed_moment()
        state = {
            "params": params,
            "dim": store.dim,
            "rank": store.rank,
            "n_features_in": int(self.n_features_in_),
            "labels": self.labels_.tolist(),
            "events": self.events_,
            "n_samples_seen": int(self.n_samples_seen_),
            "n_calls": int(self.n_calls_),
            "exemplar_keys": list(self.exemplar_keys_),
            "rng_state": self.rng_state_,
        }
        write_memory_file(path, state, arrays)

    @classmethod
    def load(cls, path: str | os.PathLike) -> StructuralMemory:
        """Read a memory written by `save`. MemoryFileError naming the file if it is truncated,
        damaged or edited, or holds a state `save` could not have written: the contents are
        checked field by field, so that even a forged file with a recomputed checksum can neither
        loop nor crash nor give NaN."""
        state, arrays = read_memory_file(path)
        try:
            return cls._from_state(state, arrays)
        except ValueError as error:  # ConfigError too: the saved parameters are invalid
            raise MemoryFileError(f"{path} does not hold a valid memory: {error}; save the memory again") from error

    @classmethod
    def _from_state(cls, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> StructuralMemory:
        """The memory that `save` wrote as (state, arrays); ValueError at the first thing `save` could not have written."""
        if set(state) != set(_STATE_FIELDS):
            raise ValueError(f"its state has the fields {brief(sorted(state))}, expected {sorted(_STATE_FIELDS)}")
        if not isinstance(state["params"], dict):
            raise ValueError("its parameters are not a JSON object")
        check_params(state["params"])
        memory = cls(**state["params"])
        dim, rank, n_features, seen, calls = (_count_field(state, n) for n in ("dim", "rank", "n_features_in", "n_samples_seen", "n_calls"))
        if dim < 1 or n_features != dim or rank != min(int(memory.rank), dim // 4):
            raise ValueError(f"dim {dim}, n_features_in {n_features} and rank {rank} do not agree with each other and with rank={memory.rank}")
        labels = state["labels"]
        if not _distinct_labels(labels):
            raise ValueError("its labels are not a non-empty list of distinct strings or of distinct finite numbers")
        if memory.unknown_label is not None:
            check_unknown_label(memory.unknown_label, set(labels))
        expected = {f"node.{name}" for name in ConceptStore.ARRAYS} | {"exemplar.node", "exemplar.vector", "root.moment"}
        if set(arrays) != expected:
            raise ValueError(f"it holds the arrays {brief(sorted(arrays))}, expected {sorted(expected)}")
        nodes = {name.removeprefix("node."): value for name, value in arrays.items() if name.startswith("node.")}
        store = ConceptStore.from_state(dim, rank, len(labels), nodes)
        store.set_moment(arrays["root.moment"])
        events = state["events"]
        if not (isinstance(events, dict) and set(events) == set(EVENTS) and all(_whole(v, 0) for v in events.values())):
            raise ValueError(f"its event counts are not the whole numbers ≥ 0 of {', '.join(EVENTS)}")
        if not (store.depth >= 2).any() or store.count[ROOT] != seen or events["absorb"] != seen or (store.created >= max(calls, 1)).any():
            raise ValueError(
                "its counts disagree: it needs a concept, the root's count and the absorb events must equal the samples seen, "
                "and every node must come from an earlier call"
            )
        memory.store_ = store
        memory._structure = {name: getattr(memory, name) for name in STRUCTURAL}
        memory.n_features_in_ = n_features
        memory.labels_ = np.array(labels, dtype=object)
        memory.classes_ = np.array(sorted(labels))
        memory.events_ = {name: events[name] for name in EVENTS}
        memory.n_samples_seen_, memory.n_calls_ = seen, calls
        memory._set_exemplars(arrays["exemplar.node"], arrays["exemplar.vector"], state["exemplar_keys"])
        generator = np.random.default_rng()
        try:
            generator.bit_generator.state = state["rng_state"]
        except (TypeError, ValueError, KeyError, OverflowError) as error:
            raise ValueError(f"its reservoir generator state is not a PCG64 state ({type(error).__name__}: {error})") from error
        memory.rng_state_ = state["rng_state"]
        memory._rebuild_index()
        return memory

    def _set_exemplars(self, nodes: np.ndarray, vectors: np.ndarray, keys: Any) -> None:
        """The loaded reservoirs, once checked: m concept ids, m finite vectors, m string keys, and no
        concept holding more than n_exemplars of them or more than it absorbed."""
        store = self.store_
        m = len(nodes)
        if nodes.dtype != np.int64 or nodes.ndim != 1 or vectors.dtype != np.float64 or vectors.shape != (m, store.dim):
            found = f"{nodes.dtype} {nodes.shape} and {vectors.dtype} {vectors.shape}"
            raise ValueError(f"its exemplar arrays are {found}, expected int64 ({m},) and float64 ({m}, {store.dim})")
        if not np.all(np.isfinite(vectors)) or np.abs(vectors).max(initial=0.0) > MAX_ABS:
            raise ValueError("its exemplar vectors hold NaN, infinite or out-of-range values")
        if not (isinstance(keys, list) and len(keys) == m and all(isinstance(key, str) for key in keys)):
            raise ValueError(f"its exemplar keys are not a list of {m} strings")
        if m and not (((nodes >= 0) & (nodes < store.size)).all() and (store.depth[nodes] >= 2).all()):
            raise ValueError("an exemplar belongs to a node that is not a concept")
        held = np.bincount(nodes, minlength=store.size)
        if (held > np.minimum(store.count[: store.size], self.n_exemplars)).any():
            raise ValueError("a concept holds more exemplars than n_exemplars or than the samples it absorbed")
        self.exemplar_nodes_ = nodes.tolist()
        self.exemplar_vectors_ = list(vectors)
        self.exemplar_keys_ = list(keys)


_STATE_FIELDS = ("params", "dim", "rank", "n_features_in", "labels", "events", "n_samples_seen", "n_calls", "exemplar_keys", "rng_state")
"""The JSON fields of a saved memory (persist.py holds the file format)."""


def _count_field(state: dict[str, Any], name: str) -> int:
    value = state[name]
    if not _whole(value, 0):
        raise ValueError(f"its {name} is {brief(value)}, not a whole number ≥ 0")
    return int(value)


def _distinct_labels(labels: Any) -> bool:
    """A non-empty list of distinct class labels of one kind: strings, or finite numbers (bools included)."""
    if not isinstance(labels, list) or not labels:
        return False
    texts = [isinstance(label, str) for label in labels]
    kinds_agree = all(texts) or not any(texts)
    valid = all(isinstance(label, bool) or _label_like(label) for label in labels)
    return kinds_agree and valid and len(set(labels)) == len(labels)


def check_unknown_label(value: Any, labels: set[Any]) -> None:
    """ConfigError if the unknown label `value` is one of the class `labels`."""
    if value in labels:
        raise ConfigError(
            f"unknown_label={brief(value)} is also a class label, so an abstention would read as that class; "
            "choose a value no class has, or None (the default) for one picked automatically"
        )


def _same(a: Any, b: Any) -> bool:
    """Whether two parameter values are the same setting (a RandomState only as the same object)."""
    if isinstance(a, np.random.RandomState) or isinstance(b, np.random.RandomState):
        return a is b
    return a is b or bool(a == b)


def _cpus() -> int:
    """CPUs this process may run on (its affinity where the platform tells it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


@functools.cache
def _threadpools() -> ThreadpoolController:
    """The process's thread pools, inspected once: `threadpool_limits` inspects the loaded libraries
    at every call (about a millisecond, a few per cent of a partial_fit call on CLINC150)."""
    return ThreadpoolController()


def _generator(random_state: int | np.random.RandomState | None) -> np.random.Generator:
    """The reservoirs' generator: an int seeds it directly, None with fresh entropy, a RandomState
    through 128 bits drawn from it (it is consumed, as scikit-learn's estimators consume theirs)."""
    if isinstance(random_state, np.random.RandomState):
        random_state = int.from_bytes(random_state.bytes(16), "little")
    return np.random.default_rng(random_state)


def _within_beam(X: np.ndarray, topic_means: np.ndarray, beam: int | None) -> np.ndarray | None:
    """(n, topics) True at each row's `beam` topics of nearest centroid; None when the beam holds them all."""
    if beam is None or len(topic_means) <= beam:
        return None
    distances = (topic_means * topic_means).sum(axis=1)[None, :] - 2.0 * X @ topic_means.T
    nearest = np.argpartition(distances, beam - 1, axis=1)[:, :beam]
    inside = np.zeros((len(X), len(topic_means)), dtype=bool)
    inside[np.arange(len(X))[:, None], nearest] = True
    return inside


def _unit_rows(X: np.ndarray) -> np.ndarray:
    """Each row divided by its L2 norm, at any scale. A row whose squared norm lies beyond 2^±700
    is first multiplied by the power of two that brings its largest entry into [0.5, 1): exact in
    floating point, and X / ‖X‖ gives the same bits for rows whose squares neither overflow nor
    underflow, so rows at 2^±600 give the same vectors as at 1."""
    sq = np.einsum("nd,nd->n", X, X)
    far = ~((sq >= 2.0**-700) & (sq <= 2.0**700))  # only these rows need the exact rescaling first
    if far.any():
        X = X.copy()
        _, exponent = np.frexp(np.abs(X[far]).max(axis=1, keepdims=True))
        X[far] = np.ldexp(X[far], -exponent)
        sq[far] = np.einsum("nd,nd->n", X[far], X[far])
    norm = np.sqrt(sq)[:, None]
    return X / np.where(norm > 0.0, norm, 1.0)


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value (for JSON and readable explanations)."""
    return value.item() if isinstance(value, np.generic) else value
