"""Benches and continual runs on Ray (`--executor ray`): the same results as here, and a killed or
interrupted sweep that a rerun completes with no run lost or written twice.

Needs Ray (the `ray` extra, which the test extra includes); deselect with `-m "not ray"`.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from plasticity.lab.bench.runner import BenchConfig, run_bench
from plasticity.lab.executor import Executor
from plasticity.results import BENCH_RESULTS, FAILURES, RUN_RESULTS

ray = pytest.importorskip("ray", reason="Ray is an optional extra: pip install -e '.[ray]'")
pytestmark = pytest.mark.ray

RAY = Executor("ray", retries=0)


@pytest.fixture(scope="module")
def cluster():
    """One local Ray instance with 2 CPUs for the module (the executor joins it instead of starting its own)."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    yield
    ray.shutdown()


def grid(**changes):
    base = dict(rules=("bp", "fa"), datasets=("digits",), seeds=2, epochs=1, hidden=(32,))
    base.update(changes)
    return BenchConfig(**base)


def outcome(record):
    """What a run computed: everything in its record but the machine's and the clock's."""
    payload = record.to_json()
    payload.pop("host", None)
    payload.pop("epoch_seconds")
    for point in payload["curve"]:
        point.pop("epoch_seconds")
    return payload


def lines(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / BENCH_RESULTS).read_text().splitlines()]


def test_an_interrupted_ray_bench_keeps_its_finished_runs_and_a_rerun_finishes(tmp_path):
    """SIGINT to the driver while tasks run: finished runs stay, the rest run on the next call. (First in
    the file: its commands start Ray instances of their own, before the module's is up.)"""
    out = tmp_path / "bench"
    command = [sys.executable, "-c", "import sys; from plasticity.lab.cli import main; sys.exit(main(sys.argv[1:]))"]
    command += ["bench", "--rules", "bp,fa", "--seeds", "2", "--epochs", "4", "--hidden", "32"]
    command += ["--executor", "ray", "--out", str(out), "--quiet"]
    driver = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Interrupt only once a run has finished, however long Ray takes to start: a 120 s deadline
    # once interrupted an empty bench on a loaded machine, which tested nothing and failed.
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and driver.poll() is None:
        if (out / BENCH_RESULTS).exists() and (out / BENCH_RESULTS).read_text().count("\n") >= 1:
            break
        time.sleep(0.02)
    if not ((out / BENCH_RESULTS).exists() and lines(out)):
        driver.kill()
        pytest.fail(f"no run finished within 600 s (or the driver stopped first); it said: {driver.communicate()[1][-2000:]}")
    driver.send_signal(signal.SIGINT)
    _, err = driver.communicate(timeout=120)
    kept = lines(out)
    assert 1 <= len(kept) <= 4, err
    finished = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr
    keys = [line["key"] for line in lines(out)]
    assert len(keys) == 4 == len(set(keys)) and keys[: len(kept)] == [line["key"] for line in kept]


def test_ray_runs_equal_local_runs_bit_for_bit(cluster, tmp_path, digits):
    local, local_summary = run_bench(grid(), tmp_path / "local", progress=False, datasets={"digits": digits}, threads=1)
    remote, remote_summary = run_bench(grid(), tmp_path / "ray", progress=False, executor=RAY, threads=1)
    assert [outcome(r) for r in remote] == [outcome(r) for r in local]
    assert [r.test_accuracy_mean for r in remote_summary] == [r.test_accuracy_mean for r in local_summary]
    assert all(r.host for r in remote) and all(r.host for r in local)
    # The driver wrote every run's results.json, as a local bench does.
    assert len(list((tmp_path / "ray" / "runs").glob(f"digits/*/*/{RUN_RESULTS}"))) == 4
    # Each executor resumes the other's folder: nothing is run again.
    again, _ = run_bench(grid(), tmp_path / "local", progress=False, executor=RAY)
    assert [outcome(r) for r in again] == [outcome(r) for r in local] and len(lines(tmp_path / "local")) == 4


def _kill_first_task(stop: threading.Event, killed: list[int]) -> None:
    """SIGKILL the first Ray worker seen running a task (its process title is `ray::guarded`)."""
    while not stop.is_set() and not killed:
        for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                text = cmdline.read_bytes()
            except OSError:
                continue
            if text.startswith(b"ray::guarded"):
                os.kill(int(cmdline.parent.name), signal.SIGKILL)
                killed.append(int(cmdline.parent.name))
                return
        time.sleep(0.005)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds Ray's worker processes in /proc (Linux)")
def test_a_killed_worker_loses_one_run_and_a_rerun_completes_the_grid(cluster, tmp_path, digits):
    out, config = tmp_path / "bench", grid(epochs=3)
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_first_task, args=(stop, killed))
    killer.start()
    try:
        _, summary = run_bench(config, out, progress=False, executor=RAY, threads=1)
    finally:
        stop.set()
        killer.join()
    assert killed, "no Ray worker was seen running a task"
    failures = json.loads((out / FAILURES).read_text())
    assert len(failures) == 1 == sum(row.failed or 0 for row in summary) and len(lines(out)) == 3
    assert "WorkerCrashedError" in failures[0]["error"] or "died" in failures[0]["error"].lower()
    # The rerun runs only the lost run; the grid is complete, no record twice, and the same as here.
    records, summary = run_bench(config, out, progress=False, executor=RAY, threads=1)
    keys = [line["key"] for line in lines(out)]
    assert len(keys) == 4 == len(set(keys)) and not (out / FAILURES).exists() and not any(row.failed for row in summary)
    local, _ = run_bench(config, None, progress=False, datasets={"digits": digits}, threads=1)
    assert [outcome(r) for r in records] == [outcome(r) for r in local]


class FailsOnFA:
    """An observer that raises in fa's runs: an error of one run, at run time, inside a task."""

    name = "fails-on-fa"

    def on_step(self, net, rule, x, y, info):
        if rule.name == "fa":
            raise ValueError("an error of fa's run")

    def on_epoch_end(self, net, rule, epoch, data):
        return {}


def test_a_run_that_raises_is_reported_and_the_sweep_goes_on(cluster, tmp_path, digits):
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray's workers cannot import this test module
    config = grid(seeds=1)
    with pytest.raises(ValueError, match="an error of fa's run"):  # here, the error stops the bench
        run_bench(config, progress=False, datasets={"digits": digits}, observers=lambda: [FailsOnFA()])
    _, summary = run_bench(config, tmp_path, progress=False, executor=RAY, threads=1, observers=lambda: [FailsOnFA()])
    (failure,) = json.loads((tmp_path / FAILURES).read_text())
    assert failure["label"] == "fa" and failure["error"] == "ValueError: an error of fa's run" and failure["host"]
    assert "Traceback" in failure["traceback"] and "on_step" in failure["traceback"]
    assert [(row.label, row.n_measured, row.failed) for row in summary] == [("bp", 1, None), ("fa", 0, 1)]
    assert [line["label"] for line in lines(tmp_path)] == ["bp"]  # the failed run is not recorded: a rerun runs it


def test_continual_task_orders_on_ray_equal_local_ones(cluster):
    from plasticity.lab.continual.experiment import ContinualConfig, run_continual

    config = ContinualConfig(data="digits", tasks=5, seeds=2, methods=("structural", "ncm", "replay"))
    here = run_continual(config, progress=False)
    there = run_continual(config, progress=False, executor=RAY, threads=1)

    def computed(run):
        return {m: [replace(r, learn_seconds=0.0, learn_per_second=0.0, predict_per_second=0.0) for r in runs] for m, runs in run.results.items()}

    assert computed(there) == computed(here)


def test_a_suite_runs_on_ray_from_the_command_line(cluster, tmp_path, capsys):
    from plasticity.lab.cli import main

    suite = tmp_path / "two.yaml"
    suite.write_text("name: two\ndatasets: [digits]\nseeds: 1\nepochs: 1\nhidden: [16]\nruns:\n  - bp\n  - {rule: fa, label: fa-fast, options: {lr: 0.01}}\n")
    assert main(["bench", "--suite", str(suite), "--executor", "ray", "--retries", "0", "--out", str(tmp_path / "out"), "--quiet"]) == 0
    assert "| digits | fa-fast |" in capsys.readouterr().out
    assert [line["label"] for line in lines(tmp_path / "out")] in (["bp", "fa-fast"], ["fa-fast", "bp"])  # in the order they finished
