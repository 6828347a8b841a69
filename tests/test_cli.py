import json

import pytest

from plasticity.lab.cli import main


def test_train_writes_results(tmp_path, capsys):
    code = main(["train", "--rule", "dfa", "--data", "digits", "--epochs", "2", "--hidden", "16", "--out", str(tmp_path), "--quiet", "--set", "lr=0.003"])
    assert code == 0
    out = capsys.readouterr().out
    assert "dfa on digits: test accuracy" in out
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["config"]["rule_options"] == {"lr": 0.003} and len(saved["epochs"]) == 2


def test_train_with_observers_logs_pi_and_omega(tmp_path):
    assert main(["train", "--epochs", "1", "--hidden", "16", "--observe", "pi,omega", "--out", str(tmp_path), "--quiet"]) == 0
    entry = json.loads((tmp_path / "results.json").read_text())["epochs"][0]
    assert {"pi", "epsilon", "tau", "surprise"} <= set(entry["pi"])
    assert entry["omega"]["estimator"] == "gaussian-o-information"


def test_bench_writes_its_runs_and_prints_the_table(tmp_path, capsys):
    argv = [
        "bench",
        "--rules",
        "bp,fa",
        "--data",
        "digits",
        "--seeds",
        "1",
        "--epochs",
        "1",
        "--hidden",
        "16",
        "--out",
        str(tmp_path / "runs"),
        "--quiet",
        "--set",
        "fa.lr=0.002",
        "--observe",
        "alignment",
    ]
    assert main(argv) == 0
    assert "| digits | fa |" in capsys.readouterr().out
    summary = json.loads((tmp_path / "runs" / "summary.json").read_text())
    assert [s["rule"] for s in summary] == ["bp", "fa"]
    record = json.loads((tmp_path / "runs" / "results.jsonl").read_text().splitlines()[1])
    assert record["config"]["rule_options"] == {"lr": 0.002} and "update_angle" in record["curve"][0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]  # nothing but --out


def test_card_and_data_commands(capsys):
    assert main(["card", "--rule", "dfa", "--verify"]) == 0
    out = capsys.readouterr().out
    assert "| weight transport | random |" in out and "card holds" in out
    assert main(["card", "--rule", "bp,fa", "--json", "--options"]) == 0
    cards = json.loads(capsys.readouterr().out)
    assert [c["card"]["rule"] for c in cards] == ["bp", "fa"] and cards[1]["options"]["feedback_scale"] == 1.0
    assert main(["data", "list"]) == 0
    assert "mnist1d" in capsys.readouterr().out


def test_card_stores_its_cards_as_a_list(tmp_path, capsys):
    out = tmp_path / "cards" / "cards.json"
    assert main(["card", "--rule", "bp", "--out", str(out)]) == 0
    (entry,) = json.loads(out.read_text())
    assert entry["card"]["rule"] == "bp" and "measured" not in entry and f"cards: {out}" in capsys.readouterr().out


def test_errors_are_clear(capsys, tmp_path):
    with pytest.raises(SystemExit):
        main(["train", "--rule", "nope"])
    assert main(["train", "--set", "colour=blue", "--quiet"]) == 2
    assert "no option" in capsys.readouterr().err
    assert main(["train", "--data", "mnist", "--root", str(tmp_path), "--quiet"]) == 2
    assert "train-images-idx3-ubyte.gz" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--hidden", "12,x"])


def test_conv_models_from_the_command_line(tmp_path, capsys):
    argv = ["train", "--rule", "sign", "--model", "cnn1d", "--data", "digits", "--epochs", "1", "--out", str(tmp_path), "--quiet"]
    assert main(argv) == 0
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["config"]["model"] == "cnn1d" and saved["config"]["batch_size"] == 100  # the model's reference batch
    assert saved["network"]["class"] == "Sequential" and saved["rule"]["converted"] == ["1", "3", "5", "8"]
    from plasticity.build import TrainConfig

    python_api = TrainConfig(rule="sign", model="cnn1d", data="digits", epochs=1).resolved().to_dict()
    assert saved["config"] == {**python_api, "root": None}  # the CLI and the Python API make the same run
    assert main(["train", "--rule", "stdp", "--model", "cnn1d", "--quiet"]) == 2
    assert "trains a spiking network" in capsys.readouterr().err
    assert main(["bench", "--rules", "bp,rstdp", "--model", "lenet5", "--quiet"]) == 2
    assert "trains a spiking network" in capsys.readouterr().err
    assert main(["train", "--rule", "fa", "--model", "lenet5", "--data", "digits", "--quiet"]) == 2
    assert "28×28" in capsys.readouterr().err


def test_devices_are_checked_before_training(capsys):
    assert main(["train", "--device", "toaster", "--quiet"]) == 2
    assert "not a torch device" in capsys.readouterr().err
    assert main(["train", "--rule", "stdp", "--device", "cuda", "--quiet"]) == 2
    assert "CPU only" in capsys.readouterr().err
    if not __import__("torch").cuda.is_available():
        assert main(["train", "--device", "cuda", "--quiet"]) == 2
        assert "no CUDA GPU" in capsys.readouterr().err


def test_a_conv_bench_is_reported_with_its_model(tmp_path):
    runs = tmp_path / "runs"
    argv = ["bench", "--rules", "bp,sign", "--model", "cnn1d", "--data", "digits", "--seeds", "1", "--epochs", "1", "--out", str(runs), "--quiet"]
    assert main(argv) == 0
    assert main(["report", str(runs), "--out", str(tmp_path / "report")]) == 0
    page = (tmp_path / "report" / "index.html").read_text()
    assert "model cnn1d" in page and "MLP with hidden layers" not in page


def test_cards_are_verified_on_a_conv_model_from_the_command_line(capsys):
    assert main(["card", "--model", "cnn1d", "--verify"]) == 0
    out = capsys.readouterr().out
    assert out.count("card holds") == 8 and "| pc | |" in out and "| stdp | |" not in out
    assert main(["card", "--model", "cnn1d", "--rule", "stdp"]) == 2
    assert "cannot attach" in capsys.readouterr().err


def test_card_verdict_says_what_it_means(capsys):
    """Backprop's card holds (it declares exact weight transport and non-local updates, and the
    perturbations confirm both): the verdict says so, and that it is not a plausibility grade."""
    assert main(["card", "--rule", "bp", "--verify"]) == 0
    verdict = next(line for line in capsys.readouterr().out.splitlines() if "verdict:" in line)
    assert "card holds" in verdict and "weight transport exact, not layer-local" in verdict and "not that the rule is plausible" in verdict


def test_card_is_the_card_a_default_run_records(tmp_path, capsys):
    """`plasticity card` shows the card of the network a default run trains, so pc's depth-dependent
    T = L−1 agrees with the card in that run's results.json (and so with the report)."""
    assert main(["card", "--rule", "pc", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["card"]
    assert main(["train", "--rule", "pc", "--data", "digits", "--epochs", "1", "--out", str(tmp_path), "--quiet", "--threads", "1"]) == 0
    recorded = json.loads((tmp_path / "results.json").read_text())["card"]
    assert shown == recorded and shown["inference_iterations"] == 2
