"""The report against bad results folders, and the report's promise to tell no lie.

Every results folder here is written by the test (a few synthetic records, no training), so
the file runs in seconds. Bad input of every class (missing or mistyped fields, a file that is
not UTF-8, nested too deeply, too big, of the wrong kind; wrong paths) must end in one
`plasticity: error: ...` line naming the file and the field, never a traceback or a page that
shows something the records do not say.
"""

from __future__ import annotations

import copy
import html
import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_report import check_page

from plasticity.errors import ConfigError, PlasticityError
from plasticity.lab.cli import main
from plasticity.lab.report import (
    build_report,
    continual_plots,
    training_plots,
)
from plasticity.lab.report.collect import collect
from plasticity.lab.report.readme import demo_figure, demo_runs, demo_section
from plasticity.results import (
    MAX_BYTES,
    MAX_DATASETS,
    MAX_ENTRIES,
    MAX_LABELS,
    MAX_LAYERS,
    MAX_TASKS,
    ResultsError,
)

CARD = {
    "rule": "bp",
    "weight_transport": "exact",
    "reads": ["pre", "post"],
    "global_signal": 0,
    "error_signal": "δ",
    "phases_per_step": 2,
    "inference_iterations": 0,
    "locks_removed": [],
    "reference": "a paper",
}


def point(epoch: int, accuracy: float, **extra: Any) -> dict[str, Any]:
    return {"epoch": epoch, "train_loss": 2.0 / epoch, "test_accuracy": accuracy, "epoch_seconds": 0.1, **extra}


def record(rule: str = "bp", seed: int = 0, done: int = 2, epochs: int = 2, accuracy: float = 0.8, **extra: Any) -> dict[str, Any]:
    """A bench record (`plasticity.lab.bench.runner.run_record`) of a run that got through `done` of `epochs` epochs."""
    config = {
        "rule": rule,
        "data": "digits",
        "model": "mlp",
        "hidden": [8, 8],
        "activation": "tanh",
        "epochs": epochs,
        "batch_size": 64,
        "seed": seed,
        "rule_options": {},
        "device": "cpu",
    }
    curve = [point(e, accuracy - 0.1 * (done - e)) for e in range(1, done + 1)]
    return {"rule": rule, "label": rule, "dataset": "digits", "seed": seed, "test_accuracy": curve[-1]["test_accuracy"] if curve else None,
            "epoch_seconds": 0.1, "status": "completed", "epochs": done, "key": f"{rule}{seed}", "config": config,
            "curve": curve, **extra}  # fmt: skip


def train_results(rule: str = "bp", done: int = 2, epochs: int = 2, status: str = "completed") -> dict[str, Any]:
    """The results.json of `plasticity train` (`plasticity.train.Trainer.results`), with event
    counters (as a spiking rule's) in its last epoch."""
    config = {
        "rule": rule,
        "data": "digits",
        "root": None,
        "model": "mlp",
        "hidden": [8],
        "activation": "tanh",
        "epochs": epochs,
        "batch_size": 64,
        "seed": 0,
        "rule_options": {},
        "device": "cpu",
    }
    runs = [point(e, 0.5 + 0.1 * e, test_loss=1.0 / e) for e in range(1, done + 1)]
    if runs:
        runs[-1]["counters"] = {"spikes": 10.0}
    dataset = {"name": "digits", "n_train": 100, "n_test": 20, "n_features": 64, "n_classes": 10, "source": None}
    return {"config": config, "card": {**CARD, "rule": rule}, "seed": 0, "dataset": dataset,
            "versions": {"torch": "2", "threads": "1"}, "status": status, "message": "",
            "test_accuracy": runs[-1]["test_accuracy"] if runs else None, "epoch_seconds": 0.1 if runs else None,
            "epochs": runs}  # fmt: skip


def entry(method: str = "memory", **extra: Any) -> dict[str, Any]:
    """An entry of a continual summary.json (`plasticity.results.ContinualEntry`)."""
    return {"method": method, "dataset": "digits", "n_seeds": 2, "seeds": [0, 1], "final_accuracy_mean": 0.9,
            "final_accuracy_std": 0.01, "accuracy_matrix": [[0.9, 0.0], [0.8, 0.95]], "tasks": ["a", "b"],
            "roc": {"fpr": [0.0, 0.5, 1.0], "tpr": [0.0, 0.8, 1.0]},
            "risk_coverage": {"coverage": [0.5, 1.0], "risk": [0.05, 0.1]}, **extra}  # fmt: skip


def write_bench(folder: Path, records: list[Any], card: Any = CARD) -> Path:
    """A bench folder: results.jsonl, and one per-run results.json (with the card) per label."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    labels = [r.get("label") for r in records if isinstance(r, dict)]
    for label in {label for label in labels if isinstance(label, str) and re.fullmatch(r"[\w.+-]+", label)}:
        run = folder / "runs" / "digits" / str(label) / "seed0-x"
        run.mkdir(parents=True, exist_ok=True)
        (run / "results.json").write_text(json.dumps({**train_results(), "card": card}))
    return folder / "results.jsonl"


def write_json(path: Path, payload: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload), encoding="utf-8")
    return path


def cli(argv: list[str], capsys) -> tuple[int, str]:
    """(exit status, stderr) of `plasticity ARGV`, argparse's own exits included."""
    try:
        status = main(argv)
    except SystemExit as stop:
        status = stop.code
    return status, capsys.readouterr().err


def assert_one_line(status: int, err: str, *names: str) -> None:
    """The CLI's answer to a user error: status 2, no traceback, and a last line (argparse puts
    its usage above it) that says what is at fault."""
    assert status == 2 and "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("plasticity") and "error: " in last and len(last) < 400, err
    for name in names:
        assert name in last, (name, last)


def set_at(payload: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A deep copy of `payload` with the value at `path` replaced (DELETE: removed, if there)."""
    copied = copy.deepcopy(payload)
    parent = copied
    for key in path[:-1]:
        parent = parent[key]
    if value is DELETE:
        if isinstance(parent, list) or path[-1] in parent:
            del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return copied


DELETE = object()


# ------------------------------------------------------------------------------------ bad records
BAD_RECORDS = {
    "no test_accuracy": (("test_accuracy",), DELETE, "`test_accuracy` is missing"),
    "accuracy as text": (("test_accuracy",), "0.9", "`test_accuracy` must be a fraction"),
    "accuracy in percent": (("test_accuracy",), 91.3, "`test_accuracy` must be a fraction"),
    "accuracy a boolean": (("test_accuracy",), True, "`test_accuracy` must be a fraction"),
    "seed as text": (("seed",), "0", "`seed` must be a whole number"),
    "negative seed": (("seed",), -1, "`seed` must be a whole number"),
    "rule a number": (("rule",), 3, "`rule` must be a non-empty string"),
    "rule too long": (("rule",), "x" * 100_000, "`rule` must be a non-empty string of at most 100"),
    "curve not a list": (("curve",), {"epoch": 1}, "`curve` must be a list"),
    "curve point not an object": (("curve", 0), [1, 0.5], "`curve[0]` must be an object"),
    "curve point without epoch": (("curve", 1, "epoch"), DELETE, "`curve[1].epoch` is missing"),
    "curve accuracy as text": (("curve", 0, "test_accuracy"), "high", "`curve[0].test_accuracy` must be a fraction"),
    "curve loss as text": (("curve", 0, "train_loss"), "1e9", "`curve[0].train_loss` must be a number ≥ 0"),
    "negative loss": (("curve", 0, "train_loss"), -0.5, "`curve[0].train_loss` must be a number ≥ 0"),
    "curve epochs repeated": (("curve", 1, "epoch"), 1, "`curve` must list epochs in increasing order"),
    "angles not numbers": (("curve", 0, "update_angle"), ["a"], "`curve[0].update_angle` must be a list of at most"),
    "no config": (("config",), DELETE, "`config` is missing"),
    "config a list": (("config",), [], "`config` must be an object"),
    "epochs as text": (("config", "epochs"), "60", "`config.epochs` must be a whole number ≥ 1"),
    "zero epochs": (("config", "epochs"), 0, "`config.epochs` must be a whole number ≥ 1"),
    "hidden as text": (("config", "hidden"), "256", "`config.hidden` must be a list of whole numbers"),
    "negative seconds": (("epoch_seconds",), -1.0, "`epoch_seconds` must be a finite number > 0"),
    "status a number": (("status",), 1, "`status` must be a non-empty string"),
}


@pytest.mark.parametrize("path, value, message", BAD_RECORDS.values(), ids=BAD_RECORDS.keys())
def test_a_bad_bench_record_names_file_record_and_field(path, value, message, tmp_path):
    results = write_bench(tmp_path / "bench", [record("bp"), set_at(record("fa"), path, value)])
    with pytest.raises(ResultsError) as error:
        collect(tmp_path)
    text = str(error.value)
    assert text.startswith(f"{results}: record 2 of 2, field ") and message in text and "\n" not in text
    assert len(text) < 400  # a huge value is cut


def test_a_line_that_is_not_a_record_is_refused(tmp_path):
    results = write_bench(tmp_path, [record("bp"), [1, 2]])
    with pytest.raises(PlasticityError, match=rf"{results}: line 2 is not a JSON object"):
        collect(tmp_path)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "results.jsonl").write_text('{"name": "a"}\n')  # no run record in it: not a bench's file
    with pytest.raises(ConfigError, match="1 file.*hold something else"):
        collect(tmp_path / "other")


BAD_TRAIN = {
    "no epochs": (("epochs",), DELETE, "`epochs` is missing"),
    "epochs an object": (("epochs",), {"1": {}}, "`epochs` must be a list"),
    "epoch accuracy as text": (("epochs", 0, "test_accuracy"), "90%", "`epochs[0].test_accuracy` must be a fraction"),
    "alignment not an object": (("epochs", 0, "alignment"), [1], "`epochs[0].alignment` must be an object"),
    "pi without its value": (("epochs", 0, "pi"), {}, "`epochs[0].pi.pi` is missing"),
    "counters without data size": (("dataset",), DELETE, "`dataset` is missing"),
    "counters not numbers": (("epochs", 1, "counters", "spikes"), "many", "`epochs[1].counters.spikes` must be a number"),
    "no card": (("card",), DELETE, "`card` is missing"),
    "card of another kind": (("card", "weight_transport"), "telepathy", "`card` is not a plausibility card"),
    "card with a foreign key": (("card", "colour"), "red", "`card` is not a plausibility card"),
    "config with a foreign key": (("config", "colour"), "red", "`config` has unknown key(s)"),
    "rule options not an object": (("config", "rule_options"), ["lr"], "`config.rule_options` must be an object"),
    "epoch without test loss": (("epochs", 0, "test_loss"), DELETE, "`epochs[0].test_loss` is missing"),
    "dataset without its size": (("dataset", "n_test"), 0, "`dataset.n_test` must be a whole number ≥ 1"),
    "schema as text": (("schema",), "1", "`schema` must be a whole number ≥ 1"),
    "status missing": (("status",), DELETE, "`status` is missing"),
    "versions without torch": (("versions",), {"threads": "1"}, "`versions.torch` is missing"),
}


@pytest.mark.parametrize("path, value, message", BAD_TRAIN.values(), ids=BAD_TRAIN.keys())
def test_a_bad_train_results_file_names_file_and_field(path, value, message, tmp_path):
    bad = write_json(tmp_path / "runs" / "sign" / "results.json", set_at(train_results("sign"), path, value))
    write_json(tmp_path / "runs" / "bp" / "results.json", train_results("bp"))
    with pytest.raises(ResultsError) as error:
        collect(tmp_path)
    assert str(error.value).startswith(f"{bad}: field ") and message in str(error.value), str(error.value)


BAD_ENTRIES = {
    "accuracy as text": (("final_accuracy_mean",), "0.9", "`final_accuracy_mean` must be a fraction"),
    "accuracy in percent": (("final_accuracy_mean",), 91.0, "`final_accuracy_mean` must be a fraction"),
    "no accuracy": (("final_accuracy_mean",), DELETE, "`final_accuracy_mean` is missing"),
    "forgetting below -1": (("forgetting_mean",), -3, "`forgetting_mean` must be a number in [-1, 1]"),
    "ragged matrix": (("accuracy_matrix",), [[0.9], [0.8, 0.9]], "`accuracy_matrix` must be a non-empty square"),
    "matrix in percent": (("accuracy_matrix", 0), [90, 0], "`accuracy_matrix[0]` must be a list of fractions"),
    "tasks too few": (("tasks",), ["a"], "`tasks` must name one task per row"),
    "seeds disagree": (("seeds",), [0], "`seeds` must list `n_seeds` (2) seeds"),
    "n_seeds as text": (("n_seeds",), "2", "`n_seeds` must be a whole number ≥ 1"),
    "roc without tpr": (("roc", "tpr"), DELETE, "`roc.tpr` is missing"),
    "roc of one point": (("roc",), {"fpr": [0.0], "tpr": [1.0]}, "`roc` must hold `fpr` and `tpr` of equal length ≥ 2"),
    "risk a string": (("risk_coverage", "risk"), "low", "`risk_coverage.risk` must be a list of fractions"),
    "method a list": (("method",), ["memory"], "`method` must be a non-empty string"),
}


@pytest.mark.parametrize("path, value, message", BAD_ENTRIES.values(), ids=BAD_ENTRIES.keys())
def test_a_bad_continual_entry_names_file_entry_and_key(path, value, message, tmp_path):
    summary = write_json(tmp_path / "summary.json", [entry("bp-finetune"), set_at(entry(), path, value)])
    with pytest.raises(ResultsError) as error:
        collect(tmp_path)
    assert str(error.value).startswith(f"{summary}: entry 1 ") and message in str(error.value), str(error.value)


def test_a_summary_of_the_wrong_shape_is_refused(tmp_path):
    summary = write_json(tmp_path / "summary.json", entry())  # one entry, not a list of them
    with pytest.raises(ResultsError, match="must be a list of entries"):
        collect(tmp_path)
    write_json(summary, [entry(), []])
    with pytest.raises(ResultsError, match=r"entry 1 must be an object"):
        collect(tmp_path)
    write_json(summary, [entry(), entry()])
    with pytest.raises(ResultsError, match=r"entry 1 .*repeats the method and dataset of entry 0"):
        collect(tmp_path)
    write_json(summary, [[1, 2], "x"])  # no entry names a method: not a continual summary
    with pytest.raises(ConfigError, match="hold something else"):
        collect(tmp_path)


def test_more_than_a_report_draws_is_refused_before_drawing(tmp_path):
    """Each figure has a panel per dataset and layer and a line per label: a crafted file must
    not make the report draw for hours."""
    angles = [point(1, 0.5, update_angle=[80.0] * (MAX_LAYERS + 1)), point(2, 0.6)]
    write_bench(tmp_path / "layers", [record("fa", curve=angles)])
    with pytest.raises(ResultsError, match=rf"`curve\[0\].update_angle` must be a list of at most {MAX_LAYERS} numbers"):
        collect(tmp_path / "layers")
    write_bench(tmp_path / "datasets", [record("bp", dataset=f"d{i}") for i in range(MAX_DATASETS + 1)])
    with pytest.raises(ResultsError, match=rf"results.jsonl: runs of {MAX_DATASETS + 1} datasets in one table"):
        collect(tmp_path / "datasets")
    write_bench(tmp_path / "labels", [record("bp", label=f"bp-{i}") for i in range(MAX_LABELS + 1)])
    with pytest.raises(ResultsError, match=rf"runs of {MAX_LABELS + 1} labels in one table"):
        collect(tmp_path / "labels")
    write_json(tmp_path / "entries" / "summary.json", [entry(f"m{i}") for i in range(MAX_ENTRIES + 1)])
    with pytest.raises(ResultsError, match=rf"{MAX_ENTRIES + 1} entries, more than a report draws"):
        collect(tmp_path / "entries")
    tasks = MAX_TASKS + 1
    write_json(tmp_path / "tasks" / "summary.json", [entry(accuracy_matrix=[[0.5] * tasks] * tasks, tasks=None)])
    with pytest.raises(ResultsError, match=rf"`accuracy_matrix` must have at most {MAX_TASKS} tasks"):
        collect(tmp_path / "tasks")


def test_a_broken_card_in_a_bench_folder_names_its_run_file(tmp_path):
    write_bench(tmp_path, [record("bp")], card={**CARD, "reads": ["mind"]})
    with pytest.raises(ResultsError, match=r"runs/digits/bp/seed0-x/results.json: field `card` is not a plausibility card"):
        collect(tmp_path)


# ------------------------------------------------------------------------------------ fuzzing
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
VALUES = JSON | st.floats() | st.integers(-2, 300) | st.lists(st.floats(), max_size=4) | st.just(DELETE)  # some pass the checks
RECORD_PATHS = [
    ("rule",), ("label",), ("dataset",), ("seed",), ("test_accuracy",), ("epoch_seconds",), ("status",), ("config",),
    ("config", "epochs"), ("config", "hidden"), ("config", "activation"), ("config", "batch_size"), ("config", "model"),
    ("curve",), ("curve", 0), ("curve", 1, "epoch"), ("curve", 0, "train_loss"), ("curve", 1, "test_accuracy"),
    ("curve", 0, "pi"), ("curve", 0, "omega"), ("curve", 0, "update_angle"), ("curve", 1, "feedback_angle"),
]  # fmt: skip
ENTRY_PATHS = [
    ("method",), ("dataset",), ("final_accuracy_mean",), ("final_accuracy_std",), ("forgetting_mean",), ("oos_auroc",),
    ("n_seeds",), ("seeds",), ("tasks",), ("accuracy_matrix",), ("accuracy_matrix", 1), ("roc",), ("roc", "fpr"),
    ("risk_coverage",), ("risk_coverage", "risk"),
]  # fmt: skip


def rendered_or_refused(folder: Path, out: Path) -> None:
    """Build the report: either it is refused with a ResultsError, or the page is complete."""
    try:
        index = build_report(folder, out)
    except ResultsError as error:
        assert str(error).startswith(str(folder)) and "\n" not in str(error)
    else:
        check_page(index)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(RECORD_PATHS), value=VALUES)
def test_any_value_in_any_record_field_is_refused_or_rendered(path, value, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    write_bench(folder / "bench", [record("bp"), set_at(record("fa"), path, value)])
    rendered_or_refused(folder, folder / "report")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(ENTRY_PATHS), value=VALUES)
def test_any_value_in_any_continual_field_is_refused_or_rendered(path, value, tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    write_json(folder / "summary.json", [entry("bp-finetune"), set_at(entry(), path, value)])
    rendered_or_refused(folder, folder / "report")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(["results.jsonl", "results.json", "summary.json"]), content=st.binary(max_size=64))
def test_any_bytes_in_a_results_file_end_in_a_clear_error(name, content, tmp_path_factory):
    folder = tmp_path_factory.mktemp("bytes")
    (folder / name).write_bytes(content)
    with pytest.raises(PlasticityError) as error:  # nothing valid can be in 64 random bytes
        collect(folder)
    assert "\n" not in str(error.value)


# ------------------------------------------------------------------------------------ bad files and paths
BROKEN_LINE = "line 1 is not a JSON object"  # plasticity.io.read_jsonl's word for any line it cannot read


@pytest.mark.parametrize(
    "name, deep, latin, garbled",
    [
        ("results.jsonl", BROKEN_LINE, BROKEN_LINE, BROKEN_LINE),
        ("results.json", "JSON nested too deeply", "byte 12 is not UTF-8 text", r"not valid JSON \(Expecting"),
        ("summary.json", "JSON nested too deeply", "byte 12 is not UTF-8 text", r"not valid JSON \(Expecting"),
    ],
)
def test_unreadable_files_are_named(name, deep, latin, garbled, tmp_path):
    path = tmp_path / name
    for content, message in [
        (b"[" * 100_000 + b"]" * 100_000 + b"\n", deep),
        (b'{"rule": "bp\xff\xfe"}\n', latin),
        (b"{not json\n{}\n", garbled),
        (b'{"seed": ' + b"1" * 5000 + b"}\n", "Exceeds the limit"),  # Python converts at most 4300 digits
    ]:
        path.write_bytes(content)
        with pytest.raises(PlasticityError, match=rf"^{path}: {message}"):
            collect(tmp_path)
    with open(path, "wb") as handle:  # sparse: costs no disk
        handle.truncate(MAX_BYTES + 1)
    with pytest.raises(ResultsError, match=rf"^{path} holds {MAX_BYTES // 2**20} MiB, more than a results file can"):
        collect(tmp_path)


def test_a_folder_or_pipe_named_like_results_is_not_read(tmp_path):
    (tmp_path / "results.json").mkdir()
    os.mkfifo(tmp_path / "summary.json")  # reading it would wait forever
    write_bench(tmp_path / "bench", [record("bp")])
    assert len(collect(tmp_path).training) == 1


def test_wrong_paths_end_in_one_line(tmp_path, capsys):
    folder = tmp_path / "runs"
    write_bench(folder, [record("bp")])
    file = tmp_path / "file.txt"
    file.write_text("x")
    assert_one_line(*cli(["report", str(tmp_path / "empty")], capsys), "empty", "not a folder")
    (tmp_path / "empty").mkdir()
    assert_one_line(*cli(["report", str(tmp_path / "empty")], capsys), "no results found")
    assert_one_line(*cli(["report", str(file)], capsys), "file.txt")
    assert_one_line(*cli(["report", str(folder), "--out", str(file)], capsys), "file.txt")
    assert_one_line(*cli(["report", str(folder), "--out", str(file / "sub")], capsys), "file.txt")
    (folder / "results.jsonl").write_text(json.dumps({**record("bp"), "test_accuracy": "high"}) + "\n")
    assert_one_line(*cli(["report", str(folder)], capsys), str(folder / "results.jsonl"), "test_accuracy")
    for bad in ("", " "):
        with pytest.raises(ConfigError, match="empty"):
            build_report(bad)
    with pytest.raises(ConfigError, match="--out is empty"):
        build_report(folder, "")


def test_the_readme_figure_is_refused_under_a_file(tmp_path):
    """The README's demo figure (drawn by the docs tool; its doc paths: tests/test_docs_tool.py)."""
    folder = write_bench(tmp_path / "runs", [record("bp")]).parent
    (tmp_path / "docs").write_text("a file where the figure's folder goes")
    with pytest.raises(ConfigError, match="docs is a file"):
        demo_figure(demo_runs(folder), tmp_path / "docs" / "demo.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs", "runs"]


# ------------------------------------------------------------------------------------ no lies
def line_of(line) -> tuple[str, str, float, str, list[float]]:
    """What a drawn line shows: (legend label, line style, width, marker, y values)."""
    return line.get_label(), line.get_linestyle(), line.get_linewidth(), line.get_marker(), list(line.get_ydata())


@pytest.fixture
def drawn(monkeypatch) -> dict[str, list[dict[str, Any]]]:
    """What every saved figure shows: file name → per panel, its title and its lines."""
    shown: dict[str, list[dict[str, Any]]] = {}
    original = training_plots.save

    def recording(figure, path):
        shown[path.name] = [{"title": ax.get_title(), "lines": [line_of(line) for line in ax.get_lines()]} for ax in figure.axes]
        shown[path.name + ":legend"] = [text.get_text() for legend in figure.legends for text in legend.get_texts()]
        return original(figure, path)

    monkeypatch.setattr(training_plots, "save", recording)
    monkeypatch.setattr(continual_plots, "save", recording)
    return shown


def test_unfinished_and_diverged_runs_are_marked_everywhere(tmp_path, drawn):
    records = [
        record("bp", seed=0), record("bp", seed=1, accuracy=0.82),
        record("fa", seed=0, accuracy=0.7), record("fa", seed=1, status="diverged"),
        record("sign", seed=0, done=1, epochs=60),  # status says completed, but 1 of 60 epochs
        record("dfa", seed=0, done=2, epochs=60, status="running"),
    ]  # fmt: skip
    write_bench(tmp_path / "bench", records)
    text = build_report(tmp_path / "bench", tmp_path / "report").read_text(encoding="utf-8")
    assert "<td>sign (unfinished)</td>" in text and "% (n = 1; after 1 of 60 epochs)</td>" in text
    assert "<td>dfa (unfinished)</td>" in text and "% (n = 1; after 2 of 60 epochs)</td>" in text
    assert "(1 diverged)</td>" in text and "Rows labelled unfinished" in text
    (runs,) = collect(tmp_path / "bench").training
    (sign,) = [s for s in runs.summary if s.label == "sign (unfinished)"]
    assert sign.accuracy_ratio_to_bp is None and sign.time_ratio_to_bp is None  # not a final result
    (curves,) = drawn["training-1-curves.png"]
    styles = {label: style for label, style, *_ in curves["lines"]}
    assert styles["sign (unfinished)"] == styles["dfa (unfinished)"] == "--" and styles["bp"] == "-"
    assert "fa (1 of 2 diverged)" in styles
    assert "Dashed: unfinished runs" in text and "(k of n diverged)" in text


def test_an_interrupted_train_run_is_not_a_final_result(tmp_path):
    write_json(tmp_path / "runs" / "bp" / "results.json", train_results("bp"))
    write_json(tmp_path / "runs" / "sign" / "results.json", train_results("sign", done=1, epochs=60, status="running"))
    write_json(tmp_path / "runs" / "fa" / "results.json", train_results("fa", done=0, epochs=60, status="running"))
    text = build_report(tmp_path, tmp_path / "report").read_text(encoding="utf-8")
    assert '<td>sign (unfinished)</td><td class="num">60.00% (n = 1; after 1 of 60 epochs)</td>' in text
    assert '<td>fa (unfinished)</td><td class="num">— (after 0 of 60 epochs)</td>' in text  # stopped in epoch 1
    assert '<td>bp</td><td class="num">70.00% (n = 1)</td>' in text


def test_files_with_a_results_name_but_other_content_are_listed_as_ignored(tmp_path):
    write_bench(tmp_path / "bench", [record("bp")])
    write_json(tmp_path / "other" / "results.json", {"name": "not a run"})
    write_json(tmp_path / "other" / "summary.json", [[1, 2]])
    text = build_report(tmp_path, tmp_path / "report").read_text(encoding="utf-8")
    assert "Ignored, as they hold no results in a format plasticity writes: other/results.json, other/summary.json." in text


def test_one_seed_shows_no_spread(tmp_path):
    write_bench(tmp_path / "bench", [record("bp"), record("fa", accuracy=0.7)])
    write_json(tmp_path / "continual" / "summary.json", [entry(n_seeds=1, seeds=[0], final_accuracy_std=0.0)])
    text = build_report(tmp_path, tmp_path / "report").read_text(encoding="utf-8")
    for page in (text, demo_section(demo_runs(tmp_path))):
        assert "± 0.00" not in page and "80.00% (n = 1)" in page and "70.00% (n = 1)" in page
    assert "90.00% (n = 1)" in text


def test_update_angles_show_hidden_layers_only(tmp_path, drawn):
    fa = record("fa", curve=[point(1, 0.5, update_angle=[80.0, 70.0, 0.0], feedback_angle=[60.0, 50.0])])
    softhebb = record("softhebb", curve=[point(1, 0.5, update_angle=[85.0, 0.5], feedback_angle=[])])
    write_bench(tmp_path, [{**r, "config": {**r["config"], "epochs": 1}} for r in (record("bp"), fa, softhebb)])
    text = html.unescape(build_report(tmp_path, tmp_path / "report").read_text(encoding="utf-8"))
    first, second = drawn["training-1-alignment.png"]
    assert first["title"] == "digits: update angle to bp, hidden layer 1"
    assert second["title"] == "digits: update angle to bp, hidden layer 2"
    angles = {panel["title"][-1]: {label: y for label, *_, y in panel["lines"] if not label.startswith("_")} for panel in (first, second)}
    assert angles["1"]["softhebb"] == [85.0] and angles["1"]["fa"] == [80.0]
    assert "softhebb" not in angles["2"] and angles["2"]["fa"] == [70.0]  # softhebb's output layer is not drawn
    assert "each rule's output layer, the last layer of its own network" in text and "fewer hidden layers" in text


def test_pi_caption_says_what_a_cross_rule_comparison_means(tmp_path):
    write_bench(tmp_path, [record("bp", curve=[point(1, 0.5, pi=0.3), point(2, 0.6, pi=0.4)]), record("fa")])
    text = build_report(tmp_path, tmp_path / "report").read_text(encoding="utf-8")
    assert "Across rules it is not a like-for-like measure" in text and "smaller update vectors" in text


def test_coinciding_curves_stay_visible_and_are_named(tmp_path, drawn):
    same = {"coverage": [0.25, 0.5, 0.75, 1.0], "risk": [0.1, 0.1, 0.2, 0.3]}
    write_json(
        tmp_path / "summary.json",
        [entry("replay", risk_coverage=same), entry("ewc", risk_coverage={**same, "risk": [0.1, 0.1, 0.2, 0.301]}),
         entry("memory", risk_coverage={**same, "risk": [0.0, 0.05, 0.1, 0.2]})],
    )  # fmt: skip
    build_report(tmp_path, tmp_path / "report")
    (panel,) = drawn["continual-1-risk-coverage.png"]
    lines = {label.split(" (")[0]: (label, style, width, marker) for label, style, width, marker, _ in panel["lines"]}
    assert lines["replay"][0] == "replay (same curve as ewc)" and lines["ewc"][0] == "ewc (same curve as replay)"
    assert lines["memory"][0] == "memory"
    assert lines["replay"][2] > lines["ewc"][2]  # the curve under its twin is drawn wider
    assert len({line[1] for line in lines.values()}) == 3 and len({line[3] for line in lines.values()}) == 3


# ------------------------------------------------------------------------------------ writes only where told
def tree(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def test_the_report_writes_only_where_it_is_told(tmp_path):
    runs = tmp_path / "runs"
    write_bench(runs, [record("bp"), record("fa", accuracy=0.7)])
    before = tree(runs)
    build_report(runs, tmp_path / "out")
    assert tree(runs) == before
    assert {p.suffix for p in (tmp_path / "out").iterdir()} == {".html", ".png"}
    build_report(runs)
    assert set(tree(runs)) - set(before) == {"report"} | {f"report/{p.name}" for p in (runs / "report").iterdir()}
    (runs / "results.jsonl").write_text("{}\n" + json.dumps(record("bp")) + "\n")  # a bad record: nothing is written
    with pytest.raises(ResultsError):
        build_report(runs, tmp_path / "never")
    assert not (tmp_path / "never").exists()
