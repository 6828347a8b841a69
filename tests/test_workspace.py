import copy

import oracles
import pytest
import torch
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


def test_dfa_limit_is_dfa(digits):
    """Workspace in its DFA limit gives the closed-form DFA directions bit for bit, and trains
    like the `dfa` rule (autograd with injected feedback) to float rounding over 8 steps."""
    nets = [build_mlp(64, 10, (32, 16), activation="tanh", seed=1) for _ in range(2)]
    dfa = Learner(build_rule("dfa", nets[0], seed=5), nets[0])
    workspace = build_rule("workspace", nets[1], DFA_LIMIT, seed=5)
    for x, y in batches(digits, 8):
        got, _ = workspace.directions(nets[1], x, y)
        assert all(torch.equal(a, b) for a, b in zip(got, oracles.direct(nets[1], x, y, workspace.feedback), strict=True))
        dfa.step(x, y)
        workspace.step(nets[1], x, y)
    assert all(torch.equal(a, s.weight) for a, s in zip(workspace.feedback, dfa.rule.feedback[1:], strict=True))
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(nets[0].parameters(), nets[1].parameters(), strict=True))
    # and the limit is not vacuous: the default workspace learns differently
    other = build_mlp(64, 10, (32, 16), activation="tanh", seed=1)
    rule = build_rule("workspace", other, seed=5)
    for x, y in batches(digits, 8):
        rule.step(other, x, y)
    assert not all(torch.allclose(a, b, atol=1e-3) for a, b in zip(nets[0].parameters(), other.parameters()))


def test_dfa_limit_holds_with_learned_feedback(digits):
    mirror = {"mirror_rate": 0.1, "mirror_every": 2, "mirror_samples": 16}
    nets = [build_mlp(64, 10, (32, 16), activation="tanh", seed=1) for _ in range(2)]
    dfa = Learner(build_rule("dfa", nets[0], mirror, seed=5), nets[0])
    workspace = build_rule("workspace", nets[1], {**DFA_LIMIT, **mirror}, seed=5)
    start = [B.clone() for B in workspace.feedback]
    for x, y in batches(digits, 8):
        dfa.step(x, y)
        workspace.step(nets[1], x, y)
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(nets[0].parameters(), nets[1].parameters(), strict=True))
    learned = [slot.weight for slot in dfa.rule.feedback[1:]]
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(learned, workspace.feedback, strict=True))
    assert not any(torch.allclose(a, b, atol=1e-3) for a, b in zip(start, learned))  # the feedback did learn


def test_output_layer_learns_from_its_own_error(digits):
    from plasticity.rules.base import layer_direction, output_error

    x, y = batches(digits, 1, 64)[0]
    for teacher in ("own", "packet"):
        net = build_mlp(64, 10, (32, 16), activation="tanh", seed=0)
        rule = build_rule("workspace", net, {"output_teacher": teacher, "capacity": 3, "integration": "sum"}, seed=0)
        computation = rule.compute(net, x, y)
        trace = net.trace(x)
        signal = output_error(trace.logits, y) if teacher == "own" else computation.packet
        expected = layer_direction(signal, trace.h[-2])
        assert all(torch.equal(a, b) for a, b in zip(computation.directions[-2:], expected))
        # the hidden layers learn from the packet either way, and here the packet is not the output error
        assert not torch.allclose(computation.packet, output_error(trace.logits, y))


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
    rule = build_rule("workspace", net, {"gate": True, "gate_warmup": 5, "gate_k": 2.0}, seed=0)
    data = batches(digits, 41)
    for x, y in data[:40]:
        rule.step(net, x, y)
    x, y = data[40]
    # Confidently wrong: scaled inputs and shuffled labels make the packet far larger than usual.
    before, moments = weights(net), copy.deepcopy(rule.optimizer.state_dict())
    info = rule.step(net, 50 * x, (y + 3) % 10)
    assert info.extras["decision"] == "reject" and not info.applied and not info.extras["ignited"]
    assert all(torch.equal(a, b) for a, b in zip(before, weights(net)))
    after = rule.optimizer.state_dict()["state"]
    assert all(torch.equal(moments["state"][k]["exp_avg"], after[k]["exp_avg"]) for k in after)
    # The same batch, unscaled, is consolidated again.
    assert rule.step(net, x, y).applied


def test_gate_ignores_a_redundant_batch():
    from plasticity.observe.pi import SurpriseBand, SurpriseBandConfig

    band = SurpriseBand(SurpriseBandConfig(k=2.0, warmup=3))
    for s in (1.0, 1.2, 0.8, 1.1, 0.9):
        band.update(s)
    assert band.classify(0.0) == "ignore" and band.classify(1.0) == "consolidate" and band.classify(5.0) == "reject"


def test_period_accumulates_traces_and_changes_weights_only_at_broadcast(digits):
    net = build_mlp(64, 10, (32,), activation="tanh", seed=0)
    rule = build_rule("workspace", net, {"period": 3}, seed=0)
    start = weights(net)
    norms = []
    for step, (x, y) in enumerate(batches(digits, 3)):
        info = rule.step(net, x, y)
        norms.append(float(rule.traces[0][0].norm()))
        if step < 2:
            assert not info.applied and info.extras["decision"] == "wait"
            assert all(torch.equal(a, b) for a, b in zip(start, weights(net)))
    assert 0 < norms[0] < norms[1]  # traces accumulate between broadcasts
    assert norms[2] == 0.0  # and are consumed by the broadcast
    assert info.applied and not all(torch.equal(a, b) for a, b in zip(start, weights(net)))


def test_resume_with_workspace_state_is_exact(digits, tmp_path):
    options = {"gate": True, "gain": "salience", "period": 2}
    config = dict(rule="workspace", data="digits", hidden=(32,), batch_size=128, seed=0, rule_options=options)
    straight = Trainer.from_config(TrainConfig(epochs=3, **config), digits, progress=False)
    straight.fit()
    Trainer.from_config(TrainConfig(epochs=2, **config), digits, out_dir=tmp_path, progress=False).fit()
    resumed = Trainer.from_config(TrainConfig(epochs=3, **config), digits, out_dir=tmp_path, progress=False)
    resumed.fit(resume=True)
    assert all(torch.equal(a, b) for a, b in zip(weights(straight.net), weights(resumed.net)))
    assert resumed.rule.band.state() == straight.rule.band.state()


def test_monitor_reports_winners_ignition_and_synergy(digits):
    from plasticity.observe.workspace import WorkspaceMonitor

    trainer = Trainer.from_config(TrainConfig(rule="workspace", data="digits", hidden=(32, 16), epochs=1, batch_size=64), digits,
                      observers=[WorkspaceMonitor()], progress=False)
    entry = trainer.fit()["epochs"][0]["workspace"]
    assert entry["ignition_rate"] == 1.0 and len(entry["winners"]) == 3
    assert abs(sum(entry["winners"]) - 2.0) < 1e-6  # capacity 2: two modules admitted per sample
    assert entry["synergy"]["estimator"] == "gaussian-pid-mmi" and entry["synergy"]["mutual_information"] > 0


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
