"""The statistics of concept nodes, stored as growing arrays (one row per node).

A node summarises the samples it absorbed with running statistics only, so that a sample can
be absorbed in O(d·rank²) without keeping it:

- count n and centroid μ (the running mean; DBM's "common concept core");
- a principal subspace: the top `rank` directions U (rank × d, orthonormal rows) of the node's
  scatter matrix Σᵢ(xᵢ − μ)(xᵢ − μ)ᵀ and the scatter along each, e. Maintained by the
  incremental SVD with mean update of Ross, Lim, Lin & Yang (2008, "Incremental learning for
  robust visual tracking", IJCV §3.1), truncated to `rank` (Brand 2002): absorbing x adds the
  column c = sqrt(n/(n+1))·(x − μ_n) to the scatter (S_{n+1} = S_n + c cᵀ, exactly), and the
  columns of up to `BLOCK` absorbed samples are folded into U, e in one small eigenproblem
  (`flush`), which is cheaper than one per sample and truncates less often. Count, centroid and
  total scatter are always current; between flushes U lags by fewer than `BLOCK` samples;
- total scatter S = Σᵢ‖xᵢ − μ‖² (exact, Welford-style), hence the residual scatter outside the
  subspace S − Σe;
- a label histogram, parent, depth and the partial_fit call that created it.

Residual distance (the subspace method: Watanabe 1967 "CLAFIC"; Oja 1983, "Subspace Methods
of Pattern Recognition"): δ(x)² = ‖x − μ‖² − ‖U(x − μ)‖², the squared distance from x to the
node's affine subspace μ + span(U). With rank 0 it is the squared distance to the centroid.
Radius: ρ̂ = sqrt((S − Σe) / n), the root-mean-square residual distance of the node's own
samples (what δ is for a typical member).

Rows are appended and updated, never removed or re-parented: node ids are stable forever.
"""

from __future__ import annotations

import numpy as np

ROOT = 0
NO_LABEL = -1
BLOCK = 16
_GROWTH = 64
MAX_ABS = 2.0**256
"""Largest |value| a stored vector may hold: squared (2^512) and summed over any realistic number
of samples and dimensions it stays far below float64's limit (2^1024), so no statistic overflows."""


class ConceptStore:
    """Per-node arrays of a concept tree in `dim` dimensions with subspaces of `rank` directions."""

    ARRAYS = ("count", "mean", "basis", "energy", "scatter", "parent", "depth", "label", "created", "hist")

    def __init__(self, dim: int, rank: int) -> None:
        self.dim, self.rank = int(dim), int(rank)
        self.size = 0
        self.count = np.zeros(0, dtype=np.int64)
        self.mean = np.zeros((0, self.dim))
        self.basis = np.zeros((0, self.rank, self.dim))
        self.energy = np.zeros((0, self.rank))
        self.scatter = np.zeros(0)
        self.parent = np.zeros(0, dtype=np.int64)
        self.depth = np.zeros(0, dtype=np.int64)
        self.label = np.zeros(0, dtype=np.int64)  # class index for concepts, NO_LABEL for the root and topics
        self.created = np.zeros(0, dtype=np.int64)  # index of the partial_fit call that created the node
        self.hist = np.zeros((0, 0), dtype=np.int64)  # (nodes, classes) counts of absorbed samples per class
        self._columns: dict[int, list[np.ndarray]] = {}  # scatter columns not yet folded into the subspace

    # ------------------------------------------------------------------------ growth
    def _reserve(self, rows: int) -> None:
        capacity = len(self.count)
        if rows <= capacity:
            return
        extra = max(rows - capacity, _GROWTH, capacity // 2)
        for name in self.ARRAYS:
            array = getattr(self, name)
            padding = np.zeros((extra, *array.shape[1:]), dtype=array.dtype)
            setattr(self, name, np.concatenate([array, padding]))

    def ensure_classes(self, n_classes: int) -> None:
        """Widen the label histograms to `n_classes` columns."""
        if n_classes > self.hist.shape[1]:
            self.hist = np.pad(self.hist, ((0, 0), (0, n_classes - self.hist.shape[1])))

    def add_node(self, parent: int, label: int, created: int) -> int:
        """Append an empty node under `parent` (−1 for the root) and return its id."""
        self._reserve(self.size + 1)
        node = self.size
        self.parent[node] = parent
        self.depth[node] = 0 if parent < 0 else self.depth[parent] + 1
        self.label[node] = label
        self.created[node] = created
        self.size += 1
        return node

    # ------------------------------------------------------------------------ statistics
    def absorb(self, node: int, x: np.ndarray, label: int) -> None:
        """Add sample x (class index `label`) to the node's running statistics and subspace."""
        n = self.count[node]
        deviation = x - self.mean[node]
        weight = n / (n + 1.0)
        self.scatter[node] += weight * float(deviation @ deviation)
        if self.rank and n > 0:
            columns = self._columns.setdefault(node, [])
            columns.append(np.sqrt(weight) * deviation)
            if len(columns) >= BLOCK:
                self.flush(node)
        self.mean[node] += deviation / (n + 1.0)
        self.count[node] = n + 1
        self.hist[node, label] += 1

    def absorb_aggregate(self, nodes: tuple[int, ...], x: np.ndarray, label: int) -> None:
        """Add x to the count, centroid, scatter and histogram of each node (no subspace)."""
        for node in nodes:
            n = self.count[node]
            mean = self.mean[node]  # a view: updated in place
            deviation = x - mean
            self.scatter[node] += n / (n + 1.0) * float(deviation @ deviation)
            mean += deviation / (n + 1.0)
            self.count[node] = n + 1
            self.hist[node, label] += 1

    def flush(self, node: int | None = None) -> None:
        """Fold pending scatter columns into the subspace of `node` (None: of every node)."""
        for key in [node] if node is not None else list(self._columns):
            columns = self._columns.pop(key, None)
            if columns:
                self._update_subspace(key, np.stack(columns))

    def _update_subspace(self, node: int, columns: np.ndarray) -> None:
        """Truncated update of the scatter U^T diag(e) U + Σ c cᵀ (Ross et al. 2008).

        The new scatter is A^T A with A = [diag(sqrt e) U; columns]; its top directions come from
        the eigen-decomposition of the small Gram matrix A A^T.
        """
        rows = np.concatenate([self.basis[node] * np.sqrt(self.energy[node])[:, None], columns])
        values, vectors = np.linalg.eigh(rows @ rows.T)
        top = np.argsort(values)[::-1][: self.rank]
        values, vectors = np.clip(values[top], 0.0, None), vectors[:, top]
        directions = vectors.T @ rows
        norms = np.sqrt(values)
        keep = norms > 1e-12 * max(1.0, float(norms.max(initial=0.0)))
        directions[keep] /= norms[keep, None]
        directions[~keep] = 0.0
        values[~keep] = 0.0
        self.basis[node], self.energy[node] = directions, values

    def residual_scatter(self, nodes: np.ndarray | slice = slice(None)) -> np.ndarray:
        """S − Σe: scatter of each node's samples outside its subspace (≥ 0)."""
        return np.clip(self.scatter[: self.size][nodes] - self.energy[: self.size][nodes].sum(axis=1), 0.0, None)

    def radius(self, nodes: np.ndarray | slice = slice(None)) -> np.ndarray:
        """ρ̂ = sqrt(residual scatter / count): the RMS residual distance of a node's own samples."""
        count = np.maximum(self.count[: self.size][nodes], 1)
        return np.sqrt(self.residual_scatter(nodes) / count)

    def residual_distance2(self, x: np.ndarray, nodes: np.ndarray) -> np.ndarray:
        """δ² from each sample in x (n, d) to each node in `nodes`: shape (n, len(nodes))."""
        x = np.atleast_2d(x)
        deviation = x[:, None, :] - self.mean[nodes][None, :, :]
        inside = np.einsum("nkd,krd->nkr", deviation, self.basis[nodes])
        return np.clip((deviation * deviation).sum(axis=2) - (inside * inside).sum(axis=2), 0.0, None)

    def residual_distance2_one(self, x: np.ndarray, node: int) -> float:
        """δ² from one sample to one node (the per-event fast path of `residual_distance2`)."""
        deviation = x - self.mean[node]
        inside = self.basis[node] @ deviation
        return max(float(deviation @ deviation - inside @ inside), 0.0)

    # ------------------------------------------------------------------------ tree helpers
    def ancestors(self, node: int) -> list[int]:
        """Node ids from the root down to `node`."""
        path = [node]
        while self.parent[path[-1]] >= 0:
            path.append(int(self.parent[path[-1]]))
        return path[::-1]

    def state(self) -> dict[str, np.ndarray]:
        """The used rows of every array (copies), for saving; pending columns must be flushed first."""
        if self._columns:
            raise RuntimeError("flush() the pending subspace updates before reading the state")
        return {name: getattr(self, name)[: self.size].copy() for name in self.ARRAYS}

    @classmethod
    def from_state(cls, dim: int, rank: int, n_classes: int, arrays: dict[str, np.ndarray]) -> ConceptStore:
        """A store from saved arrays, once they are checked to form a tree this class could have
        grown (ValueError naming the first problem otherwise), so that a forged file can neither
        loop (`ancestors` on a parent cycle) nor index out of range nor feed NaN into scoring."""
        store = cls(dim, rank)
        count = arrays.get("count")
        n = count.shape[0] if count is not None and count.ndim else 0
        if n < 1:
            raise ValueError("the node arrays hold no root")
        for name in cls.ARRAYS:
            template = getattr(store, name)
            shape = (n, *template.shape[1:]) if name != "hist" else (n, n_classes)
            array = arrays.get(name)
            if array is None or array.shape != shape or array.dtype != template.dtype:
                found = "missing" if array is None else f"{array.dtype} {array.shape}"
                raise ValueError(f"node array {name!r} is {found}, expected {template.dtype} {shape}")
            setattr(store, name, array.copy())
        store.size = n
        store._check()
        return store

    def _check(self) -> None:
        """ValueError unless the statistics are finite and consistent and every parent precedes its child."""
        # Orthonormal directions have entries in [-1, 1]; centroids are means of inputs within ±MAX_ABS.
        for name, bound in (("mean", MAX_ABS), ("basis", 1.0 + 1e-6), ("energy", np.inf), ("scatter", np.inf)):
            values = getattr(self, name)
            if not np.all(np.isfinite(values)) or np.abs(values).max(initial=0.0) > bound:
                raise ValueError(f"node array {name!r} holds NaN, infinite or out-of-range values")
        if (self.energy < 0).any() or (self.scatter < 0).any() or (self.hist < 0).any():
            raise ValueError("a node has a negative scatter, energy or class count")
        if not np.array_equal(self.hist.sum(axis=1), self.count):
            raise ValueError("a node's class counts do not add up to its count")
        if (self.created < 0).any():
            raise ValueError("a node was created in a negative call")
        # Nodes are only ever appended under existing ones: parents come first, so there is no cycle.
        nodes = np.arange(self.size)
        if self.parent[ROOT] != -1 or not ((self.parent[1:] >= 0) & (self.parent[1:] < nodes[1:])).all():
            raise ValueError("a node's parent does not come before it (a parent cycle or an out-of-range parent)")
        expected_depth = np.zeros(self.size, dtype=np.int64)
        for node in range(1, self.size):
            expected_depth[node] = expected_depth[self.parent[node]] + 1
        if not np.array_equal(self.depth, expected_depth):
            raise ValueError("a node's depth does not match its parents")
        concept = self.depth >= 2  # the root (depth 0) and topics (depth 1) carry no label
        if (self.label[~concept] != NO_LABEL).any() or not ((self.label[concept] >= 0) & (self.label[concept] < self.hist.shape[1])).all():
            raise ValueError("a node's label is out of range, or the root or a topic has one")
        sub = concept & (self.depth[self.parent] >= 2) & (nodes > 0)
        if (self.label[sub] != self.label[self.parent[sub]]).any():
            raise ValueError("a sub-concept's label differs from its parent concept's")
