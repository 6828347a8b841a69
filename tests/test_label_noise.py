"""Label noise, the generalized cross-entropy, the pass mark, and what the workspace observer says of rejected steps."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from plasticity.build import TrainConfig
from plasticity.data.errors import DataError
from plasticity.data.noise import noisy_labels, with_label_noise
from plasticity.errors import ConfigError
from plasticity.lab.bench.paired import HARMFUL, INCONCLUSIVE, NOT_SUPPORTED, SUPPORTED, paired_difference
from plasticity.lab.bench.runner import BenchConfig, run_key
from plasticity.lab.cli import build_parser
from plasticity.observe.workspace import WorkspaceMonitor
from plasticity.rules import make_config
from plasticity.rules.base import keyed_options
from plasticity.rules.bp import Backprop, generalized_cross_entropy
from plasticity.train import Trainer


def test_noisy_labels_are_a_function_of_seed_and_p_and_flip_the_expected_fraction():
    y = torch.arange(10).repeat(2000)
    first, again = noisy_labels(y, 0.4, 10, seed=3), noisy_labels(y, 0.4, 10, seed=3)
    assert torch.equal(first, again) and first.dtype == torch.int64
    assert not torch.equal(first, noisy_labels(y, 0.4, 10, seed=4))
    assert not torch.equal(first, noisy_labels(y, 0.2, 10, seed=3))
    flipped = float((first != y).float().mean())
    assert abs(flipped - 0.4 * 0.9) < 0.02  # the drawn class may be the true one
    assert int(first.min()) >= 0 and int(first.max()) < 10
    assert torch.equal(noisy_labels(y, 0.0, 10, seed=3), y)


@pytest.mark.parametrize("p", [-0.1, 1.0, float("nan"), "0.2", True])
def test_noise_outside_zero_one_is_refused(p):
    with pytest.raises(DataError, match="label noise"):
        noisy_labels(torch.zeros(3, dtype=torch.int64), p, 2, 0)


def test_only_the_training_labels_change(digits):
    noisy = with_label_noise(digits, 0.2, seed=1)
    assert with_label_noise(digits, 0.0, seed=1) is digits
    assert noisy.train.x is digits.train.x and noisy.test is digits.test and noisy.val is digits.val
    assert not torch.equal(noisy.train.y, digits.train.y)
    assert torch.equal(noisy.train.y, noisy_labels(digits.train.y, 0.2, digits.n_classes, 1))


def test_a_run_trains_on_the_corrupted_labels_and_says_so(digits):
    config = TrainConfig(rule="bp", data="digits", seed=2, epochs=1, label_noise=0.4)
    trainer = Trainer.from_config(config, digits, progress=False)
    assert torch.equal(trainer.data.train.y, noisy_labels(digits.train.y, 0.4, 10, 2))
    assert trainer.record().config.label_noise == 0.4
    clean = TrainConfig(rule="bp", data="digits", seed=2, epochs=1)
    assert "label_noise" not in clean.to_dict() and Trainer.from_config(clean, digits, progress=False).data is digits
    with pytest.raises(ConfigError, match="label noise"):
        TrainConfig(label_noise=1.5).validate()


def test_run_keys_without_noise_are_unchanged_and_noise_changes_them():
    bench = BenchConfig(rules=["bp"], datasets=["digits"], seeds=1)
    noisy = BenchConfig(rules=["bp"], datasets=["digits"], seeds=1, label_noise=0.2)
    assert run_key(bench.train_config("bp", "digits", 0)) == run_key(TrainConfig(rule="bp", data="digits", hidden=(256, 256), epochs=30, batch_size=64))
    assert run_key(noisy.train_config("bp", "digits", 0)) != run_key(bench.train_config("bp", "digits", 0))


def test_the_cli_takes_label_noise():
    args = build_parser().parse_args(["bench", "--rules", "bp", "--data", "digits", "--label-noise", "0.2"])
    assert args.label_noise == 0.2


def test_gce_tends_to_cross_entropy_and_to_mae():
    logits, y = torch.randn(7, 4, dtype=torch.float64), torch.tensor([0, 1, 2, 3, 0, 1, 2])
    assert torch.allclose(generalized_cross_entropy(logits, y, 1e-7), F.cross_entropy(logits, y), atol=1e-5)
    p_y = torch.softmax(logits, 1)[torch.arange(7), y]
    assert torch.allclose(generalized_cross_entropy(logits, y, 1.0), (1 - p_y).mean())


def test_bp_with_gce_trains_on_gce_and_reports_cross_entropy(digits):
    model = torch.nn.Sequential(torch.nn.Linear(64, 16), torch.nn.Tanh(), torch.nn.Linear(16, 10))
    rule = Backprop(make_config("bp", {"loss": "gce"})).attach(model)
    x, y = digits.train.x[:32], digits.train.y[:32]
    loss, info = rule.loss_and_info(model, x, y)
    assert torch.allclose(loss, generalized_cross_entropy(model(x), y, 0.7))
    assert torch.allclose(info.loss, F.cross_entropy(model(x), y))
    with pytest.raises(ConfigError, match="loss"):
        make_config("bp", {"loss": "mae"})
    with pytest.raises(ConfigError, match="gce_q"):
        make_config("bp", {"loss": "gce", "gce_q": 0.0})


def test_the_pass_mark():
    assert paired_difference([0.9, 0.8, 0.85], [0.8, 0.7, 0.76]).verdict == SUPPORTED
    assert paired_difference([0.8, 0.7, 0.76], [0.9, 0.8, 0.85]).verdict == HARMFUL
    assert paired_difference([0.9, 0.7, 0.8], [0.8, 0.8, 0.8]).verdict == NOT_SUPPORTED
    assert paired_difference([0.5, 0.5], [0.5, 0.5]).verdict == NOT_SUPPORTED
    assert paired_difference([0.9], [0.8]).verdict == INCONCLUSIVE
    lower = paired_difference([0.01, 0.02, 0.015], [0.05, 0.06, 0.055], higher_is_better=False)
    assert lower.verdict == SUPPORTED and lower.mean > 0
    d = [0.1, 0.2, 0.3]
    measured = paired_difference(d, [0.0, 0.0, 0.0])
    assert math.isclose(measured.mean, 0.2) and math.isclose(measured.se, 0.1 / math.sqrt(3))
    with pytest.raises(ValueError, match="same"):
        paired_difference([0.1], [0.1, 0.2])


class _Info:
    def __init__(self, decision):
        self.extras = {"admitted": [1.0, 0.0], "salience": [1.0, 1.0], "gains": [1.0, 1.0], "packet_norm": 1.0, "decision": decision}


def test_the_observer_names_the_rejected_steps_of_each_epoch(monkeypatch):
    monitor = WorkspaceMonitor()
    monkeypatch.setattr(monitor, "_synergy", lambda *args: None)
    for decision in ["consolidate", "reject", "ignore", "reject"]:
        monitor.on_step(None, None, None, None, _Info(decision))
    first = monitor.on_epoch_end(None, None, 1, None)
    assert first["rejected_steps"] == [1, 3] and first["decisions"] == {"consolidate": 1, "reject": 2, "ignore": 1}
    monitor.on_step(None, None, None, None, _Info("reject"))
    assert monitor.on_epoch_end(None, None, 2, None)["rejected_steps"] == [0]


def test_options_added_later_enter_a_run_key_only_when_set():
    assert "loss" not in keyed_options(make_config("bp", {})) and "gce_q" not in keyed_options(make_config("bp", {}))
    assert keyed_options(make_config("bp", {"loss": "gce"}))["loss"] == "gce"
    assert keyed_options(make_config("bp", {"gce_q": 0.5}))["gce_q"] == 0.5
    assert keyed_options(make_config("dfa", {})) == {**vars(make_config("dfa", {}))}
