"""Forward-Forward as a PyTorch extension: per-block local losses on detached, normalised block
inputs, the label input through the rule's own label weights, negatives, both inferences, the
closed-form rule as oracle, and conv models."""

import math
from functools import partial

import oracle_ff
import pytest
import torch
import torch.nn.functional as F
from helpers import Learner, train_steps

from plasticity.models import build_cnn1d, build_lenet5
from plasticity.nets import build_mlp, rms_normalize
from plasticity.observe.activity import record
from plasticity.observe.plausibility import measure, probe_inputs, probe_rule, verify
from plasticity.rules import attach, build_rule, make_config
from plasticity.train import TrainConfig, Trainer, evaluate


def batch(n_in=20, classes=5, n=16, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, n_in, generator=g, dtype=dtype), torch.randint(0, classes, (n,), generator=g)


def linears(net):
    return [m for m in net if isinstance(m, torch.nn.Linear)]


def test_the_label_drives_the_first_layer_and_later_layers_take_their_input_normalised_and_detached():
    net = build_mlp(20, 5, (16, 12), activation="tanh", seed=0)
    x, y = batch()
    plain = net(x)
    rule = build_rule("ff", net)
    W0, W1, W2 = linears(net)
    trace = record(net, rule.layers_, x)  # outside the rule's passes: the neutral label
    assert torch.allclose(trace.a[0], F.linear(x, W0.weight, W0.bias) + rule.label_weights.mean(dim=1), atol=1e-6)
    assert torch.allclose(trace.a[1], F.linear(rms_normalize(torch.tanh(trace.a[0])), W1.weight, W1.bias), atol=1e-6)
    assert torch.allclose(net(x), oracle_ff.forward_pass(net, rule.label_weights.detach(), x, torch.full((16, 5), 0.2)).logits, atol=1e-6)
    # No error crosses a block: the head's cross-entropy reaches the head only.
    grads = torch.autograd.grad(F.cross_entropy(net(x), y), rule.trained(net), allow_unused=True)
    assert [g is not None for g in grads] == [False] * 4 + [True, True, False]
    with rule.bypassed():  # the plain model
        assert torch.equal(net(x), plain)
    rule.detach()
    assert torch.equal(net(x), plain)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_hidden_updates_are_the_gradient_of_each_layers_own_loss(activation):
    net = build_mlp(20, 5, (16, 12), activation=activation, seed=0)
    rule = build_rule("ff", net, {"negatives": "hard"})
    x, y = batch()
    directions, _ = rule.directions(net, x, y)
    negative_y = rule.negative_labels(net(x), y)
    config, expected = rule.config, [torch.zeros_like(p) for p in rule.trained(net)]
    for labels, sign in ((y, -1.0), (negative_y, 1.0)):  # softplus(α(θ − G⁺)) + softplus(α(G⁻ − θ))
        with torch.enable_grad():
            params = [p.detach().clone().requires_grad_() for p in rule.trained(net)]
            h, U = x, params[-1]
            for l in range(2):
                a = F.linear(h, params[2 * l], params[2 * l + 1]) + (F.one_hot(labels, 5).float() @ U.T if l == 0 else 0)
                f = torch.relu(a) if activation == "relu" else torch.tanh(a)
                loss = F.softplus(sign * config.sharpness * (f.pow(2).mean(dim=1) - config.threshold)).mean()
                grads = torch.autograd.grad(loss, params, allow_unused=True)
                expected = [e if g is None else e + g for e, g in zip(expected, grads, strict=True)]
                h = rms_normalize(f).detach()  # detached between layers: each loss is its layer's own
    for index in [0, 1, 2, 3, len(directions) - 1]:
        assert torch.allclose(directions[index], expected[index], atol=1e-5), index


def test_the_head_is_the_delta_rule_on_the_neutral_pass():
    net = build_mlp(20, 5, (16, 12), seed=0)
    rule = build_rule("ff", net)
    x, y = batch()
    directions, info = rule.directions(net, x, y)
    neutral = oracle_ff.forward_pass(net, rule.label_weights.detach(), x, torch.full((16, 5), 0.2))
    error = (torch.softmax(neutral.logits, 1) - F.one_hot(y, 5)) / 16
    assert torch.allclose(directions[-3], error.T @ neutral.h[-2], atol=1e-6)
    assert torch.allclose(info.logits, neutral.logits, atol=1e-6)
    assert info.loss == pytest.approx(F.cross_entropy(neutral.logits, y).item(), abs=1e-6)


def test_the_label_weights_are_a_parameter_of_the_rule_that_the_optimizer_trains():
    net = build_mlp(20, 5, (16, 12), seed=0)
    rule = build_rule("ff", net)
    x, y = batch()
    U = rule.label_weights
    assert isinstance(U, torch.nn.Parameter) and U.shape == (16, 5)
    assert list(rule.parameters()) == [U] and rule.trained(net) == [*net.parameters(), U]
    assert torch.equal(rule.state_dict()["label_weights"], U)  # checkpoints hold it
    # Drawn so that the label drives layer 0 as strongly as a standardised input does.
    bound = math.sqrt(3 * linears(net)[0].weight.pow(2).sum(dim=1).mean().item())
    assert 0.9 * bound < U.abs().max().item() <= bound
    before = U.detach().clone()
    Learner(rule, net).step(x, y)
    assert not torch.equal(before, U)


def test_negatives_are_wrong_labels_drawn_anew_each_plastic_step():
    net = build_mlp(20, 5, (16, 12), seed=0)
    x, y = batch(n=256)
    for kind in ("hard", "random"):
        rule = build_rule("ff", net, {"negatives": kind})
        logits = net(x)
        first = rule.negative_labels(logits, y)
        assert not (first == y).any() and torch.equal(first, rule.negative_labels(logits, y))
        rule.directions(net, x, y)  # frozen: the step count stays
        assert int(rule.steps) == 0
        rule.loss(net, x, y)
        assert int(rule.steps) == 1
        assert not torch.equal(first, rule.negative_labels(logits, y))
        rule.detach()


def test_every_pass_of_a_step_runs_in_one_forward_of_stacked_rows():
    net = build_mlp(20, 5, (16, 12), seed=0)
    x, y = batch()
    rows = []
    net.register_forward_pre_hook(lambda module, args: rows.append(len(args[0])))
    scan = build_rule("ff", net)
    assert scan.logits(net, x).shape == (16, 5) and rows == [5 * 16]  # one pass per label, stacked
    rows.clear()
    scan.loss(net, x, y)
    assert rows == [6 * 16]  # every label and the neutral pass
    scan.detach()
    rows.clear()
    head = build_rule("ff", net, {"inference": "head", "negatives": "hard"})
    assert head.logits(net, x).shape == (16, 5) and rows == [16]
    rows.clear()
    head.loss(net, x, y)
    assert rows == [16, 2 * 16]  # the neutral pass (it draws the hard negatives), then positive and negative
    head.detach()
    rule = build_rule("ff", net)
    scan = rule.logits(net, x)
    for label in range(5):  # the scan's score is α × the summed goodness of that label's pass
        trace = oracle_ff.forward_pass(net, rule.label_weights.detach(), x, F.one_hot(torch.full((16,), label), 5).float())
        goodness = sum(f.pow(2).mean(dim=1) for f in trace.f)
        assert torch.allclose(scan[:, label], rule.config.sharpness * goodness, atol=1e-4)


@pytest.mark.parametrize("negatives", ["all", "random", "hard"])
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_directions_and_logits_are_the_closed_form_rule(negatives, activation):
    # The benchmark MLP, in float64 so that the comparison is of the mathematics, not of rounding
    # (in float32 the two orders of summation differ by ~1e-6 at α = 60).
    net = build_mlp(784, 10, (256, 256), activation=activation, seed=0).double()
    x, y = batch(784, 10, 64, dtype=torch.float64)
    rule = build_rule("ff", net, {"negatives": negatives}, seed=3)
    U = rule.label_weights.detach()
    for steps in (0, 1):  # the negatives drawn at the first and the second step
        directions, info = rule.directions(net, x, y)
        expected = oracle_ff.directions(net, U, rule.config, x, y, seed=3, steps=steps)
        assert max(float((d - e).abs().max()) for d, e in zip(directions, expected, strict=True)) <= 1e-6
        rule.steps += 1
    for inference in ("head", "scan"):
        rule.config.inference = inference
        assert float((rule.logits(net, x) - oracle_ff.logits(net, U, rule.config, x)).abs().max()) <= 1e-6
    assert len(info.extras["goodness_positive"]) == len(info.extras["goodness_negative"]) == 2


def test_ff_is_layer_local_without_weight_transport():
    measured = measure(build_rule("ff", build_mlp(20, 5, (16, 12, 8), activation="tanh", seed=0), {"negatives": "hard"}))
    assert measured.layer_local and measured.weight_transport == "none" and not measured.hidden_read_target
    assert not any(measured.above) and not any(measured.output[:-1])


def test_the_trainer_evaluates_through_the_rules_logits(digits):
    trainer = Trainer.from_config(TrainConfig(rule="ff", data="digits", hidden=(32,), epochs=1, seed=0), digits, progress=False)
    assert trainer.optimizer.param_groups[0]["params"][-1] is trainer.rule.label_weights
    trainer.run_epoch(1)
    accuracy, _ = evaluate(partial(trainer.rule.logits, trainer.net), digits.test.x, digits.test.y)
    assert trainer.epochs[-1].test_accuracy == accuracy
    # The plain forward pass (the neutral label's head) is not how the scan classifies.
    assert evaluate(trainer.net, digits.test.x, digits.test.y)[0] != accuracy


def test_options_are_checked():
    for bad in ({"threshold": 0.0}, {"sharpness": -1.0}, {"negatives": "easy"}, {"inference": "vote"}):
        with pytest.raises(ValueError):
            make_config("ff", bad)
    net = build_mlp(20, 5, (), seed=0)
    with pytest.raises(ValueError, match="hidden block"):
        build_rule("ff", net)
    build_rule("bp", net)  # the refused rule left the model free


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_all_negatives_is_each_layers_softmax_over_the_labels_goodness(activation):
    net = build_mlp(20, 5, (16, 12), activation=activation, seed=0)
    rule = build_rule("ff", net)  # negatives="all" is the default
    assert rule.config.negatives == "all"
    x, y = batch()
    directions, _ = rule.directions(net, x, y)
    config, expected = rule.config, [torch.zeros_like(p) for p in rule.trained(net)]
    with torch.enable_grad():
        params = [p.detach().clone().requires_grad_() for p in rule.trained(net)]
        hs = [x] * 5
        for l in range(2):
            fs = []
            for c in range(5):  # one pass per label; each layer's loss is its own
                a = F.linear(hs[c], params[2 * l], params[2 * l + 1]) + (params[-1][:, c] if l == 0 else 0)
                fs.append(torch.relu(a) if activation == "relu" else torch.tanh(a))
            goodness = torch.stack([f.pow(2).mean(dim=1) for f in fs], dim=1)
            loss = F.cross_entropy(config.sharpness * goodness, y)
            grads = torch.autograd.grad(loss, params, allow_unused=True)
            expected = [e if g is None else e + g for e, g in zip(expected, grads, strict=True)]
            hs = [rms_normalize(f).detach() for f in fs]
    for index in [0, 1, 2, 3, len(directions) - 1]:
        assert torch.allclose(directions[index], expected[index], atol=1e-5), index
    assert rule.card().phases_per_step == 6


def test_all_negatives_is_layer_local_without_weight_transport():
    rule = build_rule("ff", build_mlp(20, 5, (16, 12, 8), activation="tanh", seed=0), {"negatives": "all"})
    measured = measure(rule)
    assert measured.layer_local and measured.weight_transport == "none" and not measured.hidden_read_target
    assert not any(measured.above) and not any(measured.output[:-1])
    assert verify(rule.card(), measured) == []


def test_all_negatives_update_of_a_layer_ignores_the_weights_above_it_without_any_clamp():
    # Under the plausibility probe's clamp every label's pass has the same activities and the
    # softmax update cancels to rounding, so locality is checked here on the real passes: the
    # update of layer l must not move when the layers above it change, and must when it or a
    # layer below changes.
    net = build_mlp(20, 5, (16, 12, 8), activation="tanh", seed=0)
    rule = build_rule("ff", net)
    x, y = batch()
    base, _ = rule.directions(net, x, y)
    layers = linears(net)
    for l in range(3):
        for m, should_change in ((l + 1, False), (l, True)):
            if m >= 3 and not should_change:
                continue
            saved = layers[m].weight.detach().clone()
            with torch.no_grad():
                layers[m].weight.mul_(1.5)
            changed, _ = rule.directions(net, x, y)
            with torch.no_grad():
                layers[m].weight.copy_(saved)
            assert torch.equal(changed[2 * l], base[2 * l]) != should_change, (l, m)
    assert torch.abs(base[0]).max() > 1e-4  # the real update is not the clamped cancellation


def test_the_label_of_a_conv_first_layer_is_a_bias_per_channel():
    model = build_cnn1d(40, 10, seed=0)
    rule = attach(model, "ff", seed=0)
    conv, U = rule.layers_[0], rule.label_weights.detach()
    assert U.shape == (25, 10)
    x = probe_inputs("cnn1d", batch=4)
    outputs = []
    handle = conv.register_forward_hook(lambda module, args, output: outputs.append(output.detach()))
    with torch.no_grad():
        rule.passes(model, x, [rule.onehot(torch.full((4,), 3)), rule.neutral(4)])
    handle.remove()
    own = conv._conv_forward(model[0](x), conv.weight, conv.bias)
    labelled, neutral = outputs[0].unflatten(0, (2, 4)) - own
    assert torch.allclose(labelled, U[:, 3, None].expand_as(own), atol=1e-6)  # the same at every position
    assert torch.allclose(neutral, U.mean(dim=1)[:, None].expand_as(own), atol=1e-6)


@pytest.mark.parametrize("build, width", [(build_cnn1d, 40), (build_lenet5, 784)], ids=["cnn1d", "lenet5"])
@pytest.mark.parametrize("negatives", ["all", "hard"])
def test_ff_trains_conv_models_with_adam(build, width, negatives):
    model = build(width, 10, seed=0)
    rule = attach(model, "ff", seed=0, negatives=negatives)
    assert len(rule.layers_) == (4 if width == 40 else 5) and rule.card().phases_per_step == (11 if negatives == "all" else 3)
    x, y = batch(width, 10, 32)
    before = [p.detach().clone() for p in rule.trained(model)]
    steps = train_steps(rule, model, x, y, torch.optim.Adam(rule.trained(model), lr=1e-3), 8)
    assert steps[-1][0] < steps[0][0] and math.isfinite(steps[-1][1].loss)
    assert all(not torch.equal(b, p) for b, p in zip(before, rule.trained(model), strict=True))
    assert rule.logits(model, x).shape == (32, 10)


def test_the_card_holds_on_a_conv_model():
    for negatives in ("all", "random"):
        rule = probe_rule("ff", {"negatives": negatives}, model="cnn1d")
        measured = measure(rule, x=probe_inputs("cnn1d"))
        assert verify(rule.card(), measured) == [] and measured.layer_local and not measured.hidden_read_target
