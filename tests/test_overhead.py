"""The overhead benchmark's minimal loops compute the same algorithm as the rules they time."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from plasticity.build import TrainConfig
from plasticity.train import Trainer

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture(scope="module")
def overhead():
    sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location("overhead", BENCHMARKS / "overhead.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    sys.path.remove(str(BENCHMARKS))


@pytest.mark.parametrize("rule", ["bp", "fa", "dfa", "sign", "pc"])
def test_every_minimal_loop_gives_the_rules_update(overhead, rule, digits):
    trainer = Trainer.from_config(TrainConfig(rule=rule, data="digits", seed=0), digits, progress=False)
    x, y = digits.train.x[:32], digits.train.y[:32]
    trainer.rule.directions(trainer.model, x, y)
    for kind in overhead.MINIMAL[rule]:
        assert overhead.difference(trainer, kind, x, y) < overhead.TOLERANCE, (rule, kind)


def test_the_command_writes_its_table_only_where_it_is_told(overhead, tmp_path, capsys):
    doc, out = tmp_path / "bench.md", tmp_path / "overhead.json"
    assert overhead.main(["--rules", "bp,fa", "--data", "digits", "--repeats", "1", "--doc", str(doc), "--out", str(out)]) == 0
    text = doc.read_text(encoding="utf-8")
    assert "<!-- bench:overhead -->" in text and "| fa |" in text and out.exists()
    assert "| bp |" in capsys.readouterr().out
