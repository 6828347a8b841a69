"""Predictive coding: its regimes of equivalence with backprop, its relaxation, its card."""

import pytest
import torch
import torch.nn.functional as F

from plasticity.nets import build_mlp
from plasticity.observe.plausibility import measure, verify
from plasticity.rules import build_rule, make_config
from plasticity.rules.pc import PCConfig, PredictiveCoding


def batch(n_in=20, classes=5, n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, n_in, generator=g), torch.randint(0, classes, (n,), generator=g)


def cosines(a, b):
    return [float(F.cosine_similarity(u.flatten(), v.flatten(), dim=0)) for u, v in zip(a, b)]


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_fixed_prediction_with_rate_one_and_L_minus_1_steps_is_backprop(activation):
    net = build_mlp(20, 5, (16, 12, 8), activation=activation, seed=1)
    x, y = batch()
    bp, _ = build_rule("bp", net).directions(net, x, y)
    pc, _ = build_rule("pc", net, {"fixed_prediction": True, "inference_rate": 1.0, "T": 3}).directions(net, x, y)
    for got, want in zip(pc, bp):
        assert torch.allclose(got, want, atol=1e-6)


def test_fixed_prediction_with_a_small_rate_is_backprop_up_to_one_factor_per_layer():
    net = build_mlp(20, 5, (16, 12), activation="tanh", seed=2)
    x, y = batch()
    bp, _ = build_rule("bp", net).directions(net, x, y)
    pc, _ = build_rule("pc", net, {"fixed_prediction": True, "inference_rate": 0.3, "T": 5}).directions(net, x, y)
    assert min(cosines(pc, bp)) > 1 - 1e-5


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_standard_regime_is_close_to_backprop(activation):
    """Predictions recomputed at every step: cosine to backprop per parameter, measured at
    initialisation (20→32→32→5, 32 samples): > 0.999 at the default rate 0.01, > 0.99 at 0.05."""
    net = build_mlp(20, 5, (32, 32), activation=activation, seed=0)
    x, y = batch()
    bp, _ = build_rule("bp", net).directions(net, x, y)
    default, _ = build_rule("pc", net).directions(net, x, y)
    larger, _ = build_rule("pc", net, {"inference_rate": 0.05}).directions(net, x, y)
    assert min(cosines(default, bp)) > 0.999
    assert min(cosines(larger, bp)) > 0.99
    # Not backprop itself: the output layer learns from the relaxed, smaller output error.
    assert not torch.allclose(default[-2], bp[-2], atol=1e-6)


def test_relaxation_lowers_the_energy_and_records_every_input():
    net = build_mlp(20, 5, (16, 12), activation="tanh", seed=0)
    rule = build_rule("pc", net, {"T": 4})
    x, y = batch()
    trace, relaxed = rule.relax(net, x, y)
    # Before relaxing, every hidden error is 0 and F is the cross-entropy of the forward pass.
    assert relaxed.energy < F.cross_entropy(trace.logits, y).item()
    assert relaxed.inputs[0] is None
    for l in (1, 2):
        assert len(relaxed.inputs[l]) == 5 and torch.equal(relaxed.inputs[l][0], trace.h[l])
        assert not torch.equal(relaxed.inputs[l][-1], trace.h[l])


def test_T_defaults_to_L_minus_1_and_is_checked():
    net = build_mlp(20, 5, (16, 12, 8), seed=0)
    assert build_rule("pc", net).T == 3 and build_rule("pc", net).card().inference_iterations == 3
    with pytest.raises(ValueError, match="T ≥ L−1 = 3"):
        build_rule("pc", net, {"T": 2})
    for bad in ({"T": 0}, {"inference_rate": 0.0}, {"energy": "hinge"}):
        with pytest.raises(ValueError):
            make_config("pc", bad)


def test_mse_energy_uses_the_squared_output_error():
    net = build_mlp(20, 5, (16,), seed=0)
    x, y = batch()
    rule = build_rule("pc", net, {"energy": "mse", "fixed_prediction": True, "inference_rate": 1.0})
    directions, _ = rule.directions(net, x, y)
    error = net(x) - F.one_hot(y, 5)  # ∂(½‖logits − onehot‖²)/∂logits
    assert torch.allclose(directions[-1], error.sum(0) / len(y), atol=1e-6)


class Unpinned(PredictiveCoding):
    """Predictive coding that does not expose its relaxed inputs to the measurement."""

    def relaxed_inputs(self, net, x, y):
        return None


class ReadsBelow(PredictiveCoding):
    """Adds to each layer's update a term read directly from the weights of the layer below."""

    def directions(self, net, x, y):
        directions, info = super().directions(net, x, y)
        for l in range(1, net.depth):
            directions[2 * l + 1] = directions[2 * l + 1] + 1e-3 * net.layers[l - 1].weight.sum()
        return directions, info


def test_the_layers_below_reach_the_update_only_through_its_relaxed_input():
    net = build_mlp(20, 5, (16, 12, 8), activation="tanh", seed=0)
    measured = measure(PredictiveCoding(net, PCConfig()))
    assert not any(measured.below) and not any(measured.weights_below)
    assert measured.weight_transport == "exact" and "error_from_above" in measured.reads
    # Without pinning the relaxed input, the layers below are seen (the input settles with them) ...
    unpinned = measure(Unpinned(net, PCConfig()))
    assert any(unpinned.below) and any(unpinned.weights_below)
    assert any("below" in p for p in verify(PredictiveCoding(net, PCConfig()).card(), unpinned))
    # ... and pinning it does not hide a rule that reads the layers below directly.
    cheat = ReadsBelow(net, PCConfig())
    assert any("below" in p for p in verify(cheat.card(), measure(cheat)))


def test_the_card_follows_the_regime():
    net = build_mlp(20, 5, (16, 12, 8), activation="relu", seed=0)
    fixed = build_rule("pc", net, {"fixed_prediction": True})
    measured = measure(fixed)
    assert verify(fixed.card(), measured) == [] and "own_weights" not in measured.reads
    assert "own_weights" in build_rule("pc", net).card().reads
