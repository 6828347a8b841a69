"""The memory's coarse level scored against a dataset's domains, with Ward's batch clustering as baseline.

CLINC150's 150 intents belong to 10 domains (banking, travel, ...). `domains.json`, beside
`data_full.json` in the dataset's folder, maps each domain to its intents. The memory never reads
it: its coarse level (`StructuralMemory.coarse_groups`) is learned from embeddings and labels
alone. Only this evaluation reads it, after the last task of each task order:

- **ARI**: the adjusted Rand index (Hubert & Arabie 1985; `sklearn.metrics.adjusted_rand_score`)
  between a partition of the classes and the domains (1: the same partition; about 0: chance).
- **Domain accuracy**: the fraction of in-scope test queries whose predicted group's domain is
  the query's true domain. The prediction is the memory's fine class prediction (`predict` with
  no abstention, tolerance None, at the finest level) mapped to that class's group; a group's
  domain is the majority domain of its classes (ties: the domain that comes first in the file).
- **Order stability**: the adjusted Rand index between the coarse partitions of every pair of
  task orders; the smallest is reported (over one task order there is none).
- **Baseline**: scikit-learn's `AgglomerativeClustering(linkage="ward")` of the class centroids
  of the training embeddings, all classes at once, told either the number of domains
  (`ward_domains`) or the memory's number of groups (`ward_groups`); the same two measures, with
  the memory's same fine predictions mapped through the baseline's groups.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.cluster import AgglomerativeClustering
from sklearn.metrics import adjusted_rand_score

from plasticity.data.files import default_cache_dir
from plasticity.errors import ConfigError, brief, os_reason
from plasticity.results import CoarseScores, CoarseSummary, PartitionScore, PartitionSummary

DOMAIN_FILE = "domains.json"
WITH_DOMAINS = ("clinc150",)
"""Registered datasets whose folder may hold a domain map."""
MAX_BYTES = 1 << 20


@dataclass(frozen=True)
class Domains:
    """A domain map: the domain names in the file's order, and each class index's domain index."""

    names: tuple[str, ...]
    of_class: np.ndarray
    file: str = ""

    def to_dict(self) -> dict[str, Any]:
        """What results.json records of it."""
        return {"file": self.file, "names": list(self.names)}


def domain_file(data: str, root: str | os.PathLike | None) -> Path | None:
    """The domain map of registered dataset `data` read from `root` (default: the dataset's
    folder in the plasticity cache), or None when the dataset has none or the file is absent."""
    if data not in WITH_DOMAINS:
        return None
    folder = Path(root) if root is not None else default_cache_dir() / data
    path = folder / DOMAIN_FILE
    return path if path.is_file() else None


def read_domains(path: str | os.PathLike, classes: Sequence[str]) -> Domains:
    """The domain map at `path` ({domain: [class name, ...]}) over `classes`; ConfigError naming the
    file unless it is a JSON object of lists of class names that holds every class exactly once."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_BYTES:
            raise ConfigError(f"{path}: larger than {MAX_BYTES:,} bytes; a domain map is a small JSON object")
        payload = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"{path} cannot be read ({os_reason(error)}); make it readable or remove it") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigError(f"{path} is not UTF-8 JSON ({error}); fix or remove it") from None
    if not isinstance(payload, dict) or not payload:
        raise ConfigError(f"{path} must be a non-empty JSON object {{domain: [class name, ...]}}; got {brief(payload)}")
    index = {name: i for i, name in enumerate(classes)}
    of_class = np.full(len(classes), -1, dtype=np.int64)
    for d, (domain, members) in enumerate(payload.items()):
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise ConfigError(f"{path}: domain {brief(domain)} must list class names (strings); got {brief(members)}")
        for member in members:
            if member not in index:
                raise ConfigError(f"{path}: domain {brief(domain)} names {brief(member)}, which is not a class of the dataset")
            if of_class[index[member]] >= 0:
                raise ConfigError(f"{path}: class {brief(member)} is in more than one domain (or twice in one)")
            of_class[index[member]] = d
    missing = [name for name, i in index.items() if of_class[i] < 0]
    if missing:
        raise ConfigError(f"{path}: {len(missing)} class(es) in no domain, e.g. {brief(missing[:3])}; every class must be in one")
    return Domains(tuple(payload), of_class, str(path))


def group_of_class(groups: Sequence[Sequence[int]], n_classes: int) -> np.ndarray:
    """Group index of each class index (−1 for a class in no group)."""
    out = np.full(n_classes, -1, dtype=np.int64)
    for g, members in enumerate(groups):
        out[np.asarray(members, dtype=np.int64)] = g
    return out


def group_domains(groups: Sequence[Sequence[int]], domains: Domains) -> np.ndarray:
    """The majority domain of each group's classes; ties go to the domain first in the file."""
    # np.argmax returns the first of equal counts, and domain indices follow the file's order.
    return np.array([np.argmax(np.bincount(domains.of_class[list(members)], minlength=len(domains.names))) for members in groups], dtype=np.int64)


def domain_accuracy(predicted: np.ndarray, truth: np.ndarray, groups: Sequence[Sequence[int]], domains: Domains) -> float:
    """Fraction of queries whose predicted class's group has the true class's domain (above)."""
    group = group_of_class(groups, len(domains.of_class))
    if (group[predicted] < 0).any():
        raise ValueError("a predicted class is in no group")
    return float((group_domains(groups, domains)[group[predicted]] == domains.of_class[truth]).mean())


def partition_ari(groups: Sequence[Sequence[int]], reference: np.ndarray) -> float:
    """Adjusted Rand index between a partition of some classes and `reference` labels of every
    class index, over the classes of the partition."""
    classes = np.concatenate([np.asarray(g, dtype=np.int64) for g in groups])
    return float(adjusted_rand_score(reference[classes], group_of_class(groups, len(reference))[classes]))


def class_centroids(X: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """Mean of each class's rows (n_classes, d), in float64."""
    sums = np.zeros((n_classes, X.shape[1]))
    np.add.at(sums, y, X.astype(np.float64))
    return sums / np.maximum(np.bincount(y, minlength=n_classes), 1)[:, None]


def ward_partition(centroids: np.ndarray, n_clusters: int) -> list[list[int]]:
    """scikit-learn's Ward clustering of the rows into `n_clusters` groups (at most one per row),
    as lists of row indices in order of their first row."""
    n_clusters = min(max(n_clusters, 1), len(centroids))
    if n_clusters == len(centroids):
        return [[i] for i in range(len(centroids))]
    labels = AgglomerativeClustering(n_clusters=n_clusters, linkage="ward").fit_predict(centroids)
    _, first = np.unique(labels, return_index=True)
    return [np.flatnonzero(labels == labels[i]).tolist() for i in np.sort(first)]


def score_partition(groups: Sequence[Sequence[int]], predicted: np.ndarray, truth: np.ndarray, domains: Domains) -> PartitionScore:
    return PartitionScore(groups=len(groups), ari=partition_ari(groups, domains.of_class), domain_accuracy=domain_accuracy(predicted, truth, groups, domains))


def coarse_scores(groups: list[list[int]], predicted: np.ndarray, truth: np.ndarray, centroids: np.ndarray, domains: Domains) -> CoarseScores:
    """The memory's coarse partition `groups` (class indices) and Ward's batch partitions of the
    class `centroids`, each scored against `domains` with the memory's fine class predictions
    `predicted` of the in-scope test queries whose classes are `truth`."""
    return CoarseScores(
        domains=len(domains.names),
        memory=score_partition(groups, predicted, truth, domains),
        ward_domains=score_partition(ward_partition(centroids, len(domains.names)), predicted, truth, domains),
        ward_groups=score_partition(ward_partition(centroids, len(groups)), predicted, truth, domains),
    )


def order_stability(partitions: Sequence[Sequence[Sequence[int]]]) -> float | None:
    """The smallest adjusted Rand index between the partitions of two task orders (None for one)."""
    if len(partitions) < 2:
        return None
    n = 1 + max(int(c) for groups in partitions for members in groups for c in members)
    labels = [group_of_class(groups, n) for groups in partitions]
    return min(float(adjusted_rand_score(a, b)) for a, b in combinations(labels, 2))


def _std(values: list[float]) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def _partition_summary(scores: list[PartitionScore]) -> PartitionSummary:
    ari, accuracy = [s.ari for s in scores], [s.domain_accuracy for s in scores]
    return PartitionSummary(
        groups_mean=float(np.mean([s.groups for s in scores])),
        ari_mean=float(np.mean(ari)),
        ari_std=_std(ari),
        domain_accuracy_mean=float(np.mean(accuracy)),
        domain_accuracy_std=_std(accuracy),
    )


def coarse_summary(scores: list[CoarseScores], partitions: list[list[list[int]]]) -> CoarseSummary:
    """Means and spreads over the task orders, and the order stability of their partitions."""
    return CoarseSummary(
        domains=scores[0].domains,
        memory=_partition_summary([s.memory for s in scores]),
        ward_domains=_partition_summary([s.ward_domains for s in scores]),
        ward_groups=_partition_summary([s.ward_groups for s in scores]),
        order_stability_min=order_stability(partitions),
    )
