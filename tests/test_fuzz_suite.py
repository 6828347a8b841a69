"""Benches and suites as a hostile user feeds them: every bad suite file, grid or output folder
ends in one short line (SuiteError / ConfigError / FileCheckError, exit 2 on the command line),
nothing is trained twice, and two benches never write into one folder at once."""

import json
import time
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plasticity.data import DataError
from plasticity.errors import ConfigError, FileCheckError, PlasticityError
from plasticity.io import FolderBusy, folder_lock
from plasticity.lab.bench.markdown import summary_rows, table, throughput_table
from plasticity.lab.bench.runner import RESULTS, BenchConfig, run_bench
from plasticity.lab.bench.suite import MAX_BYTES, MAX_DEPTH, SuiteError, load_suite, parse_suite
from plasticity.lab.bench.summary import summarize
from plasticity.lab.cli import main
from plasticity.results import Place, RunRecord

SHORT = 400  # characters: the longest message a bad input may produce
VALID = "datasets: digits\nseeds: 1\nepochs: 1\nhidden: [8]\nbatch_size: 128\nruns: [bp]\n"


def assert_short(error: BaseException, *names: str) -> None:
    """One line, short, naming what it should (the file, the duplicate, ...)."""
    message = str(error)
    assert "\n" not in message and len(message) < SHORT, message[:SHORT]
    for name in names:
        assert name in message, message[:SHORT]


def refused(path, *names):
    """The SuiteError that loading `path` raises, checked to be one short line naming `names`."""
    with pytest.raises(SuiteError) as error:
        load_suite(path)
    assert_short(error.value, *names)
    return str(error.value)


def tiny(**changes) -> BenchConfig:
    base = {"rules": ("bp",), "datasets": ("digits",), "seeds": 1, "epochs": 1, "hidden": (8,), "batch_size": 128}
    return BenchConfig(**{**base, **changes})


# ---------------------------------------------------------------- suite files: bounded reading


def test_an_alias_bomb_is_refused_at_once(tmp_path):
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]  # 9^10 nodes once expanded
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\ndatasets: digits\nruns: *a9\n")  # a message echoing `runs` would never end
    started = time.perf_counter()
    message = refused(path, str(path), "aliases")
    assert time.perf_counter() - started < 2, message


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"", "the file is empty"),
        (b"# only a comment\n", "the file is empty"),
        (b"- just\n- a list\n", "must be a mapping"),
        (b"42\n", "must be a mapping"),
        (b"\xff\xfe datasets: digits\n", "not UTF-8"),
        (b"[" * 100_000, "nested deeper than"),
        (b"datasets: digits\nruns: " + b"[" * (MAX_DEPTH + 1) + b"bp" + b"]" * (MAX_DEPTH + 1) + b"\n", "nested deeper than"),
        (b"".join(b"  " * i + b"k:\n" for i in range(200)), "nested deeper than"),
        (b"datasets: digits\nruns: [bp]\nseeds: 1\nseeds: 2\n", "line 4: key 'seeds' is given twice"),
        (b"datasets: digits\nruns: [{rule: fa, options: {lr: 0.1, lr: 0.2}}]\n", "key 'lr' is given twice"),
        (b"datasets: digits\nruns: [bp]\n---\ndatasets: mnist1d\n", "not valid YAML"),
        (b"datasets: !!python/object/apply:os.system [echo hi]\nruns: [bp]\n", "not valid YAML"),
        (b"datasets: digits\nruns: [bp]\n\tseeds: 1\n", "not valid YAML"),
        (b"datasets: digits\nruns: [{rule: fa, 3: x}]\n", r"unknown key(s) [3]"),
        (b"datasets: digits\nroots: {digits: [a, b]}\nruns: [bp]\n", "`roots` must be a mapping dataset"),
        (b"datasets: digits\nruns: [{rule: ['bp']}]\n", "`runs[0].rule`"),
        (b"datasets: digits\nruns: ['..']\n", "it names a folder"),
        (b"datasets: digits\nruns: [{rule: fa, label: '.'}]\n", "it names a folder"),
    ],
)
def test_unreadable_or_malformed_suites_are_one_line(tmp_path, content, problem):
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    refused(path, str(path), problem)


def test_suite_paths_that_are_no_file(tmp_path):
    refused(tmp_path, str(tmp_path), "is a folder")
    refused(tmp_path / "missing.yaml", "does not exist")
    refused(str(tmp_path / "nul\0.yaml"), "does not exist")
    assert "File name too long" in refused(tmp_path / ("x" * 1_000_000))
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# " + b"x" * MAX_BYTES + b"\n" + VALID.encode())
    refused(big, str(big), "larger than")


def test_huge_values_are_echoed_briefly(tmp_path):
    path = tmp_path / "huge.yaml"
    for field in ("runs: [{rule: %s}]", "runs: [%s]", "runs: [{rule: fa, label: %s}]", "runs: [bp]\nobserve: [%s]", "runs: [bp]\nactivation: %s"):
        path.write_text("datasets: digits\n" + field % ("r" * 500_000) + "\n")
        refused(path, str(path), "characters)")
    path.write_text("datasets: [digits, %s]\nruns: [bp]\n" % ("d" * 500_000))
    refused(path, "`datasets` must be a non-empty list of names")


# ---------------------------------------------------------------- duplicates: nothing runs twice


@pytest.mark.parametrize(
    "text, duplicate",
    [
        ("datasets: [digits, digits]\nruns: [bp]\n", "dataset 'digits' is given twice"),
        ("datasets: digits, digits\nruns: [bp]\n", "dataset 'digits' is given twice"),
        ("datasets: digits\nruns: [bp, bp]\n", "'bp' is given twice"),
        ("datasets: digits\nruns: [bp, {rule: bp}]\n", "'bp' is given twice"),
        ("datasets: digits\nruns: [{rule: fa, label: x, options: {lr: 0.1}}, {rule: dfa, label: x}]\n", "'x' is given twice"),
    ],
)
def test_duplicated_suite_entries_are_refused(tmp_path, text, duplicate):
    path = tmp_path / "twice.yaml"
    path.write_text(text)
    refused(path, str(path), duplicate)


@pytest.mark.parametrize(
    "flags, duplicate",
    [(["--data", "digits,digits"], "dataset 'digits' is given twice"), (["--rules", "bp,fa,bp"], "'bp' is given twice")],
)
def test_duplicated_bench_arguments_are_one_line_and_train_nothing(tmp_path, capsys, flags, duplicate):
    out = tmp_path / "out"
    assert main(["bench", *flags, "--seeds", "2", "--epochs", "1", "--hidden", "8", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and duplicate in err and err.startswith("plasticity: error:")
    assert not out.exists()  # refused before anything is created


# ---------------------------------------------------------------- grids from Python


def test_bench_configs_from_python_are_checked():
    bad = {
        "seeds as text": ({"seeds": "2"}, "seeds must be a whole number"),
        "seeds as bool": ({"seeds": True}, "seeds must be a whole number"),
        "epochs as text": ({"epochs": "3"}, "epochs for digits must be a whole number"),
        "epochs mapping of text": ({"epochs": {"digits": "x"}}, "epochs for digits must be a whole number"),
        "roots for another dataset": ({"roots": {"mnist": "x"}}, "data folders (roots) given for datasets not in the bench"),
        "label that escapes its folder": ({"rules": ("..",)}, "it names a folder"),
        "variant's rule too long": ({"rules": ("a",), "variants": {"a": "r" * 10_000}}, "characters)"),
        "no datasets": ({"datasets": ()}, "at least one rule and one dataset"),
    }
    for name, (changes, problem) in bad.items():
        with pytest.raises(ConfigError) as error:
            tiny(**changes).validate()
        assert_short(error.value, problem), name


def test_a_root_that_is_a_file_fails_before_anything_runs(tmp_path):
    file = tmp_path / "file"
    file.write_text("")
    with pytest.raises(DataError) as error:
        tiny(roots={"digits": str(file)}).validate()
    assert_short(error.value, str(file), "is a file")


names = st.text(alphabet="abcdfgilmnoprstuvwxyz0123456789-_.", min_size=1, max_size=12)
values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 300) | st.floats(allow_nan=True) | st.sampled_from(["bp", "fa", "digits", "mnist1d", "", "tanh"]) | names,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names | st.sampled_from(["rule", "label", "options", "lr"]), inner, max_size=3),
    max_leaves=8,
)
damages = st.dictionaries(
    st.sampled_from(["name", "datasets", "seeds", "epochs", "hidden", "activation", "batch_size", "observe", "roots", "runs", "colour"]),
    values | st.lists(st.sampled_from(["bp", "fa", "dfa", "digits", "mnist1d", {"rule": "fa", "label": "fa-x"}, {"rule": "fa"}]), max_size=3),
    max_size=2,
)
suites = st.builds(lambda damage: {**yaml.safe_load(VALID), **damage}, damages) | st.dictionaries(names, values, max_size=3)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=suites)
def test_any_suite_is_a_bench_or_one_short_line(spec):
    """Whatever the file holds, parsing and checking it ends in a grid that can run or a ConfigError."""
    try:
        suite = parse_suite(spec, "fuzz")
        suite.bench_config().validate()
    except PlasticityError as error:
        assert_short(error)
        return
    config = suite.bench_config()
    assert len(set(config.rules)) == len(config.rules) and len(set(config.datasets)) == len(config.datasets)


@settings(max_examples=150, deadline=None)
@given(text=st.text(alphabet=st.characters(codec="utf-8"), max_size=60) | st.sampled_from(["&a [1]", "*a", "a: &x 1\nb: *x", "{a: 1, a: 2}"]))
def test_any_text_is_a_suite_or_one_short_line(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fuzz") / "suite.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        load_suite(path)
    except SuiteError as error:
        assert_short(error, str(path))


# ---------------------------------------------------------------- output folders, locking, records


def test_a_second_bench_on_the_same_folder_fails_at_once(digits, tmp_path, capsys):
    out = tmp_path / "out"
    seen = []

    def observers():
        """Called while the bench builds its runs: the folder must be held by then."""
        with pytest.raises(FolderBusy), folder_lock(out):
            pass
        seen.append(True)
        return []

    run_bench(tiny(), out, observers, progress=False, datasets={"digits": digits})
    assert seen == [True]
    with folder_lock(out):  # another bench holds the folder
        with pytest.raises(FolderBusy) as error:
            run_bench(tiny(seeds=2), out, progress=False, datasets={"digits": digits})
        assert_short(error.value, str(out), "in use")
        assert main(["bench", "--seeds", "2", "--epochs", "1", "--hidden", "8", "--out", str(out), "--quiet"]) == 2
        assert "in use by another plasticity command" in capsys.readouterr().err
    assert len((out / RESULTS).read_text().splitlines()) == 1  # neither refused bench wrote a line
    with folder_lock(out):  # released when the bench ended
        pass


def test_output_folders_that_cannot_be(tmp_path):
    file = tmp_path / "file"
    file.write_text("")
    for out, problem in [("", "is empty"), (file, "is a file"), (file / "sub", "which is a file")]:
        with pytest.raises(ConfigError) as error:
            run_bench(tiny(), out, progress=False)
        assert_short(error.value, problem)


def test_an_output_folder_name_too_long_is_one_short_line():
    with pytest.raises(ConfigError) as error:
        run_bench(tiny(), "x" * 100_000, progress=False)
    assert_short(error.value, "File name too long", "characters)")


def test_foreign_or_edited_records_are_refused(digits, tmp_path):
    run_bench(tiny(), tmp_path, progress=False, datasets={"digits": digits})
    (record,) = [json.loads(line) for line in (tmp_path / RESULTS).read_text().splitlines()]
    for damaged, problem in [
        ([1, 2], "not a JSON object"),
        ({**record, "test_accuracy": "high"}, "field `test_accuracy`"),
        ({**record, "seed": True}, "field `seed`"),
        ({k: v for k, v in record.items() if k != "key"}, "field `key` is missing"),
        ({**record, "rule": "fa"}, "the file was edited"),
    ]:
        (tmp_path / RESULTS).write_text(json.dumps(damaged) + "\n")
        with pytest.raises(FileCheckError) as error:
            run_bench(tiny(), tmp_path, progress=False, datasets={"digits": digits})
        assert_short(error.value, str(tmp_path / RESULTS), problem)


# ---------------------------------------------------------------- tables


def test_one_measured_run_shows_no_spread():
    runs = [
        {"rule": "bp", "dataset": "d", "seed": 0, "test_accuracy": 0.971, "epoch_seconds": 1.0},
        {"rule": "fa", "dataset": "d", "seed": 0, "test_accuracy": 0.5, "epoch_seconds": 1.0},
        {"rule": "fa", "dataset": "d", "seed": 1, "test_accuracy": None, "epoch_seconds": None, "status": "diverged"},
        {"rule": "dfa", "dataset": "d", "seed": 0, "test_accuracy": 0.5, "epoch_seconds": 1.0},
        {"rule": "dfa", "dataset": "d", "seed": 1, "test_accuracy": 0.7, "epoch_seconds": 1.0},
    ]
    config = {"rule": "bp", "data": "d", "hidden": [8], "activation": "tanh", "epochs": 1, "batch_size": 8, "seed": 0}
    records = [RunRecord.from_json({**run, "config": config, "curve": []}, Place(Path("runs"))) for run in runs]
    summary = summarize(records)
    rows = {row[1]: row[2] for row in summary_rows(summary)}
    assert rows == {"bp": "97.10% (n = 1)", "fa": "50.00% (n = 1; 1 diverged)", "dfa": "60.00 ± 14.14%"}
    assert "± 0.00" not in table(summary)
    rates = {"samples_per_second": 10.0, "synaptic_events_per_second": 2e6, "input_spikes_per_second": 3e3}
    spiking = replace(records[0], rule="stdp", label=None, throughput=rates)
    one = throughput_table([spiking])
    assert "10.0 (n = 1) | 2.0 M (n = 1) | 3.0 k (n = 1)" in one and "±" not in one
    two = throughput_table([spiking] * 2)
    assert "10.0 ± 0.0 |" in two


def test_yaml_safe_dump_of_a_valid_suite_loads(tmp_path):
    """The bounded loader reads what YAML writes for an ordinary suite (no anchors are emitted)."""
    spec = yaml.safe_load(VALID)
    path = tmp_path / "dumped.yaml"
    path.write_text(yaml.safe_dump({**spec, "runs": ["bp", {"rule": "fa", "label": "fa-x", "options": {"lr": 0.01}}]}))
    assert [run.label for run in load_suite(path).runs] == ["bp", "fa-x"]
