"""Checkpoints, the results files of a run, divergence and resuming, as a hostile user meets them:
every damaged, tampered, foreign or old file is refused with one line naming it; a rerun resumes,
refuses or overwrites as the message says; a run whose loss runs away ends "diverged"."""

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.torch import save_file

import plasticity.train as train_module
from plasticity.build import build_run
from plasticity.checkpoint import FORMAT, CheckpointError, checksum, read_checkpoint
from plasticity.errors import ConfigError, FileCheckError
from plasticity.io import folder_lock
from plasticity.lab.cli import main
from plasticity.train import CHECKPOINT, LOSS_LIMIT, RESULTS, LossLimit, TrainConfig, Trainer, train

TINY = dict(data="digits", hidden=(16,), epochs=2, batch_size=128, seed=0)
CLI_TINY = ["--data", "digits", "--hidden", "16", "--batch-size", "128", "--quiet"]
FILE_CASES = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def config(**changes):
    return TrainConfig(**{"rule": "fa", **TINY, **changes})


@pytest.fixture(scope="module")
def finished(tmp_path_factory, digits):
    """A finished 2-epoch run folder (fa on digits); each test copies it before damaging it."""
    folder = tmp_path_factory.mktemp("finished")
    train(config(), digits, out_dir=folder, progress=False)
    return folder


@pytest.fixture
def run_dir(finished, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(finished, folder)
    return folder


def one_line(error) -> str:
    text = str(error.value)
    assert "\n" not in text and len(text) < 600, text
    return text


def rewrite(path, header_changes=None, tensor_changes=None, keep_checksum=True):
    """Rewrite the checkpoint at `path` with header fields and tensors changed; the checksum is
    kept as it was (tampering) or recomputed (forging, by someone who read this code)."""
    with safe_open(str(path), framework="pt") as handle:
        header, tensors = handle.metadata(), {key: handle.get_tensor(key) for key in handle.keys()}
    header.update(header_changes or {})
    tensors.update(tensor_changes or {})
    if not keep_checksum:
        header["checksum"] = checksum(header, tensors)
    save_file(tensors, str(path), metadata=header)


# ------------------------------------------------------------------------------ checkpoints
@FILE_CASES
@given(where=st.floats(0, 1, exclude_max=True), bit=st.integers(0, 7))
def test_any_flipped_bit_is_refused_naming_the_file(run_dir, where, bit):
    path = run_dir / CHECKPOINT
    original = path.read_bytes()
    data = bytearray(original)
    data[int(where * len(data))] ^= 1 << bit
    path.write_bytes(bytes(data))
    try:
        with pytest.raises(CheckpointError) as error:
            read_checkpoint(path)
        assert str(path) in one_line(error) and "--overwrite" in str(error.value)
    finally:
        path.write_bytes(original)


@FILE_CASES
@given(length=st.integers(0, 10_000))
def test_a_truncated_checkpoint_is_refused(run_dir, length):
    path = run_dir / CHECKPOINT
    original = path.read_bytes()
    path.write_bytes(original[: min(length, len(original) - 1)])
    try:
        with pytest.raises(CheckpointError, match="cannot read checkpoint") as error:
            read_checkpoint(path)
        assert str(path) in one_line(error)
    finally:
        path.write_bytes(original)


@pytest.mark.parametrize(
    "tamper",
    [
        {"epoch": "1"},
        {"config": json.dumps({**config().resolved().to_dict(), "rule_options": {"lr": 10.0}})},
        {"optimizer": "null"},
        {"tie": json.dumps({"run": "0" * 16, "epochs": ""})},
        {"checksum": "sha256:" + "0" * 64},
    ],
    ids=["epoch", "learning rate", "optimizer", "tie", "checksum"],
)
def test_a_tampered_header_fails_the_checksum(run_dir, tamper):
    rewrite(run_dir / CHECKPOINT, tamper)
    with pytest.raises(CheckpointError, match="fails its checksum") as error:
        read_checkpoint(run_dir / CHECKPOINT)
    assert str(run_dir / CHECKPOINT) in one_line(error)


def test_a_changed_weight_fails_the_checksum(run_dir):
    with safe_open(str(run_dir / CHECKPOINT), framework="pt") as handle:
        weight = handle.get_tensor("net.0.weight")
    weight[0, 0] = torch.nextafter(weight[0, 0], torch.tensor(math.inf))  # one ulp
    rewrite(run_dir / CHECKPOINT, tensor_changes={"net.0.weight": weight})
    with pytest.raises(CheckpointError, match="fails its checksum"):
        train(config(epochs=3), out_dir=run_dir, progress=False)


@pytest.mark.parametrize(
    "forged", [{"epoch": "-1"}, {"epoch": "two"}, {"config": "[]"}, {"config": "{"}, {"tie": "[" * 50_000 + "]" * 50_000}, {"format": "x"}]
)
def test_a_forged_header_with_a_recomputed_checksum_is_refused(run_dir, forged):
    rewrite(run_dir / CHECKPOINT, forged, keep_checksum=False)
    with pytest.raises(CheckpointError) as error:
        read_checkpoint(run_dir / CHECKPOINT)
    assert str(run_dir / CHECKPOINT) in one_line(error)


def test_a_forged_learning_rate_is_caught_by_the_settings(run_dir):
    """A forger who recomputes the checksum makes a valid checkpoint of another run: resuming
    compares its settings with the command's, and names the one that differs."""
    stored = read_checkpoint(run_dir / CHECKPOINT).config
    rewrite(run_dir / CHECKPOINT, {"config": json.dumps({**stored, "rule_options": {"lr": 10.0}})}, keep_checksum=False)
    with pytest.raises(ConfigError, match=r"rule_options.lr: 10.0 → '\(default\)'") as error:
        train(config(epochs=3), out_dir=run_dir, progress=False)
    assert "--overwrite" in one_line(error)


def test_an_old_checkpoint_without_checksum_asks_for_overwrite(run_dir, capsys):
    with safe_open(str(run_dir / CHECKPOINT), framework="pt") as handle:
        header, tensors = handle.metadata(), {key: handle.get_tensor(key) for key in handle.keys()}
    old = {"format": "plasticity-checkpoint/1", **{k: header[k] for k in ("epoch", "config", "optimizer")}}
    save_file(tensors, str(run_dir / CHECKPOINT), metadata=old)
    argv = ["train", "--rule", "fa", "--epochs", "3", *CLI_TINY, "--out", str(run_dir)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "older version (plasticity-checkpoint/1)" in err and "--overwrite" in err and len(err.splitlines()) == 1
    assert main([*argv, "--overwrite"]) == 0
    assert read_checkpoint(run_dir / CHECKPOINT).epoch == 3 and FORMAT.endswith("/2")


def test_a_folder_in_place_of_the_checkpoint_is_refused(run_dir):
    (run_dir / CHECKPOINT).unlink()
    (run_dir / CHECKPOINT).mkdir()
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        train(config(epochs=3), out_dir=run_dir, progress=False)


# ------------------------------------------------------------------------------ results.json
def test_a_foreign_results_file_is_refused(run_dir, tmp_path, digits):
    other = tmp_path / "other"
    train(config(), digits, out_dir=other, progress=False)  # the same settings: only the run differs
    shutil.copy(other / RESULTS, run_dir / RESULTS)
    with pytest.raises(FileCheckError, match="belongs to another run") as error:
        train(config(epochs=3), digits, out_dir=run_dir, progress=False)
    assert str(run_dir / RESULTS) in one_line(error)


@pytest.mark.parametrize(
    "edit",
    [
        lambda r: r["epochs"][0].update(test_accuracy=1.0),
        lambda r: r["epochs"].pop(0),
        lambda r: r["epochs"].append({**r["epochs"][-1], "epoch": 1}),
        lambda r: r.update(epochs={"1": 0}),
        lambda r: r.pop("run_id"),
    ],
    ids=["accuracy", "dropped epoch", "duplicated epoch", "epochs not a list", "no run id"],
)
def test_an_edited_results_file_is_refused(run_dir, digits, edit):
    results = json.loads((run_dir / RESULTS).read_text())
    edit(results)
    (run_dir / RESULTS).write_text(json.dumps(results))
    with pytest.raises(FileCheckError) as error:
        train(config(epochs=3), digits, out_dir=run_dir, progress=False)
    assert str(run_dir / RESULTS) in one_line(error)


@pytest.mark.parametrize("content", [None, "", "{", "[]", "[" * 100_000, "\udcff"], ids=["missing", "empty", "torn", "array", "nested", "not utf-8"])
def test_an_unreadable_results_file_is_refused(run_dir, digits, content):
    if content is None:
        (run_dir / RESULTS).unlink()
    else:
        (run_dir / RESULTS).write_bytes(content.encode("utf-8", "surrogateescape"))
    with pytest.raises(FileCheckError) as error:
        train(config(epochs=3), digits, out_dir=run_dir, progress=False)
    assert str(run_dir / RESULTS) in one_line(error)


def test_results_with_epochs_but_no_checkpoint_are_not_replaced_silently(run_dir, digits):
    (run_dir / CHECKPOINT).unlink()
    with pytest.raises(FileCheckError, match="is missing, so the run cannot be resumed"):
        train(config(epochs=3), digits, out_dir=run_dir, progress=False)


# ------------------------------------------------------------------------------ resuming as a user
def run(argv, capsys):
    """(exit status, stderr) of `plasticity ARGV`, argparse's exits included."""
    try:
        status = main(argv)
    except SystemExit as stop:
        status = stop.code
    return status, capsys.readouterr().err.strip()


def test_rerunning_train_resumes_refuses_or_overwrites_as_it_says(tmp_path, capsys):
    out = str(tmp_path / "run")
    argv = ["train", "--rule", "fa", *CLI_TINY, "--out", out]
    assert run([*argv, "--epochs", "2"], capsys) == (0, "")
    status, err = run([*argv, "--epochs", "2"], capsys)  # the same command again: the run is finished
    assert status == 2 and "holds a finished run (2 epochs)" in err and "--overwrite" in err and len(err.splitlines()) == 1
    status, err = run([*argv, "--epochs", "3"], capsys)  # more epochs: the run continues
    assert status == 0 and err == f"plasticity: resuming after epoch 2 (the run in {out})"
    results = json.loads((tmp_path / "run" / RESULTS).read_text())
    assert [e["epoch"] for e in results["epochs"]] == [1, 2, 3] and results["status"] == "completed"
    status, err = run(["train", "--rule", "bp", *CLI_TINY, "--hidden", "32", "--epochs", "3", "--out", out], capsys)
    assert status == 2 and "other settings (rule: 'fa' → 'bp'; hidden: [16] → [32]; stored → asked)" in err
    assert len(err.splitlines()) == 1 and "size mismatch" not in err
    assert run([*argv, "--epochs", "1", "--overwrite"], capsys)[0] == 0
    fresh = json.loads((tmp_path / "run" / RESULTS).read_text())
    assert [e["epoch"] for e in fresh["epochs"]] == [1] and fresh["run_id"] != results["run_id"]
    assert fresh["epochs"][0]["train_loss"] == results["epochs"][0]["train_loss"]  # the same seed, afresh


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        (["--resume"], "holds no run to resume"),
        (["--resume", "--overwrite"], "give one of them"),
    ],
)
def test_resume_needs_a_run_to_continue(tmp_path, capsys, extra, problem):
    status, err = run(["train", *CLI_TINY, "--epochs", "1", "--out", str(tmp_path / "empty"), *extra], capsys)
    assert status == 2 and problem in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("flag", ["--resume", "--overwrite"])
def test_resume_and_overwrite_need_an_out_folder(capsys, flag):
    status, err = run(["train", *CLI_TINY, "--epochs", "1", flag], capsys)
    assert status == 2 and "give --out" in err and len(err.splitlines()) == 1


def test_bad_out_folders_are_refused_before_any_work(tmp_path, capsys, monkeypatch):
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setattr(train_module, "load", lambda *a, **k: pytest.fail("data loaded before --out was checked"))
    for out in ("", str(tmp_path / "file"), str(tmp_path / "file" / "sub")):
        status, err = run(["train", *CLI_TINY, "--epochs", "1", "--out", out], capsys)
        assert status == 2 and "Traceback" not in err and ("folder" in err or "empty" in err), err
        with pytest.raises(ConfigError):
            train(config(), out_dir=out, progress=False)
    assert (tmp_path / "file").read_text() == "not a folder"


def test_a_second_train_into_a_busy_folder_fails_at_once(tmp_path, capsys):
    with folder_lock(tmp_path / "run"):
        status, err = run(["train", *CLI_TINY, "--epochs", "1", "--out", str(tmp_path / "run")], capsys)
    assert status == 2 and "in use by another plasticity command" in err
    assert not (tmp_path / "run" / RESULTS).exists()


def test_an_interruption_in_epoch_one_leaves_a_folder_that_resumes(tmp_path, digits, monkeypatch):
    straight = Trainer.from_config(config(rule="dfa"), digits, progress=False)
    straight.fit()
    original = Trainer.step

    def interrupt(self, x, y):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "step", interrupt)
    with pytest.raises(KeyboardInterrupt):
        train(config(rule="dfa"), digits, out_dir=tmp_path, progress=False)
    assert json.loads((tmp_path / RESULTS).read_text())["status"] == "running"
    assert read_checkpoint(tmp_path / CHECKPOINT).epoch == 0
    monkeypatch.setattr(Trainer, "step", original)
    resumed_after = []
    results = train(config(rule="dfa"), digits, out_dir=tmp_path, progress=False, on_resume=resumed_after.append)
    assert resumed_after == [0] and results.status == "completed"
    assert [e.train_loss for e in results.epochs] == [e.train_loss for e in straight.epochs]


def test_ctrl_c_then_the_same_command_resumes(tmp_path, capsys):
    """What the interruption message promises, with a real SIGINT: the same command resumes."""
    out = tmp_path / "run"
    argv = ["train", "--rule", "bp", *CLI_TINY, "--epochs", "20", "--out", str(out)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "plasticity.lab.cli", *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 60
    while not (out / CHECKPOINT).exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and b"rerun the same command to resume" in err, err.decode()
    done = read_checkpoint(out / CHECKPOINT).epoch
    assert done < 20, "the run finished before it could be interrupted; make it longer"
    status, err = run(argv, capsys)
    assert status == 0 and f"resuming after epoch {done}" in err
    assert [e["epoch"] for e in json.loads((out / RESULTS).read_text())["epochs"]] == list(range(1, 21))


def test_the_python_api_keeps_the_bench_semantics(tmp_path, digits):
    """`Trainer.begin(resume=True)` (the bench's per-run folders) continues any stored run, a
    finished one included, and starts afresh in an empty folder; resume=False refuses a stored run."""
    assert Trainer.from_config(config(), digits, out_dir=tmp_path, progress=False).begin(resume=True) == 0
    Trainer.from_config(config(), digits, out_dir=tmp_path, progress=False).fit(resume=True)
    again = Trainer.from_config(config(), digits, out_dir=tmp_path, progress=False)
    assert again.begin(resume=True) == 2 and again.finish().status == "completed"
    with pytest.raises(ConfigError, match="already holds a run"):
        Trainer.from_config(config(), digits, out_dir=tmp_path, progress=False).begin(resume=False)
    with pytest.raises(ConfigError, match="finished run"):
        Trainer.from_config(config(), digits, out_dir=tmp_path, progress=False).begin()


# ------------------------------------------------------------------------------ divergence
@given(st.lists(st.floats(0, 100), max_size=40), st.integers(2, 12))
def test_the_loss_limit_trips_on_a_long_enough_streak_only(losses, n_classes):
    limit = LOSS_LIMIT.multiple * math.log(n_classes)
    streak, longest = 0, 0
    for loss in losses:
        streak = streak + 1 if loss > limit else 0
        longest = max(longest, streak)
    tripped = LOSS_LIMIT.breach(losses, n_classes) is not None
    assert tripped == (bool(losses) and longest >= min(LOSS_LIMIT.patience, len(losses)))


def test_a_short_epoch_trips_only_when_every_step_is_over():
    assert LossLimit(multiple=2, patience=10).breach([100.0] * 3, 10) is not None
    assert LossLimit(multiple=2, patience=10).breach([100.0, 1.0, 100.0], 10) is None


@pytest.mark.parametrize("rule", ["bp", "fa", "dfa", "sign", "workspace", "pc", "ff", "softhebb"])
def test_a_runaway_learning_rate_ends_diverged_with_the_last_good_checkpoint(tmp_path, digits, rule):
    hidden = {"softhebb": (16,)}.get(rule, (16, 16))
    results = train(config(rule=rule, hidden=hidden, epochs=3, rule_options={"lr": 10.0}), digits, out_dir=tmp_path, progress=False)
    assert results.status == "diverged", [e.train_loss for e in results.epochs]
    message = results.message
    assert "5× chance" in message and "consecutive steps" in message and "smaller learning rate" in message
    assert f"the last good checkpoint (epoch {len(results.epochs)})" in message
    assert read_checkpoint(tmp_path / CHECKPOINT).epoch == len(results.epochs)


@pytest.mark.parametrize("rule", ["bp", "fa", "dfa", "sign", "workspace", "pc", "ff", "softhebb"])
def test_default_settings_never_trip_the_limit(digits, rule, monkeypatch):
    """Every attached rule at its defaults (its own widths and batch) on digits: the largest
    step loss of two epochs stays far below the limit."""
    seen = []
    breach = LossLimit.breach

    def watch(self, losses, n_classes):
        seen.extend(losses)
        return breach(self, losses, n_classes)

    monkeypatch.setattr(LossLimit, "breach", watch)
    results = Trainer.from_config(TrainConfig(rule=rule, data="digits", epochs=2), digits, progress=False).fit()
    assert results.status == "completed" and len(seen) > 20
    assert max(seen) < LOSS_LIMIT.multiple * math.log(10) / 3  # a margin of 3 at least


def test_resume_from_the_start_checkpoint_is_bit_identical(tmp_path, digits):
    """The epoch-0 checkpoint a fresh run writes holds no lazily drawn feedback yet; resuming
    from it draws the same feedback and gives the same weights as a run that never stopped."""
    straight = Trainer.from_config(config(rule="dfa"), digits, progress=False)
    straight.fit()
    Trainer.from_config(config(rule="dfa"), digits, out_dir=tmp_path, progress=False).begin()
    resumed = Trainer.from_config(config(rule="dfa"), digits, out_dir=tmp_path, progress=False)
    resumed.fit()
    fresh = build_run(config(rule="dfa"), digits)
    read_checkpoint(tmp_path / CHECKPOINT).restore(fresh.model, fresh.rule, fresh.optimizer)
    assert all(torch.equal(a, b) for a, b in zip(straight.net.parameters(), resumed.net.parameters(), strict=True))
    assert all(torch.equal(a, b) for a, b in zip(resumed.net.parameters(), fresh.model.parameters(), strict=True))
