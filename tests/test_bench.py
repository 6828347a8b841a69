import json
import shutil
import sys
from pathlib import Path

import pytest

from plasticity.lab.bench.markdown import table
from plasticity.lab.bench.runner import RESULTS, SUMMARY, BenchConfig, run_bench, run_key
from plasticity.lab.bench.summary import summarize
from plasticity.results import Place, RunFailure, RunRecord, RunSettings

FIXTURES = Path(__file__).parent / "fixtures" / "results-v1"


def tiny(**changes):
    base = dict(rules=("bp", "dfa"), datasets=("digits",), seeds=2, epochs=2, hidden=(16,), batch_size=128)
    base.update(changes)
    return BenchConfig(**base)


def test_bench_writes_records_and_summary(digits, tmp_path):
    records, summary = run_bench(tiny(), tmp_path, progress=False, datasets={"digits": digits})
    lines = [json.loads(line) for line in (tmp_path / RESULTS).read_text().splitlines()]
    assert len(lines) == 4 == len(records)
    for line in lines:
        assert {"rule", "dataset", "seed", "test_accuracy", "epoch_seconds"} <= set(line)
        assert 0.0 <= line["test_accuracy"] <= 1.0
    saved = json.loads((tmp_path / SUMMARY).read_text())
    assert saved == json.loads(json.dumps([row.to_json() for row in summary]))
    by_rule = {s["rule"]: s for s in saved}
    for entry in saved:
        assert {"rule", "dataset", "n_seeds", "test_accuracy_mean", "test_accuracy_std", "accuracy_ratio_to_bp", "time_ratio_to_bp"} <= set(entry)
        assert entry["n_seeds"] == 2
    assert by_rule["bp"]["accuracy_ratio_to_bp"] == 1.0 and by_rule["bp"]["time_ratio_to_bp"] == 1.0
    dfa = [line for line in lines if line["rule"] == "dfa"]
    mean = sum(line["test_accuracy"] for line in dfa) / 2
    assert by_rule["dfa"]["test_accuracy_mean"] == pytest.approx(mean)
    assert by_rule["dfa"]["accuracy_ratio_to_bp"] == pytest.approx(mean / by_rule["bp"]["test_accuracy_mean"])
    # Every rule starts from the same initial weights for a given seed: the runs differ only in the rule.
    configs = {(line["rule"], line["seed"]): line["config"] for line in lines}
    assert {k: v for k, v in configs[("bp", 1)].items() if k not in ("rule", "rule_options")} == {
        k: v for k, v in configs[("dfa", 1)].items() if k not in ("rule", "rule_options")
    }


def test_rerun_skips_finished_runs(digits, tmp_path):
    run_bench(tiny(seeds=1), tmp_path, progress=False, datasets={"digits": digits})
    first = (tmp_path / RESULTS).read_text()
    records, _ = run_bench(tiny(seeds=2), tmp_path, progress=False, datasets={"digits": digits})
    text = (tmp_path / RESULTS).read_text()
    assert text.startswith(first) and len(text.splitlines()) == 4 and len(records) == 4


def test_a_bench_folder_of_the_unversioned_format_resumes(digits, tmp_path):
    """A bench folder written before records carried a schema version (tests/fixtures/results-v1:
    plasticity 0.1.0) is resumed: its records read as version 1 and its finished runs are skipped."""
    config = BenchConfig(rules=("bp", "fa"), datasets=("digits",), seeds=1, epochs=1, hidden=(8,), batch_size=128)
    folder = tmp_path / "bench"
    shutil.copytree(FIXTURES / "bench", folder)
    lines = [json.loads(line) for line in (folder / RESULTS).read_text().splitlines()]
    assert all("schema" not in line for line in lines)
    # A run's key hashes its rule's defaults too: keyed anew, the fixture stays the same runs when a default changes.
    for line in lines:
        line["key"] = run_key(config.train_config(line["label"], line["dataset"], line["seed"]))
    (folder / RESULTS).write_text("".join(json.dumps(line) + "\n" for line in lines))
    before = (folder / RESULTS).read_bytes()
    records, summary = run_bench(config, folder, progress=False, datasets={"digits": digits})
    assert (folder / RESULTS).read_bytes() == before  # nothing trained, nothing appended
    assert [json.dumps(r.to_json()) for r in records] == [json.dumps({"schema": 1, **line}) for line in lines]  # key order too
    saved = json.loads((folder / SUMMARY).read_text())
    assert saved == [row.to_json() for row in summary] and [(s["schema"], s["label"], s["n_seeds"]) for s in saved] == [(1, "bp", 1), (1, "fa", 1)]


def run(rule: str, seed: int, accuracy: float | None, status: str = "completed", seconds: float = 1.0, host: str | None = None) -> RunRecord:
    """A finished run's record, as summarize reads it."""
    config = RunSettings(rule=rule, data="d", hidden=[8], activation="tanh", epochs=1, batch_size=8, seed=seed)
    seconds = None if accuracy is None else seconds
    return RunRecord(rule=rule, dataset="d", seed=seed, test_accuracy=accuracy, epoch_seconds=seconds, status=status, config=config, curve=[], host=host)


def test_time_ratios_are_formed_only_between_runs_of_one_host():
    # One host for all (or none recorded): the ratio of the means, as before hosts were recorded.
    _, fa = summarize([run("bp", 0, 0.8, seconds=1.0, host="a"), run("bp", 1, 0.8, seconds=3.0, host="a"), run("fa", 0, 0.4, seconds=4.0, host="a")])
    assert fa.time_ratio_to_bp == pytest.approx(2.0) and fa.time_ratio_note is None
    # Seed 1 of fa ran on another host than bp's seed 1: only seed 0 pairs, and the note says so.
    runs = [run("bp", 0, 0.8, seconds=1.0, host="a"), run("bp", 1, 0.8, seconds=3.0, host="b")]
    runs += [run("fa", 0, 0.4, seconds=2.0, host="a"), run("fa", 1, 0.4, seconds=100.0, host="a")]
    bp, fa = summarize(runs)
    assert fa.time_ratio_to_bp == pytest.approx(2.0) and fa.time_ratio_note == "over seeds 0, those run on bp's host"
    assert bp.time_ratio_to_bp == 1.0 and bp.time_ratio_note is None
    assert fa.accuracy_ratio_to_bp == pytest.approx(0.5)  # accuracy does not depend on the machine
    # Every seed on its own host, each paired with bp's: a ratio per host pair, no note.
    _, fa = summarize(
        [run("bp", 0, 0.8, seconds=1.0, host="a"), run("bp", 1, 0.8, seconds=3.0, host="b")]
        + [run("fa", s, 0.4, seconds=2.0, host=h) for s, h in ((0, "a"), (1, "b"))]
    )
    assert fa.time_ratio_to_bp == pytest.approx(1.0) and fa.time_ratio_note is None
    # No seed shares a host with bp: no ratio, said in the table.
    _, fa = summarize([run("bp", 0, 0.8, host="a"), run("fa", 0, 0.4, host="b")])
    assert fa.time_ratio_to_bp is None and fa.time_ratio_note == "no seed ran on the same host as bp's"
    assert "— (no seed ran on the same host as bp's)" in table([_, fa])


def test_failed_runs_count_in_the_summary():
    failure = RunFailure(rule="fa", label="fa", dataset="d", seed=1, key="k", host="a", error="ValueError: x", traceback="Traceback ...")
    bp, fa = summarize([run("bp", 0, 0.8), run("bp", 1, 0.8), run("fa", 0, 0.4)], [failure])
    assert (fa.n_seeds, fa.seeds, fa.n_measured, fa.failed, bp.failed) == (2, [0, 1], 1, 1, None)
    assert "(n = 1; 1 failed)" in table([bp, fa])
    (only,) = summarize([], [failure])  # every run of a label failed: still a row, with no numbers
    assert (only.label, only.n_seeds, only.n_measured, only.test_accuracy_mean, only.failed) == ("fa", 1, 0, None, 1)
    assert RunFailure.from_json(json.loads(json.dumps(failure.to_json())), Place(Path("failures.json"))) == failure


def test_summary_spread_and_missing_baseline():
    (entry,) = summarize([run("fa", 0, 0.5), run("fa", 1, 0.7)])
    assert entry.test_accuracy_mean == pytest.approx(0.6)
    assert entry.test_accuracy_std == pytest.approx(0.1414213, rel=1e-5)  # sample std, ddof = 1
    assert entry.accuracy_ratio_to_bp is None and entry.time_ratio_to_bp is None


def test_summary_counts_diverged_runs_and_ratios_to_bp():
    bp, fa = summarize([run("bp", 0, 0.8), run("fa", 0, 0.4), run("fa", 1, None, status="diverged")])
    assert (fa.n_seeds, fa.n_measured, fa.diverged, fa.test_accuracy_std) == (2, 1, 1, 0.0)
    assert fa.accuracy_ratio_to_bp == pytest.approx(0.5) and fa.time_ratio_to_bp == 1.0 and bp.accuracy_ratio_to_bp == 1.0


def test_bad_bench_configs_fail_before_running():
    with pytest.raises(ValueError, match="unknown rule"):
        run_bench(tiny(rules=("bp", "nope")), progress=False)
    with pytest.raises(ValueError, match="no option"):
        run_bench(tiny(rule_options={"bp": {"wrong": 1}}), progress=False)
    with pytest.raises(ValueError, match="seeds"):
        run_bench(tiny(seeds=0), progress=False)


def test_rules_run_with_their_own_widths_and_batch_unless_the_bench_gives_them():
    from plasticity.lab.bench import describe

    config = BenchConfig(rules=("bp", "ff", "softhebb", "stdp"), datasets=("digits",))
    config.validate()  # spiking and MLP rules mix without --hidden: each takes its own network
    runs = {label: config.train_config(label, "digits", 0) for label in config.rules}
    assert [runs[label].hidden for label in config.rules] == [(256, 256), (256, 256), (256,), (100,)]
    assert [runs[label].batch_size for label in config.rules] == [64, 64, 64, 32]
    assert describe.network(config) == (
        "MLP 256×256 tanh (bp) / MLP 256×256 RMS-normalised tanh (ff) / MLP 256 RMS-normalised triangle (softhebb) / "
        "spiking (Diehl & Cook 2015), 100 excitatory LIF neurons (stdp)"
    )
    assert describe.batch(config) == "64 (bp, ff, softhebb) / 32 (stdp)"
    shared = BenchConfig(rules=("bp", "softhebb"), hidden=(32, 32), batch_size=16)
    assert {shared.train_config(label, "digits", 0).hidden for label in shared.rules} == {(32, 32)}
    assert describe.batch(shared) == "16"
    assert describe.network(BenchConfig(rules=("bp", "dfa"))) == "MLP 256×256 tanh"
    assert describe.network(BenchConfig(rules=("softhebb",), rule_options={"softhebb": {"activation": "net"}})) == "MLP 256 tanh"


def test_executor_settings_are_checked_before_anything_runs(monkeypatch, capsys):
    from plasticity.errors import ConfigError
    from plasticity.lab.cli import main
    from plasticity.lab.executor import MISSING_RAY, Executor

    with pytest.raises(ConfigError, match="add --executor ray"):
        Executor("local", address="10.0.0.1:6379").validate()
    with pytest.raises(ConfigError, match="--gpus-per-run"):
        Executor("ray").validate("cuda")
    with pytest.raises(ConfigError, match="cpus per run must be > 0"):
        Executor("ray", cpus_per_run=0).validate()
    assert main(["bench", "--epochs", "1", "--gpus-per-run", "1", "--quiet"]) == 2
    assert "add --executor ray" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "ray", None)  # Ray not installed: one line saying what to install
    with pytest.raises(ConfigError) as raised:
        run_bench(tiny(seeds=1, epochs=1), progress=False, executor=Executor("ray"))
    assert str(raised.value) == MISSING_RAY


def test_the_report_of_a_bench_shows_the_runs_that_failed(digits, tmp_path):
    from plasticity.lab.report.build import build_report
    from plasticity.results import FAILURES, ResultsError

    run_bench(tiny(rules=("bp",), seeds=1, epochs=1), tmp_path, progress=False, datasets={"digits": digits})
    failure = RunFailure(rule="dfa", label="dfa", dataset="digits", seed=0, key="k", host="node-2", error="ValueError: <bad>", traceback="Traceback ...")
    (tmp_path / FAILURES).write_text(json.dumps([failure.to_json()]))
    text = build_report(tmp_path, tmp_path / "report").read_text()
    assert "1 run(s) failed on Ray" in text and "dfa on digits, seed 0 (host node-2): ValueError: &lt;bad&gt;" in text
    assert "<td>dfa</td>" in text and "1 failed" in text  # its row, counted
    (tmp_path / FAILURES).write_text(json.dumps({"not": "a list"}))
    with pytest.raises(ResultsError, match="must be a list of failed runs"):
        build_report(tmp_path, tmp_path / "report")
