import json

import pytest
import torch

from plasticity.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from plasticity.errors import ConfigError
from plasticity.train import CHECKPOINT, RESULTS, TrainConfig, Trainer, train


def config(**changes):
    base = dict(rule="fa", data="digits", hidden=(32,), epochs=2, batch_size=128, seed=0)
    base.update(changes)
    return TrainConfig(**base)


def weights(trainer):
    return [p.detach().clone() for p in trainer.net.parameters()]


def test_same_seed_gives_identical_weights(digits):
    runs = []
    for seed in (0, 0, 1):
        trainer = Trainer.from_config(config(seed=seed, rule="dfa"), digits, progress=False)
        trainer.fit()
        runs.append(weights(trainer))
    assert all(torch.equal(a, b) for a, b in zip(runs[0], runs[1], strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(runs[0], runs[2], strict=True))


def test_results_json_has_the_promised_fields(digits, tmp_path):
    results = train(config(rule="bp", epochs=2), digits, out_dir=tmp_path, progress=False)
    saved = json.loads((tmp_path / RESULTS).read_text())
    assert saved["status"] == "completed" and saved == json.loads(json.dumps(results.to_json()))
    assert saved["config"]["rule"] == "bp" and saved["seed"] == 0
    assert {"torch", "numpy", "python", "plasticity"} <= set(saved["versions"])
    assert [e["epoch"] for e in saved["epochs"]] == [1, 2]
    for entry in saved["epochs"]:
        assert {"epoch", "train_loss", "test_accuracy", "epoch_seconds"} <= set(entry)
        assert 0.0 <= entry["test_accuracy"] <= 1.0 and entry["epoch_seconds"] > 0
    assert saved["card"]["weight_transport"] == "exact"
    assert (tmp_path / CHECKPOINT).exists()


def test_checkpoint_round_trip(digits, tmp_path):
    from plasticity.build import build_run

    trainer = Trainer.from_config(config(rule="fa"), digits, progress=False)
    trainer.fit()
    path = save_checkpoint(tmp_path / "c.safetensors", trainer.net, trainer.rule, trainer.optimizer, 2, {"k": 1})
    fresh = build_run(config(rule="fa", seed=5), digits)
    epoch, saved = load_checkpoint(path, fresh.model, fresh.rule, fresh.optimizer)
    assert epoch == 2 and saved == {"k": 1}
    assert all(torch.equal(a, b) for a, b in zip(fresh.model.parameters(), trainer.net.parameters(), strict=True))
    ours, theirs = fresh.rule.state_dict(), trainer.rule.state_dict()
    assert set(ours) == set(theirs) == {"feedback.1.weight"} and all(torch.equal(ours[k], theirs[k]) for k in ours)
    ours, theirs = fresh.optimizer.state_dict(), trainer.optimizer.state_dict()
    assert ours["param_groups"] == theirs["param_groups"]
    for index, state in theirs["state"].items():
        assert all(torch.equal(ours["state"][index][k], v) for k, v in state.items())


def test_resume_continues_exactly(digits, tmp_path):
    straight = Trainer.from_config(config(rule="bp", epochs=3), digits, progress=False)
    straight.fit()
    first = Trainer.from_config(config(rule="bp", epochs=2), digits, out_dir=tmp_path, progress=False)
    first.fit()
    resumed = Trainer.from_config(config(rule="bp", epochs=3), digits, out_dir=tmp_path, progress=False)
    results = resumed.fit(resume=True)
    assert [e.epoch for e in results.epochs] == [1, 2, 3]
    assert all(torch.equal(a, b) for a, b in zip(weights(straight), weights(resumed), strict=True))
    with pytest.raises(ConfigError, match=r"other settings \(seed: 0 → 1; stored → asked\)"):
        Trainer.from_config(config(rule="bp", epochs=3, seed=1), digits, out_dir=tmp_path, progress=False).fit(resume=True)


def test_a_run_made_before_a_rule_default_changed_is_not_resumed_as_the_same_run(digits, tmp_path, monkeypatch):
    Trainer.from_config(config(rule="dfa", epochs=1), digits, out_dir=tmp_path, progress=False).fit()
    again = Trainer.from_config(config(rule="dfa", epochs=2), digits, out_dir=tmp_path, progress=False)
    assert [e.epoch for e in again.fit(resume=True).epochs] == [1, 2]  # nothing changed: it resumes
    from plasticity.rules.dfa import DirectFeedbackConfig

    monkeypatch.setattr(DirectFeedbackConfig, "__init__", _with_default(DirectFeedbackConfig.__init__, feedback_scale=2.0))
    with pytest.raises(ConfigError, match=r"other rule settings \(feedback_scale: 1.0 → 2.0; stored → now"):
        Trainer.from_config(config(rule="dfa", epochs=3), digits, out_dir=tmp_path, progress=False).fit(resume=True)


def _with_default(init, **defaults):
    """`init` with other defaults, as a new version of the rule's config would have them."""

    def changed(self, *args, **kwargs):
        init(self, *args, **{**defaults, **kwargs})

    return changed


def test_an_interruption_between_results_and_checkpoint_loses_no_epoch(digits, tmp_path, monkeypatch):
    import plasticity.train as train_module

    straight = Trainer.from_config(config(rule="bp", epochs=2), digits, progress=False)
    straight.fit()

    # Interrupt right after the first of epoch 2's two writes (results and checkpoint), whichever
    # comes first: the state on disk is then half of epoch 2.
    def checkpoint_then_stop(path, net, rule, optimizer, epoch, settings, tie):
        save_checkpoint(path, net, rule, optimizer, epoch, settings, tie)
        if epoch == 2:
            raise KeyboardInterrupt

    write_json = train_module.atomic_write_json

    def results_then_stop(path, payload):
        write_json(path, payload)
        if len(payload["epochs"]) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "save_checkpoint", checkpoint_then_stop)
    monkeypatch.setattr(train_module, "atomic_write_json", results_then_stop)
    with pytest.raises(KeyboardInterrupt):
        Trainer.from_config(config(rule="bp", epochs=2), digits, out_dir=tmp_path, progress=False).fit()
    monkeypatch.undo()
    results = Trainer.from_config(config(rule="bp", epochs=2), digits, out_dir=tmp_path, progress=False).fit(resume=True)
    assert [e.epoch for e in results.epochs] == [1, 2]  # epoch 2 redone from epoch 1's checkpoint
    assert [e.test_accuracy for e in results.epochs] == [e.test_accuracy for e in straight.epochs]


def test_corrupt_checkpoint_is_reported(digits, tmp_path):
    (tmp_path / "bad.safetensors").write_bytes(b"not a checkpoint")
    trainer = Trainer.from_config(config(), digits, progress=False)
    with pytest.raises(CheckpointError, match="bad.safetensors"):
        load_checkpoint(tmp_path / "bad.safetensors", trainer.net, trainer.rule, trainer.optimizer)


def test_divergence_stops_and_keeps_the_last_good_checkpoint(digits, tmp_path):
    trainer = Trainer.from_config(config(rule="bp", epochs=3), digits, out_dir=tmp_path, progress=False)
    trainer.fit()
    good = (tmp_path / CHECKPOINT).read_bytes()
    blowup = Trainer.from_config(config(rule="bp", epochs=4), digits, out_dir=tmp_path, progress=False)
    original = blowup.step

    def poisoned(x, y):
        info = original(x, y)
        if len(blowup.epochs) >= 3:  # the fourth epoch blows up
            with torch.no_grad():
                blowup.net[0].weight.fill_(float("nan"))
            info.loss = torch.tensor(float("nan"))
        return info

    blowup.step = poisoned
    results = blowup.fit(resume=True)
    assert results.status == "diverged"
    assert "diverged" in results.message and "epoch 3" in results.message and "lr" in results.message
    assert (tmp_path / CHECKPOINT).read_bytes() == good
    assert json.loads((tmp_path / RESULTS).read_text())["status"] == "diverged"


def test_bad_settings_are_refused(digits):
    with pytest.raises(ValueError, match="epochs"):
        Trainer.from_config(config(epochs=0), digits)
    with pytest.raises(ValueError, match="unknown rule"):
        Trainer.from_config(config(rule="nope"), digits)


def test_observers_do_not_change_training(digits):
    from plasticity.observe.registry import build_observers

    plain = Trainer.from_config(config(rule="fa"), digits, progress=False)
    plain.fit()
    watched = Trainer.from_config(config(rule="fa"), digits, observers=build_observers(["pi", "omega", "alignment"]), progress=False)
    results = watched.fit()
    assert all(torch.equal(a, b) for a, b in zip(weights(plain), weights(watched), strict=True))
    assert {"pi", "omega", "alignment"} <= set(results.epochs[-1].observed)


def test_python_api_and_cli_make_the_same_run():
    resolved = TrainConfig(rule="dfa", model="cnn1d", data="mnist1d").resolved()
    assert (resolved.epochs, resolved.batch_size, resolved.rule_config().lr) == (200, 100, 1e-2)
    assert TrainConfig(rule="softhebb").resolved().hidden == (256,) and TrainConfig(rule="stdp").resolved().batch_size == 32
    assert TrainConfig(data="mnist1d", epochs=3).resolved().epochs == 3
