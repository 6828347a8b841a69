import copy

import oracles
import pytest
import torch
import torch.nn.functional as F
from helpers import Learner

from plasticity.nets import build_mlp
from plasticity.rules import RULES, build_rule, make_config, names, rule_class
from plasticity.rules.attach import GradientRule
from plasticity.rules.base import make_optimizer
from plasticity.rules.fa import FeedbackConfig


def batch(n_in=6, classes=3, n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, n_in, generator=g), torch.randint(0, classes, (n,), generator=g)


def test_bp_gradients_match_a_hand_computed_two_layer_case():
    net = build_mlp(3, 2, (4,), seed=0)
    x, y = batch(3, 2, 5)
    W1, b1, W2, b2 = (p.detach() for p in net.parameters())
    a1 = x @ W1.T + b1
    h1 = a1.clamp(min=0)
    logits = h1 @ W2.T + b2
    e = (torch.softmax(logits, 1) - F.one_hot(y, 2)) / len(y)  # dCE/dlogits
    d1 = (e @ W2) * (a1 > 0)
    expected = [d1.T @ x, d1.sum(0), e.T @ h1, e.sum(0)]
    got, info = build_rule("bp", net).directions(net, x, y)
    for g, want in zip(got, expected, strict=True):
        assert torch.allclose(g, want, atol=1e-6)
    assert info.loss == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-6)
    assert info.update_norm == pytest.approx(torch.cat([t.flatten() for t in expected]).norm().item(), rel=1e-5)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_feedback_alignment_with_transposed_weights_is_backprop(activation):
    """FA's chain with B = W (the weights themselves) must reproduce backprop exactly."""
    net = build_mlp(6, 3, (5, 4), activation=activation, seed=1)
    x, y = batch()
    bp = oracles.backprop(net, x, y)
    fa = build_rule("fa", net)
    for index, layer in enumerate(oracles.linears(net)[1:], start=1):
        fa.feedback[index].materialize(layer.weight.detach().clone())
    got, _ = fa.directions(net, x, y)
    for g, want in zip(got, bp, strict=True):
        assert torch.allclose(g, want, atol=1e-6)


def test_dfa_with_one_hidden_layer_and_B_equal_to_W_is_backprop():
    net = build_mlp(6, 3, (5,), seed=2)
    x, y = batch()
    bp = oracles.backprop(net, x, y)
    dfa = build_rule("dfa", net)
    dfa.feedback[1].materialize(oracles.linears(net)[1].weight.detach().clone())
    got, _ = dfa.directions(net, x, y)
    assert all(torch.allclose(g, w, atol=1e-6) for g, w in zip(got, bp, strict=True))


def test_output_layer_is_the_delta_rule_for_the_alignment_rules():
    net = build_mlp(6, 3, (5, 4), seed=0)
    x, y = batch()
    bp = oracles.backprop(net, x, y)
    for name in ("fa", "dfa", "sign"):
        rule = build_rule(name, net)
        got, _ = rule.directions(net, x, y)
        rule.detach()
        assert torch.allclose(got[-2], bp[-2], atol=1e-6) and torch.allclose(got[-1], bp[-1], atol=1e-6), name


@pytest.mark.parametrize("name", names("mlp"))  # spiking rules: tests/test_spiking.py
def test_directions_are_pure_and_step_moves_weights(name):
    net = build_mlp(6, 3, (5, 4), seed=0)
    rule = build_rule(name, net, seed=0)
    x, y = batch()
    before = copy.deepcopy(net.state_dict())
    first, _ = rule.directions(net, x, y)  # (an attached rule draws its lazy feedback here)
    state = {k: v.clone() for k, v in rule.rule_state().items()}
    second, _ = rule.directions(net, x, y)
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(torch.equal(state[k], v) for k, v in rule.rule_state().items())
    assert all(p.grad is None for p in net.parameters())
    info = Learner(rule, net).step(x, y)
    assert info.logits.shape == (8, 3) and info.update_norm > 0
    assert any(not torch.equal(before[k], v) for k, v in net.state_dict().items())
    if not isinstance(rule, GradientRule):
        assert all(p.grad is None for p in net.parameters())


# Rules whose hidden layers do not descend the loss fit the labels through their readout, which
# needs more steps: SoftHebb's hidden layers learn without labels (on this batch a frozen random
# network with the same readout needs ~300 steps), Forward-Forward's learn their own goodness and
# its head follows them (halved after 80 steps).
STEPS = {"softhebb": 400, "ff": 150}


@pytest.mark.parametrize("name", names("mlp"))  # spiking rules: tests/test_spiking.py
def test_training_reduces_the_loss(name):
    # As many hidden layers as the rule has by default (SoftHebb one: a second 16-unit soft WTA
    # layer over 16 units loses what the readout needs, as at full size, docs/rules.md).
    net = build_mlp(6, 3, (16,) * len(rule_class(name).default_hidden), seed=0)
    learner = Learner(build_rule(name, net, {"lr": 0.01}, seed=0), net)
    x, y = batch(n=32)
    first = learner.step(x, y).loss
    for _ in range(STEPS.get(name, 60)):
        last = learner.step(x, y).loss
    assert last < 0.5 * first


def test_feedback_is_seeded():
    net = build_mlp(6, 3, (5, 4), seed=0)
    x, y = batch()
    rules = []
    for seed in (0, 0, 1):  # one rule per model at a time
        rule = build_rule("fa", net, seed=seed)
        rule.directions(net, x, y)
        rules.append(rule)
        rule.detach()
    a, b, c = rules
    assert not a.feedback[0].ready  # the first layer's input is data: it never needs feedback
    assert torch.equal(a.feedback[1].weight, b.feedback[1].weight) and not torch.equal(a.feedback[1].weight, c.feedback[1].weight)
    bound = (3.0 / oracles.linears(net)[1].out_features) ** 0.5
    assert a.feedback[1].weight.abs().max() <= bound


def test_sgd_and_adam_both_work_and_configs_are_checked():
    net = build_mlp(6, 3, (5,), seed=0)
    assert isinstance(make_optimizer(net.parameters(), make_config("bp", {"optimizer": "sgd"})), torch.optim.SGD)
    assert isinstance(make_optimizer(net.parameters(), make_config("bp")), torch.optim.Adam)
    with pytest.raises(ValueError, match="unknown rule 'nope'; known rules: bp"):
        rule_class("nope")
    with pytest.raises(ValueError, match="no option"):
        make_config("bp", {"feedback_scale": 2.0})
    with pytest.raises(ValueError, match="lr"):
        make_config("bp", {"lr": -1})
    with pytest.raises(ValueError, match="optimizer"):
        make_config("bp", {"optimizer": "rmsprop"})
    with pytest.raises(ValueError, match="feedback_scale"):
        make_config("fa", {"feedback_scale": 0})
    with pytest.raises(TypeError):
        RULES["fa"](make_config("bp"))
    rule = build_rule("bp", net)
    with pytest.raises(ValueError, match="attached to another model"):
        rule.directions(build_mlp(6, 3, (5,), seed=0), *batch())
    assert isinstance(make_config("dfa", {"feedback_scale": 0.5}), FeedbackConfig)


def batch_mean_jacobians(net, x):
    """E_b[∂o/∂h_l] for every hidden layer l, by autograd (the target a weight mirror estimates)."""
    t, layers = oracles.trace(net, x), oracles.linears(net)
    out = []
    for index in range(len(layers) - 1):
        h = t.h[index + 1].detach().requires_grad_(True)
        z = h
        for later, layer in enumerate(layers[index + 1 :], start=index + 1):
            z = layer(z)
            if later < len(layers) - 1:
                z = torch.tanh(z)
        rows = [torch.autograd.grad(z[:, k].sum(), h, retain_graph=True)[0].mean(dim=0) for k in range(z.shape[1])]
        out.append(torch.stack(rows))
    return out


def test_weight_mirror_learns_the_path_to_the_output():
    """The closed-form weight mirror (the oracle the `dfa` and workspace mirrors are tested
    against) estimates the batch-mean Jacobian from noise alone."""
    from plasticity.rules.feedback import uniform_feedback

    torch.manual_seed(0)
    net = build_mlp(12, 5, (16, 8), activation="tanh", seed=0)
    x = torch.randn(64, 12)
    target = batch_mean_jacobians(net, x)
    generator = torch.Generator().manual_seed(1)
    feedback = [uniform_feedback((5, width), 5, 1.0, generator) for width in (16, 8)]

    def cosine(a, b):
        return float(F.cosine_similarity(a.flatten(), b.flatten(), dim=0))

    assert all(abs(cosine(B, J)) < 0.5 for B, J in zip(feedback, target, strict=True))  # random feedback points elsewhere
    generator = torch.Generator().manual_seed(2)
    for _ in range(300):
        oracles.mirror(net, x, feedback, rate=0.05, sigma=0.05, generator=generator)
    assert all(cosine(B, J) > 0.95 for B, J in zip(feedback, target, strict=True))
    assert all(0.8 < float(B.norm() / J.norm()) < 1.2 for B, J in zip(feedback, target, strict=True))


def test_dfa_feedback_stays_fixed_unless_it_mirrors(digits):
    for rate in (0.0, 0.1):
        net = build_mlp(64, 10, (32, 16), activation="tanh", seed=0)
        learner = Learner(build_rule("dfa", net, {"mirror_rate": rate, "mirror_every": 2}, seed=0), net)
        learner.step(digits.train.x[:32], digits.train.y[:32])
        start = [slot.weight.clone() for slot in learner.rule.feedback if slot.ready]
        for i in range(1, 4):
            learner.step(digits.train.x[i * 32 : (i + 1) * 32], digits.train.y[i * 32 : (i + 1) * 32])
        now = [slot.weight for slot in learner.rule.feedback if slot.ready]
        assert all(torch.equal(a, b) for a, b in zip(start, now, strict=True)) == (rate == 0.0)
    with pytest.raises(ValueError, match="mirror_sigma"):
        make_config("dfa", {"mirror_sigma": 0.0})


def test_dfa_weight_mirror_equals_the_closed_form_mirror():
    """One `dfa` step with a weight mirror moves B_l exactly as the closed-form mirror does with
    the same noise (drawn from (seed, step)), after this step's errors used the old B_l."""
    net = build_mlp(12, 5, (16, 8), activation="tanh", seed=0)
    x, y = torch.randn(40, 12), torch.randint(0, 5, (40,))
    learner = Learner(build_rule("dfa", net, {"mirror_rate": 0.1, "mirror_every": 1, "mirror_samples": 32}, seed=3), net)
    learner.step(x, y)  # draws the feedback
    before = [slot.weight.clone() for slot in learner.rule.feedback[1:]]
    clean = [p.detach().clone() for p in net.parameters()]
    learner.step(x, y)
    reference = build_mlp(12, 5, (16, 8), activation="tanh", seed=0)
    with torch.no_grad():
        for p, q in zip(reference.parameters(), clean, strict=True):
            p.copy_(q)
    oracles.mirror(reference, x[:32], before, rate=0.1, sigma=0.1, generator=torch.Generator().manual_seed(3 * 1_000_003 + 1))
    after = [slot.weight for slot in learner.rule.feedback[1:]]
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(after, before, strict=True))
