"""The spiking simulator and the STDP rules: encoding, traces, STDP sign, homeostasis, cards."""

import copy
import dataclasses
import math

import pytest
import torch

from plasticity.data import Dataset, Split
from plasticity.observe.plausibility import measure, probe_rule, verify
from plasticity.observe.registry import build_observers
from plasticity.rules import make_config
from plasticity.rules.rstdp import RSTDP
from plasticity.rules.spiking import SpikingRule
from plasticity.rules.stdp import STDP
from plasticity.spiking import (
    Events,
    LIFConfig,
    Presentation,
    SpikingNet,
    decay_factor,
    pair_correlations,
    poisson_events,
)
from plasticity.train import TrainConfig, Trainer

FAST = {"dt": 1.0, "duration_ms": 100.0}


def small(digits, n=300):
    """The first n digits as a dataset: a few seconds of spiking simulation."""
    return Dataset(
        name="digits",
        train=Split(digits.train.x[:n], digits.train.y[:n]),
        test=Split(digits.test.x[:100], digits.test.y[:100]),
        val=None,
        classes=digits.classes,
        input_shape=digits.input_shape,
        source=digits.source,
    )


def presentation(pre_steps, post_steps, n_inputs=1, n_neurons=1, steps=100):
    """A hand-made record: input 0 spikes at pre_steps, neuron 0 at post_steps (one sample)."""
    inputs = Events(
        step=torch.tensor(pre_steps, dtype=torch.long),
        sample=torch.zeros(len(pre_steps), dtype=torch.long),
        index=torch.zeros(len(pre_steps), dtype=torch.long),
    )
    spikes = torch.zeros(steps, 1, n_neurons, dtype=torch.bool)
    spikes[post_steps, 0, 0] = True
    return Presentation(inputs=inputs, spikes=spikes, rate_hz=torch.tensor([63.75]))


def test_poisson_events_have_the_right_rate_and_are_seeded():
    intensity = torch.tensor([[0.0, 0.5, 1.0]]).repeat(200, 1)
    events = poisson_events(intensity, 40.0, steps=500, dt_ms=0.5, generator=torch.Generator().manual_seed(0))
    counts = torch.bincount(events.index, minlength=3).float() / 200  # spikes per presentation
    expected = torch.tensor([0.0, 0.5, 1.0]) * 40.0 * 0.25  # rate × 250 ms
    assert counts[0] == 0 and torch.allclose(counts[1:], expected[1:], rtol=0.1)
    assert int(events.step.min()) >= 0 and int(events.step.max()) < 500
    again = poisson_events(intensity, 40.0, 500, 0.5, torch.Generator().manual_seed(0))
    assert torch.equal(events.step, again.step) and torch.equal(events.index, again.index)


def test_traces_match_the_integrated_trace_equation():
    dt, tau_pre, tau_post, steps = 0.5, 20.0, 15.0, 200
    generator = torch.Generator().manual_seed(3)
    pre = sorted(torch.randint(0, steps, (25,), generator=generator).tolist())
    post = [40, 120, 121, 180]
    record = presentation(pre, post, steps=steps)
    potentiation, depression = pair_correlations(record.inputs, record.spikes, 1, dt, tau_pre, tau_post)
    # Integrate τ dx/dt = −x with unit jumps at spikes, step by step, and read the traces at spikes.
    x_pre, x_post, want_pot, want_dep = 0.0, 0.0, 0.0, 0.0
    for t in range(steps):
        x_pre = x_pre * math.exp(-dt / tau_pre) + pre.count(t)
        x_post *= math.exp(-dt / tau_post)
        want_dep += pre.count(t) * x_post  # post spikes strictly before this pre spike
        if t in post:
            want_pot += x_pre  # pre spikes up to and including this step
            x_post += 1.0
    assert potentiation.item() == pytest.approx(want_pot, rel=1e-5)
    assert depression.item() == pytest.approx(want_dep, rel=1e-5)
    assert decay_factor(tau_pre, dt) == pytest.approx(math.exp(-dt / tau_pre))


def test_stdp_sign_pre_before_post_potentiates_post_before_pre_depresses():
    rule = probe_rule("stdp", {"mu": 0.0})
    net = rule.net
    y = torch.tensor([0])

    def change(pre, post):
        record = presentation(pre, post, n_inputs=20, n_neurons=16)
        return rule.plasticity(net, record, y)[0, 0].item()

    assert change([50], [60]) > 0  # pre 10 steps before post
    assert change([60], [50]) < 0  # post 10 steps before pre
    assert change([50], [60]) > change([40], [60]) > 0  # the window decays with the lag
    assert change([60], [50]) < change([70], [50]) < 0
    assert change([50], []) == 0 and change([], [50]) == 0  # no pair, no change


def test_homeostatic_threshold_rises_with_activity():
    net = SpikingNet(20, 8, 3, config=LIFConfig(**FAST, theta_plus=5.0), seed=0)
    counts = torch.tensor([[5.0, 0, 0, 0, 0, 0, 0, 1]])
    net.adapt_thresholds(counts)
    assert net.theta[0] > net.theta[7] > 0 and torch.all(net.theta[1:7] == 0)
    # Within a presentation a rising threshold means fewer spikes for the same input.
    net.weight.data.fill_(0.5)
    x = torch.ones(4, 20)
    free = net.present(x, torch.Generator().manual_seed(1), adapt=False).counts.sum()
    adapting = net.present(x, torch.Generator().manual_seed(1), adapt=True).counts.sum()
    assert adapting < free


def test_lateral_inhibition_makes_the_layer_sparse():
    config = LIFConfig(**FAST)
    x = torch.rand(8, 20, generator=torch.Generator().manual_seed(0))
    with_inhibition = SpikingNet(20, 16, 3, config=config, seed=0).present(x, torch.Generator().manual_seed(0)).counts
    without = SpikingNet(20, 16, 3, config=dataclasses.replace(config, inhibition=0.0), seed=0).present(x, torch.Generator().manual_seed(0)).counts
    assert with_inhibition.sum() < without.sum()
    assert (with_inhibition > 0).sum(dim=1).float().mean() < (without > 0).sum(dim=1).float().mean()


def test_silent_inputs_are_shown_again_at_a_higher_rate():
    net = SpikingNet(20, 4, 3, config=LIFConfig(**FAST, min_spikes=1000, max_retries=2), seed=0)
    record = net.present(torch.rand(3, 20), torch.Generator().manual_seed(0))
    assert torch.all(record.rate_hz == 63.75 + 2 * 32.0)
    assert int(record.inputs.sample.max()) < 3


def test_vote_uses_each_neurons_best_class():
    net = SpikingNet(4, 3, 2)
    net.record_responses(torch.tensor([[4.0, 0.0, 1.0], [0.0, 3.0, 0.0]]), torch.tensor([0, 1]))
    assert net.labels().tolist() == [0, 1, 0]
    scores = net.vote(torch.tensor([[0.0, 6.0, 0.0]]))
    assert scores.argmax(dim=1).item() == 1 and scores[0, 1] == 6.0
    assert SpikingNet(4, 3, 2).labels().tolist() == [-1, -1, -1]  # never fired: no label


def test_learning_is_deterministic_per_seed(digits):
    data = small(digits, 64)

    def run(seed):
        trainer = Trainer.from_config(
            TrainConfig(rule="stdp", data="digits", hidden=(10,), epochs=1, batch_size=16, seed=seed, rule_options=FAST), data, progress=False
        )
        trainer.fit()
        return trainer.net.weight.clone(), trainer.net.theta.clone()

    (w0, t0), (w1, t1), (w2, _) = run(0), run(0), run(1)
    assert torch.equal(w0, w1) and torch.equal(t0, t1) and not torch.equal(w0, w2)
    assert torch.allclose(w0.sum(dim=0), torch.full((10,), 0.1 * 64))  # normalised
    assert torch.all(t0 >= 0) and t0.sum() > 0


def test_stdp_learns_digits_without_labels_in_the_weights(digits, tmp_path):
    data = small(digits, 400)
    # Short presentations keep the test quick (dt stays the paper's 0.5 ms).
    config = TrainConfig(rule="stdp", data="digits", hidden=(30,), epochs=2, batch_size=16, seed=0, rule_options={"duration_ms": 150.0})
    results = Trainer.from_config(config, data, out_dir=tmp_path, progress=False).fit()
    assert results.test_accuracy > 0.4  # chance is 0.1; 0.2 after the first epoch
    counters = results.epochs[-1].counters
    assert counters["synaptic_events"] == counters["input_spikes"] * 30 > 0


def test_resume_continues_exactly(digits, tmp_path):
    data = small(digits, 64)

    def config(epochs):
        return TrainConfig(rule="rstdp", data="digits", hidden=(10,), epochs=epochs, batch_size=16, seed=0, rule_options=FAST)

    straight = Trainer.from_config(config(2), data, progress=False)
    assert straight.optimizer is None  # the rule changes the weights itself
    straight.fit()
    Trainer.from_config(config(1), data, out_dir=tmp_path, progress=False).fit()
    resumed = Trainer.from_config(config(2), data, out_dir=tmp_path, progress=False)
    resumed.fit(resume=True)
    for name, tensor in straight.net.state_dict().items():
        assert torch.equal(tensor, resumed.net.state_dict()[name]), name
    assert torch.equal(straight.rule.mean_reward, resumed.rule.mean_reward)


@pytest.mark.parametrize("options", [("stdp", {}), ("rstdp", {}), ("rstdp", {"modulator": "packet", "tonic": 0.0})])
def test_spiking_cards_hold_under_perturbation(options):
    name, overrides = options
    rule = probe_rule(name, {**FAST, **overrides})
    measured = measure(rule)
    assert verify(rule.card(), measured) == []
    assert measured.layer_local and measured.no_weight_transport and not measured.silent
    assert ("broadcast" in measured.reads) == (name == "rstdp")


def test_a_wrong_spiking_card_is_caught():
    rule = probe_rule("rstdp", FAST)
    measured = measure(rule)
    no_broadcast = dataclasses.replace(rule.card(), reads=("pre", "post", "own_weights"), global_signal=0)
    problems = verify(no_broadcast, measured)
    assert any("broadcast" in p for p in problems)
    stdp = probe_rule("stdp", FAST)
    assert any("size" in p for p in verify(dataclasses.replace(stdp.card(), global_signal=1), measure(stdp)))


def test_pure_reward_modulation_without_reward_error_leaves_weights_alone():
    rule = probe_rule("rstdp", {**FAST, "tonic": 0.0})
    net = rule.net
    x, y = torch.rand(4, 20), torch.zeros(4, dtype=torch.long)
    record = rule.present(net, x)
    with rule.pin_broadcast(torch.zeros(4, 1)):
        assert torch.all(rule.plasticity(net, record, y) == 0)
    with rule.pin_broadcast(torch.ones(4, 1)):
        assert torch.any(rule.plasticity(net, record, y) != 0)
    assert rule.broadcast(net, record, y).shape == (4, 1)
    packet = probe_rule("rstdp", {**FAST, "modulator": "packet"})
    assert packet.broadcast(packet.net, record, y).shape == (4, 10) and packet.card().global_signal == 10
    assert probe_rule("stdp", FAST).broadcast(net, record, y) is None


def test_bad_settings_are_rejected(digits):
    with pytest.raises(ValueError, match="no option"):
        make_config("stdp", {"optimizer": "adam"})
    with pytest.raises(ValueError, match="modulator"):
        make_config("rstdp", {"modulator": "dopamine"})
    with pytest.raises(ValueError, match="one width"):
        Trainer.from_config(TrainConfig(rule="stdp", hidden=(10, 10)), small(digits, 16), progress=False)
    with pytest.raises(ValueError, match="observers"):
        Trainer.from_config(TrainConfig(rule="stdp", hidden=(10,)), small(digits, 16), observers=build_observers(["pi"]), progress=False)
    with pytest.raises(TypeError, match="SpikingNet"):
        STDP(probe_rule("bp").model_, make_config("stdp"))
    assert issubclass(RSTDP, STDP)
    with pytest.raises(TypeError, match="either"):
        STDP(SpikingNet(4, 2, 2), make_config("stdp"), eta_post=0.02)
    assert STDP(SpikingNet(4, 2, 2), eta_post=0.02).config.eta_post == 0.02  # options as keywords
    with pytest.raises(ValueError, match="features"):
        SpikingNet(5, 2, 2).intensity(torch.zeros(1, 6))


def test_card_command_verifies_the_spiking_cards(capsys):
    from plasticity.lab.cli import main

    assert main(["card", "--rule", "stdp,rstdp", "--verify", "--set", "duration_ms=100"]) == 0
    out = capsys.readouterr().out
    assert out.count("card holds") == 2 and "| global signal size | 1 |" in out


def test_a_bench_mixes_spiking_and_mlp_rules_with_their_own_epochs(digits, tmp_path):
    from plasticity.lab.bench.markdown import section
    from plasticity.lab.bench.runner import BenchConfig, run_bench

    config = BenchConfig(rules=("bp", "stdp"), datasets=("digits",), seeds=1, hidden=(10,), batch_size=32, rule_options={"stdp": {"duration_ms": 50.0}})
    assert config.epochs_for("digits", "bp") == 30 and config.epochs_for("digits", "stdp") == 5
    config.epochs = {"digits": 2}
    records, summary = run_bench(config, tmp_path, progress=False, datasets={"digits": small(digits, 64)})
    assert [r.epochs for r in records] == [2, 2]
    assert records[0].throughput is None and records[1].throughput["samples_per_second"] > 0
    text = section(summary, {}, records)
    assert "synaptic events / s" in text and "| digits | stdp |" in text
    with pytest.raises(ValueError, match="one hidden width"):
        BenchConfig(rules=("bp", "stdp"), hidden=(10, 10)).validate()


@pytest.mark.parametrize("name", ["stdp", "rstdp"])
def test_change_is_pure_and_step_moves_weights_and_thresholds(name):
    rule = probe_rule(name, FAST)
    net = rule.net
    x, y = torch.rand(6, 20, generator=torch.Generator().manual_seed(2)), torch.arange(6) % 10
    before = {k: v.clone() for k, v in net.state_dict().items()}
    state = {k: v.clone() for k, v in rule.rule_state().items()}
    first = rule.change(net, rule.present(net, x), y)
    second = rule.change(net, rule.present(net, x), y)
    assert torch.equal(first, second)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(torch.equal(state[k], v) for k, v in rule.rule_state().items())
    info = rule.step(net, x, y)
    assert torch.equal(net.weight, before["weight"] + first)  # the step applies exactly that change
    assert info.logits.shape == (6, 10) and info.update_norm == pytest.approx(float(first.norm()))
    assert not torch.equal(before["weight"], net.weight) and not torch.equal(before["theta"], net.theta)
    assert net.class_counts.sum() == 6 and int(rule.presented) == 1
    assert set(info.extras) >= set(rule.counters)


@pytest.mark.parametrize("name", ["stdp", "rstdp"])
def test_a_spiking_rule_has_no_optimizer_and_resumes_from_its_state_dict(name):
    rule = probe_rule(name, FAST)
    assert isinstance(rule, SpikingRule) and isinstance(rule, torch.nn.Module) and not hasattr(rule, "optimizer")
    with pytest.raises(ValueError, match="no option"):
        make_config(name, {"lr": 1.0})
    assert "lr" not in rule.describe()["config"] and rule.trained(rule.net) == [rule.net.weight]
    # The rule's state_dict holds its own state only: the network is held, not a submodule.
    assert set(rule.state_dict()) == ({"presented", "mean_reward"} if name == "rstdp" else {"presented"})
    generator = torch.Generator().manual_seed(0)
    batches = [(torch.rand(6, 20, generator=generator), torch.randint(0, 10, (6,), generator=generator)) for _ in range(3)]
    rule.step(rule.net, *batches[0])
    saved_net, saved_rule = copy.deepcopy(rule.net.state_dict()), copy.deepcopy(rule.state_dict())
    for x, y in batches[1:]:
        rule.step(rule.net, x, y)
    assert not torch.equal(rule.net.weight, saved_net["weight"])
    resumed = probe_rule(name, FAST)
    resumed.net.load_state_dict(saved_net)
    resumed.load_state_dict(saved_rule)
    for x, y in batches[1:]:
        resumed.step(resumed.net, x, y)
    for key, tensor in rule.net.state_dict().items():
        assert torch.equal(tensor, resumed.net.state_dict()[key]), key
    for key, tensor in rule.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[key]), key
    assert int(resumed.presented) == 3


def test_input_drive_equals_the_dense_product_of_spike_counts():
    net = SpikingNet(20, 4, 3, config=LIFConfig(**FAST))
    # A high rate on few steps, so that some inputs spike twice in one step.
    events = poisson_events(torch.rand(8, 20), 2000.0, 10, 1.0, torch.Generator().manual_seed(0))
    dense = torch.zeros(10, 8, 20)
    dense.index_put_((events.step, events.sample, events.index), torch.ones(len(events)), accumulate=True)
    assert dense.max() > 1
    assert torch.allclose(net._drive(events, 10, 8), dense @ net.weight, atol=1e-5)


def test_dataset_defaults_apply_under_the_users_options(digits):
    from plasticity.build import build_run
    from plasticity.lab.bench.runner import run_key
    from plasticity.rules import options_for

    data = small(digits, 16)
    assert build_run(TrainConfig(rule="rstdp", hidden=(5,)), data).rule.config.max_rate_hz == 250.0
    assert build_run(TrainConfig(rule="stdp", hidden=(5,), rule_options={"max_rate_hz": 100}), data).rule.config.max_rate_hz == 100.0  # --set wins
    assert options_for("stdp", "mnist-t10k") == {} and options_for("bp", "digits", {"lr": 0.1}) == {"lr": 0.1}

    def key(options):
        return run_key(TrainConfig(rule="stdp", data="digits", hidden=(5,), rule_options=options))

    # The bench keys a run by the options it really runs with: a change of defaults reruns it.
    assert key({}) == key({"max_rate_hz": 250.0}) != key({"max_rate_hz": 63.75})


def test_whole_numbers_given_for_float_options_become_floats():
    config = make_config("stdp", {"max_rate_hz": 250, "min_spikes": 3})
    assert type(config.max_rate_hz) is float and type(config.min_spikes) is int
    net = SpikingNet(4, 2, 2, config=config.neuron())
    assert net.present(torch.ones(2, 4), torch.Generator().manual_seed(0)).rate_hz.dtype == torch.float32


def test_train_command_takes_the_spiking_rules_own_width_and_batch(tmp_path):
    import json

    from plasticity.lab.cli import main

    assert main(["train", "--rule", "stdp", "--epochs", "1", "--set", "duration_ms=10", "--quiet", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["config"]["hidden"] == [100] and results["config"]["batch_size"] == 32
    assert results["rule"]["config"]["max_rate_hz"] == 250.0  # digits' own default rate
