"""Command-line arguments as a hostile user types them: every bad input ends in one clear line and
exit status 2 (argparse's own usage errors included), Ctrl-C in one line and status 130, and only a
bug of the library keeps its traceback."""

import sys
import types

import pytest
from hypothesis import given
from hypothesis import strategies as st

import plasticity.lab.cli as cli
from plasticity.errors import BRIEF, ConfigError
from plasticity.lab.cli import main
from plasticity.rules import RULES, make_config

TINY = ["--epochs", "1", "--hidden", "8", "--quiet"]


def run(argv, capsys):
    """(exit status, what went to stderr) of `plasticity ARGV`, argparse's exits included."""
    try:
        status = main(argv)
    except SystemExit as stop:
        status = stop.code
    return status, capsys.readouterr().err


def assert_one_clear_line(status, err, expected=2):
    lines = [line for line in err.splitlines() if line.strip()]
    assert status == expected
    assert "Traceback" not in err and lines, err
    assert lines[-1].startswith("plasticity") and "error" in lines[-1], lines[-1]
    assert len(lines[-1]) < 400  # short, whatever was typed


BAD_ARGUMENTS = {
    "text for a rate": ["train", "--set", "lr=abc"],
    "empty value": ["train", "--set", "lr="],
    "true for a rate": ["train", "--set", "lr=true"],
    "fraction for a count": ["train", "--rule", "workspace", "--set", "capacity=1.5"],
    "number for a name": ["train", "--set", "optimizer=1"],
    "unknown option": ["train", "--set", "nosuch=1"],
    "no value": ["train", "--set", "lr"],
    "no threads": ["train", "--threads", "0"],
    "threads as text": ["train", "--threads", "many"],
    "no epochs": ["train", "--epochs", "0"],
    "empty batch": ["train", "--batch-size", "0"],
    "zero width": ["train", "--hidden", "0"],
    "width as text": ["train", "--hidden", "wide"],
    "too large to allocate": ["train", "--hidden", "100000000,100000000"],
    "unknown device": ["train", "--device", "tpu"],
    "unknown observer": ["train", "--observe", "nope"],
    "model for other data": ["train", "--model", "lenet5", "--data", "mnist1d"],
    "unknown rule in a bench": ["bench", "--rules", "bp,nope"],
    "options for a rule not in the bench": ["bench", "--set", "bogus.lr=1"],
    "no seeds": ["bench", "--seeds", "0"],
    "empty output folder": ["bench", "--out", ""],
    "unknown rule on a card": ["card", "--rule", "nope"],
    "bad option on a card": ["card", "--rule", "bp", "--set", "lr=abc"],
}


@pytest.mark.parametrize("argv", BAD_ARGUMENTS.values(), ids=BAD_ARGUMENTS.keys())
def test_bad_arguments_end_in_one_clear_line(argv, capsys):
    argv = argv[:1] + TINY + argv[1:] if argv[0] == "train" else argv  # the case's own flags come last and win
    assert_one_clear_line(*run(argv, capsys))


@pytest.mark.parametrize(
    "argv",
    [
        ["bench", "--out", "{file}"],
        ["demo", "--out", "{file}"],
        ["report", "{folder}", "--out", "{file}"],
        ["card", "--rule", "bp", "--out", "{folder}"],
        ["card", "--rule", "bp", "--out", "{file}/cards.json"],
    ],
)
def test_paths_of_the_wrong_kind_are_refused_before_any_work(argv, tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    argv = [a.format(file=tmp_path / "file", folder=tmp_path) for a in argv]
    assert_one_clear_line(*run(argv, capsys))


def test_huge_values_are_cut_in_messages(capsys):
    status, err = run(["train", "--set", "lr=" + "9" * 100_000, *TINY], capsys)
    assert_one_clear_line(status, err)
    status, err = run(["train", "--set", "optimizer=" + "x" * 100_000, *TINY], capsys)
    assert_one_clear_line(status, err)


def test_ctrl_c_during_start_up_is_one_line(monkeypatch, capsys):
    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "build_parser", interrupted)
    status, err = run(["train"], capsys)
    assert status == 130 and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_bug_keeps_its_traceback(monkeypatch):
    """Only the project's own error types become one line: a plain ValueError is a bug."""

    def broken(args):
        raise ValueError("a bug")

    monkeypatch.setattr(cli, "cmd_data", broken)
    with pytest.raises(ValueError, match="a bug"):
        main(["data", "list"])


def test_a_folder_named_plasticity_beside_a_script_is_named(tmp_path, monkeypatch, capsys):
    """`import plasticity` that found the user's own folder (a script beside a folder named
    `plasticity`), while the CLI module came from the installed package, is refused with the
    folder's name, before anything else runs (not an AttributeError later)."""
    (tmp_path / "plasticity").mkdir()
    (tmp_path / "plasticity" / "__init__.py").write_text("")
    impostor = types.ModuleType("plasticity")
    impostor.__file__ = str(tmp_path / "plasticity" / "__init__.py")
    monkeypatch.setitem(sys.modules, "plasticity", impostor)
    status, err = run(["data", "list"], capsys)
    assert_one_clear_line(status, err)
    assert str(tmp_path / "plasticity") in err


OPTION_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=2),
)


@given(rule=st.sampled_from(sorted(RULES)), value=OPTION_VALUES, data=st.data())
def test_any_option_value_is_taken_with_its_type_or_refused(rule, value, data):
    """`--set KEY=VALUE` for every rule and option: a config whose options have their declared
    types, or a ConfigError with a short message — never a crash later, in training."""
    option = data.draw(st.sampled_from(RULES[rule].config_class.field_names()))
    try:
        config = make_config(rule, {option: value})
    except ConfigError as error:
        assert len(str(error)) < 2 * BRIEF + 200
        return
    taken = getattr(config, option)
    default = getattr(RULES[rule].config_class(), option)
    assert taken is None or type(taken) is type(default) or default is None
