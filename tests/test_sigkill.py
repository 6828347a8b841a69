"""SIGKILL at any moment loses nothing: a `plasticity train` or `plasticity bench` killed with
`kill -9` mid-run, then rerun with the same command, ends with exactly the results of a run that
was never interrupted (same losses, accuracies and weights, bit for bit)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from safetensors.numpy import load_file

TRAIN = ["train", "--rule", "dfa", "--data", "digits", "--epochs", "30", "--hidden", "16", "--seed", "3", "--quiet"]
BENCH = ["bench", "--rules", "bp,fa", "--data", "digits", "--seeds", "2", "--epochs", "12", "--hidden", "16", "--quiet"]


def plasticity(*argv: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from plasticity.lab.cli import main; sys.exit(main(sys.argv[1:]))", *argv]


def kill_when(argv: list[str], ready) -> None:
    """Start `plasticity ARGV`, SIGKILL it as soon as `ready()` holds (it must not have finished)."""
    process = subprocess.Popen(plasticity(*argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not ready() and time.monotonic() < deadline:
        assert process.poll() is None, "the run ended before it could be killed; give it more epochs"
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


def epochs_in(path: Path) -> int:
    try:
        return len(json.loads(path.read_text())["epochs"])
    except (OSError, ValueError, KeyError):
        return 0


def learned(results: dict) -> list[tuple]:
    return [(e["epoch"], e["train_loss"], e["test_loss"], e["test_accuracy"]) for e in results["epochs"]]


def test_a_killed_train_run_resumes_bit_identically(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    subprocess.run(plasticity(*TRAIN, "--out", str(whole)), check=True, capture_output=True, timeout=300)
    kill_when([*TRAIN, "--out", str(killed)], lambda: epochs_in(killed / "results.json") >= 3)
    assert 3 <= epochs_in(killed / "results.json") < 30
    subprocess.run(plasticity(*TRAIN, "--out", str(killed)), check=True, capture_output=True, timeout=300)
    a, b = (json.loads((folder / "results.json").read_text()) for folder in (whole, killed))
    assert b["status"] == "completed" and learned(a) == learned(b)
    weights = [load_file(str(folder / "checkpoint.safetensors")) for folder in (whole, killed)]
    assert weights[0].keys() == weights[1].keys()
    assert all((weights[0][key] == weights[1][key]).all() for key in weights[0])


def test_a_killed_bench_loses_no_run_and_duplicates_none(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    subprocess.run(plasticity(*BENCH, "--out", str(whole)), check=True, capture_output=True, timeout=300)
    kill_when([*BENCH, "--out", str(killed)], lambda: (killed / "results.jsonl").exists())
    assert len((killed / "results.jsonl").read_text().splitlines()) < 4  # killed with runs to go
    subprocess.run(plasticity(*BENCH, "--out", str(killed)), check=True, capture_output=True, timeout=300)
    a, b = ([json.loads(line) for line in (folder / "results.jsonl").read_text().splitlines()] for folder in (whole, killed))
    assert len(b) == 4 and len({r["key"] for r in b}) == 4  # every run once
    by_key = {r["key"]: r for r in a}
    for record in b:
        assert [(p["train_loss"], p["test_accuracy"]) for p in record["curve"]] == [
            (p["train_loss"], p["test_accuracy"]) for p in by_key[record["key"]]["curve"]
        ]
