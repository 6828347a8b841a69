"""SoftHebb as a PyTorch extension: unsupervised soft winner-take-all hidden layers, a delta-rule
readout, the closed-form rule as oracle, conv layers, and the measurement that tells layers
reading the target from layers that do not."""

import dataclasses

import oracle_softhebb
import pytest
import torch
import torch.nn.functional as F
from helpers import Learner, train_steps

from plasticity.build import run_options
from plasticity.models import build_cnn1d, build_lenet5
from plasticity.nets import build_mlp, rms_normalize
from plasticity.observe.activity import record
from plasticity.observe.plausibility import measure, probe_inputs, probe_rule, verify
from plasticity.rules import attach, build_rule, make_config
from plasticity.rules.softhebb import SoftHebb

# The plain rule on the network's own activation, without the step scalings (the first version).
PLAIN = {"activation": "net", "init_norm": None, "adaptive_power": 0.0, "normalize_step": False, "hebbian_scale": 1.0}


def batch(n_in=20, classes=5, n=16, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, n_in, generator=g, dtype=dtype), torch.randint(0, classes, (n,), generator=g)


def mlp(hidden, options=None, activation="tanh", seed=0, n_in=20, classes=5):
    """The benchmark MLP the rule trains (triangle activity, RMS-normalised, unless "net")."""
    config = make_config("softhebb", options)
    return build_mlp(n_in, classes, hidden, seed=seed, **{"activation": activation, **SoftHebb.mlp_options(config)})


def linears(net):
    return [m for m in net if isinstance(m, torch.nn.Linear)]


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
    net = mlp((6,), PLAIN)
    rule = build_rule("softhebb", net, {**PLAIN, "temperature": 0.5})
    x, y = batch()
    directions, _ = rule.directions(net, x, y)
    W = linears(net)[0].weight.detach()
    u = x @ W.T  # hidden biases are 0
    expected = softhebb_change(x, u, W, 0.5)
    assert torch.allclose(directions[0], -expected / len(x), atol=1e-6)
    assert torch.equal(directions[1], torch.zeros(6))  # hidden biases are not plastic
    readout = F.softmax(net(x), 1) - F.one_hot(y, 5)
    assert torch.allclose(directions[2], readout.T @ torch.tanh(u) / len(x), atol=1e-6)


def test_default_step_is_scaled_per_neuron_and_per_layer_and_triangle_activity_is_passed_on():
    net = mlp((6,))
    rule = build_rule("softhebb", net)
    config = rule.config
    first, readout_layer = linears(net)
    W = first.weight.detach()
    assert torch.allclose(W.norm(dim=1), torch.full((6,), config.init_norm))  # attach: far from the unit sphere
    x, y = batch()
    u = x @ W.T
    change = softhebb_change(x, u, W, config.temperature) / len(x)
    rate = (W.norm(dim=1, keepdim=True) - 1).abs().pow(config.adaptive_power)
    expected = -config.hebbian_scale * rate * change / change.abs().max()
    directions, _ = rule.directions(net, x, y)
    assert torch.allclose(directions[0], expected, rtol=1e-4, atol=1e-6)
    h = rms_normalize(torch.relu(u - u.mean(dim=1, keepdim=True)))  # triangle, RMS-normalised: the model's
    logits = h @ readout_layer.weight.T + readout_layer.bias
    assert torch.allclose(rule.logits(net, x), logits, atol=1e-5)
    readout = F.softmax(logits, 1) - F.one_hot(y, 5)
    assert torch.allclose(directions[2], readout.T @ h / len(x), atol=1e-5)
    # A neuron on the unit sphere has stopped learning.
    with torch.no_grad():
        first.weight[2] /= first.weight[2].norm()
    directions, _ = rule.directions(net, x, y)
    assert directions[0][2].abs().max() < 1e-3 < directions[0][1].abs().max()


def test_the_decay_term_makes_unit_norm_weights_a_fixed_point():
    net = mlp((1,), PLAIN)  # one unit: always the winner, y = 1
    x = torch.randn(1, 20)
    with torch.no_grad():
        linears(net)[0].weight.copy_(x / x.norm())
    directions, _ = build_rule("softhebb", net, PLAIN).directions(net, x, torch.tensor([0]))
    assert torch.allclose(directions[0], torch.zeros(1, 20), atol=1e-6)


@pytest.mark.parametrize("options", [PLAIN, {}], ids=["plain", "default"])
def test_a_winning_unit_converges_to_the_unit_norm_mean_of_its_inputs(options):
    net = mlp((1,), options, activation="relu")
    first = linears(net)[0]
    with torch.no_grad():
        first.weight.mul_(2.0)
    rule = build_rule("softhebb", net, {**options, "lr": 0.1})
    learner = Learner(rule, net)
    g = torch.Generator().manual_seed(1)
    mean = torch.randn(20, generator=g)
    for _ in range(300):
        learner.step(mean + 0.3 * torch.randn(32, 20, generator=g), torch.zeros(32, dtype=torch.long))
    weight = first.weight.detach()[0]
    assert abs(float(weight.norm()) - 1.0) < 0.02
    assert float(F.cosine_similarity(weight, mean, dim=0)) > 0.99


@pytest.mark.parametrize("variant", ["default", "plain", "not_anti_hebbian", "frozen"])
def test_directions_and_logits_are_the_closed_form_rule(variant):
    # The benchmark MLP (one hidden layer of 256, and a second for the layer above), in float64
    # so that the comparison is of the mathematics, not of rounding.
    options = {"default": {}, "plain": PLAIN, "not_anti_hebbian": {"anti_hebbian": False}, "frozen": {"hebbian": False}}[variant]
    x, y = batch(784, 10, 64, dtype=torch.float64)
    for hidden in ((256,), (256, 256)):
        net = mlp(hidden, options, n_in=784, classes=10).double()
        rule = build_rule("softhebb", net, options)
        directions, info = rule.directions(net, x, y)
        expected = oracle_softhebb.directions(net, rule.config, x, y)
        assert max(float((d - e).abs().max()) for d, e in zip(directions, expected, strict=True)) <= 1e-6
        with torch.no_grad():
            assert float((rule.logits(net, x) - oracle_softhebb.trace(net, x).logits).abs().max()) <= 1e-6
        assert info.loss == pytest.approx(F.cross_entropy(info.logits, y).item())


def test_hidden_biases_get_a_zero_gradient_and_stay():
    net = mlp((16, 12))
    rule = build_rule("softhebb", net)
    x, y = batch(n=64)
    learner = Learner(rule, net)
    for _ in range(5):
        learner.step(x, y)
    assert all(torch.equal(layer.bias, torch.zeros(layer.out_features)) for layer in linears(net)[:-1])
    assert not torch.equal(linears(net)[-1].bias, torch.zeros(5))
    # Conv biases start non-zero: SGD with momentum and Adam (weight decay 0) leave them alone.
    for optimizer in (torch.optim.SGD, torch.optim.Adam):
        model = build_cnn1d(40, 10, seed=0)
        rule = attach(model, "softhebb", seed=0, init_norm=None)
        biases = [layer.bias.detach().clone() for layer in rule.layers_[:-1]]
        step = optimizer(rule.trained(model), lr=0.01, **({"momentum": 0.9} if optimizer is torch.optim.SGD else {}))
        for _ in range(3):
            step.zero_grad()
            rule.loss(model, *batch(40, 10, 8)).backward()
            assert all(torch.equal(layer.bias.grad, torch.zeros_like(layer.bias)) for layer in rule.layers_[:-1])
            step.step()
        assert all(torch.equal(b, layer.bias) for b, layer in zip(biases, rule.layers_[:-1], strict=True))


def test_only_the_readout_reads_the_target():
    net = mlp((16, 12, 8))
    rule = build_rule("softhebb", net)
    measured = measure(rule)
    assert measured.target == [False, False, False, True] and not measured.hidden_read_target
    assert measured.layer_local and measured.weight_transport == "none"
    rule.detach()  # one rule per model
    assert measure(build_rule("bp", net)).hidden_read_target


class Supervised(SoftHebb):
    """A SoftHebb whose hidden updates are gated by the label (a hidden third factor)."""

    def step_loss(self, model, x, y):
        self.gate = (y == 0).float().mean()
        return super().step_loss(model, x, y)

    def hebbian_direction(self, layer, x, u):
        return super().hebbian_direction(layer, x, u) * self.gate


def test_a_hidden_layer_reading_the_target_without_declaring_a_path_is_caught():
    rule = Supervised().attach(mlp((16, 12, 8)))
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
    # Triangle activity and its normalisation belong to the model the benchmark builds.
    assert SoftHebb.mlp_options(config) == {"activation": "triangle", "normalize": True}
    assert SoftHebb.mlp_options(make_config("softhebb", PLAIN)) == {}
    # The conv models do not normalise their activity: no norm-25 weights there by default.
    assert run_options("softhebb", "mnist1d", "cnn1d")["init_norm"] is None and "init_norm" not in run_options("softhebb", "mnist1d")
    assert run_options("softhebb", "mnist1d", "lenet5", {"init_norm": 5.0})["init_norm"] == 5.0
    plain = build_rule("softhebb", mlp((6,)), {"anti_hebbian": False})
    assert (plain.competition(torch.randn(4, 6)) > 0).all()


def test_the_frozen_control_trains_the_readout_only_and_its_card_holds():
    net = mlp((16, 12, 8))
    rule = build_rule("softhebb", net, {"hebbian": False})
    before = [p.detach().clone() for p in net.parameters()]
    Learner(rule, net).step(*batch())
    changed = [not torch.equal(b, p) for b, p in zip(before, net.parameters(), strict=True)]
    assert changed == [False] * 6 + [True, True]
    assert verify(rule.card(), measure(rule)) == [] and rule.card().reads == ()


def patches(layer, x):
    """(batch, positions, in_channels · kernel): the input patch every position of `layer` reads."""
    if isinstance(layer, torch.nn.Conv1d):
        padded = F.pad(x, (layer.padding[0],) * 2)
        return padded.unfold(2, layer.kernel_size[0], layer.stride[0]).permute(0, 2, 1, 3).flatten(2)
    return F.unfold(x, layer.kernel_size, padding=layer.padding, stride=layer.stride).transpose(1, 2)


@pytest.mark.parametrize("build, width", [(build_cnn1d, 40), (build_lenet5, 784)], ids=["cnn1d", "lenet5"])
def test_a_conv_layer_competes_over_channels_at_each_position(build, width):
    model = build(width, 10, seed=0)
    rule = attach(model, "softhebb", seed=0, **PLAIN)
    x, y = batch(width, 10, 8)
    directions, _ = rule.directions(model, x, y)
    inputs = record(model, rule.layers_, x).h
    slots = {id(p): i for i, p in enumerate(model.parameters())}
    for layer, h in zip(rule.layers_[:-1], inputs[:-2], strict=True):
        if not isinstance(layer, (torch.nn.Conv1d, torch.nn.Conv2d)):
            continue
        p, W = patches(layer, h), layer.weight.detach().flatten(1)
        u = p @ W.T  # batch × positions × channels
        soft = torch.softmax(u / rule.config.temperature, dim=-1)
        y_k = torch.where(F.one_hot(u.argmax(dim=-1), u.shape[-1]).bool(), soft, -soft)
        change = (torch.einsum("npk,npi->ki", y_k, p) - (y_k * u).sum(dim=(0, 1))[:, None] * W) / len(x)
        assert torch.allclose(directions[slots[id(layer.weight)]], -change.view_as(layer.weight), atol=1e-5)
        assert torch.equal(directions[slots[id(layer.bias)]], torch.zeros_like(layer.bias))


@pytest.mark.parametrize("build, width", [(build_cnn1d, 40), (build_lenet5, 784)], ids=["cnn1d", "lenet5"])
def test_softhebb_trains_conv_models_with_adam(build, width):
    # init_norm=None: these models do not normalise their activity, and weights of norm 25 would
    # scale each layer's output ~25-fold (the benchmark MLP RMS-normalises after the layer).
    model = build(width, 10, seed=0)
    rule = attach(model, "softhebb", seed=0, init_norm=None)
    x, y = batch(width, 10, 32)
    hidden = [layer.weight.detach().clone() for layer in rule.layers_[:-1]]
    losses = [info.loss for _, info in train_steps(rule, model, x, y, torch.optim.Adam(rule.trained(model), lr=1e-2), 8)]
    assert losses[-1] < losses[0]
    assert all(not torch.equal(w, layer.weight) for w, layer in zip(hidden, rule.layers_[:-1], strict=True))


def test_init_norm_rescales_every_hidden_row_or_channel_when_attached():
    model = build_lenet5(784, 10, seed=0)
    readout = model[-1].weight.detach().clone()
    rule = attach(model, "softhebb", seed=0)
    for layer in rule.layers_[:-1]:
        assert torch.allclose(layer.weight.flatten(1).norm(dim=1), torch.full((layer.weight.shape[0],), 25.0))
    assert torch.equal(model[-1].weight, readout)


@pytest.mark.parametrize("options", [{}, {"hebbian": False}], ids=["hebbian", "frozen"])
def test_the_card_holds_on_a_conv_model(options):
    rule = probe_rule("softhebb", options, model="cnn1d")
    measured = measure(rule, x=probe_inputs("cnn1d"))
    assert verify(rule.card(), measured) == [] and not measured.hidden_read_target


def test_the_benchmark_run_builds_the_mlp_with_triangle_activity(digits):
    """`build_run` gives softhebb the MLP of its `mlp_options` (triangle, RMS-normalised), and the
    other rules the run's own non-linearity."""
    from torch import nn

    from plasticity.build import TrainConfig, build_run
    from plasticity.nets import RMSNormalize, Triangle

    softhebb = build_run(TrainConfig(rule="softhebb", data="digits"), digits).model
    assert [type(m) for m in softhebb] == [nn.Linear, Triangle, RMSNormalize, nn.Linear]
    plain = build_run(TrainConfig(rule="softhebb", data="digits", rule_options={"activation": "net"}), digits).model
    assert [type(m) for m in plain] == [nn.Linear, nn.Tanh, nn.Linear]
