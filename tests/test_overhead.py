"""The overhead benchmark's minimal loops compute the same algorithm as the rules they time."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import script

from plasticity.build import TrainConfig
from plasticity.train import Trainer


@pytest.fixture(scope="module")
def overhead():
    with script("benchmarks/overhead.py") as module:
        yield module


@pytest.mark.parametrize("rule", ["bp", "fa", "dfa", "sign", "pc", "workspace"])
def test_every_minimal_loop_gives_the_rules_update(overhead, rule, digits):
    trainer = Trainer.from_config(TrainConfig(rule=rule, data="digits", seed=0), digits, progress=False)
    x, y = digits.train.x[:32], digits.train.y[:32]
    trainer.rule.directions(trainer.model, x, y)
    for kind in overhead.MINIMAL[rule]:
        assert overhead.difference(trainer, kind, x, y) < overhead.TOLERANCE, (rule, kind)


def test_the_command_writes_its_numbers_only_where_it_is_told(overhead, tmp_path, capsys):
    out = tmp_path / "stored" / "overhead.json"
    assert overhead.main(["--rules", "bp,fa", "--data", "digits", "--repeats", "1", "--out", str(out)]) == 0
    assert "| bp |" in capsys.readouterr().out and sorted(p.name for p in tmp_path.iterdir()) == ["stored"]
    stored = json.loads(out.read_text(encoding="utf-8"))
    text = overhead.markdown(stored["rows"], stored["setup"])  # what the docs tool renders from the stored file
    assert text.startswith("Setup: digits, seed 0, 1 repeats") and "| fa |" in text
    with pytest.raises(SystemExit):
        overhead.main(["--out", str(tmp_path)])  # a folder: refused before anything is timed


def test_the_minimal_workspace_loop_trains_as_the_rule_does(overhead, digits):
    """Twenty steps, two of them with the weight mirror: the same weights in float64."""
    trainer = Trainer.from_config(TrainConfig(rule="workspace", data="digits", seed=0), digits, progress=False)
    project, mine = overhead.copy_of(trainer).double(), overhead.copy_of(trainer).double()
    rule = type(trainer.rule)(trainer.rule.config, seed=trainer.rule.seed).attach(project)
    x, y = digits.train.x.double(), digits.train.y
    rule.directions(project, x[:32], y[:32])  # draws the feedback
    step = overhead.minimal_step(rule, mine, "hand")
    optimizers = [torch.optim.SGD(model.parameters(), lr=0.5) for model in (project, mine)]
    for start in range(0, 20 * 32, 32):
        batch = x[start : start + 32], y[start : start + 32]
        project.zero_grad()
        rule.loss(project, *batch).backward()
        step(*batch)
        for optimizer in optimizers:
            optimizer.step()
    assert int(rule.steps) == 20 and rule.config.mirror_every == 16
    for (name, a), b in zip(project.named_parameters(), mine.parameters(), strict=True):
        assert torch.allclose(a, b, rtol=0, atol=1e-10), name
    for slot, B in zip(rule.feedback[1:], step.feedback, strict=True):
        assert torch.allclose(slot.weight, B, rtol=0, atol=1e-12)


def test_the_minimal_workspace_loop_refuses_another_workspace(overhead, digits):
    trainer = Trainer.from_config(TrainConfig(rule="workspace", data="digits", seed=0, rule_options={"capacity": 2}), digits, progress=False)
    with pytest.raises(ValueError, match="capacity"):
        overhead.minimal_step(trainer.rule, overhead.copy_of(trainer), "hand")
