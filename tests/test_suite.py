"""Benchmark suites from YAML, and benches that survive an interruption (SIGINT) and resume."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from plasticity.io import read_jsonl
from plasticity.lab.bench.runner import RESULTS, SUMMARY
from plasticity.lab.bench.suite import SuiteError, load_suite
from plasticity.lab.cli import main

SUITE = """
name: fa-variants
datasets: digits
seeds: 1
epochs: {digits: 1}
hidden: [8]
batch_size: 128
observe: [alignment]
runs:
  - bp
  - {rule: fa, label: fa-lr3e-3, options: {lr: 0.003}}
  - rule: fa
    label: fa-sgd
    options: {optimizer: sgd, lr: 0.01}
"""


def test_suite_runs_labels_and_rerun_skips(tmp_path, capsys):
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE)
    out = tmp_path / "out"
    argv = ["bench", "--suite", str(suite), "--out", str(out), "--quiet"]
    assert main(argv) == 0
    lines = (out / RESULTS).read_text()
    records = read_jsonl(out / RESULTS)
    assert [(r["rule"], r["label"]) for r in records] == [("bp", "bp"), ("fa", "fa-lr3e-3"), ("fa", "fa-sgd")]
    assert records[2]["config"]["rule_options"] == {"optimizer": "sgd", "lr": 0.01} and "update_angle" in records[1]["curve"][0]
    summary = json.loads((out / SUMMARY).read_text())
    assert [s["label"] for s in summary] == ["bp", "fa-lr3e-3", "fa-sgd"] and summary[1]["accuracy_ratio_to_bp"] is not None
    assert "| digits | fa-sgd |" in capsys.readouterr().out
    assert (out / "runs" / "digits" / "fa-sgd").is_dir()

    assert main(argv) == 0  # everything is done: nothing reruns, nothing is appended
    assert (out / RESULTS).read_text() == lines


@pytest.mark.parametrize(
    "text, problem",
    [
        ("datasets: digits\nruns: [bp]\ncolour: blue\n", r"unknown key\(s\) \['colour'\]"),
        ("datasets: digits\n", "missing `runs`"),
        ("datasets: digits\nruns: [bp, nope]\n", "unknown rule 'nope'"),
        ("datasets: [digits, nowhere]\nruns: [bp]\n", r"unknown dataset\(s\) \['nowhere'\]"),
        ("datasets: digits\nruns: [bp, bp]\n", "may appear once"),
        ("datasets: digits\nruns: [{rule: fa, options: {colour: 1}}]\n", "no option"),
        ("datasets: digits\nruns: [{rule: bp, label: fa}]\n", "registered rule's name"),
        (
            "datasets: digits\nruns: [{rule: fa, label: a, options: {lr: 0.1}}, {rule: fa, label: b, options: {lr: 0.1}}]\n",
            "identical settings",
        ),
        ("datasets: digits\nruns: [{rule: fa, label: 'a/b', options: {lr: 0.1}}]\n", "names a folder"),
        ("datasets: digits\nseeds: 0\nruns: [bp]\n", "`seeds` must be a whole number"),
        ("datasets: digits\nfirst_seed: -1\nruns: [bp]\n", "`first_seed` must be a whole number ≥ 0"),
        ("datasets: digits\nfirst_seed: two\nruns: [bp]\n", "`first_seed` must be a whole number ≥ 0"),
        ("datasets: digits\nepochs: {mnist1d: 3}\nruns: [bp]\n", "datasets not in the bench"),
        ("datasets: digits\nactivation: gelu\nruns: [bp]\n", "`activation` must be one of"),
        ("datasets: digits\nobserve: [telepathy]\nruns: [bp]\n", "unknown observer"),
        ("datasets: digits\nruns: [{rule: fa, lr: 0.1}]\n", r"runs\[0\]` has unknown key\(s\) \['lr'\]"),
        ("datasets: [digits\n", "not valid YAML"),
        ("- just\n- a list\n", "must be a mapping"),
        ("name: ../elsewhere\ndatasets: digits\nruns: [bp]\n", "names the results folder"),
    ],
)
def test_bad_suites_name_the_file_and_the_problem(tmp_path, text, problem):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SuiteError, match=problem) as error:
        load_suite(path)
    assert str(path) in str(error.value)


def test_a_first_seed_moves_the_grid_off_seeds_zero_onward(tmp_path, capsys):
    """Seeds first_seed..first_seed+seeds−1, in a suite and on the command line: the same runs, each
    seeded as a plain run of that seed, and the setup line says which seeds."""
    suite = tmp_path / "later.yaml"
    suite.write_text("datasets: digits\nseeds: 2\nfirst_seed: 7\nepochs: 1\nhidden: [8]\nruns: [bp]\n")
    out = tmp_path / "suite"
    assert main(["bench", "--suite", str(suite), "--out", str(out), "--quiet"]) == 0
    records = read_jsonl(out / RESULTS)

    def learned(runs: list[dict]) -> list[tuple[float, float]]:
        return [(r["curve"][-1]["train_loss"], r["curve"][-1]["test_accuracy"]) for r in runs]

    assert [r["seed"] for r in records] == [7, 8] and json.loads((out / SUMMARY).read_text())[0]["seeds"] == [7, 8]
    flags = tmp_path / "flags"
    grid = ["bench", "--rules", "bp", "--data", "digits", "--epochs", "1", "--hidden", "8", "--quiet"]
    assert main([*grid, "--seeds", "2", "--first-seed", "7", "--out", str(flags)]) == 0
    assert learned(read_jsonl(flags / RESULTS)) == learned(records)  # the same runs
    alone = tmp_path / "alone"
    assert main([*grid, "--seeds", "9", "--out", str(alone)]) == 0
    assert learned(read_jsonl(alone / RESULTS))[7:] == learned(records)  # seeds 7 and 8 of 0..8
    from plasticity.lab.bench.describe import setup

    assert setup(load_suite(suite).bench_config())["seeds"] == "7–8"
    assert main(["bench", "--rules", "bp", "--first-seed", "-1"]) == 2
    assert "first seed must be a whole number ≥ 0" in capsys.readouterr().err


def test_suite_cli_errors(tmp_path, capsys):
    assert main(["bench", "--suite", str(tmp_path / "none.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE)
    assert main(["bench", "--suite", str(suite), "--rule", "fa", "--seeds=2"]) == 2
    assert "drop --rules, --seeds" in capsys.readouterr().err


def test_sigint_mid_bench_keeps_results_and_rerun_finishes(tmp_path):
    out = tmp_path / "out"
    argv = ["bench", "--rules", "bp,fa", "--data", "digits", "--seeds", "4", "--epochs", "3", "--hidden", "16"]
    argv += ["--batch-size", "128", "--out", str(out), "--quiet"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}  # light on a shared machine
    process = subprocess.Popen([sys.executable, "-m", "plasticity.lab.cli", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 120
    while not read_jsonl(out / RESULTS) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process.poll() is None, "the bench finished before it could be interrupted; make it longer"
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130, err.decode()
    assert b"rerun the same command" in err
    before = (out / RESULTS).read_text()
    assert 1 <= len(read_jsonl(out / RESULTS)) < 8 and before.endswith("\n")  # whole lines only

    assert main(argv) == 0  # the same command again (in this process: it saves a second torch start-up)
    assert (out / RESULTS).read_text().startswith(before)  # earlier results untouched
    records = read_jsonl(out / RESULTS)
    assert sorted((r["rule"], r["seed"]) for r in records) == sorted((rule, seed) for rule in ("bp", "fa") for seed in range(4))
    assert len({r["key"] for r in records}) == 8
    assert all(r["status"] == "completed" and r["epochs"] == 3 for r in records)
    assert not list(Path(out).rglob("*.tmp"))  # no half-written files left behind
