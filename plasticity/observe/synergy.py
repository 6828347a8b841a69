"""Synergy and redundancy of unit activity under a Gaussian model (closed forms, in nats).

Every quantity is computed from one correlation matrix, so each call costs one covariance
product plus log-determinants of small blocks. All results carry an `estimator` name; none
of them is ΣPI (that is `plasticity.observe.pi`).

Gaussian model. For columns A of samples (n, d): H(A) = ½|A|·log(2πe) + Σ_{j∈A} log σ_j
+ ½·log det R_A, where σ_j² is the unbiased (n−1) variance and R the correlation matrix
(equivalent to ½·log((2πe)^|A|·det Σ_A)). I(A;B) = H(A) + H(B) − H(A∪B) for disjoint A, B;
the σ terms cancel, so MI depends on R only (z-scoring the data changes nothing).

Ridge. Collinear or too few samples make R singular and its log-det −∞. We always use
R_w = (1−w)·R + w·I with w = `ridge` (default 1e-10): a shrinkage towards the identity that
keeps the unit diagonal (single-variable terms stay exact) and bounds every eigenvalue below
by w, so log-dets are finite; it changes each log-det by about w·tr(R_A⁻¹). Columns with zero
variance have no correlation and are rejected with an error (the monitor drops them first).

Estimators:
- O-information (Rosas et al. 2019, Phys. Rev. E 100:032305):
  Ω(X) = (n−2)·H(X) + Σ_j [H(X_j) − H(X_{−j})] = TC − DTC; Ω < 0: synergy-dominated.
- Two-source PID with minimum-mutual-information redundancy (Barrett 2015, Phys. Rev. E
  91:052802): Red = min(I(X1;Y), I(X2;Y)), Unq_i = I(X_i;Y) − Red,
  Syn = I(X1,X2;Y) − I(X1;Y) − I(X2;Y) + Red.
- ΦID with MMI double redundancy (Mediano et al. 2021, arXiv:2109.13186; Luppi et al. 2024
  eLife 13:RP88173): see `gaussian_phiid_mmi`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from plasticity.observe import activity

RIDGE = 1e-10
"""Default shrinkage weight w of the correlation matrix towards the identity (see module doc)."""

_LOG_2PI_E = math.log(2 * math.pi * math.e)

Columns = Sequence[int]


def _as_samples(samples: Any) -> np.ndarray:
    """numpy / torch (any device) / nested lists → float64 array (n, d); a vector is (n, 1)."""
    if isinstance(samples, torch.Tensor):
        samples = samples.detach().to("cpu", torch.float64).numpy()
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"samples must have shape (n, d); got {x.shape}")
    if x.shape[0] < 2:
        raise ValueError(f"need at least 2 samples to estimate a covariance; got {x.shape[0]}")
    return x


def _cholesky(matrix: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.cholesky(matrix)
    except np.linalg.LinAlgError as error:
        raise ValueError("correlation matrix is not positive definite; use a larger ridge") from error


def _logdet_from_cholesky(factor: np.ndarray) -> float:
    return float(2.0 * np.log(np.diagonal(factor)).sum())


class GaussianStats:
    """The sufficient statistics of a Gaussian model: per-column log σ and the correlation R.

    Build it once with `from_samples` (or `from_covariance` for exact, population-level
    values), then ask for entropies and mutual informations of column sets. Linear algebra
    runs in NumPy float64 (tiny blocks; torch's CPU LAPACK call overhead dominates there).
    """

    def __init__(self, correlation: np.ndarray, log_std: np.ndarray, ridge: float = RIDGE) -> None:
        if not 0 <= ridge < 1:
            raise ValueError(f"ridge must lie in [0, 1); got {ridge}")
        self.correlation = (1.0 - ridge) * correlation + ridge * np.eye(correlation.shape[0])
        self.log_std = log_std
        self.ridge = ridge

    @classmethod
    def from_covariance(cls, covariance: Any, ridge: float = RIDGE) -> GaussianStats:
        cov = np.asarray(covariance, dtype=np.float64)
        if cov.ndim != 2 or cov.shape[0] != cov.shape[1]:
            raise ValueError(f"covariance must be square; got {cov.shape}")
        var = np.diagonal(cov)
        dead = np.flatnonzero(var <= 0).tolist()
        if dead:
            raise ValueError(f"columns {dead} have zero variance; drop them before estimating")
        std = np.sqrt(var)
        correlation = cov / np.outer(std, std)
        np.fill_diagonal(correlation, 1.0)
        return cls(correlation, np.log(std), ridge)

    @classmethod
    def from_samples(cls, samples: Any, ridge: float = RIDGE) -> GaussianStats:
        x = _as_samples(samples)
        centred = x - x.mean(axis=0)
        return cls.from_covariance(centred.T @ centred / (x.shape[0] - 1), ridge)

    @property
    def dim(self) -> int:
        return self.correlation.shape[0]

    def _index(self, columns: Columns | None) -> np.ndarray:
        if columns is None:
            return np.arange(self.dim)
        index = np.asarray(list(columns), dtype=np.intp)
        if index.size == 0 or np.unique(index).size != index.size:
            raise ValueError(f"columns must be a non-empty set of distinct indices; got {list(columns)}")
        return index

    def logdet_correlation(self, columns: Columns | None = None) -> float:
        index = self._index(columns)
        return _logdet_from_cholesky(_cholesky(self.correlation[np.ix_(index, index)]))

    def entropy(self, columns: Columns | None = None) -> float:
        """H(X_A) in nats."""
        index = self._index(columns)
        return 0.5 * index.size * _LOG_2PI_E + float(self.log_std[index].sum()) + 0.5 * self.logdet_correlation(index)

    def mutual_information(self, a: Columns, b: Columns) -> float:
        """I(X_A; X_B) = ½(log det R_A + log det R_B − log det R_{A∪B}), A and B disjoint."""
        if set(a) & set(b):
            raise ValueError(f"column sets must be disjoint; got {list(a)} and {list(b)}")
        joint = list(a) + list(b)
        return 0.5 * (self.logdet_correlation(a) + self.logdet_correlation(b) - self.logdet_correlation(joint))


# ---------------------------------------------------------------------------- entropy, MI


@dataclass(frozen=True)
class Measure:
    """One information quantity in nats, labelled with the estimator that produced it."""

    value: float
    estimator: str


def gaussian_entropy(samples: Any, columns: Columns | None = None, ridge: float = RIDGE) -> Measure:
    """Differential entropy H of the chosen columns (all by default) under a Gaussian fit."""
    return Measure(GaussianStats.from_samples(samples, ridge).entropy(columns), "gaussian-entropy")


def gaussian_mutual_information(samples: Any, x_columns: Columns, y_columns: Columns, ridge: float = RIDGE) -> Measure:
    """I(X;Y) between two disjoint sets of columns of `samples` under a Gaussian fit."""
    stats = GaussianStats.from_samples(samples, ridge)
    return Measure(stats.mutual_information(x_columns, y_columns), "gaussian-mutual-information")


# ---------------------------------------------------------------------------- O-information


@dataclass(frozen=True)
class OInformation:
    """Ω = TC − DTC of n variables (nats). TC = Σ_j H(X_j) − H(X) (total correlation),
    DTC = H(X) − Σ_j H(X_j | X_{−j}) (dual total correlation)."""

    omega: float
    total_correlation: float
    dual_total_correlation: float
    n_variables: int
    estimator: str = "gaussian-o-information"


def o_information_from_stats(stats: GaussianStats) -> OInformation:
    """O-information of all columns of `stats` with one Cholesky factorisation.

    Instead of n separate log-dets for H(X_{−j}) we use the Schur complement:
    H(X_{−j}) = H(X) − H(X_j | X_{−j}) and H(X_j | X_{−j}) = ½·log(2πe·σ_j² / (R⁻¹)_jj).
    Substituting into Ω = (n−2)H(X) + Σ_j [H(X_j) − H(X_{−j})] leaves
    Ω = −log det R − ½·Σ_j log (R⁻¹)_jj, TC = −½·log det R, DTC = ½·log det R + ½·Σ_j log (R⁻¹)_jj.
    """
    factor = _cholesky(stats.correlation)
    logdet = _logdet_from_cholesky(factor)
    inverse_factor = np.linalg.inv(factor)  # R⁻¹ = L⁻ᵀL⁻¹, so (R⁻¹)_jj = Σ_i (L⁻¹)_ij²
    sum_log_precision = float(np.log((inverse_factor**2).sum(axis=0)).sum())
    total = -0.5 * logdet
    dual = 0.5 * logdet + 0.5 * sum_log_precision
    return OInformation(omega=total - dual, total_correlation=total, dual_total_correlation=dual, n_variables=stats.dim)


def gaussian_o_information(samples: Any, ridge: float = RIDGE) -> OInformation:
    """O-information of the columns of `samples` (n, d) (Rosas et al. 2019)."""
    return o_information_from_stats(GaussianStats.from_samples(samples, ridge))


# ---------------------------------------------------------------------------- two-source PID


@dataclass(frozen=True)
class PID:
    """Two-source partial information decomposition of I(X1,X2;Y) (nats):
    redundancy + unique_1 + unique_2 + synergy == mi_joint."""

    redundancy: float
    unique_1: float
    unique_2: float
    synergy: float
    mi_1: float
    mi_2: float
    mi_joint: float
    estimator: str = "gaussian-pid-mmi"


def gaussian_pid_mmi(source_1: Any, source_2: Any, target: Any, ridge: float = RIDGE) -> PID:
    """PID of sources X1 (n, d1), X2 (n, d2) about target Y (n, dy), MMI redundancy (Barrett 2015).

    Red = min(I(X1;Y), I(X2;Y)); Unq_i = I(X_i;Y) − Red; Syn = I(X1,X2;Y) − I(X1;Y) − I(X2;Y) + Red.
    Barrett shows that for jointly Gaussian sources and a univariate target the PIDs of
    Williams & Beer, Harder et al. and Bertschinger et al. all reduce to this MMI form; for a
    multivariate target it is our choice (as in ΦID's MMI variant).
    """
    parts = [_as_samples(p) for p in (source_1, source_2, target)]
    if len({p.shape[0] for p in parts}) != 1:
        raise ValueError(f"sources and target need the same number of rows; got {[p.shape[0] for p in parts]}")
    stats = GaussianStats.from_samples(np.concatenate(parts, axis=1), ridge)
    x1, x2, y = _column_blocks([p.shape[1] for p in parts])
    mi_1, mi_2 = stats.mutual_information(x1, y), stats.mutual_information(x2, y)
    mi_joint = stats.mutual_information(x1 + x2, y)
    red = min(mi_1, mi_2)
    return PID(red, mi_1 - red, mi_2 - red, mi_joint - mi_1 - mi_2 + red, mi_1, mi_2, mi_joint)


def _column_blocks(widths: Sequence[int]) -> list[list[int]]:
    """Consecutive column indices for blocks of the given widths."""
    starts = np.cumsum([0, *widths])
    return [list(range(int(a), int(b))) for a, b in zip(starts[:-1], starts[1:], strict=True)]


# ---------------------------------------------------------------------------- ΦID

PID_ATOMS = ("r", "x", "y", "s")
"""The two-source PID lattice as antichains: r = {1}{2} (redundancy), x = {1}, y = {2}
(unique), s = {12} (synergy); order r < x, y < s. Source 1 is X, source 2 is Y."""
ATOMS = tuple(f"{a}t{b}" for a in PID_ATOMS for b in PID_ATOMS)
"""The 16 ΦID atoms α→β, written "αtβ": rtr, rtx, rty, rts, xtr, …, sts (past → future)."""
_BELOW = {"r": ("r",), "x": ("r", "x"), "y": ("r", "y"), "s": PID_ATOMS}
_PAST = {"r": ("xp", "yp"), "x": ("xp",), "y": ("yp",), "s": ("xyp",)}
_FUTURE = {"r": ("xf", "yf"), "x": ("xf",), "y": ("yf",), "s": ("xyf",)}
MI_TERMS = tuple(f"{a};{b}" for a in ("xp", "yp", "xyp") for b in ("xf", "yf", "xyf"))
"""The 9 mutual informations the MMI system is built from, e.g. "xp;yf" = I(X_t; Y_{t+τ})."""


@lru_cache(maxsize=1)
def _lattice_system() -> np.ndarray:
    """M with M[(α,β), (α',β')] = 1 iff α' ≤ α and β' ≤ β: I_∩^{α→β} = Σ_{α'≤α, β'≤β} atom(α'→β')."""
    index = {name: i for i, name in enumerate(ATOMS)}
    system = np.zeros((16, 16))
    for a in PID_ATOMS:
        for b in PID_ATOMS:
            for a_below in _BELOW[a]:
                for b_below in _BELOW[b]:
                    system[index[f"{a}t{b}"], index[f"{a_below}t{b_below}"]] = 1.0
    return system


@dataclass(frozen=True)
class PhiID:
    """Integrated information decomposition of a pair of time series (nats).

    atoms: the 16 atoms by name (sum == tdmi); mutual_information: the 9 MIs by `MI_TERMS`
    name; tdmi = I(X_t,Y_t; X_{t+τ},Y_{t+τ}); phi_wms = tdmi − I(X_t;X_{t+τ}) − I(Y_t;Y_{t+τ});
    phi_r = phi_wms + rtr.
    """

    atoms: dict[str, float]
    mutual_information: dict[str, float]
    tdmi: float
    phi_wms: float
    phi_r: float
    lag: int
    estimator: str = "gaussian-phiid-mmi"


def gaussian_phiid_mmi(x: Any, y: Any, lag: int = 1, ridge: float = RIDGE) -> PhiID:
    """ΦID of series X (T,) or (T, dx) and Y (T,) or (T, dy), lag τ, MMI double redundancy.

    Sources are the past X_t, Y_t; targets the future X_{t+τ}, Y_{t+τ}. For antichains α
    (of the past) and β (of the future) from `PID_ATOMS`, the MMI double redundancy is
    I_∩^{α→β} = min_{a∈α, b∈β} I(a; b), where r = {X},{Y} lists both single variables, x = {X},
    y = {Y} and s = {XY} is the joint. Concretely: rtr = min of I(xp;xf), I(xp;yf), I(yp;xf),
    I(yp;yf); (r→β) is the MMI redundancy of the two past variables about target β; (α→r) that
    of the two future variables about source α; and α, β both non-r give the plain MI (9 terms).
    Each I_∩^{α→β} is the sum of the atoms α'→β' with α' ≤ α, β' ≤ β (Mediano et al. 2021),
    16 equations in 16 unknowns; we solve this unitriangular system. The (s,s) equation makes
    the atoms sum to the TDMI.
    """
    if lag < 1:
        raise ValueError(f"lag must be ≥ 1; got {lag}")
    xs, ys = _as_samples(x), _as_samples(y)
    if xs.shape[0] != ys.shape[0]:
        raise ValueError(f"x and y need the same length; got {xs.shape[0]} and {ys.shape[0]}")
    if xs.shape[0] <= lag + 1:
        raise ValueError(f"series of length {xs.shape[0]} are too short for lag {lag}")
    joint = np.concatenate([xs[:-lag], ys[:-lag], xs[lag:], ys[lag:]], axis=1)
    stats = GaussianStats.from_samples(joint, ridge)
    xp, yp, xf, yf = _column_blocks([xs.shape[1], ys.shape[1], xs.shape[1], ys.shape[1]])
    columns = {"xp": xp, "yp": yp, "xyp": xp + yp, "xf": xf, "yf": yf, "xyf": xf + yf}
    mi = {term: stats.mutual_information(*(columns[v] for v in term.split(";"))) for term in MI_TERMS}
    redundancy = [min(mi[f"{a};{b}"] for a in _PAST[alpha] for b in _FUTURE[beta]) for alpha in PID_ATOMS for beta in PID_ATOMS]
    values = np.linalg.solve(_lattice_system(), np.array(redundancy))
    atoms = {name: float(v) for name, v in zip(ATOMS, values, strict=True)}
    tdmi = mi["xyp;xyf"]
    phi_wms = tdmi - mi["xp;xf"] - mi["yp;yf"]
    return PhiID(atoms, mi, tdmi, phi_wms, phi_wms + atoms["rtr"], lag)


# ---------------------------------------------------------------------------- observer


def trace_activities(net: Any, x: torch.Tensor) -> list[torch.Tensor]:
    """Default activity_fn: the input, every hidden block's output and the logits
    (`plasticity.observe.activity.activities`: `net.trace(x).h` for the MLP)."""
    return activity.activities(net, x)


def training_inputs(data: Any) -> torch.Tensor:
    """Default inputs_fn: the training inputs of a `plasticity.data.Dataset`, `data.train.x`."""
    return torch.as_tensor(data.train.x)


@dataclass(frozen=True)
class OmegaConfig:
    """units: hidden units sampled per layer (fixed by `seed` at the first epoch and kept);
    layers: indices into the activity list (h[0] input, h[-1] logits; −2 = last hidden layer),
    the first one is reported at the top level; probe_size: rows of the fixed probe batch,
    drawn once from the training inputs with `seed`; min_variance: units whose variance on the
    probe is at most this are dead and dropped."""

    units: int = 16
    layers: tuple[int, ...] = (-2,)
    probe_size: int = 2000
    seed: int = 0
    min_variance: float = 1e-10
    ridge: float = RIDGE

    def __post_init__(self) -> None:
        if self.units < 1 or self.probe_size < 2 or not self.layers:
            raise ValueError(f"need units ≥ 1, probe_size ≥ 2 and at least one layer; got {self}")


class OmegaMonitor:
    """Observer "omega": Gaussian O-information of sampled hidden units on a fixed probe batch.

    Epoch entry (for the first configured layer): omega, total_correlation,
    dual_total_correlation, estimator ("gaussian-o-information"), layer (resolved index into
    the activity list), units (live units used), dropped_units (dead units removed: zero
    variance would make R undefined), unit_indices (the sampled units), samples, seconds.
    With several layers, "by_layer" maps each layer index to the same fields. omega and its
    parts are None when every sampled unit is dead.
    """

    name = "omega"

    def __init__(
        self,
        config: OmegaConfig | None = None,
        activity_fn: Callable[[Any, torch.Tensor], list[torch.Tensor]] = trace_activities,
        inputs_fn: Callable[[Any], torch.Tensor] = training_inputs,
    ) -> None:
        self.config = config or OmegaConfig()
        self.activity_fn = activity_fn
        self.inputs_fn = inputs_fn
        self._probe: torch.Tensor | None = None
        self._units: dict[int, torch.Tensor] = {}

    def on_step(self, net: Any, rule: Any, x: torch.Tensor, y: torch.Tensor, info: Any) -> None:
        """Nothing per step: Ω is measured on the probe batch at epoch end."""

    def on_epoch_end(self, net: Any, rule: Any, epoch: int, data: Any) -> dict[str, Any]:
        probe = self._probe_batch(data)
        with torch.no_grad():
            activities = self.activity_fn(net, probe.to(_device_of(net)))
        entries = [self._layer_entry(activities, layer) for layer in self.config.layers]
        result = dict(entries[0])
        if len(entries) > 1:
            result["by_layer"] = {str(e["layer"]): e for e in entries}
        return result

    def _probe_batch(self, data: Any) -> torch.Tensor:
        if self._probe is None:
            inputs = self.inputs_fn(data)
            generator = torch.Generator().manual_seed(self.config.seed)
            rows = torch.randperm(inputs.shape[0], generator=generator)[: self.config.probe_size]
            self._probe = inputs[rows.sort().values]
        return self._probe

    def _layer_entry(self, activities: Sequence[torch.Tensor], layer: int) -> dict[str, Any]:
        start = time.perf_counter()
        index = range(len(activities))[layer]
        h = activities[index].detach().to("cpu", torch.float64).flatten(1)
        if index not in self._units:
            generator = torch.Generator().manual_seed(self.config.seed)
            chosen = torch.randperm(h.shape[1], generator=generator)[: self.config.units]
            self._units[index] = chosen.sort().values
        units = self._units[index]
        sampled = h[:, units]
        alive = sampled.var(dim=0) > self.config.min_variance
        entry: dict[str, Any] = {
            "estimator": OInformation.estimator,
            "layer": index,
            "units": int(alive.sum()),
            "dropped_units": int((~alive).sum()),
            "unit_indices": units.tolist(),
            "samples": int(h.shape[0]),
        }
        if alive.any():
            o_info = gaussian_o_information(sampled[:, alive], self.config.ridge)
            entry.update(
                omega=o_info.omega,
                total_correlation=o_info.total_correlation,
                dual_total_correlation=o_info.dual_total_correlation,
            )
        else:
            entry.update(omega=None, total_correlation=None, dual_total_correlation=None)
        entry["seconds"] = time.perf_counter() - start
        return entry


def _device_of(net: Any) -> torch.device:
    """The device of the net's first parameter (CPU for parameterless nets)."""
    parameters = getattr(net, "parameters", None)
    first = next(iter(parameters()), None) if callable(parameters) else None
    return first.device if first is not None else torch.device("cpu")
