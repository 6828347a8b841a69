"""The overhead benchmark's minimal loops compute the same algorithm as the rules they time."""

from __future__ import annotations

import json

import pytest
from helpers import script

from plasticity.build import TrainConfig
from plasticity.train import Trainer


@pytest.fixture(scope="module")
def overhead():
    with script("benchmarks/overhead.py") as module:
        yield module


@pytest.mark.parametrize("rule", ["bp", "fa", "dfa", "sign", "pc"])
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
