"""The memory's coarse level: groups of classes, derived from the classes' statistics alone.

A class is summarised by its centroid c_k (the count-weighted mean of its concepts' centroids)
and the pooled within-class spread ρ̄² = Σ_k S_k / Σ_k n_k, the mean squared distance of a
training sample to its class centroid (S_k: the class's total scatter about c_k, from its
concepts' scatters by the parallel-axis theorem).

Groups are formed by Ward's agglomerative criterion (Ward 1963) on the class centroids, each
class counting once: starting from one group per class, the pair of groups whose merge raises
the within-group scatter of centroids the least, Δ(a, b) = n_a n_b / (n_a + n_b) · ‖c̄_a − c̄_b‖²,
is merged, until the cheapest merge would cost more than τ·ρ̄² (τ = `coarse_threshold`): groups
stop growing when joining them would move centroids by more than τ typical within-class
distances. The dendrogram is computed with the classes sorted by label, so the partition depends
only on the classes' statistics, never on the order in which the classes arrived (tested); the
groups are relabelled in order of their smallest class.

The coarse level is recomputed from the append-only concepts after every `partial_fit` call: as
classes arrive a group can gain classes, merge with another or split when a newcomer changes
which merges are cheapest; the concepts under it never change.
"""

from __future__ import annotations

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage


def class_statistics(count: np.ndarray, mean: np.ndarray, scatter: np.ndarray, label: np.ndarray, n_labels: int) -> tuple[np.ndarray, np.ndarray, float]:
    """(class counts (K,), class centroids (K, d), pooled within-class mean squared distance ρ̄²)
    from the concepts' counts, centroids, total scatters and class indices (labels 0..K−1)."""
    counts = np.bincount(label, weights=count, minlength=n_labels)
    sums = np.zeros((n_labels, mean.shape[1]))
    np.add.at(sums, label, mean * count[:, None])
    centroids = sums / np.maximum(counts, 1)[:, None]
    offset = mean - centroids[label]
    within = scatter.sum() + float((count * np.einsum("ld,ld->l", offset, offset)).sum())
    return counts, centroids, within / max(float(counts.sum()), 1.0)


def ward_groups(centroids: np.ndarray, spread: float, threshold: float) -> np.ndarray:
    """Group index (0..G−1, in order of each group's first row) of every row of `centroids`:
    Ward's merges up to a cost of `threshold`·`spread` (see the module docstring)."""
    k = len(centroids)
    if k < 2:
        return np.zeros(k, dtype=np.int64)
    # scipy's Ward height of a merge is sqrt(2Δ); the cut height for a cost of τ·ρ̄² follows.
    tree = linkage(centroids, method="ward")
    raw = fcluster(tree, np.sqrt(2.0 * threshold * spread), criterion="distance")
    _, first, inverse = np.unique(raw, return_index=True, return_inverse=True)
    order = np.argsort(np.argsort(first))
    return order[inverse].astype(np.int64)
