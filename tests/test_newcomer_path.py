"""The newcomer's path of docs/architecture.md holds: a new rule is one file plus its line in the
registry, a new dataset one loader plus its line in the registry, and every command then takes them.

Each test registers its addition exactly as the doc says (one entry in `plasticity.rules.RULES`
or `plasticity.data.registry._REGISTRY`, here with monkeypatch) and runs the commands a user would:
train, bench, card --verify and report. Nothing else in the package is touched.
"""

from __future__ import annotations

import json

import numpy as np
import torch
from torch import nn

from plasticity.data import registry
from plasticity.data.options import LoadOptions
from plasticity.data.prepare import numeric_dataset
from plasticity.lab.cli import main
from plasticity.rules import RULES, PlausibilityCard
from plasticity.rules.fa import ChainFeedbackRule


class HalfTransport(ChainFeedbackRule):
    """A made-up rule for this test: feedback alignment whose feedback is half the forward weights,
    B_{l+1} = W_{l+1} / 2 (exact weight transport, scaled)."""

    name = "half"

    def feedback_for(self, index: int, layer: nn.Module) -> torch.Tensor:
        return layer.weight.detach() / 2

    def card(self) -> PlausibilityCard:
        return PlausibilityCard(
            rule=self.name,
            weight_transport="exact",
            reads=("pre", "post", "error_from_above"),
            global_signal=0,
            error_signal="δ_l = (W_{l+1}ᵀ δ_{l+1} / 2) ⊙ f′(a_l)",
            phases_per_step=2,
            inference_iterations=0,
            locks_removed=(),
            reference="a test of the newcomer's path",
        )


def load_blobs(options: LoadOptions):
    """A made-up dataset: three Gaussian blobs in 6 dimensions, 90 train / 30 test samples."""
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, (3, 6))
    y = np.repeat(np.arange(3), 40)
    x = centres[y] + rng.normal(0, 1, (len(y), 6))
    order = rng.permutation(len(y))
    x, y = x[order], y[order]
    return numeric_dataset("blobs", {"train": (x[:90], y[:90]), "test": (x[90:], y[90:])}, ("a", "b", "c"), options, source="generated for a test")


def test_a_new_rule_is_one_file_and_one_registry_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(RULES, "half", HalfTransport)
    small = ["--data", "digits", "--epochs", "1", "--hidden", "8", "--threads", "1", "--quiet"]
    assert main(["train", "--rule", "half", *small, "--out", str(tmp_path / "train")]) == 0
    assert main(["bench", "--rules", "bp,half", *small, "--seeds", "1", "--out", str(tmp_path / "bench")]) == 0
    assert main(["card", "--rule", "half", "--verify"]) == 0
    assert "card holds" in capsys.readouterr().out
    assert main(["report", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "train" / "results.json").read_text())
    assert results["card"]["rule"] == "half" and results["test_accuracy"] > 0.1
    assert "half" in (tmp_path / "report" / "index.html").read_text(encoding="utf-8")


def test_a_new_dataset_is_one_loader_and_one_registry_line(tmp_path, monkeypatch):
    monkeypatch.setitem(registry._REGISTRY, "blobs", registry.Entry(load_blobs, "three Gaussian blobs (a test)"))
    small = ["--data", "blobs", "--epochs", "2", "--hidden", "8", "--threads", "1", "--quiet"]
    assert main(["train", "--rule", "dfa", *small, "--out", str(tmp_path / "train")]) == 0
    assert main(["bench", "--rules", "bp,fa", *small, "--seeds", "1", "--out", str(tmp_path / "bench")]) == 0
    assert main(["report", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "train" / "results.json").read_text())
    assert results["dataset"]["name"] == "blobs" and results["test_accuracy"] > 0.5
