"""SoftHebb: unsupervised soft winner-take-all hidden layers, a delta-rule readout, and the
measurement that tells layers reading the target from layers that do not."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from plasticity.nets import build_mlp, rms_normalize
from plasticity.observe.plausibility import measure, verify
from plasticity.rules import build_rule, make_config
from plasticity.rules.softhebb import SoftHebb, SoftHebbConfig

# The plain rule on the network's own activation, without the step scalings (the first version).
PLAIN = {"activation": "net", "init_norm": None, "adaptive_power": 0.0, "normalize_step": False, "hebbian_scale": 1.0}


def batch(n_in=20, classes=5, n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, n_in, generator=g), torch.randint(0, classes, (n,), generator=g)


def softhebb_change(x, u, W, temperature):
    """Σ over the batch of ΔW_k = y_k (x − u_k W_k), y = softmax(u/τ), −y_k for non-winners: by hand."""
    expected = torch.zeros_like(W)
    for n in range(len(x)):
        soft = torch.softmax(u[n] / temperature, dim=0)
        winner = int(u[n].argmax())
        for k in range(W.shape[0]):
            y_k = soft[k] if k == winner else -soft[k]
            expected[k] += y_k * (x[n] - u[n, k] * W[k])
    return expected


def test_hidden_update_is_the_softhebb_rule_with_anti_hebbian_losers():
    net = build_mlp(20, 5, (6,), activation="tanh", seed=0)
    rule = build_rule("softhebb", net, {**PLAIN, "temperature": 0.5})
    x, y = batch()
    directions, _ = rule.directions(net, x, y)
    W = net.layers[0].weight.detach()
    u = x @ W.T  # hidden biases are 0
    expected = softhebb_change(x, u, W, 0.5)
    assert torch.allclose(directions[0], -expected / len(x), atol=1e-6)
    assert torch.equal(directions[1], torch.zeros(6))  # hidden biases are not plastic
    readout = F.softmax(net(x), 1) - F.one_hot(y, 5)
    assert torch.allclose(directions[2], readout.T @ torch.tanh(u) / len(x), atol=1e-6)


def test_default_step_is_scaled_per_neuron_and_per_layer_and_triangle_activity_is_passed_on():
    net = build_mlp(20, 5, (6,), activation="tanh", seed=0)
    rule = build_rule("softhebb", net)
    config = rule.config
    W = net.layers[0].weight.detach()
    assert torch.allclose(W.norm(dim=1), torch.full((6,), config.init_norm))  # setup: far from the unit sphere
    x, y = batch()
    u = x @ W.T
    change = softhebb_change(x, u, W, config.temperature) / len(x)
    rate = (W.norm(dim=1, keepdim=True) - 1).abs().pow(config.adaptive_power)
    expected = -config.hebbian_scale * rate * change / change.abs().max()
    directions, _ = rule.directions(net, x, y)
    assert torch.allclose(directions[0], expected, rtol=1e-4, atol=1e-6)
    h = rms_normalize(torch.relu(u - u.mean(dim=1, keepdim=True)))  # triangle, RMS-normalised
    logits = h @ net.layers[1].weight.T + net.layers[1].bias
    assert torch.allclose(rule.logits(net, x), logits, atol=1e-5)
    readout = F.softmax(logits, 1) - F.one_hot(y, 5)
    assert torch.allclose(directions[2], readout.T @ h / len(x), atol=1e-5)
    # A neuron on the unit sphere has stopped learning.
    with torch.no_grad():
        net.layers[0].weight[2] /= net.layers[0].weight[2].norm()
    directions, _ = rule.directions(net, x, y)
    assert directions[0][2].abs().max() < 1e-3 < directions[0][1].abs().max()


def test_the_decay_term_makes_unit_norm_weights_a_fixed_point():
    net = build_mlp(20, 5, (1,), seed=0)  # one unit: always the winner, y = 1
    x = torch.randn(1, 20)
    with torch.no_grad():
        net.layers[0].weight.copy_(x / x.norm())
    directions, _ = build_rule("softhebb", net, PLAIN).directions(net, x, torch.tensor([0]))
    assert torch.allclose(directions[0], torch.zeros(1, 20), atol=1e-6)


@pytest.mark.parametrize("options", [PLAIN, {}], ids=["plain", "default"])
def test_a_winning_unit_converges_to_the_unit_norm_mean_of_its_inputs(options):
    net = build_mlp(20, 5, (1,), seed=0)
    with torch.no_grad():
        net.layers[0].weight.mul_(2.0)
    rule = build_rule("softhebb", net, {**options, "lr": 0.1})
    g = torch.Generator().manual_seed(1)
    mean = torch.randn(20, generator=g)
    for _ in range(300):
        x = mean + 0.3 * torch.randn(32, 20, generator=g)
        rule.step(net, x, torch.zeros(32, dtype=torch.long))
    weight = net.layers[0].weight.detach()[0]
    assert abs(float(weight.norm()) - 1.0) < 0.02
    assert float(F.cosine_similarity(weight, mean, dim=0)) > 0.99


def test_hidden_biases_stay_at_zero():
    net = build_mlp(20, 5, (16, 12), activation="tanh", seed=0)
    rule = build_rule("softhebb", net)
    x, y = batch(n=64)
    for _ in range(5):
        rule.step(net, x, y)
    assert all(torch.equal(layer.bias, torch.zeros(layer.out_features)) for layer in net.layers[:-1])
    assert not torch.equal(net.layers[-1].bias, torch.zeros(5))


def test_only_the_readout_reads_the_target():
    rule = build_rule("softhebb", build_mlp(20, 5, (16, 12, 8), activation="tanh", seed=0))
    measured = measure(rule)
    assert measured.target == [False, False, False, True] and not measured.hidden_read_target
    assert measured.layer_local and measured.weight_transport == "none"
    assert measure(build_rule("bp", rule.net)).hidden_read_target


class Supervised(SoftHebb):
    """A SoftHebb whose hidden updates are gated by the label (a hidden third factor)."""

    def directions(self, net, x, y):
        directions, info = super().directions(net, x, y)
        gate = (y == 0).float().mean()
        return [d * gate if i < 2 * (net.depth - 1) else d for i, d in enumerate(directions)], info


def test_a_hidden_layer_reading_the_target_without_declaring_a_path_is_caught():
    rule = Supervised(build_mlp(20, 5, (16, 12, 8), activation="tanh", seed=0), SoftHebbConfig())
    measured = measure(rule)
    assert measured.hidden_read_target
    assert any("read the target" in p for p in verify(rule.card(), measured))
    # Declaring a path (here, falsely, a broadcast) silences this check but not the broadcast one.
    claimed = dataclasses.replace(rule.card(), reads=("pre", "post", "own_weights", "broadcast"))
    problems = verify(claimed, measured)
    assert not any("read the target" in p for p in problems) and any("broadcast" in p for p in problems)


@pytest.mark.parametrize(
    "options, problem",
    [
        ({"temperature": 0.0}, "temperature"),
        ({"activation": "gelu"}, "activation"),
        ({"init_norm": -1.0}, "init_norm"),
        ({"adaptive_power": -0.5}, "adaptive_power"),
        ({"hebbian_scale": 0.0}, "hebbian_scale"),
    ],
)
def test_bad_options_are_refused(options, problem):
    with pytest.raises(ValueError, match=problem):
        make_config("softhebb", options)


def test_defaults_and_options():
    config = make_config("softhebb")
    assert config.optimizer == "sgd" and config.anti_hebbian and config.activation == "triangle"
    assert SoftHebb.default_hidden == (256,)
    assert SoftHebb.hidden_activity(config, "tanh") == "RMS-normalised triangle"
    assert SoftHebb.hidden_activity(make_config("softhebb", PLAIN), "tanh") == "tanh"
    plain = build_rule("softhebb", build_mlp(20, 5, (6,), seed=0), {"anti_hebbian": False})
    assert (plain.competition(torch.randn(4, 6)) > 0).all()


def test_the_frozen_control_trains_the_readout_only_and_its_card_holds():
    net = build_mlp(20, 5, (16, 12, 8), activation="tanh", seed=0)
    rule = build_rule("softhebb", net, {"hebbian": False})
    before = [p.detach().clone() for p in net.parameters()]
    rule.step(net, *batch())
    changed = [not torch.equal(b, p) for b, p in zip(before, net.parameters())]
    assert changed == [False] * 6 + [True, True]
    assert verify(rule.card(), measure(rule)) == [] and rule.card().reads == ()
