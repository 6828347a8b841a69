"""`--threads N`: one default for every command that runs torch work, validated, applied and recorded."""

import json

import pytest
import torch
from threadpoolctl import threadpool_info

from plasticity.lab.cli import build_parser, main
from plasticity.threads import DEFAULT_THREADS, torch_threads

COMMANDS = ("demo", "train", "bench", "card", "continual")


@pytest.mark.parametrize("command", COMMANDS)
def test_every_torch_command_takes_threads_with_the_one_default(command):
    parser = build_parser()
    assert DEFAULT_THREADS == 1 and parser.parse_args([command]).threads == DEFAULT_THREADS
    assert parser.parse_args([command, "--threads", "2"]).threads == 2


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("value", ["0", "-1", "abc"])
def test_bad_thread_counts_are_one_line_errors(command, value, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--threads", value])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.splitlines()[-1].endswith(f"error: argument --threads: expected a whole number ≥ 1; got '{value}'")


@pytest.mark.parametrize(("ambient", "flag", "recorded"), [(2, [], "1"), (1, ["--threads", "2"], "2")])
def test_train_runs_and_records_its_thread_count(tmp_path, ambient, flag, recorded):
    torch.set_num_threads(ambient)
    argv = ["train", "--rule", "bp", "--data", "digits", "--epochs", "1", "--hidden", "16", "--out", str(tmp_path), "--quiet"]
    assert main(argv + flag) == 0
    assert json.loads((tmp_path / "results.json").read_text())["versions"]["threads"] == recorded
    assert torch.get_num_threads() == ambient  # restored after the command


def test_continual_records_its_thread_count(tmp_path):
    argv = ["continual", "--data", "digits", "--tasks", "2", "--seeds", "1", "--methods", "ncm", "--out", str(tmp_path), "--quiet"]
    assert main(argv + ["--threads", "2"]) == 0
    assert json.loads((tmp_path / "results.json").read_text())["versions"]["threads"] == "2"


def test_torch_threads_limits_torch_and_blas_and_restores_even_on_error():
    torch.set_num_threads(2)
    with pytest.raises(RuntimeError, match="inside"), torch_threads(1):
        assert torch.get_num_threads() == 1
        assert all(pool["num_threads"] == 1 for pool in threadpool_info() if pool["user_api"] == "blas")
        raise RuntimeError("inside")
    assert torch.get_num_threads() == 2
    with torch_threads(None):  # None leaves the count as it is
        assert torch.get_num_threads() == 2
