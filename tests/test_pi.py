"""ΣPI against independent NumPy references (property-based), AMP unscaling, EMA, band, monitor."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from plasticity.integrity import (
    VARIANTS,
    BiasCorrectedEMA,
    PIConfig,
    SurpriseBand,
    SurpriseBandConfig,
    global_grad_norm,
    pi_from_batch,
    predictive_integrity,
    softmax_entropy,
    unscale_norm,
)
from plasticity.observe.pi import PIMonitor
from plasticity.rules.base import StepInfo

finite = st.floats(-30, 30, allow_nan=False, allow_infinity=False)


@st.composite
def batches(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, list[np.ndarray | None]]:
    """Random logits (b, c), integer targets and a ragged list of gradient arrays with Nones."""
    b, c = draw(st.integers(1, 12)), draw(st.integers(2, 8))
    logits = np.array(draw(st.lists(finite, min_size=b * c, max_size=b * c))).reshape(b, c)
    targets = np.array(draw(st.lists(st.integers(0, c - 1), min_size=b, max_size=b)))
    shapes = draw(st.lists(st.tuples(st.integers(1, 4), st.integers(1, 4)), min_size=1, max_size=4))
    grads: list[np.ndarray | None] = []
    for shape in shapes:
        n = shape[0] * shape[1]
        values = draw(st.lists(st.floats(-5, 5, allow_nan=False), min_size=n, max_size=n))
        grads.append(np.array(values).reshape(shape) if draw(st.booleans()) else None)
    return logits, targets, grads


def reference_pi(logits: np.ndarray, targets: np.ndarray, grads: list, alpha: float, gamma: float, variant: str) -> float:
    """The formulas of ipwt.md §1 written out in plain NumPy with explicit loops."""
    b = logits.shape[0]
    eps = tau = 0.0
    for row, target in zip(logits, targets, strict=True):
        shifted = row - row.max()
        log_z = math.log(sum(math.exp(v) for v in shifted))
        p = [math.exp(v - log_z) for v in shifted]
        eps += -(shifted[target] - log_z) / b
        tau += -sum(pk * math.log(pk + 1e-9) for pk in p) / b
    s = math.sqrt(sum(float(v) ** 2 for g in grads if g is not None for v in g.ravel()))
    spread = max(tau + 1e-9, 1e-9)  # the SDK's tau + 1e-9, floored: it reaches 0 for one-hot outputs
    if variant == "sdk":
        return math.exp(-alpha * ((1 - gamma) * eps / spread + gamma * s))
    if variant == "manuscript":
        return math.exp(-alpha * (eps / spread + gamma * s))
    return math.exp(-(alpha * tau + gamma * s))


@settings(max_examples=150, deadline=None)
@given(batch=batches(), alpha=st.floats(0, 3), gamma=st.floats(0, 1), variant=st.sampled_from(VARIANTS))
def test_every_variant_matches_reference_formula(batch, alpha, gamma, variant):
    logits, targets, grads = batch
    logits_t = torch.tensor(logits, dtype=torch.float64)
    loss = torch.nn.functional.cross_entropy(logits_t, torch.tensor(targets)).item()
    surprise = global_grad_norm([None if g is None else torch.tensor(g) for g in grads])
    step = pi_from_batch(loss, logits_t, surprise, PIConfig(alpha=alpha, gamma=gamma, variant=variant))
    assert step.pi == pytest.approx(reference_pi(logits, targets, grads, alpha, gamma, variant), abs=1e-6)
    assert step.pi == pytest.approx(math.exp(-step.cost), rel=1e-12)


def test_a_confidently_wrong_one_hot_prediction_has_pi_zero_not_an_overflow():
    # τ ≈ −1e-9 here (the 1e-9 inside the log), where the SDK's τ + 1e-9 reaches zero.
    logits = torch.tensor([[-13.0, 28.0]], dtype=torch.float64)
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0])).item()
    for variant in VARIANTS[:2]:
        assert pi_from_batch(loss, logits, 0.0, PIConfig(alpha=1.0, gamma=0.0, variant=variant)).pi == 0.0


def test_entropy_uses_the_sdk_epsilon_inside_the_log():
    # One-hot-like logits: p = (1, 0) exactly in float64; −Σ p log(p + 1e-9) = −log(1 + 1e-9).
    tau = softmax_entropy(torch.tensor([[0.0, -1e4]]))
    assert tau == pytest.approx(-math.log(1 + 1e-9), abs=1e-15)
    assert softmax_entropy(torch.zeros(3, 4)) == pytest.approx(math.log(4) - 4 * 0.25 * math.log(1 + 4e-9), abs=1e-12)


def test_defaults_are_the_sdk_ones():
    config = PIConfig()
    assert (config.alpha, config.gamma, config.variant, config.ema_beta) == (1.0, 0.5, "sdk", 0.9)
    step = predictive_integrity(epsilon=0.5, tau=1.0, surprise=2.0)
    assert step.pi == pytest.approx(math.exp(-(0.5 * 0.5 / (1.0 + 1e-9) + 0.5 * 2.0)))


def test_invalid_configs_are_rejected():
    for bad in ({"variant": "pilf"}, {"alpha": -1.0}, {"gamma": 1.5}, {"ema_beta": 1.0}):
        with pytest.raises(ValueError):
            PIConfig(**bad)


def test_grad_norm_skips_none_and_handles_empty():
    assert global_grad_norm([None, None]) == 0.0
    assert global_grad_norm([torch.tensor([3.0]), None, torch.tensor([[4.0]])]) == pytest.approx(5.0)


@settings(max_examples=100, deadline=None)
@given(values=st.lists(st.floats(-100, 100, allow_nan=False), min_size=1, max_size=30), log2_scale=st.integers(0, 24))
def test_amp_unscaling_recovers_the_true_norm(values, log2_scale):
    scale = 2.0**log2_scale
    grads = torch.tensor(values, dtype=torch.float32)
    true = global_grad_norm([grads])
    scaled = global_grad_norm([grads * scale])
    assert unscale_norm(scaled, scale) == pytest.approx(true, rel=1e-6, abs=1e-30)


def test_amp_overflow_steps_are_skipped():
    overflow = global_grad_norm([torch.tensor([65504.0, 65504.0], dtype=torch.float16) * 2])
    assert math.isinf(overflow)
    assert unscale_norm(overflow, 1024.0) is None
    assert unscale_norm(float("nan"), 1024.0) is None
    with pytest.raises(ValueError):
        unscale_norm(1.0, 0.0)


@settings(max_examples=100, deadline=None)
@given(values=st.lists(st.floats(0, 1), min_size=1, max_size=40), beta=st.floats(0, 0.99))
def test_ema_is_bias_corrected(values, beta):
    ema = BiasCorrectedEMA(beta)
    m = 0.0
    for n, x in enumerate(values, start=1):
        m = beta * m + (1 - beta) * x
        assert ema.update(x) == pytest.approx(m / (1 - beta**n), rel=1e-9, abs=1e-12)
    assert ema.count == len(values)


def test_ema_of_a_constant_is_the_constant_from_the_first_step():
    ema = BiasCorrectedEMA(0.9)
    assert ema.value is None
    assert [ema.update(0.3) for _ in range(5)] == pytest.approx([0.3] * 5, rel=1e-12)


def reference_band(history: list[float], s: float, k: float, alpha: float, warmup: int) -> str:
    """The GBP band rule from ipwt.md §3, evaluated from scratch."""
    if len(history) < warmup:
        return "consolidate"
    mu, q = history[0], history[0] ** 2
    for v in history[1:]:
        mu, q = (1 - alpha) * mu + alpha * v, (1 - alpha) * q + alpha * v * v
    sigma = math.sqrt(max(q - mu * mu, 0.0))
    if s < mu - k * sigma:
        return "ignore"
    if s >= mu + k * sigma and s != mu:
        return "reject"
    return "consolidate"


@settings(max_examples=150, deadline=None)
@given(
    history=st.lists(st.floats(0, 10, allow_nan=False), min_size=0, max_size=30),
    s=st.floats(0, 10, allow_nan=False),
    k=st.floats(0.5, 4),
    warmup=st.integers(1, 5),
)
def test_band_classification_matches_reference(history, s, k, warmup):
    band = SurpriseBand(SurpriseBandConfig(k=k, alpha=0.1, warmup=warmup))
    for v in history:
        band.update(v)
    if band.count >= warmup and band.std > 0:  # stay clear of the band edges, where rounding decides
        assume(abs(abs(band.zscore(s)) - k) > 1e-6)
    assert band.classify(s) == reference_band(history, s, k, 0.1, warmup)


def test_band_moments_zscore_and_decisions():
    band = SurpriseBand(SurpriseBandConfig(k=3.0, alpha=0.1, warmup=2))
    assert band.observe(1.0) == "consolidate"  # warm-up
    assert band.observe(3.0) == "consolidate"  # warm-up
    mu, q = 0.9 * 1.0 + 0.1 * 3.0, 0.9 * 1.0 + 0.1 * 9.0
    assert band.mean == pytest.approx(mu)
    assert band.std == pytest.approx(math.sqrt(q - mu * mu))
    sigma = band.std
    assert band.zscore(mu + 2 * sigma) == pytest.approx(2.0)
    assert band.classify(mu + 3.5 * sigma) == "reject"
    assert band.classify(mu + 3.0 * sigma + 1e-9) == "reject"
    assert band.classify(mu - 3.5 * sigma) == "ignore"
    assert band.classify(mu) == "consolidate"
    assert band.observe(float("inf")) == "reject"
    assert band.count == 2  # a non-finite surprise leaves the moments untouched


def test_band_with_zero_spread_consolidates_only_the_mean():
    band = SurpriseBand(SurpriseBandConfig(warmup=1))
    band.update(2.0)
    assert band.std == 0.0
    assert band.classify(2.0) == "consolidate"
    assert band.classify(2.5) == "reject"
    assert band.classify(1.5) == "ignore"


def _info(loss: float, logits: torch.Tensor, norm: float, **extras) -> StepInfo:
    return StepInfo(loss=loss, logits=logits, update_norm=norm, extras=extras)


@settings(max_examples=40, deadline=None)
@given(
    epochs=st.lists(st.lists(st.tuples(st.floats(0, 5), st.floats(0, 10)), min_size=1, max_size=8), min_size=1, max_size=3),
    variant=st.sampled_from(VARIANTS),
    seed=st.integers(0, 1000),
)
def test_monitor_epoch_means(epochs, variant, seed):
    generator = torch.Generator().manual_seed(seed)
    config = PIConfig(variant=variant)
    monitor = PIMonitor(config)
    ema = BiasCorrectedEMA(0.9)
    for epoch, steps in enumerate(epochs):
        pis, taus = [], []
        for loss, norm in steps:
            logits = torch.randn(4, 3, generator=generator)
            monitor.on_step(None, None, None, None, _info(loss, logits, norm))
            taus.append(softmax_entropy(logits))
            pis.append(predictive_integrity(loss, taus[-1], norm, config).pi)
        entry = monitor.on_epoch_end(None, None, epoch, None)
        json.dumps(entry)
        means = [float(np.mean(v)) for v in ([s[0] for s in steps], taus, [s[1] for s in steps])]
        assert entry["pi"] == pytest.approx(np.mean(pis), abs=1e-12)
        assert entry["pi_std"] == pytest.approx(np.std(pis), abs=1e-12)
        assert [entry["epsilon"], entry["tau"], entry["surprise"]] == pytest.approx(means, abs=1e-12)
        at_means = predictive_integrity(*means, config).pi
        assert entry["pi_at_means"] == pytest.approx(at_means, abs=1e-12)
        assert entry["pi_ema"] == pytest.approx(ema.update(at_means), abs=1e-12)
        assert entry["variant"] == variant and entry["steps"] == len(steps) and entry["skipped_steps"] == 0
        assert entry["seconds_per_step"] >= 0


def test_monitor_unscales_amp_and_skips_overflow_steps():
    monitor = PIMonitor(PIConfig(ema_beta=None))
    logits = torch.zeros(2, 3)
    monitor.on_step(None, None, None, None, _info(1.0, logits, 1024.0 * 0.5, grad_scale=1024.0))
    monitor.on_step(None, None, None, None, _info(1.0, logits, float("inf"), grad_scale=1024.0))
    entry = monitor.on_epoch_end(None, None, 0, None)
    assert entry["surprise"] == pytest.approx(0.5)
    assert (entry["steps"], entry["skipped_steps"], entry["pi_ema"]) == (1, 1, None)
    empty = monitor.on_epoch_end(None, None, 1, None)
    assert empty["pi"] is None and empty["steps"] == 0
    json.dumps(empty)
