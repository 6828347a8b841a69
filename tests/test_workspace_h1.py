"""The scripts of the workspace's hypotheses H1 (label noise) and H4 (synergy), on tiny settings."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from helpers import script

from plasticity.train import batch_order


@pytest.fixture(scope="module")
def h1():
    with script("benchmarks/workspace_h1.py") as module:
        yield module


@pytest.fixture(scope="module")
def h4():
    with script("benchmarks/workspace_h4.py") as module:
        yield module


@pytest.fixture(scope="module")
def stored(h1, tmp_path_factory):
    out = tmp_path_factory.mktemp("h1") / "out"
    argv = ["--out", str(out), "--datasets", "digits", "--seeds", "2", "--epochs", "3", "--noise", "0,0.4", "--quiet"]
    assert h1.main(argv) == 0
    return out


def test_h1_runs_every_arm_at_every_noise_level_and_judges_the_gate(h1, stored):
    assert sorted(p.name for p in stored.iterdir()) == ["h1.json", "noise00", "noise40"]
    measured = json.loads((stored / "h1.json").read_text())
    clean, noisy = measured["cells"]
    assert (clean["noise"], noisy["noise"]) == (0.0, 0.4) and "verdicts" not in clean
    assert set(noisy["accuracy"]) == set(h1.ARMS) and all(len(v) == 2 for v in noisy["accuracy"].values())
    assert set(noisy["verdicts"]) == {"workspace", "bp", "dfa-mirror"}
    assert all(0.3 < f < 0.42 for f in noisy["flipped"])
    text = h1.markdown(measured)
    assert "| digits | 0.4 |" in text and "gate − workspace" in text
    record = json.loads(next((stored / "noise40").glob("runs/digits/ws-gate/seed0-*/results.json")).read_text())
    assert record["config"]["label_noise"] == 0.4 and "rejected_steps" in record["epochs"][0]["workspace"]


def test_the_gate_statistics_name_the_samples_of_the_rejected_batches(h1):
    n, batch, seed = 100, 10, 3
    picked = batch_order(n, seed, 2)[batch : 2 * batch]  # epoch 2, step 1
    flipped = torch.zeros(n, dtype=torch.bool)
    flipped[picked] = True
    flipped[batch_order(n, seed, 2)[50:60]] = True  # flipped samples the gate never saw
    epochs = [
        SimpleNamespace(epoch=1, observed={"workspace": {"decisions": {"consolidate": 10}, "rejected_steps": []}}),
        SimpleNamespace(epoch=2, observed={"workspace": {"decisions": {"consolidate": 8, "reject": 1, "ignore": 1}, "rejected_steps": [1]}}),
    ]
    results = SimpleNamespace(config=SimpleNamespace(seed=seed, batch_size=batch), epochs=epochs)
    statistics = h1.gate_statistics(results, flipped)
    assert statistics["rejected_fraction"] == 1 / 20 and statistics["ignored_fraction"] == 1 / 20
    assert statistics["flipped_ratio"] == pytest.approx(1.0 / 0.2)  # every rejected sample flipped; 20% overall


def test_h4_reads_the_clean_runs_and_tests_the_rank_correlation(h4, stored, tmp_path):
    out = tmp_path / "h4.json"
    assert h4.main(["--runs", str(stored / "noise00"), "--out", str(out), "--permutations", "50"]) == 0
    (row,) = json.loads(out.read_text())["rows"]
    assert row["dataset"] == "digits" and row["seeds"] == [0, 1] and row["pairs"] == 4
    assert -1 <= row["rho"] <= 1 and 0 < row["p"] <= 1
    assert "| digits | 2 | 4 |" in h4.markdown(json.loads(out.read_text()))


def test_the_permutation_test_finds_a_planted_correlation_and_not_an_absent_one(h4):
    rng = np.random.default_rng(0)
    planted = [(s, s + 0.1 * rng.standard_normal(30)) for s in (rng.standard_normal(30) for _ in range(3))]
    rho, p = h4.permutation_test(planted, 500, seed=1)
    assert rho > 0.9 and p < 0.01
    absent = [(rng.standard_normal(30), rng.standard_normal(30)) for _ in range(3)]
    rho, p = h4.permutation_test(absent, 500, seed=1)
    assert abs(rho) < 0.3 and p > 0.05
    assert h4.spearman(np.array([1.0, 2.0, 3.0]), np.array([3.0, 1.0, 2.0])) == pytest.approx(-0.5)


def test_h4_refuses_a_folder_without_workspace_runs(h4, tmp_path):
    with pytest.raises(FileNotFoundError, match="workspace_h1"):
        h4.analyse(tmp_path)


def test_within_epochs_a_shared_trend_is_no_correlation_and_a_planted_one_is(h4):
    rng = np.random.default_rng(2)
    trend = np.linspace(2.0, 0.0, 40)
    seeds = [(trend + 0.01 * rng.standard_normal(40), trend + 0.01 * rng.standard_normal(40)) for _ in range(5)]
    rho, p = h4.permutation_test(seeds, 500, seed=0)
    assert rho > 0.9 and p < 0.01  # the pre-registered test sees the trend
    by_epoch = [(np.array([s[e] for s, _ in seeds]), np.array([d[e] for _, d in seeds])) for e in range(40)]
    rho, p = h4.permutation_test(by_epoch, 500, seed=0, within=True)
    assert abs(rho) < 0.2 and p > 0.05  # the within-epoch test does not
    planted = [(s, s + 0.001 * rng.standard_normal(5)) for s, _ in by_epoch]
    rho, p = h4.permutation_test(planted, 500, seed=0, within=True)
    assert rho > 0.9 and p < 0.01
