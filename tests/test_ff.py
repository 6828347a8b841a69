"""Forward-Forward: the layer-local goodness loss, the label input, negatives, both inferences,
and the extension points it uses (MLP.trace options, Rule.own_parameters, Rule.logits)."""

import copy
from functools import partial

import pytest
import torch
import torch.nn.functional as F

from plasticity.nets import build_mlp, rms_normalize
from plasticity.observe.plausibility import measure
from plasticity.rules import build_rule, make_config
from plasticity.train import TrainConfig, Trainer, evaluate


def batch(n_in=20, classes=5, n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, n_in, generator=g), torch.randint(0, classes, (n,), generator=g)


def test_trace_adds_a_context_and_normalises_hidden_outputs():
    net = build_mlp(20, 5, (16, 12), activation="tanh", seed=0)
    x, _ = batch()
    context = torch.randn(16, 16)
    plain, shifted = net.trace(x), net.trace(x, context=context, normalize=True)
    assert torch.allclose(shifted.a[0], plain.a[0] + context)
    for h in shifted.h[1:-1]:
        assert torch.allclose(h.pow(2).mean(dim=1), torch.ones(16), atol=1e-5)
    assert torch.allclose(shifted.h[1], rms_normalize(torch.tanh(shifted.a[0])))
    with net.clamp(plain):  # the clamp pins whatever the options
        pinned = net.trace(x, context=context, normalize=True)
    assert all(torch.equal(p, q) for p, q in zip(pinned.h[1:], plain.h[1:]))


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_hidden_updates_are_the_gradient_of_each_layers_own_loss(activation):
    net = build_mlp(20, 5, (16, 12), activation=activation, seed=0)
    rule = build_rule("ff", net, {"negatives": "hard"})
    x, y = batch()
    directions, _ = rule.directions(net, x, y)
    negative_y = rule.negative_labels(rule.forward_pass(net, x, rule.neutral(x, 5)).logits, y)
    config, expected = rule.config, [torch.zeros_like(p) for p in rule.trained()]
    for labels, sign in ((y, -1.0), (negative_y, 1.0)):  # softplus(α(θ − G⁺)) + softplus(α(G⁻ − θ))
        with torch.enable_grad():
            params = [p.detach().clone().requires_grad_() for p in rule.trained()]
            h, U = x, params[-1]
            for l in range(net.depth - 1):
                a = F.linear(h, params[2 * l], params[2 * l + 1]) + (F.one_hot(labels, 5).float() @ U.T if l == 0 else 0)
                f = torch.relu(a) if activation == "relu" else torch.tanh(a)
                loss = F.softplus(sign * config.sharpness * (f.pow(2).mean(dim=1) - config.threshold)).mean()
                grads = torch.autograd.grad(loss, params, allow_unused=True)
                expected = [e if g is None else e + g for e, g in zip(expected, grads)]
                h = rms_normalize(f).detach()  # detached between layers: each loss is its layer's own
    hidden = list(range(2 * (net.depth - 1))) + [len(directions) - 1]
    for index in hidden:
        assert torch.allclose(directions[index], expected[index], atol=1e-5), index


def test_the_head_is_the_delta_rule_on_the_neutral_pass():
    net = build_mlp(20, 5, (16, 12), seed=0)
    rule = build_rule("ff", net)
    x, y = batch()
    directions, info = rule.directions(net, x, y)
    neutral = rule.forward_pass(net, x, torch.full((16, 5), 0.2))
    error = (torch.softmax(neutral.logits, 1) - F.one_hot(y, 5)) / 16
    assert torch.allclose(directions[-3], error.T @ neutral.h[-2], atol=1e-6)
    assert torch.equal(info.logits, neutral.logits)


def test_the_label_is_appended_through_rule_owned_weights_that_the_optimizer_trains():
    net = build_mlp(20, 5, (16, 12), seed=0)
    rule = build_rule("ff", net)
    x, y = batch()
    assert rule.own_parameters() == [rule.label_weights] and rule.label_weights.shape == (16, 5)
    assert len(rule.trained()) == len(list(net.parameters())) + 1
    before = rule.label_weights.clone()
    rule.step(net, x, y)
    assert not torch.equal(before, rule.label_weights)
    with pytest.raises(ValueError, match="directions for"):
        rule.apply(rule.directions(net, x, y)[0][:-1], rule.directions(net, x, y)[1])


def test_negatives_are_wrong_labels_drawn_anew_each_step():
    net = build_mlp(20, 5, (16, 12), seed=0)
    x, y = batch(n=256)
    for kind in ("hard", "random"):
        rule = build_rule("ff", net, {"negatives": kind})
        logits = rule.forward_pass(net, x, rule.neutral(x, 5)).logits
        first = rule.negative_labels(logits, y)
        assert not (first == y).any() and torch.equal(first, rule.negative_labels(logits, y))
        rule.steps += 1
        assert not torch.equal(first, rule.negative_labels(logits, y))


def test_scan_runs_one_pass_per_label_and_head_one_pass(monkeypatch):
    net = build_mlp(20, 5, (16, 12), seed=0)
    x, _ = batch()
    calls = []
    original = type(net).trace
    monkeypatch.setattr(type(net), "trace", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    scan = build_rule("ff", net).logits(net, x)
    assert len(calls) == 5 and scan.shape == (16, 5)
    calls.clear()
    head = build_rule("ff", net, {"inference": "head"}).logits(net, x)
    assert len(calls) == 1 and head.shape == (16, 5)
    rule = build_rule("ff", net)
    for label in range(5):  # the scan's score is α × the summed goodness of that label's pass
        trace = original(net, x, context=F.one_hot(torch.full((16,), label), 5).float() @ rule.label_weights.T, normalize=True)
        goodness = sum(torch.tanh(a).pow(2).mean(dim=1) if net.activation == "tanh" else torch.relu(a).pow(2).mean(dim=1) for a in trace.a[:-1])
        assert torch.allclose(scan[:, label], rule.config.sharpness * goodness, atol=1e-5)


def test_ff_is_layer_local_without_weight_transport():
    measured = measure(build_rule("ff", build_mlp(20, 5, (16, 12, 8), activation="tanh", seed=0), {"negatives": "hard"}))
    assert measured.layer_local and measured.weight_transport == "none" and not measured.hidden_read_target
    assert not any(measured.above) and not any(measured.output[:-1])


def test_the_trainer_evaluates_through_the_rules_logits(digits):
    trainer = Trainer.from_config(TrainConfig(rule="ff", data="digits", hidden=(32,), epochs=1, seed=0), digits, progress=False)
    trainer.run_epoch(1)
    accuracy, _ = evaluate(partial(trainer.rule.logits, trainer.net), digits.test.x, digits.test.y)
    assert trainer.epochs[-1]["test_accuracy"] == accuracy
    # The plain forward pass (no label, no normalisation) is not how FF classifies.
    assert evaluate(trainer.net, digits.test.x, digits.test.y)[0] != accuracy


def test_options_are_checked():
    for bad in ({"threshold": 0.0}, {"sharpness": -1.0}, {"negatives": "easy"}, {"inference": "vote"}):
        with pytest.raises(ValueError):
            make_config("ff", bad)
    with pytest.raises(ValueError, match="hidden layer"):
        build_rule("ff", build_mlp(20, 5, (), seed=0))


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_all_negatives_is_each_layers_softmax_over_the_labels_goodness(activation):
    net = build_mlp(20, 5, (16, 12), activation=activation, seed=0)
    rule = build_rule("ff", net)  # negatives="all" is the default
    assert rule.config.negatives == "all"
    x, y = batch()
    directions, _ = rule.directions(net, x, y)
    config, expected = rule.config, [torch.zeros_like(p) for p in rule.trained()]
    with torch.enable_grad():
        params = [p.detach().clone().requires_grad_() for p in rule.trained()]
        hs = [x] * 5
        for l in range(net.depth - 1):
            fs = []
            for c in range(5):  # one pass per label; each layer's loss is its own
                a = F.linear(hs[c], params[2 * l], params[2 * l + 1]) + (params[-1][:, c] if l == 0 else 0)
                fs.append(torch.relu(a) if activation == "relu" else torch.tanh(a))
            goodness = torch.stack([f.pow(2).mean(dim=1) for f in fs], dim=1)
            loss = F.cross_entropy(config.sharpness * goodness, y)
            grads = torch.autograd.grad(loss, params, allow_unused=True)
            expected = [e if g is None else e + g for e, g in zip(expected, grads)]
            hs = [rms_normalize(f).detach() for f in fs]
    hidden = list(range(2 * (net.depth - 1))) + [len(directions) - 1]
    for index in hidden:
        assert torch.allclose(directions[index], expected[index], atol=1e-5), index
    assert rule.card().phases_per_step == 6


def test_all_negatives_is_layer_local_without_weight_transport():
    from plasticity.observe.plausibility import verify

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
    for l in range(net.depth - 1):
        for m, should_change in ((l + 1, False), (l, True)):
            if m >= net.depth - 1 and not should_change:
                continue
            other = copy.deepcopy(net)
            with torch.no_grad():
                other.layers[m].weight.mul_(1.5)
            changed, _ = rule.directions(other, x, y)
            assert torch.equal(changed[2 * l], base[2 * l]) != should_change, (l, m)
    assert torch.abs(base[0]).max() > 1e-4  # the real update is not the clamped cancellation
