"""`plasticity demo`: every registered rule, the memory hook, the report and the timing record."""

import json

import pytest
import torch
from test_report import CONTINUAL, check_page

import plasticity.lab.demo as demo
from plasticity.lab.cli import main
from plasticity.lab.demo import DemoConfig, run_demo
from plasticity.rules import names as rule_names


def tiny(**settings) -> DemoConfig:
    return DemoConfig(datasets=("digits",), epochs={"digits": 1}, seeds=1, hidden=(16,), batch_size=128, rules=("bp", "dfa"), **settings)


def test_default_demo_runs_every_registered_rule_with_observers():
    config = DemoConfig().bench_config()
    assert list(config.rules) == rule_names("mlp") and "stdp" not in config.rules
    assert list(config.datasets) == ["digits", "mnist1d"] and config.seeds == 3
    assert set(DemoConfig().observers) == {"pi", "omega", "alignment"}
    config.validate()


def skipped_memory(out_dir, progress=True):
    """Stands in for the memory's continual run where a test needs only the bench part of the demo."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "summary.json").write_text(json.dumps(CONTINUAL))
    return out_dir / "summary.json"


def test_demo_writes_report_and_runs_the_memory(tmp_path, monkeypatch):
    calls = []

    def continual_demo(out_dir, progress=True):
        calls.append(out_dir)
        out_dir.mkdir(parents=True)
        (out_dir / "summary.json").write_text(json.dumps(CONTINUAL))
        return out_dir / "summary.json"

    monkeypatch.setattr(demo, "continual_demo", continual_demo)
    threads = torch.get_num_threads()
    result = run_demo(tiny(), tmp_path, progress=False, say=lambda _: None)
    assert calls == [tmp_path / "continual"] and result.continual == tmp_path / "continual" / "summary.json"
    assert result.report == tmp_path / "report" / "index.html" and result.fresh and result.seconds > 0
    check_page(result.report)
    text = result.report.read_text(encoding="utf-8")
    assert "Rules side by side" in text and "Continual learning" in text
    assert [s.rule for s in result.summary] == ["bp", "dfa"]
    record = json.loads((tmp_path / "demo.json").read_text())
    assert record["rules"] == ["bp", "dfa"] and record["fresh"] is True
    run = json.loads(next(tmp_path.glob("runs/digits/dfa/*/results.json")).read_text())
    assert run["versions"]["threads"] == "1" and torch.get_num_threads() == threads  # one thread inside, restored after


def test_demo_command_records_its_timing_and_resumes(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(demo, "DemoConfig", tiny)
    monkeypatch.setattr(demo, "continual_demo", skipped_memory)
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "| digits | dfa |" in printed and "report:" in printed
    record = json.loads((out / "demo.json").read_text())
    assert record["fresh"] is True and record["wall_seconds"] > 0 and record["cpus"] >= 1 and record["settings"]["seeds"] == 1

    lines = (out / "results.jsonl").read_text()
    assert main(["demo", "--out", str(out), "--quiet"]) == 0
    assert "(resumed: earlier runs were reused)" in capsys.readouterr().out
    assert (out / "results.jsonl").read_text() == lines and len(lines.splitlines()) == 2
    assert json.loads((out / "demo.json").read_text())["fresh"] is False  # a resumed demo's time is no demo's cost


@pytest.mark.parametrize("seconds, verdict", [(100.0, "within"), (200.0, "OVER")])
def test_timing_section_states_the_budget(seconds, verdict):
    record = {"wall_seconds": seconds, "cpus": 2, "load_average": [0.5, 1.25], "versions": {"platform": "Linux", "torch": "2.13.0"}}
    text = demo.timing_section(tiny(), record, [])
    assert f"Wall time: **{seconds:.1f} s** ({verdict} the 180 s budget)" in text
    assert "Machine: Linux, 2 CPUs, torch 2.13.0; 1-minute load average 0.50 at the start and 1.25 at the end" in text
    assert "Settings: rules bp, dfa on digits (1 epochs)" in text
