"""The instruction-count benchmark: its counted process runs the loops it names, its errors are one
line, and it writes only where it is told (valgrind itself runs in the benchmark, never here)."""

from __future__ import annotations

import json

import pytest
from helpers import script


@pytest.fixture(scope="module")
def instructions():
    with script("benchmarks/instructions.py") as module:
        yield module


def test_the_counted_process_runs_each_loop(instructions, monkeypatch):
    calls = []
    original = instructions.overhead.Contender

    class Counting(original):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.trainer.step = counted("project", self.trainer.step)
            for kind, loop in self.loops.items():
                loop.step = counted(kind, loop.step)

    def counted(name, step):
        return lambda x, y: calls.append(name) or step(x, y)

    monkeypatch.setattr(instructions.overhead, "Contender", Counting)
    monkeypatch.setattr(instructions, "WARM_UP", 1)
    instructions.steps("fa", "hand", 3)
    assert calls == ["project", "hand", "autograd", "hand", "hand", "hand"]


def test_bad_requests_are_one_line_and_nothing_is_written(instructions, tmp_path, monkeypatch, capsys):
    for argv, message in ((["--rules", "telepathy"], "unknown rule(s) ['telepathy']"), (["--steps", "0"], "must be ≥ 1")):
        with pytest.raises(SystemExit):
            instructions.main(argv)
        assert message in capsys.readouterr().err
    monkeypatch.setattr(instructions.shutil, "which", lambda name: None)
    with pytest.raises(SystemExit):
        instructions.main(["--out", str(tmp_path / "i.json")])
    assert "valgrind is not installed" in capsys.readouterr().err and not list(tmp_path.iterdir())


def test_the_table_is_rendered_from_the_stored_counts(instructions, tmp_path, monkeypatch):
    totals = {("fa", "project", 0): 1000, ("fa", "project", 10): 1200, ("fa", "hand", 10): 1100, ("fa", "autograd", 10): 1150}
    monkeypatch.setattr(instructions.shutil, "which", lambda name: "/usr/bin/valgrind")
    monkeypatch.setattr(instructions, "count", lambda rule, loop, n: totals[(rule, loop, n)])
    out = tmp_path / "i.json"
    assert instructions.main(["--rules", "fa", "--steps", "10", "--out", str(out)]) == 0
    stored = json.loads(out.read_text(encoding="utf-8"))
    assert stored["rows"][0]["per_step"] == {"project": 20.0, "hand": 10.0, "autograd": 15.0}
    text = instructions.markdown(stored)
    assert "| fa | 0.000 | 0.000 | 0.000 | 2.000 | 1.333 | — |" in text


def test_a_rule_without_a_minimal_loop_is_counted_against_bp(instructions, tmp_path, monkeypatch):
    totals = {("bp", "project", 0): 1000, ("bp", "project", 10): 1100, ("bp", "hand", 10): 1105}
    totals |= {("softhebb", "project", 0): 2000, ("softhebb", "project", 10): 2140}
    assert "softhebb" not in instructions.overhead.MINIMAL
    monkeypatch.setattr(instructions.shutil, "which", lambda name: "/usr/bin/valgrind")
    monkeypatch.setattr(instructions, "count", lambda rule, loop, n: totals[(rule, loop, n)])
    out = tmp_path / "i.json"
    assert instructions.main(["--rules", "bp,softhebb", "--steps", "10", "--out", str(out)]) == 0
    rows = json.loads(out.read_text(encoding="utf-8"))["rows"]
    assert rows[1]["per_step"] == {"project": 14.0}
    text = instructions.markdown({"rows": rows, "steps": 10, "warm_up": 10})
    assert "| softhebb | 0.000 | — | — | — | — | 1.400 |" in text and "| bp | 0.000 | 0.000 | — | 0.952 | — | 1.000 |" in text
