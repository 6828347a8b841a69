"""A user's own files in `plasticity continual --data FILE`: texts (CSV, JSON lines) and embeddings
(.npy with labels), and a clear one-line error for every malformed file."""

import json

import numpy as np
import pytest
import torch

from plasticity.data import DataError
from plasticity.data.user import UserFiles, load_files
from plasticity.lab import cli
from plasticity.lab.continual import embedding


def blobs(n_classes=4, per_class=12, dim=8, seed=0):
    """Well separated clusters: (x float32 (n, dim), labels as strings)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, dim)) * 4
    y = np.repeat(np.arange(n_classes), per_class)
    return (centres[y] + rng.normal(size=(len(y), dim))).astype(np.float32), [f"c{v}" for v in y]


def write_csv(path, rows, header="text,label"):
    path.write_text(header + "\n" + "".join(f'"{text}",{label}\n' for text, label in rows), encoding="utf-8")
    return str(path)


TEXT_ROWS = [(f"{word} number {i}", word) for word in ("alpha", "beta", "gamma") for i in range(8)]


def test_embeddings_with_labels_load_and_hold_out_a_stratified_test(tmp_path):
    x, labels = blobs()
    np.save(tmp_path / "x.npy", x)
    (tmp_path / "y.txt").write_text("\n".join(labels))
    data = load_files(UserFiles(train=str(tmp_path / "x.npy"), labels=str(tmp_path / "y.txt"), test_fraction=0.25))
    assert data.name == "x" and data.classes == ("c0", "c1", "c2", "c3") and data.input_shape == (8,)
    assert len(data.train) + len(data.test) == 48 and torch.bincount(data.test.y).tolist() == [3, 3, 3, 3]
    # Whole-number labels sort as numbers: 2 before 10.
    np.save(tmp_path / "n.npy", np.array([10, 2, 10, 2, 10, 2, 10, 2, 10, 2]))
    np.save(tmp_path / "x10.npy", x[:10])
    assert load_files(UserFiles(train=str(tmp_path / "x10.npy"), labels=str(tmp_path / "n.npy"), test_fraction=0.4)).classes == ("2", "10")


def test_texts_from_csv_and_json_lines_with_named_columns(tmp_path):
    train = write_csv(tmp_path / "train.csv", TEXT_ROWS)
    rows = [{"utterance": text, "intent": label, "other": 1} for text, label in TEXT_ROWS[::4]]
    (tmp_path / "test.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    (tmp_path / "oos.jsonl").write_text(json.dumps({"utterance": "what is the weather"}) + "\n")
    write_csv(tmp_path / "train2.csv", [(t, label) for t, label in TEXT_ROWS], header="utterance,intent")
    files = UserFiles(
        train=str(tmp_path / "train2.csv"), test=str(tmp_path / "test.jsonl"), oos=str(tmp_path / "oos.jsonl"), text_column="utterance", label_column="intent"
    )
    data = load_files(files)
    assert data.classes == ("alpha", "beta", "gamma") and data.train.x[0] == "alpha number 0" and len(data.test) == 6
    assert data.extra["oos_test"].x == ["what is the weather"] and data.extra["oos_test"].y.tolist() == [-1]
    assert load_files(UserFiles(train=train)).input_shape == ()


class Hashing:
    """A stand-in sentence encoder (the text extra is optional): deterministic vectors from a text's words."""

    identity = "test-hashing"

    def __init__(self, progress=True):
        pass

    def encode(self, texts):
        out = np.zeros((len(texts), 16), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in text.split():
                out[row, sum(map(ord, word)) % 16] += 1.0
        return out


def test_the_continual_command_runs_on_a_csv_of_texts_and_on_embeddings(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(embedding, "SentenceEncoder", Hashing)
    train = write_csv(tmp_path / "train.csv", TEXT_ROWS)
    out = tmp_path / "out"
    code = cli.main(
        [
            "continual",
            "--data",
            train,
            "--tasks",
            "3",
            "--seeds",
            "2",
            "--methods",
            "structural,ncm",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--out",
            str(out),
            "--quiet",
        ]
    )
    assert code == 0, capsys.readouterr().err
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["data"] == "train" and results["config"]["files"]["train"] == train and results["encoder"] == "test-hashing"
    assert any((tmp_path / "cache").rglob("*")), "the embeddings are cached where --cache-dir says"
    # A file has no stored settings: every method's are chosen on held-out training data first.
    assert results["selection"]["held_out"] == "stratified 20% of train" and results["config"]["select"] is False
    assert "| structural |" in capsys.readouterr().out
    x, labels = blobs(n_classes=6)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.array([int(label[1:]) for label in labels]))
    np.save(tmp_path / "oos.npy", np.full((5, 8), 50.0, dtype=np.float32))
    command = ["continual", "--data", str(tmp_path / "x.npy"), "--labels", str(tmp_path / "y.npy"), "--oos", str(tmp_path / "oos.npy")]
    assert cli.main([*command, "--tasks", "3", "--seeds", "1", "--methods", "structural", "--quiet"]) == 0
    table = capsys.readouterr().out
    assert "| 1.0000 ± 0.0000 | 100.00% / 100.00% |" in table  # OOS queries far from every blob: all rejected


@pytest.mark.parametrize(
    "files, message",
    [
        ({"train.csv": "text,label\n"}, "holds no samples"),
        ({"train.csv": ""}, "no header row"),
        ({"train.csv": "words,label\nhello,a\n"}, "line 2: no 'text' field"),
        ({"train.csv": 'text,label\n"",a\n'}, "line 2, 'text': the text must be a non-empty string"),
        ({"train.csv": "text,label\nhello,a,extra\n"}, "line 2: more fields than the header names"),
        ({"train.csv": b"text,label\n\xff\xfe,a\n"}, "not UTF-8"),
        ({"train.jsonl": '{"text": "a", "label": "x"}\nnot json\n'}, "line 2: not JSON"),
        ({"train.jsonl": "[1, 2]\n"}, "line 1: a JSON object is needed"),
        ({"train.jsonl": '{"text": 5, "label": "x"}\n'}, "the text must be a non-empty string; got 5"),
        ({"train.jsonl": '{"text": "a", "label": true}\n'}, "the label must be a non-empty string or a whole number"),
        ({"train.jsonl": '{"text": "a", "label": "x"}\n{"text": "b", "label": "x"}\n'}, "at least 2 classes"),
        ({"train.txt": "hello"}, "has no known suffix"),
    ],
)
def test_malformed_text_files_are_refused_in_one_line(tmp_path, files, message):
    for name, content in files.items():
        (tmp_path / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(DataError, match=message) as raised:
        load_files(UserFiles(train=str(tmp_path / next(iter(files)))))
    assert "\n" not in str(raised.value)


def test_malformed_embeddings_and_labels_are_refused_in_one_line(tmp_path):
    x, labels = blobs()
    np.save(tmp_path / "x.npy", x)
    (tmp_path / "y.txt").write_text("\n".join(labels))

    def refused(message, **files):
        paths = {key: str(tmp_path / value) for key, value in files.items()}
        with pytest.raises(DataError, match=message) as raised:
            load_files(UserFiles(**paths))
        assert "\n" not in str(raised.value)

    refused("give its labels file too", train="x.npy")
    refused("does not exist", train="missing.npy", labels="y.txt")
    (tmp_path / "t.csv").write_text("text,label\nhello,c0\n")
    refused("mix texts", train="x.npy", labels="y.txt", test="t.csv")
    np.save(tmp_path / "flat.npy", x[0])
    refused("must be a 2-D array", train="flat.npy", labels="y.txt")
    np.save(tmp_path / "words.npy", np.array([["a", "b"]]))
    refused("must be numbers", train="words.npy", labels="y.txt")
    bad = x.copy()
    bad[5, 2] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    refused("row 5 is not", train="nan.npy", labels="y.txt")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    refused("without pickled objects", train="obj.npy", labels="y.txt")
    (tmp_path / "short.txt").write_text("\n".join(labels[:-1]))
    refused("holds 48 samples but its labels file", train="x.npy", labels="short.txt")
    np.save(tmp_path / "floats.npy", np.zeros(48))
    refused("whole numbers or strings", train="x.npy", labels="floats.npy")
    (tmp_path / "test.txt").write_text("\n".join(["c9"] * 48))
    refused(r"label\(s\) \['c9'\] are not among the training labels", train="x.npy", labels="y.txt", test="x.npy", test_labels="test.txt")
    refused("there is no val file", train="x.npy", labels="y.txt", val_labels="y.txt")
    (tmp_path / "few.txt").write_text("\n".join(["c0"] * 47 + ["c1"]))
    refused("too few samples to hold out a stratified test split", train="x.npy", labels="few.txt")


def test_file_options_are_refused_with_a_registered_dataset(capsys):
    assert cli.main(["continual", "--data", "digits", "--labels", "y.txt"]) == 2
    assert "--labels are for your own files" in capsys.readouterr().err
    assert cli.main(["continual", "--data", "nope"]) == 2
    assert "unknown dataset 'nope'" in capsys.readouterr().err


def test_the_classes_can_arrive_in_the_order_the_data_first_shows_them(tmp_path, monkeypatch):
    from plasticity.lab.continual.experiment import ContinualConfig, run_continual
    from plasticity.lab.continual.protocol import Stream, first_seen

    assert first_seen(np.array([2, 2, 0, 2, 1, 0]), 4).tolist() == [2, 0, 1, 3]  # never seen: last
    labels = np.array([1, 1, 0, 2, 0, 2, 1])
    for seed in (0, 1):
        stream = Stream.make(labels, 3, 3, seed, "data")
        assert [group.tolist() for group in stream.classes] == [[1], [0], [2]]
    monkeypatch.setattr(embedding, "SentenceEncoder", Hashing)
    rows = [(f"{word} number {i}", word) for i in range(8) for word in ("gamma", "alpha", "beta")]
    files = UserFiles(train=write_csv(tmp_path / "train.csv", rows), test=write_csv(tmp_path / "test.csv", rows[:6]))
    config = ContinualConfig(data="train", files=files, tasks=3, seeds=2, methods=("ncm",), class_order="data", cache_dir=str(tmp_path))
    run = run_continual(config, progress=False)
    assert [result.tasks for result in run.results["ncm"]] == [[[2], [0], [1]]] * 2  # gamma, alpha, beta by index
    assert run.record().config["class_order"] == "data"
    assert "class_order" not in ContinualConfig().to_dict()  # the default is not written: stored runs keep their dict
