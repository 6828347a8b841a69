import copy

import oracles
import pytest
import torch
import torch.nn.functional as F
from helpers import Learner

from plasticity.nets import build_mlp
from plasticity.observe.plausibility import measure, verify
from plasticity.rules import build_rule, make_config
from plasticity.train import TrainConfig, Trainer

DFA_LIMIT = dict(capacity=1, modules="output", integration="identity", gate=False, period=1, gain="none", mirror_rate=0.0)


def batches(digits, n=6, size=32):
    return [(digits.train.x[i * size : (i + 1) * size], digits.train.y[i * size : (i + 1) * size]) for i in range(n)]


def weights(net):
    return [p.detach().clone() for p in net.parameters()]


def test_dfa_limit_is_dfa_bit_for_bit(digits):
    """Workspace in its DFA limit trains exactly like the `dfa` rule of the same seed and
    feedback options: weights and feedback bit for bit over 8 steps, with fixed and learned
    feedback; and its directions equal the closed-form DFA oracle."""
    for mirror in ({}, {"mirror_rate": 0.1, "mirror_every": 2, "mirror_samples": 16}):
        nets = [build_mlp(64, 10, (32, 16), activation="tanh", seed=1) for _ in range(2)]
        dfa = Learner(build_rule("dfa", nets[0], mirror, seed=5), nets[0])
        workspace = Learner(build_rule("workspace", nets[1], {**DFA_LIMIT, **mirror}, seed=5), nets[1])
        for x, y in batches(digits, 8):
            dfa.step(x, y)
            got, _ = workspace.rule.directions(nets[1], x, y)
            expected = oracles.direct(nets[1], x, y, [slot.weight for slot in workspace.rule.feedback[1:]])
            assert max(float((a - b).abs().max()) for a, b in zip(got, expected, strict=True)) <= 1e-6
            workspace.step(x, y)
        assert all(torch.equal(a, b) for a, b in zip(nets[0].parameters(), nets[1].parameters(), strict=True))
        assert all(torch.equal(a.weight, b.weight) for a, b in zip(dfa.rule.feedback[1:], workspace.rule.feedback[1:], strict=True))
    # and the limit is not vacuous: the default workspace learns differently
    other = build_mlp(64, 10, (32, 16), activation="tanh", seed=1)
    learner = Learner(build_rule("workspace", other, seed=5), other)
    for x, y in batches(digits, 8):
        learner.step(x, y)
    assert not all(torch.allclose(a, b, atol=1e-3) for a, b in zip(nets[0].parameters(), other.parameters(), strict=True))


@pytest.mark.parametrize(
    "options",
    [{}, {"capacity": 1}, {"capacity": 3, "integration": "sum"}, {"output_teacher": "packet"}, {"mirror_rate": 0.0}, {"modules": "output", "capacity": 1}],
)
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_directions_equal_the_closed_form_oracle(digits, options, activation):
    """Over training steps (readouts and feedback learning), each step's `.grad` equals the
    closed-form workspace directions of the rule's current state to ≤ 1e-6."""
    net = build_mlp(64, 10, (32, 16), activation=activation, seed=0)
    learner = Learner(build_rule("workspace", net, options, seed=0), net)
    for x, y in batches(digits, 5):
        learner.step(x, y)  # readouts and feedback exist after the first pass
        expected = oracles.workspace(net, x, y, learner.rule)
        got, _ = learner.rule.directions(net, x, y)
        assert max(float((a - b).abs().max()) for a, b in zip(got, expected, strict=True)) <= 1e-6


def test_output_layer_learns_from_its_own_error(digits):
    x, y = batches(digits, 1, 64)[0]
    for teacher in ("own", "packet"):
        net = build_mlp(64, 10, (32, 16), activation="tanh", seed=0)
        rule = build_rule("workspace", net, {"output_teacher": teacher, "capacity": 3, "integration": "sum"}, seed=0)
        Learner(rule, net).step(x, y)  # readouts learn once, so the hidden modules err differently
        directions, _ = rule.directions(net, x, y)
        t = oracles.trace(net, x)
        packet = rule.broadcast(net, x, y)
        signal = oracles.output_error(t.logits, y) if teacher == "own" else packet
        expected = [signal.T @ t.h[-2], signal.sum(dim=0)]
        assert all(torch.allclose(a, b, atol=1e-7) for a, b in zip(directions[-2:], expected, strict=True))
        # the hidden layers learn from the packet either way, and here the packet is not the output error
        assert not torch.allclose(packet, oracles.output_error(t.logits, y))


def test_workspace_attaches_to_conv_nets_and_learns():
    """Readouts on every block output (conv feature maps included), a packet of C numbers, and a
    few steps lower the loss of cnn1d and LeNet-5; all state follows the rule's device and
    state_dict."""
    from plasticity.models import build_cnn1d, build_lenet5

    g = torch.Generator().manual_seed(0)
    for builder, width, batch in ((build_cnn1d, 40, 64), (build_lenet5, 784, 16)):
        model = builder(width, 10, seed=0)
        x = torch.randn(batch, width, generator=g)
        y = (x @ torch.randn(width, 10, generator=g)).argmax(dim=1)  # labels a linear teacher gives
        learner = Learner(build_rule("workspace", model, {"lr": 3e-3}, seed=0), model)
        first = learner.step(x, y).loss
        for _ in range(20):
            last = learner.step(x, y)
        assert last.loss < first - 0.1
        readouts = [r for r in learner.rule.readouts if r.ready]
        assert len(readouts) == len(learner.rule.layers_) - 1
        assert learner.rule.broadcast(model, x, y).shape == (batch, 10)
        state = learner.rule.state_dict()
        assert any(key.startswith("readouts.") for key in state) and "band_state" in state


def test_the_packet_needs_the_labels():
    net = build_mlp(20, 5, (8,), activation="tanh", seed=0)
    build_rule("workspace", net, seed=0)
    with pytest.raises(RuntimeError, match="rule.loss"):
        F.cross_entropy(net(torch.randn(4, 20)), torch.zeros(4, dtype=torch.long)).backward()


def test_period_needs_linear_blocks():
    from plasticity.models import build_cnn1d

    model = build_cnn1d(40, 10, seed=0)
    rule = build_rule("workspace", model, {"period": 2}, seed=0)
    with pytest.raises(ValueError, match="period > 1 needs"):
        rule.loss(model, torch.randn(4, 40), torch.zeros(4, dtype=torch.long))


@pytest.mark.parametrize(
    "options",
    [{}, {"capacity": 1}, {"capacity": 3, "integration": "sum"}, {"gain": "salience"}, {"gain": "pi"}, {"gate": True}, DFA_LIMIT],
)
def test_card_holds_for_variants(options):
    rule = build_rule("workspace", build_mlp(20, 10, (16, 12, 8), activation="tanh", seed=0), options, seed=0)
    measured = measure(rule)
    assert verify(rule.card(), measured) == []
    assert measured.layer_local and measured.no_weight_transport and measured.size == 10


def test_gate_rejects_an_anomalous_batch_without_touching_weights(digits):
    net = build_mlp(64, 10, (32,), activation="tanh", seed=0)
    learner = Learner(build_rule("workspace", net, {"gate": True, "gate_warmup": 5, "gate_k": 2.0}, seed=0), net)
    data = batches(digits, 41)
    for x, y in data[:40]:
        learner.step(x, y)
    x, y = data[40]
    # Confidently wrong: scaled inputs and shuffled labels make the packet far larger than usual.
    before, moments = weights(net), copy.deepcopy(learner.optimizer.state_dict())
    info = learner.step(50 * x, (y + 3) % 10)
    assert info.extras["decision"] == "reject" and not info.applied and not info.extras["ignited"]
    assert all(torch.equal(a, b) for a, b in zip(before, weights(net), strict=True))
    after = learner.optimizer.state_dict()["state"]
    assert all(torch.equal(moments["state"][k]["exp_avg"], after[k]["exp_avg"]) for k in after)
    # The same batch, unscaled, is consolidated again.
    assert learner.step(x, y).applied


def test_gate_ignores_a_redundant_batch():
    from plasticity.integrity import SurpriseBand, SurpriseBandConfig

    band = SurpriseBand(SurpriseBandConfig(k=2.0, warmup=3))
    for s in (1.0, 1.2, 0.8, 1.1, 0.9):
        band.update(s)
    assert band.classify(0.0) == "ignore" and band.classify(1.0) == "consolidate" and band.classify(5.0) == "reject"


def test_period_accumulates_traces_and_changes_weights_only_at_broadcast(digits):
    net = build_mlp(64, 10, (32,), activation="tanh", seed=0)
    learner = Learner(build_rule("workspace", net, {"period": 3}, seed=0), net)
    start = weights(net)
    norms = []
    for step, (x, y) in enumerate(batches(digits, 3)):
        info = learner.step(x, y)
        norms.append(float(learner.rule.traces[0].weight.norm()))
        if step < 2:
            assert not info.applied and info.extras["decision"] == "wait"
            assert all(torch.equal(a, b) for a, b in zip(start, weights(net), strict=True))
    assert 0 < norms[0] < norms[1]  # traces accumulate between broadcasts
    assert norms[2] == 0.0  # and are consumed by the broadcast
    assert info.applied and not all(torch.equal(a, b) for a, b in zip(start, weights(net), strict=True))


def test_resume_with_workspace_state_is_exact(digits, tmp_path):
    options = {"gate": True, "gain": "salience", "period": 2}
    config = dict(rule="workspace", data="digits", hidden=(32,), batch_size=128, seed=0, rule_options=options)
    straight = Trainer.from_config(TrainConfig(epochs=3, **config), digits, progress=False)
    straight.fit()
    Trainer.from_config(TrainConfig(epochs=2, **config), digits, out_dir=tmp_path, progress=False).fit()
    resumed = Trainer.from_config(TrainConfig(epochs=3, **config), digits, out_dir=tmp_path, progress=False)
    resumed.fit(resume=True)
    assert all(torch.equal(a, b) for a, b in zip(weights(straight.net), weights(resumed.net), strict=True))
    assert resumed.rule.band.state() == straight.rule.band.state()


def test_monitor_reports_winners_ignition_and_synergy(digits):
    from plasticity.observe.workspace import WorkspaceMonitor

    config = TrainConfig(rule="workspace", data="digits", hidden=(32, 16), epochs=1, batch_size=64, rule_options={"capacity": 2})
    trainer = Trainer.from_config(config, digits, observers=[WorkspaceMonitor()], progress=False)
    entry = trainer.fit().epochs[0].observed["workspace"]
    assert entry["ignition_rate"] == 1.0 and len(entry["winners"]) == 3
    assert abs(sum(entry["winners"]) - 2.0) < 1e-6  # capacity 2: two modules admitted per sample
    assert entry["synergy"]["estimator"] == "gaussian-pid-mmi" and entry["synergy"]["mutual_information"] > 0


def test_by_default_every_module_is_admitted_without_ranking(digits, monkeypatch):
    x, y = digits.train.x[:64], digits.train.y[:64]
    net = build_mlp(64, 10, (32, 16), seed=0)
    rule = build_rule("workspace", net, {}, seed=0)
    modules = rule.modules(net, x, y)
    monkeypatch.setattr(torch.Tensor, "topk", lambda *args, **kwargs: pytest.fail("the default ranked the modules"))
    packet, admitted = rule.integrate(modules)
    monkeypatch.undo()
    assert bool(admitted.all()) and admitted.shape == (3, 64)
    precision = 1.0 / (modules.entropy + rule.config.epsilon)  # the precision-weighted mean of all three errors
    expected = (modules.error * precision[:, :, None]).sum(dim=0) / precision.sum(dim=0)[:, None]
    assert torch.allclose(packet, expected, rtol=1e-6, atol=0)
    assert "every module's error" in build_rule("workspace", build_mlp(64, 10, (32, 16), seed=0), {}, seed=0).card().error_signal
    with pytest.raises(ValueError, match="capacity"):
        make_config("workspace", {"capacity": 0})


def test_module_quantities_match_their_definitions():
    """Each module's error, uncertainty, loss and salience, computed when read from its softmax,
    against definitions written independently: (softmax − onehot)/B, the Categorical entropy,
    the cross-entropy of the module's logits, B‖e‖/(τ + ε)."""
    from plasticity.rules.workspace import Modules

    logits = torch.randn(3, 8, 5, generator=torch.Generator().manual_seed(0)) * 3
    y = torch.tensor([0, 4, 2, 2, 1, 3, 0, 4])
    modules = Modules(torch.softmax(logits, dim=-1), y, 0.1)
    onehot = F.one_hot(y, 5).float()
    assert torch.allclose(modules.error, (torch.softmax(logits, dim=-1) - onehot) / 8, atol=1e-7)
    assert torch.allclose(modules.entropy, torch.distributions.Categorical(logits=logits).entropy(), atol=1e-5)
    assert torch.allclose(modules.loss, torch.stack([F.cross_entropy(m, y) for m in logits]), atol=1e-5)
    assert torch.allclose(modules.salience, modules.error.norm(dim=-1) * 8 / (modules.entropy + 0.1))


def test_what_the_defaults_switch_off_is_computed_only_when_read(digits, monkeypatch):
    """By default (no competition, no salience gain, no gate) a step computes no salience and
    no packet norm; the step's report computes them when read, equal to their definitions."""
    from plasticity.rules import workspace

    x, y = digits.train.x[:64], digits.train.y[:64]
    net = build_mlp(64, 10, (32, 16), seed=0)
    learner = Learner(build_rule("workspace", net, {}, seed=0), net)
    learner.step(x, y)  # readouts exist from here on
    computed = []
    salience = workspace.Modules.salience.func
    monkeypatch.setattr(workspace.Modules, "salience", property(lambda self: computed.append("salience") or salience(self)))
    modules = learner.rule.modules(net, x, y)  # the next step's modules, before it changes anything
    info = learner.step(x, y)
    assert computed == [] and set(info.extras) == {"admitted", "salience", "packet_norm", "broadcast", "decision", "ignited", "gains"}
    expected = modules.error.norm(dim=-1) * 64 / (modules.entropy + learner.rule.config.epsilon)
    assert info.extras["salience"] == expected.mean(dim=1).tolist() and computed == ["salience"]
    packet = learner.rule.integrate(modules)[0]
    assert info.extras["packet_norm"] == pytest.approx(float(packet.norm(dim=1).mean() * 64), rel=1e-6)
    assert info.extras["admitted"] == [1.0, 1.0, 1.0] and info.extras["salience"] == expected.mean(dim=1).tolist()
    assert computed == ["salience"]  # read twice, computed once
    # competition needs the salience during the step
    other = build_mlp(64, 10, (32, 16), seed=0)
    Learner(build_rule("workspace", other, {"capacity": 2}, seed=0), other).step(x, y)
    assert len(computed) > 1  # read while ranking (the patched property does not cache)


def test_bad_configs():
    with pytest.raises(ValueError, match="capacity 1"):
        make_config("workspace", {"integration": "identity", "capacity": 2})
    with pytest.raises(ValueError, match="modules"):
        make_config("workspace", {"modules": "some"})
    with pytest.raises(ValueError, match="period"):
        make_config("workspace", {"period": 0})
    with pytest.raises(ValueError, match="output_teacher"):
        make_config("workspace", {"output_teacher": "teacher"})
    with pytest.raises(ValueError, match="mirror_rate"):
        make_config("workspace", {"mirror_rate": 1.5})
