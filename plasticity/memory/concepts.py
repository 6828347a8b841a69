"""The statistics of concept nodes, stored as growing arrays (one row per node).

A node summarises the samples it absorbed with running statistics only, so that a sample can
be absorbed in O(d·rank²) without keeping it:

- count n and centroid μ (the running mean; DBM's "common concept core");
- a principal subspace: the top `rank` directions U (rank × d, orthonormal rows) of the node's
  scatter matrix Σᵢ(xᵢ − μ)(xᵢ − μ)ᵀ and the scatter along each, e. Maintained by the
  incremental SVD with mean update of Ross, Lim, Lin & Yang (2008, "Incremental learning for
  robust visual tracking", IJCV §3.1), truncated to `rank` (Brand 2002): absorbing x adds the
  column c = sqrt(n/(n+1))·(x − μ_n) to the scatter (S_{n+1} = S_n + c cᵀ, exactly; a block of
  samples adds its centred rows and one row for the shift of the mean). The pending columns are
  folded into U, e by `flush` (the memory calls it after each block of samples), `BLOCK` columns
  per small eigenproblem, which is cheaper than one per sample and truncates less often. Count,
  centroid and total scatter are always current; U is current after a flush;
- total scatter S = Σᵢ‖xᵢ − μ‖² (exact, Welford-style), hence the residual scatter outside the
  subspace S − Σe;
- a label histogram, parent, depth and the partial_fit call that created it.

The store also keeps one statistic of the whole stream, the second moment Σ x xᵀ (d × d, symmetric:
its upper triangle is kept), from which the pooled within-concept covariance W̄ follows exactly
(`within`).

Residual distance (the subspace method: Watanabe 1967 "CLAFIC"; Oja 1983, "Subspace Methods
of Pattern Recognition"): δ(x)² = ‖x − μ‖² − ‖U(x − μ)‖², the squared distance from x to the
node's affine subspace μ + span(U). With rank 0 it is the squared distance to the centroid.
Radius: ρ̂ = sqrt((S − Σe) / n), the root-mean-square residual distance of the node's own
samples (what δ is for a typical member).

Rows are appended and updated, never removed or re-parented: node ids are stable forever.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import blas

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
        self.moment = np.zeros((self.dim, self.dim))  # Σ x xᵀ over every absorbed sample (the root's second moment)

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
    def absorb(self, node: int, X: np.ndarray, label: int) -> None:
        """Add the samples X (m, d) of class index `label` to the node's statistics and subspace.

        The block is merged exactly (Chan, Golub & LeVeque 1979): with block mean x̄ and
        δ = x̄ − μ, S ← S + Σ‖x − x̄‖² + n m/(n+m)‖δ‖² and μ ← μ + m/(n+m)·δ. The rows x − x̄ and
        sqrt(n m/(n+m))·δ, whose outer products add up to the scatter matrix's increment, are the
        subspace's pending columns (a block of one sample gives the single column
        sqrt(n/(n+1))·(x − μ) of Ross et al. 2008)."""
        n, m = int(self.count[node]), len(X)
        block_mean = X.mean(axis=0)
        centred = X - block_mean
        delta = block_mean - self.mean[node]
        weight = n * m / (n + m)
        self.scatter[node] += float(np.einsum("nd,nd->", centred, centred)) + weight * float(delta @ delta)
        if self.rank:
            columns = self._columns.setdefault(node, [])
            if m > 1:
                columns.append(centred)
            if n > 0:
                columns.append(np.sqrt(weight) * delta[None, :])
        self.mean[node] += delta * (m / (n + m))
        self.count[node] = n + m
        self.hist[node, label] += m

    def absorb_aggregate(self, nodes: tuple[int, ...], X: np.ndarray, label: int) -> None:
        """Add the samples X of class index `label` to the count, centroid, scatter and histogram
        of each node (no subspace), merged as in `absorb`."""
        m = len(X)
        block_mean = X.mean(axis=0)
        centred = X - block_mean
        own = float(np.einsum("nd,nd->", centred, centred))
        for node in nodes:
            n = int(self.count[node])
            delta = block_mean - self.mean[node]
            self.scatter[node] += own + n * m / (n + m) * float(delta @ delta)
            self.mean[node] += delta * (m / (n + m))
            self.count[node] = n + m
            self.hist[node, label] += m

    def absorb_moment(self, X: np.ndarray) -> None:
        """Add Σ x xᵀ of the samples X to the second moment, from which `within` derives."""
        # The upper triangle by BLAS syrk (half the work of X.T @ X); `within` symmetrises.
        self.moment = blas.dsyrk(1.0, X, trans=1, beta=1.0, c=self.moment, lower=0)

    def packed_moment(self) -> np.ndarray:
        """The second moment's distinct entries: its upper triangle, row by row (d(d+1)/2 numbers, what a memory file stores)."""
        return self.moment[np.triu_indices(self.dim)]

    def set_moment(self, packed: np.ndarray) -> None:
        """The saved second moment (`packed_moment`), once checked (ValueError otherwise): finite
        float64 (d(d+1)/2,), and at least what the concepts' centroids imply (`within` positive
        semidefinite)."""
        size = self.dim * (self.dim + 1) // 2
        if packed.dtype != np.float64 or packed.shape != (size,) or not np.all(np.isfinite(packed)):
            found = f"{packed.dtype} {packed.shape}"
            raise ValueError(f"its second moment is {found} or not finite, expected finite float64 ({size},): the upper triangle of ({self.dim}, {self.dim})")
        self.moment = np.zeros((self.dim, self.dim))
        self.moment[np.triu_indices(self.dim)] = packed
        concepts = np.flatnonzero(self.label[: self.size] != NO_LABEL)
        values = np.linalg.eigvalsh(self.within(concepts))
        if values.min(initial=0.0) < -1e-9 * max(float(np.abs(np.diagonal(self.moment)).max(initial=0.0)), 1e-300):
            raise ValueError("its second moment is smaller than its concepts' centroids imply (the within-concept covariance is not positive semidefinite)")

    def within(self, nodes: np.ndarray) -> np.ndarray:
        """W̄ = (Σ x xᵀ − Σ_ℓ n_ℓ μ_ℓ μ_ℓᵀ) / Σ_ℓ n_ℓ: the pooled within-node covariance of the
        samples of `nodes` (which must partition everything absorbed: every concept), symmetrised."""
        count = self.count[nodes].astype(np.float64)
        means = self.mean[nodes]
        moment = np.triu(self.moment) + np.triu(self.moment, 1).T
        return (moment - means.T @ (means * count[:, None])) / max(float(count.sum()), 1.0)

    def flush(self, node: int | None = None) -> None:
        """Fold the pending scatter columns into the subspace of `node` (None: of every node),
        `BLOCK` columns at a time; the nodes' i-th blocks are folded in one stacked eigenproblem."""
        pending = {}
        for key in [node] if node is not None else list(self._columns):
            columns = self._columns.pop(key, None)
            if columns:
                pending[key] = np.concatenate(columns)
        done = 0
        while pending:
            nodes = np.array(list(pending))
            rows = np.zeros((len(nodes), self.rank + BLOCK, self.dim))
            rows[:, : self.rank] = self.basis[nodes] * np.sqrt(self.energy[nodes])[:, :, None]
            for i, columns in enumerate(pending.values()):
                block = columns[done : done + BLOCK]
                rows[i, self.rank : self.rank + len(block)] = block
            self._update_subspaces(nodes, rows)
            done += BLOCK
            pending = {key: columns for key, columns in pending.items() if len(columns) > done}

    def _update_subspaces(self, nodes: np.ndarray, rows: np.ndarray) -> None:
        """Truncated update of each node's scatter U^T diag(e) U + Σ c cᵀ (Ross et al. 2008).

        rows[i] = [diag(sqrt e) U; columns] of nodes[i] (zero rows are allowed: they add nothing).
        The new scatter is rowsᵀ rows; its top directions come from the eigen-decomposition of the
        small Gram matrix rows rowsᵀ, for every node at once.
        """
        values, vectors = np.linalg.eigh(rows @ rows.transpose(0, 2, 1))  # ascending
        values = np.clip(values[:, ::-1][:, : self.rank], 0.0, None)
        directions = vectors[:, :, ::-1][:, :, : self.rank].transpose(0, 2, 1) @ rows
        norms = np.sqrt(values)
        keep = norms > 1e-12 * np.maximum(1.0, norms.max(axis=1, keepdims=True))
        directions = np.where(keep[:, :, None], directions / np.where(keep, norms, 1.0)[:, :, None], 0.0)
        self.basis[nodes], self.energy[nodes] = directions, np.where(keep, values, 0.0)

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
