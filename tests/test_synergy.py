"""Gaussian synergy estimators on cases with known answers, closed forms and identities."""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from plasticity.observe.synergy import (
    ATOMS,
    MI_TERMS,
    GaussianStats,
    OmegaConfig,
    OmegaMonitor,
    gaussian_entropy,
    gaussian_mutual_information,
    gaussian_o_information,
    gaussian_phiid_mmi,
    gaussian_pid_mmi,
    o_information_from_stats,
)

N = 200_000  # large samples keep the sampling bias (about d²/2n nats) far below the tolerances


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


# ---------------------------------------------------------------------------- closed forms


@pytest.mark.parametrize("rho", [-0.9, -0.3, 0.0, 0.5, 0.99])
def test_bivariate_mi_closed_form(rho):
    stats = GaussianStats.from_covariance([[4.0, 2.0 * 3.0 * rho], [2.0 * 3.0 * rho, 9.0]], ridge=0.0)
    assert stats.mutual_information([0], [1]) == pytest.approx(-0.5 * math.log(1 - rho**2), abs=1e-12)


def test_sampled_bivariate_mi_and_entropy():
    rho = 0.8
    cov = np.array([[1.0, rho], [rho, 1.0]]) * np.array([[4.0, 6.0], [6.0, 9.0]])
    samples = rng().multivariate_normal([1.0, -2.0], cov, size=N)
    mi = gaussian_mutual_information(samples, [0], [1])
    assert mi.estimator == "gaussian-mutual-information"
    assert mi.value == pytest.approx(-0.5 * math.log(1 - rho**2), abs=0.01)
    h = gaussian_entropy(samples)
    assert h.estimator == "gaussian-entropy"
    assert h.value == pytest.approx(0.5 * math.log((2 * math.pi * math.e) ** 2 * np.linalg.det(cov)), abs=0.01)


def random_covariance(seed: int, d: int) -> np.ndarray:
    a = rng(seed).normal(size=(d, d))
    return a @ a.T + 0.1 * np.eye(d)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), d=st.integers(1, 7))
def test_entropy_matches_log_det_of_covariance(seed, d):
    cov = random_covariance(seed, d)
    expected = 0.5 * (d * math.log(2 * math.pi * math.e) + np.linalg.slogdet(cov)[1])
    assert GaussianStats.from_covariance(cov, ridge=0.0).entropy() == pytest.approx(expected, abs=1e-9)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), d=st.integers(1, 9))
def test_fast_o_information_equals_its_definition(seed, d):
    """Ω = (n−2)H(X) + Σ_j [H(X_j) − H(X_{−j})], with n separate entropies, vs the Schur form."""
    stats = GaussianStats.from_covariance(random_covariance(seed, d), ridge=0.0)
    h = stats.entropy()
    rest = [[i for i in range(d) if i != j] for j in range(d)]
    definition = (d - 2) * h + sum(stats.entropy([j]) - (stats.entropy(rest[j]) if d > 1 else 0.0) for j in range(d))
    o_info = o_information_from_stats(stats)
    assert o_info.omega == pytest.approx(definition, abs=1e-8)
    tc = sum(stats.entropy([j]) for j in range(d)) - h
    assert o_info.total_correlation == pytest.approx(tc, abs=1e-8)
    assert o_info.omega == pytest.approx(o_info.total_correlation - o_info.dual_total_correlation, abs=1e-12)


def test_inputs_may_be_torch_or_numpy_and_results_are_named():
    samples = rng().normal(size=(1000, 3))
    a = gaussian_o_information(samples)
    b = gaussian_o_information(torch.tensor(samples, dtype=torch.float32))
    assert a.estimator == b.estimator == "gaussian-o-information"
    assert a.omega == pytest.approx(b.omega, abs=1e-5)
    json.dumps(asdict(a))


def test_zero_variance_and_bad_shapes_are_errors():
    with pytest.raises(ValueError, match="zero variance"):
        gaussian_o_information(np.c_[rng().normal(size=100), np.ones(100)])
    with pytest.raises(ValueError):
        gaussian_o_information(np.zeros((1, 3)))
    with pytest.raises(ValueError):
        gaussian_mutual_information(rng().normal(size=(10, 2)), [0], [0])


def test_collinear_columns_stay_finite_through_the_ridge():
    x = rng().normal(size=1000)
    value = gaussian_mutual_information(np.c_[x, 2 * x], [0], [1]).value
    assert math.isfinite(value) and value > 5  # identical variables: ≈ ½·log(1/(2w)) nats


# ---------------------------------------------------------------------------- known answers


def test_independent_gaussians_have_no_o_information_and_no_synergy():
    x = rng(1).normal(size=(N, 5))
    assert abs(gaussian_o_information(x).omega) < 0.005
    pid = gaussian_pid_mmi(x[:, 0], x[:, 1], x[:, 2])
    assert pid.estimator == "gaussian-pid-mmi"
    assert abs(pid.synergy) < 0.005 and abs(pid.redundancy) < 0.005


def test_sum_of_independent_sources_is_synergistic():
    g = rng(2)
    x, y = g.normal(size=N), g.normal(size=N)
    z = x + y + 0.1 * g.normal(size=N)
    assert gaussian_o_information(np.c_[x, y, z]).omega < -0.5
    pid = gaussian_pid_mmi(x, y, z)
    # Closed form: I(X;Z) = ½log(var Z / var(Z|X)) = ½log(2.01/1.01); I(XY;Z) = ½log(2.01/0.01).
    assert pid.mi_1 == pytest.approx(0.5 * math.log(2.01 / 1.01), abs=0.01)
    assert pid.synergy == pytest.approx(0.5 * math.log(2.01 / 0.01) - 0.5 * math.log(2.01 / 1.01), abs=0.02)
    assert pid.synergy > 1.0 and pid.synergy > pid.redundancy


def test_copies_of_one_source_are_redundant():
    g = rng(3)
    s = g.normal(size=N)
    x, y, z = (s + 0.3 * g.normal(size=N) for _ in range(3))
    assert gaussian_o_information(np.c_[x, y, z]).omega > 0.3
    pid = gaussian_pid_mmi(x, y, z)
    assert pid.redundancy > max(pid.synergy, pid.unique_1, pid.unique_2)
    assert pid.redundancy + pid.unique_1 + pid.unique_2 + pid.synergy == pytest.approx(pid.mi_joint, abs=1e-12)


def test_pid_with_multivariate_sources_and_target():
    g = rng(4)
    x1, x2 = g.normal(size=(N, 2)), g.normal(size=(N, 3))
    y = np.c_[x1[:, 0] + x2[:, 0], x1[:, 1]] + 0.5 * g.normal(size=(N, 2))
    pid = gaussian_pid_mmi(x1, x2, y)
    assert pid.synergy > 0 and pid.unique_1 > 0
    assert pid.redundancy == pytest.approx(min(pid.mi_1, pid.mi_2), abs=1e-12)


# ---------------------------------------------------------------------------- ΦID


def var_process(steps: int, coupling: np.ndarray, seed: int) -> np.ndarray:
    g = rng(seed)
    z = np.zeros((steps, coupling.shape[0]))
    for t in range(1, steps):
        z[t] = coupling @ z[t - 1] + g.normal(size=coupling.shape[0])
    return z


MIXED = np.array([[0.4, 0.3, 0.1, 0.0], [0.2, 0.3, 0.0, 0.2], [0.1, 0.4, 0.3, 0.1], [0.0, 0.2, 0.3, 0.4]])


@pytest.mark.parametrize("dims", [(1, 1), (2, 2), (1, 3)])
def test_phiid_atoms_reproduce_every_mutual_information(dims):
    dx, dy = dims
    z = var_process(10_000, MIXED[: dx + dy, : dx + dy], seed=dx + 10 * dy)
    result = gaussian_phiid_mmi(z[:, :dx], z[:, dx:])
    assert result.estimator == "gaussian-phiid-mmi" and tuple(result.atoms) == ATOMS
    a = result.atoms
    assert sum(a.values()) == pytest.approx(result.tdmi, abs=1e-8)
    below = {"x": "rx", "y": "ry", "s": "rxys"}
    names = {"xp": "x", "yp": "y", "xyp": "s", "xf": "x", "yf": "y", "xyf": "s"}
    for term in MI_TERMS:
        past, future = (names[v] for v in term.split(";"))
        total = sum(a[f"{p}t{f}"] for p in below[past] for f in below[future])
        assert total == pytest.approx(result.mutual_information[term], abs=1e-8), term
    # Independent recomputation of the MIs from the raw lagged samples.
    joint = np.c_[z[:-1, :dx], z[:-1, dx:], z[1:, :dx], z[1:, dx:]]
    xp, yp = list(range(dx)), list(range(dx, dx + dy))
    xf, yf = [c + dx + dy for c in xp], [c + dx + dy for c in yp]
    tdmi = gaussian_mutual_information(joint, xp + yp, xf + yf).value
    assert result.tdmi == pytest.approx(tdmi, abs=1e-12)
    mi_x = gaussian_mutual_information(joint, xp, xf).value
    mi_y = gaussian_mutual_information(joint, yp, yf).value
    assert result.phi_wms == pytest.approx(tdmi - mi_x - mi_y, abs=1e-12)
    assert result.phi_r == pytest.approx(result.phi_wms + a["rtr"], abs=1e-12)
    json.dumps(asdict(result))


def test_phiid_mmi_redundancies_are_minima():
    z = var_process(5_000, MIXED[:2, :2], seed=7)
    r = gaussian_phiid_mmi(z[:, 0], z[:, 1])
    mi, a = r.mutual_information, r.atoms
    assert a["rtr"] == pytest.approx(min(mi["xp;xf"], mi["xp;yf"], mi["yp;xf"], mi["yp;yf"]), abs=1e-12)
    assert a["rtr"] + a["rtx"] == pytest.approx(min(mi["xp;xf"], mi["yp;xf"]), abs=1e-12)
    assert a["rtr"] + a["xtr"] == pytest.approx(min(mi["xp;xf"], mi["xp;yf"]), abs=1e-12)


def test_phiid_swapping_x_and_y_swaps_the_atoms():
    z = var_process(5_000, MIXED[:2, :2], seed=8)
    forward, swapped = gaussian_phiid_mmi(z[:, 0], z[:, 1]), gaussian_phiid_mmi(z[:, 1], z[:, 0])
    swap = str.maketrans("xy", "yx")
    for name, value in forward.atoms.items():
        assert swapped.atoms[name.translate(swap)] == pytest.approx(value, abs=1e-10)


def test_phiid_of_white_noise_is_empty_and_of_a_copy_is_persistent():
    g = rng(9)
    noise = gaussian_phiid_mmi(g.normal(size=50_000), g.normal(size=50_000))
    assert max(abs(v) for v in noise.atoms.values()) < 0.002
    # X persists on its own (X_{t+1} = 0.9 X_t + noise), Y is white noise: information flows x → x.
    x = var_process(50_000, np.array([[0.9]]), seed=10)[:, 0]
    copy = gaussian_phiid_mmi(x, g.normal(size=50_000))
    assert copy.atoms["xtx"] == pytest.approx(-0.5 * math.log(1 - 0.81), abs=0.02)
    assert abs(copy.phi_wms) < 0.002


def test_phiid_swapped_channels_transfer_information():
    # X_{t+1} = 0.9·Y_t + noise, Y_{t+1} = 0.9·X_t + noise: all information crosses over.
    z = var_process(50_000, np.array([[0.0, 0.9], [0.9, 0.0]]), seed=11)
    a = gaussian_phiid_mmi(z[:, 0], z[:, 1]).atoms
    assert a["xty"] > 0.5 and a["ytx"] > 0.5
    assert abs(a["xtx"]) < 0.01 and abs(a["yty"]) < 0.01


# ---------------------------------------------------------------------------- OmegaMonitor


class _Net(torch.nn.Module):
    """Two hidden layers: 10 ReLU units of which 3 are dead, then 4 linear units."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w1 = torch.nn.Parameter(torch.randn(6, 10, generator=g))
        self.b1 = torch.nn.Parameter(torch.zeros(10))
        with torch.no_grad():
            self.w1[:, :3] = 0.0
            self.b1[:3] = -1.0  # always-negative pre-activation: dead ReLU
        self.w2 = torch.nn.Parameter(torch.randn(10, 4, generator=g))

    def activities(self, x: torch.Tensor) -> list[torch.Tensor]:
        h1 = torch.relu(x @ self.w1 + self.b1)
        return [x, h1, h1 @ self.w2]


def test_omega_monitor_drops_dead_units_and_reports_json():
    net = _Net()
    data = SimpleNamespace(train=SimpleNamespace(x=torch.randn(5000, 6, generator=torch.Generator().manual_seed(1))))
    monitor = OmegaMonitor(OmegaConfig(units=10, probe_size=2000), activity_fn=lambda n, x: n.activities(x))
    entry = monitor.on_epoch_end(net, None, 0, data)
    json.dumps(entry)
    assert entry["estimator"] == "gaussian-o-information" and entry["layer"] == 1
    assert (entry["units"], entry["dropped_units"], entry["samples"]) == (7, 3, 2000)
    assert math.isfinite(entry["omega"])
    probe = data.train.x[torch.randperm(5000, generator=torch.Generator().manual_seed(0))[:2000].sort().values]
    live = net.activities(probe)[1][:, 3:].detach()
    assert entry["omega"] == pytest.approx(gaussian_o_information(live).omega, abs=1e-9)
    assert monitor.on_epoch_end(net, None, 1, data)["omega"] == pytest.approx(entry["omega"], abs=1e-12)


def test_omega_monitor_samples_fixed_units_and_several_layers():
    net = _Net()
    data = SimpleNamespace(train=SimpleNamespace(x=torch.randn(300, 6, generator=torch.Generator().manual_seed(2))))
    config = OmegaConfig(units=3, layers=(-2, 0), probe_size=2000, seed=5)
    monitor = OmegaMonitor(config, activity_fn=lambda n, x: n.activities(x))
    first = monitor.on_epoch_end(net, None, 0, data)
    assert first["samples"] == 300 and len(first["unit_indices"]) == 3
    assert set(first["by_layer"]) == {"1", "0"} and first["by_layer"]["1"]["omega"] == first["omega"]
    assert monitor.on_epoch_end(net, None, 1, data)["unit_indices"] == first["unit_indices"]
    json.dumps(first)


def test_omega_monitor_with_every_unit_dead_reports_none():
    net = _Net()
    data = SimpleNamespace(train=SimpleNamespace(x=torch.randn(100, 6)))
    dead_only = lambda n, x: [x, n.activities(x)[1][:, :3], x]  # noqa: E731
    entry = OmegaMonitor(OmegaConfig(units=3, probe_size=100), activity_fn=dead_only).on_epoch_end(net, None, 0, data)
    assert entry["omega"] is None and entry["dropped_units"] == 3 and entry["units"] == 0


def test_omega_monitor_default_reads_the_last_hidden_layer_of_an_mlp():
    from plasticity.nets import build_mlp

    net = build_mlp(8, 3, hidden=(32, 24), seed=0)
    data = SimpleNamespace(train=SimpleNamespace(x=torch.randn(500, 8, generator=torch.Generator().manual_seed(3))))
    entry = OmegaMonitor().on_epoch_end(net, None, 0, data)
    assert entry["layer"] == 2 and entry["units"] + entry["dropped_units"] == 16
    h = net[:4](data.train.x).detach()[:, entry["unit_indices"]]  # the second hidden layer's output
    live = h[:, h.var(dim=0) > 1e-10]
    assert entry["omega"] == pytest.approx(gaussian_o_information(live).omega, abs=1e-9)
