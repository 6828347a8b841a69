"""SoftHebb: unsupervised soft winner-take-all hidden layers, a delta-rule readout, and the
measurement that tells layers reading the target from layers that do not."""

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from plasticity.nets import build_mlp
from plasticity.observe.plausibility import measure, verify
from plasticity.rules import build_rule, make_config
from plasticity.rules.softhebb import SoftHebb, SoftHebbConfig


def batch(n_in=20, classes=5, n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, n_in, generator=g), torch.randint(0, classes, (n,), generator=g)


def test_hidden_update_is_the_softhebb_rule_with_anti_hebbian_losers():
    net = build_mlp(20, 5, (6,), activation="tanh", seed=0)
    rule = build_rule("softhebb", net, {"temperature": 0.5})
    x, y = batch()
    directions, _ = rule.directions(net, x, y)
    W = net.layers[0].weight.detach()
    u = x @ W.T  # hidden biases are 0
    expected = torch.zeros_like(W)
    for n in range(len(x)):
        soft = torch.softmax(u[n] / 0.5, dim=0)
        winner = int(u[n].argmax())
        for k in range(6):
            y_k = soft[k] if k == winner else -soft[k]
            expected[k] += y_k * (x[n] - u[n, k] * W[k])
    assert torch.allclose(directions[0], -expected / len(x), atol=1e-6)
    assert torch.equal(directions[1], torch.zeros(6))  # hidden biases are not plastic
    readout = F.softmax(net(x), 1) - F.one_hot(y, 5)
    assert torch.allclose(directions[2], readout.T @ torch.tanh(u) / len(x), atol=1e-6)


def test_the_decay_term_makes_unit_norm_weights_a_fixed_point():
    net = build_mlp(20, 5, (1,), seed=0)  # one unit: always the winner, y = 1
    x = torch.randn(1, 20)
    with torch.no_grad():
        net.layers[0].weight.copy_(x / x.norm())
    directions, _ = build_rule("softhebb", net).directions(net, x, torch.tensor([0]))
    assert torch.allclose(directions[0], torch.zeros(1, 20), atol=1e-6)


def test_a_winning_unit_converges_to_the_unit_norm_mean_of_its_inputs():
    net = build_mlp(20, 5, (1,), seed=0)
    with torch.no_grad():
        net.layers[0].weight.mul_(2.0)
    rule = build_rule("softhebb", net, {"lr": 0.1})
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


def test_defaults_and_options():
    config = make_config("softhebb")
    assert config.optimizer == "sgd" and config.anti_hebbian
    with pytest.raises(ValueError, match="temperature"):
        make_config("softhebb", {"temperature": 0.0})
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
