"""H3 of docs/workspace.md: the segments model under the rules, the noisy dataset, the script and its table."""

import json

import pytest
import torch
from helpers import script

from plasticity.build import TrainConfig, build_run
from plasticity.data import Dataset, Split
from plasticity.lab.cli import build_parser
from plasticity.models import build_segments
from plasticity.observe.workspace import WorkspaceMonitor
from plasticity.rules import attach
from plasticity.train import Trainer


@pytest.fixture(scope="module")
def h3():
    with script("benchmarks/workspace_h3.py") as module:
        yield module


def toy(n: int = 96, seed: int = 0) -> Dataset:
    generator = torch.Generator().manual_seed(seed)
    split = lambda count: Split(torch.randn(count, 40, generator=generator), torch.randint(0, 10, (count,), generator=generator))  # noqa: E731
    return Dataset("toy", split(n), split(n // 2), None, tuple("0123456789"), (40,), "random")


def test_workspace_sees_the_four_blocks_and_the_output_as_five_modules():
    torch.manual_seed(0)
    model = build_segments(40, 10, seed=0)
    rule = attach(model, "workspace")
    x, y = torch.randn(32, 40), torch.randint(0, 10, (32,))
    loss, info = rule.loss_and_info(model, x, y)
    loss.backward()
    heads = [rule.layers_.index(head) for head in model.heads]
    assert [index for index, _ in rule.recorded_] == heads  # each block's output, in segment order, feeds its own head
    for k, (_, h) in enumerate(rule.recorded_):
        assert torch.equal(h, model.blocks[k](x[:, 10 * k : 10 * (k + 1)]))
    assert rule.modules(model, x, y).error.shape == (5, 32, 10)
    assert len(info.extras["admitted"]) == 5
    assert sum(info.extras["admitted"]) == pytest.approx(5.0)  # by default every module is admitted
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


@pytest.mark.parametrize("rule", ["bp", "dfa", "workspace"])
def test_rules_attach_and_train_a_step_on_segments(rule):
    data = toy()
    run = build_run(TrainConfig(rule=rule, data="mnist1d", model="segments", seed=1), data)
    before = [p.detach().clone() for p in run.model.parameters()]
    x, y = data.train.x[:64], data.train.y[:64]
    run.optimizer.zero_grad()
    loss, info = run.rule.loss_and_info(run.model, x, y)
    loss.backward()
    assert info.applied
    run.optimizer.step()
    assert all(not torch.equal(a, b) for a, b in zip(before, run.model.parameters(), strict=True))


def test_winners_have_five_entries_per_epoch():
    config = TrainConfig(rule="workspace", data="mnist1d", model="segments", epochs=2, seed=0, rule_options={"capacity": 2})
    results = Trainer.from_config(config, data=toy(), observers=[WorkspaceMonitor()], progress=False).fit()
    for epoch in results.epochs:
        winners = epoch.observed["workspace"]["winners"]
        assert len(winners) == 5
        assert sum(winners) == pytest.approx(2.0)


def test_cli_takes_the_segments_model():
    args = build_parser().parse_args(["train", "--rule", "workspace", "--model", "segments", "--data", "mnist1d"])
    assert args.model == "segments"


def test_noisy_dataset_replaces_exactly_the_second_segment_of_train(h3):
    data = toy(200)
    original = data.train.x.clone()
    noisy = h3.noisy_dataset(data, seed=3)
    assert torch.equal(data.train.x, original)  # the loaded dataset is not changed
    assert noisy.test is data.test or (torch.equal(noisy.test.x, data.test.x) and torch.equal(noisy.test.y, data.test.y))
    assert torch.equal(noisy.train.y, data.train.y)
    assert torch.equal(noisy.train.x[:, :10], original[:, :10])
    assert torch.equal(noisy.train.x[:, 20:], original[:, 20:])
    segment = noisy.train.x[:, 10:20]
    assert not torch.isclose(segment, original[:, 10:20]).any()
    assert abs(float(segment.mean())) < 0.1 and abs(float(segment.std()) - 1.0) < 0.1  # N(0, 1)
    assert torch.equal(h3.noisy_dataset(data, seed=3).train.x, noisy.train.x)  # fixed by the seed
    assert not torch.equal(h3.noisy_dataset(data, seed=4).train.x[:, 10:20], segment)
    assert noisy.train.x.dtype == torch.float32


def test_noisy_share(h3):
    assert h3.noisy_share([0.5, 0.1, 0.5, 0.4, 0.5]) == pytest.approx(0.05)
    assert h3.noisy_share([1.0] * 5) == pytest.approx(0.2)
    run = {"epochs": [{"winners": [0.4, 0.2, 0.4, 0.4, 0.6]}, {"winners": [0.5, 0.0, 0.5, 0.5, 0.5]}]}
    assert h3.shares(run) == pytest.approx((0.0, 0.05))
    assert h3.shares({"epochs": [{"winners": None}]}) is None


def test_verdicts_and_markdown_on_made_up_runs(h3):
    def run(arm, seed, accuracy, winners):
        rule_options = dict(h3.ARMS[arm][1])
        epochs = [{"epoch": 1, "test_accuracy": accuracy, "winners": winners}]
        return {"arm": arm, "seed": seed, "status": "completed", "test_accuracy": accuracy, "epochs": epochs, "settings": {"rule_options": rule_options}}

    runs = [run("workspace", s, 0.60 + 0.01 * s, [0.5, 0.1 + 0.01 * s, 0.5, 0.4 - 0.01 * s, 0.5]) for s in range(3)]
    runs += [run("workspace-all", s, 0.50 + 0.01 * s, [1.0] * 5) for s in range(3)]
    runs += [run("bp", s, 0.70 + 0.02 * s, None) for s in range(3)]
    verdicts = {(v["metric"], v["off"]): v for v in h3.verdicts(runs)}
    assert verdicts[("test accuracy", "workspace-all")]["verdict"] == "supported"
    assert verdicts[("test accuracy", "workspace-all")]["mean"] == pytest.approx(0.10)
    assert verdicts[("test accuracy", "bp")]["verdict"] == "harmful"
    assert ("test accuracy", "dfa-mirror") not in verdicts  # an arm not run is not compared
    share = verdicts[("noisy share, last epoch", "workspace-all")]
    assert share["verdict"] == "supported" and share["mean"] == pytest.approx(0.2 - 0.055)
    measured = {"setup": {"description": "made up", "seeds": [0, 1, 2]}, "runs": runs, "verdicts": h3.verdicts(runs)}
    text = h3.markdown(measured)
    assert "| workspace | capacity = 2, mirror_every = 4, mirror_samples = 64, mirror_rate = 0.04 | 61.0 ± 1.0 | 0.055 ± 0.005 |" in text
    assert "| workspace-all | capacity = 5, mirror_every = 4, mirror_samples = 64, mirror_rate = 0.04 | 51.0 ± 1.0 | 0.200 ± 0.000 |" in text
    assert "| test accuracy | workspace against bp | -11.00 points |" in text
    assert "| noisy share, last epoch | workspace against workspace-all | +0.145 |" in text


def test_script_on_a_tiny_setting(h3, tmp_path, capsys):
    out = tmp_path / "h3.json"
    assert h3.main(["--seeds", "1", "--epochs", "1", "--arms", "bp,workspace", "--out", str(out)]) == 0
    measured = json.loads(out.read_text())
    assert [(r["arm"], r["seed"]) for r in measured["runs"]] == [("bp", 0), ("workspace", 0)]
    bp, workspace = measured["runs"]
    assert bp["epochs"][0]["winners"] is None and len(workspace["epochs"]) == 1
    assert len(workspace["epochs"][0]["winners"]) == 5
    assert 0.0 < workspace["test_accuracy"] <= 1.0
    assert [(v["on"], v["off"], v["verdict"]) for v in measured["verdicts"]] == [("workspace", "bp", "inconclusive")]
    assert measured["setup"]["epochs"] == 1 and measured["setup"]["seeds"] == [0]
    text = h3.markdown(measured)
    assert text.count("\n| workspace | capacity = 2, mirror_every = 4,") == 1 and "| bp | defaults |" in text
    assert "training inputs 10–19" in text
    assert list(tmp_path.iterdir()) == [out]  # writes only to --out


def test_script_refuses_unknown_arms(h3):
    with pytest.raises(SystemExit):
        h3.main(["--arms", "bp,nope"])
