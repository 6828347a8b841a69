"""benchmarks/workspace_h2.py (H2 of docs/workspace.md): its streams are fixed by the seed (the split
ones partition the classes, the permuted one reorders every input), a tiny run gives well-formed
5×5 accuracy matrices whose metrics are `plasticity.observe.forgetting`'s and whose verdicts are
`paired_difference`'s, it writes only where it is told, and its table renders from what it wrote."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import script

from plasticity.errors import ConfigError
from plasticity.lab.bench.paired import paired_difference
from plasticity.observe.forgetting import average_forgetting, backward_transfer, final_average_accuracy
from plasticity.rules import make_config

TINY = ["--streams", "split-digits", "--seeds", "2", "--epochs", "1", "--arms", "workspace,workspace-capacity-3,bp", "--quiet"]


@pytest.fixture(scope="module")
def h2():
    with script("benchmarks/workspace_h2.py") as module:
        yield module


@pytest.fixture(scope="module")
def mnist1d():
    from plasticity.data import load

    return load("mnist1d")


def test_split_tasks_partition_the_classes_in_an_order_fixed_by_the_seed(h2, digits):
    tasks = h2.split_tasks(digits, seed=3)
    classes = [t.defined_by for t in tasks]
    assert len(tasks) == 5 and all(len(group) == 2 for group in classes)
    assert sorted(c for group in classes for c in group) == list(range(10))
    assert classes == [t.defined_by for t in h2.split_tasks(digits, seed=3)]
    assert classes != [t.defined_by for t in h2.split_tasks(digits, seed=4)]
    for task in tasks:  # every sample of its classes, and only those
        for split_y, task_y in ((digits.train.y, task.train_y), (digits.test.y, task.test_y)):
            assert set(task_y.tolist()) == set(task.defined_by)
            assert len(task_y) == int(torch.isin(split_y, torch.tensor(task.defined_by)).sum())
    assert sum(len(t.train_y) for t in tasks) == len(digits.train) and sum(len(t.test_y) for t in tasks) == len(digits.test)
    first = tasks[0]
    wanted = torch.isin(digits.train.y, torch.tensor(first.defined_by))
    assert torch.equal(first.train_x, digits.train.x[wanted])


def test_permuted_tasks_reorder_every_input_by_a_permutation_fixed_by_the_seed(h2, mnist1d):
    tasks = h2.permuted_tasks(mnist1d, seed=0)
    orders = [t.defined_by for t in tasks]
    assert len(tasks) == 5 and all(sorted(order) == list(range(40)) for order in orders)
    assert orders[0] != list(range(40)), "the first task is permuted too"
    assert len({tuple(order) for order in orders}) == 5
    assert orders == [t.defined_by for t in h2.permuted_tasks(mnist1d, seed=0)]
    assert orders != [t.defined_by for t in h2.permuted_tasks(mnist1d, seed=1)]
    for task in tasks:
        assert torch.equal(task.train_x, mnist1d.train.x[:, task.defined_by]) and torch.equal(task.test_x, mnist1d.test.x[:, task.defined_by])
        assert torch.equal(task.train_y, mnist1d.train.y) and torch.equal(task.test_y, mnist1d.test.y)


def test_epochs_per_task_are_the_pre_registered_ones(h2):
    assert {stream: h2.epochs_per_task(stream) for stream in h2.STREAMS} == {"split-digits": 6, "split-mnist-t10k": 4, "permuted-mnist1d": 12}
    # The arms as pre-registered: the workspace's mirror then (every 4 steps, 64 samples, rate 0.04), pinned
    # since its default became sparser, and dfa given that same mirror.
    configs = {arm: make_config(rule, options) for arm, (rule, options) in h2.ARMS.items() if rule != "bp"}
    mirrors = {arm: (c.mirror_every, c.mirror_samples, c.mirror_rate) for arm, c in configs.items()}
    assert mirrors == dict.fromkeys(("dfa-mirror", "workspace", "workspace-capacity-3"), (4, 64, 0.04))
    assert make_config(*h2.ARMS["workspace"]).capacity == 2 and make_config(*h2.ARMS["workspace-capacity-3"]).capacity == 3


def test_h2_verdict_needs_less_forgetting_at_no_loss_of_accuracy(h2):
    assert h2.h2_verdict("supported", "not supported") == "supported"
    assert h2.h2_verdict("supported", "supported") == "supported"
    assert h2.h2_verdict("supported", "harmful") == "not supported"
    assert h2.h2_verdict("not supported", "not supported") == "not supported"
    assert h2.h2_verdict("not supported", "supported") == "not supported"
    assert h2.h2_verdict("harmful", "not supported") == "harmful"
    assert h2.h2_verdict("not supported", "harmful") == "harmful"
    assert h2.h2_verdict("inconclusive", "inconclusive") == "inconclusive"


def test_a_tiny_run_gives_well_formed_matrices_metrics_and_verdicts(h2, tmp_path, capsys):
    out = tmp_path / "stored" / "h2.json"
    assert h2.main([*TINY, "--out", str(out)]) == 0
    assert capsys.readouterr().out == "" and sorted(p.name for p in tmp_path.iterdir()) == ["stored"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["h2.json"]
    measured = json.loads(out.read_text(encoding="utf-8"))
    runs = measured["runs"]
    assert [(r["arm"], r["seed"]) for r in runs] == [(arm, seed) for seed in (0, 1) for arm in ("workspace", "workspace-capacity-3", "bp")]
    for run in runs:
        a = np.array(run["accuracy"])
        assert a.shape == (5, 5) and ((a >= 0) & (a <= 1)).all()
        if run["arm"] == "bp":  # the first task is learned, and scored among all 10 classes: unseen ones are never predicted
            assert a[0, 0] > 0.9 and a[0, 1:].max() < 0.2, a
        assert run["final_average_accuracy"] == pytest.approx(final_average_accuracy(a))
        assert run["average_forgetting"] == pytest.approx(average_forgetting(a))
        assert run["backward_transfer"] == pytest.approx(backward_transfer(a))
    tasks = measured["tasks"]["split-digits"]
    assert tasks["epochs_per_task"] == 1 and set(tasks["defined_by"]) == {"0", "1"}
    row = next(r for r in measured["summary"] if r["arm"] == "bp")
    values = [r["average_forgetting"] for r in runs if r["arm"] == "bp"]
    assert row["seeds"] == 2 and row["average_forgetting"]["mean"] == pytest.approx(np.mean(values))
    assert row["average_forgetting"]["std"] == pytest.approx(np.std(values, ddof=1))
    verdicts = {(v["off"], v["metric"]): v for v in measured["verdicts"]}
    assert set(verdicts) == {(off, m) for off in ("workspace-capacity-3", "bp") for m in ("average_forgetting", "final_average_accuracy")}
    by = {(r["arm"], r["seed"]): r for r in runs}
    expected = paired_difference([by[("workspace", s)]["average_forgetting"] for s in (0, 1)], [by[("bp", s)]["average_forgetting"] for s in (0, 1)], False)
    assert {k: verdicts[("bp", "average_forgetting")][k] for k in ("mean", "se", "n", "verdict")} == expected.to_json()
    forgetting, accuracy = (verdicts[("workspace-capacity-3", m)]["verdict"] for m in ("average_forgetting", "final_average_accuracy"))
    assert measured["h2"] == [{"stream": "split-digits", "verdict": h2.h2_verdict(forgetting, accuracy)}]

    text = h2.markdown(h2.checked(measured, TINY))
    assert "**class-incremental split digits**" in text and text.count("| workspace-capacity-3 |") == 1
    assert "| workspace vs bp | forgetting |" in text and "split-digits **" in text
    with pytest.raises(ConfigError, match="rerun its command"):
        h2.checked(measured, [*TINY, "--seeds", "3"])


def test_unknown_or_repeated_names_are_refused_before_any_work(h2, tmp_path, capsys):
    for argv in (["--streams", "split-cifar"], ["--arms", "bp,bp"], ["--seeds", "0"]):
        with pytest.raises(SystemExit):
            h2.main([*argv, "--out", str(tmp_path / "h2.json")])
    assert list(tmp_path.iterdir()) == []
