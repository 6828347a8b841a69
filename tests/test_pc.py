"""Predictive coding: the closed form it replaces, its regimes of equivalence with backprop (on the
MLP, on conv nets and on a model with a skip connection), its relaxation, its card."""

import itertools

import pytest
import torch
import torch.nn.functional as F
from helpers import train_steps
from oracle_pc import directions as oracle_directions
from oracle_pc import trace
from oracles import backprop
from torch import nn

from plasticity.models import build_cnn1d, build_lenet5
from plasticity.nets import build_mlp
from plasticity.observe.plausibility import measure, probe_inputs, probe_rule, verify
from plasticity.rules import attach, build_rule, make_config
from plasticity.rules.pc import PCConfig, PredictiveCoding


def batch(n_in=20, classes=5, n=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, n_in, generator=g), torch.randint(0, classes, (n,), generator=g)


def cosines(a, b):
    """Per tensor, in float64 (the updates of the lowest layers are as small as γ^(L−1))."""
    return [float((u.double() * v.double()).sum() / (u.double().norm() * v.double().norm())) for u, v in zip(a, b, strict=True)]


def pc_directions(net, x, y, options=None):
    """pc's directions on `net`, attached for the call only."""
    rule = build_rule("pc", net, options)
    try:
        return rule.directions(net, x, y)[0]
    finally:
        rule.detach()


def layer_count(net):
    return sum(isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)) for m in net.modules())


# ------------------------------------------------------------------------------- the closed form
CASES = list(itertools.product([(16, 12, 8), (32, 32)], ["relu", "tanh"], [False, True], [None, 5], ["ce", "mse"]))


@pytest.mark.parametrize(("hidden", "activation", "fixed", "T", "energy"), CASES)
def test_the_rule_is_the_closed_form_on_the_mlp(hidden, activation, fixed, T, energy):
    net = build_mlp(20, 5, hidden, activation=activation, seed=1)
    x, y = batch()
    options = {"fixed_prediction": fixed, "energy": energy, **({"T": T} if T else {})}
    got = pc_directions(net, x, y, options)
    want = oracle_directions(net, x, y, activation, T or len(hidden), 0.01, energy, fixed)
    assert max(float((g - w).abs().max()) for g, w in zip(got, want, strict=True)) <= 1e-6


# ------------------------------------------------------------------------------- equivalence
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_fixed_prediction_with_rate_one_and_L_minus_1_steps_is_backprop(activation):
    net = build_mlp(20, 5, (16, 12, 8), activation=activation, seed=1)
    x, y = batch()
    bp = backprop(net, x, y)
    pc = pc_directions(net, x, y, {"fixed_prediction": True, "inference_rate": 1.0, "T": 3})
    for got, want in zip(pc, bp, strict=True):
        assert torch.allclose(got, want, atol=1e-6)


def test_fixed_prediction_with_a_small_rate_is_backprop_up_to_one_factor_per_layer():
    net = build_mlp(20, 5, (16, 12), activation="tanh", seed=2)
    x, y = batch()
    bp = backprop(net, x, y)
    pc = pc_directions(net, x, y, {"fixed_prediction": True, "inference_rate": 0.3, "T": 5})
    assert min(cosines(pc, bp)) > 1 - 1e-5


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_standard_regime_is_close_to_backprop(activation):
    """Predictions recomputed at every step: cosine to backprop per parameter, measured at
    initialisation (20→32→32→5, 32 samples): > 0.999 at the default rate 0.01, > 0.99 at 0.05."""
    net = build_mlp(20, 5, (32, 32), activation=activation, seed=0)
    x, y = batch()
    bp = backprop(net, x, y)
    default = pc_directions(net, x, y)
    larger = pc_directions(net, x, y, {"inference_rate": 0.05})
    assert min(cosines(default, bp)) > 0.999
    assert min(cosines(larger, bp)) > 0.99
    # Not backprop itself: the output layer learns from the relaxed, smaller output error.
    assert not torch.allclose(default[-2], bp[-2], atol=1e-6)


CONV = {"cnn1d": (build_cnn1d, 40), "lenet5": (build_lenet5, 784)}


def conv_batch(model, n=4, seed=0):
    return batch(CONV[model][1], 10, n, seed)


@pytest.mark.parametrize("model", CONV)
def test_fixed_prediction_with_rate_one_and_L_minus_1_steps_is_backprop_on_conv_nets(model):
    """The exact result holds for any chain of blocks: ε_l ← J_lᵀ ε_{l+1} is backprop's recursion."""
    builder, n_in = CONV[model]
    net = builder(n_in, 10, seed=0)
    x, y = conv_batch(model)
    bp = backprop(net, x, y)
    pc = pc_directions(net, x, y, {"fixed_prediction": True, "inference_rate": 1.0, "T": layer_count(net) - 1})
    for got, want in zip(pc, bp, strict=True):
        assert torch.allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("model", CONV)
def test_standard_regime_is_close_to_backprop_on_conv_nets(model):
    """At the default rate, every layer included: the first layers' errors (∝ γ^(L−1−l), 1e-8 of
    the activities on LeNet-5) are kept as shifts from the forward values, not lost in float32."""
    builder, n_in = CONV[model]
    net = builder(n_in, 10, seed=0)
    x, y = conv_batch(model, n=16)
    assert min(cosines(pc_directions(net, x, y), backprop(net, x, y))) > 0.99


@pytest.mark.parametrize("model", CONV)
def test_a_few_steps_of_adam_reduce_the_loss_on_conv_nets(model):
    builder, n_in = CONV[model]
    net = builder(n_in, 10, seed=0)
    x, y = conv_batch(model, n=16)
    rule = attach(net, "pc")
    losses = [info.loss for _, info in train_steps(rule, net, x, y, torch.optim.Adam(net.parameters(), lr=3e-3), 10)]
    assert losses[-1] < 0.85 * losses[0] and losses[-1] < min(losses[:-1])


class Residual(nn.Module):
    """A skip connection (h reaches fc1 and the sum) and one tensor reaching two layers (a)."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.fc0, self.fc1, self.fc2, self.fc3, self.out = (nn.Linear(6, 8), nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 8), nn.Linear(8, 3))
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) / 2)

    def forward(self, x):
        h = torch.tanh(self.fc0(x))
        a = torch.tanh(self.fc1(h)) + h
        return self.out(torch.relu(self.fc2(a)) * torch.tanh(self.fc3(a)))


def test_any_model_a_skip_connection_and_a_tensor_read_twice():
    net = Residual()
    x, y = batch(6, 3, 8)
    bp = backprop(net, x, y)
    rule = attach(net, "pc", fixed_prediction=True, inference_rate=1.0)
    assert rule.T == 4
    pc, _ = rule.directions(net, x, y)
    for got, want in zip(pc, bp, strict=True):
        assert torch.allclose(got, want, atol=1e-6)
    inputs = rule.relax(net, x, y).inputs
    assert inputs[0] is None and inputs[2] is inputs[3]  # fc2 and fc3 read one value node


# ------------------------------------------------------------------------------- relaxation
def test_relaxation_lowers_the_energy_and_records_every_input():
    net = build_mlp(20, 5, (16, 12), activation="tanh", seed=0)
    rule = build_rule("pc", net, {"T": 4})
    x, y = batch()
    forward = trace(net, x, "tanh")
    relaxed = rule.relax(net, x, y)
    # Before relaxing, every hidden error is 0 and F is the cross-entropy of the forward pass.
    assert relaxed.energy.item() < F.cross_entropy(forward.logits, y).item()
    assert torch.equal(relaxed.logits, forward.logits)
    assert relaxed.inputs[0] is None
    for l in (1, 2):
        assert len(relaxed.inputs[l]) == 5 and torch.equal(relaxed.inputs[l][0], forward.h[l])
        assert not torch.equal(relaxed.inputs[l][-1], forward.h[l])


def test_the_loss_delivers_the_directions_as_grad_and_reports_the_step():
    net = build_mlp(20, 5, (16, 12), activation="tanh", seed=0)
    rule = build_rule("pc", net)
    x, y = batch()
    directions, _ = rule.directions(net, x, y)
    loss, info = rule.loss_and_info(net, x, y)
    loss.backward()
    for p, d in zip(net.parameters(), directions, strict=True):
        assert torch.allclose(p.grad, d, atol=1e-7)
    logits = trace(net, x, "tanh").logits
    assert torch.allclose(info.logits, logits) and info.loss == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-6)
    assert info.applied
    with rule.bypassed():
        assert torch.allclose(rule.directions(net, x, y)[0][0], backprop(net, x, y)[0])
    model = rule.detach()
    assert all("forward" not in m.__dict__ for m in model.modules())  # every forward restored


def test_T_defaults_to_L_minus_1_and_is_checked():
    net = build_mlp(20, 5, (16, 12, 8), seed=0)
    rule = build_rule("pc", net)
    assert rule.T == 3 and rule.card().inference_iterations == 3
    rule.detach()
    with pytest.raises(ValueError, match="T ≥ L−1 = 3"):
        build_rule("pc", net, {"T": 2})
    build_rule("pc", net).detach()  # the refused rule left the model free
    for bad in ({"T": 0}, {"inference_rate": 0.0}, {"energy": "hinge"}):
        with pytest.raises(ValueError):
            make_config("pc", bad)


def test_mse_energy_uses_the_squared_output_error():
    net = build_mlp(20, 5, (16,), seed=0)
    x, y = batch()
    directions = pc_directions(net, x, y, {"energy": "mse", "fixed_prediction": True, "inference_rate": 1.0})
    error = net(x) - F.one_hot(y, 5)  # ∂(½‖logits − onehot‖²)/∂logits
    assert torch.allclose(directions[-1], error.sum(0) / len(y), atol=1e-6)


# ------------------------------------------------------------------------------- the card
class Unpinned(PredictiveCoding):
    """Predictive coding that does not expose its relaxed inputs to the measurement."""

    def relaxed_inputs(self, model, x, y):
        return None


class ReadsBelow(PredictiveCoding):
    """Adds to each layer's bias update a term read directly from the weights of the layer below."""

    def step_loss(self, model, x, y):
        loss, info = super().step_loss(model, x, y)
        for below, layer in zip(self.layers_, self.layers_[1:], strict=False):
            loss = loss + 1e-3 * layer.bias.sum() * below.weight.sum().detach()
        return loss, info


@pytest.mark.parametrize("model", ["mlp", "cnn1d"])
def test_the_layers_below_reach_the_update_only_through_its_relaxed_input(model):
    def build(cls):
        net = build_mlp(20, 5, (16, 12, 8), activation="tanh", seed=0) if model == "mlp" else build_cnn1d(40, 10, seed=0)
        return cls(PCConfig()).attach(net)

    x = None if model == "mlp" else probe_inputs("cnn1d")
    measured = measure(build(PredictiveCoding), x=x)
    assert not any(measured.below) and not any(measured.weights_below)
    assert measured.weight_transport == "exact" and "error_from_above" in measured.reads
    # Without pinning the relaxed input, the layers below are seen (the input settles with them) ...
    unpinned = measure(build(Unpinned), x=x)
    assert any(unpinned.below) and any(unpinned.weights_below)
    assert any("below" in p for p in verify(build(PredictiveCoding).card(), unpinned))
    # ... and pinning it does not hide a rule that reads the layers below directly.
    cheat = build(ReadsBelow)
    assert any("below" in p for p in verify(cheat.card(), measure(cheat, x=x)))


@pytest.mark.parametrize("model", ["mlp", "cnn1d"])
def test_the_card_follows_the_regime_and_holds(model):
    x = None if model == "mlp" else probe_inputs("cnn1d")
    fixed = probe_rule("pc", {"fixed_prediction": True}, model=model)
    measured = measure(fixed, x=x)
    assert verify(fixed.card(), measured) == [] and "own_weights" not in measured.reads
    standard = probe_rule("pc", model=model)
    measured = measure(standard, x=x)
    assert verify(standard.card(), measured) == [] and "own_weights" in measured.reads
