"""Atomic writes leave no half-written or temporary file behind, however they are interrupted; a
JSON-lines file torn by an interruption loses only its torn line, and no later record."""

import builtins
import warnings
from unittest.mock import patch

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plasticity import io
from plasticity.errors import ConfigError, FileCheckError


def test_an_interrupted_body_leaves_the_destination_and_no_temp_file(tmp_path):
    target = tmp_path / "results.json"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt), io.atomic_write(target) as handle:
        handle.write(b"half")
        raise KeyboardInterrupt
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_an_interruption_just_after_the_temp_file_is_created_removes_it(tmp_path, monkeypatch):
    created = []

    def open_then_interrupt(path, mode="r", *args, **kwargs):
        builtins.open(path, mode, *args, **kwargs).close()  # the file now exists
        created.append(path)
        raise KeyboardInterrupt

    monkeypatch.setattr(io, "open", open_then_interrupt, raising=False)
    with pytest.raises(KeyboardInterrupt):
        io.atomic_write_json(tmp_path / "results.json", {"a": 1})
    assert created and list(tmp_path.iterdir()) == []


def test_a_clean_write_replaces_the_destination(tmp_path):
    io.atomic_write_json(tmp_path / "sub" / "results.json", {"a": 1})
    assert (tmp_path / "sub" / "results.json").read_text() == '{\n  "a": 1\n}\n'
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["results.json"]


# ------------------------------------------------------------------------------ JSON lines
RECORDS = [{"rule": "bp", "seed": 0, "note": "é"}, {"rule": "fa", "seed": 1, "acc": 0.5}]


def lines_of(path):
    return path.read_bytes().split(b"\n")


def test_a_torn_last_line_is_dropped_by_the_next_append(tmp_path):
    path = tmp_path / "results.jsonl"
    for record in RECORDS:
        io.append_jsonl(path, record)
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"rule": "dfa", "se')  # the power went out mid-line
    assert io.read_jsonl(path) == RECORDS  # a reader skips the torn line
    with pytest.warns(RuntimeWarning, match="dropped a half-written last line"):
        io.append_jsonl(path, {"rule": "sign"})
    io.append_jsonl(path, {"rule": "pc"})
    assert io.read_jsonl(path) == [*RECORDS, {"rule": "sign"}, {"rule": "pc"}]
    assert path.read_bytes() == whole + b'{"rule": "sign"}\n{"rule": "pc"}\n'


@given(st.data())
def test_any_cut_of_the_last_line_keeps_every_whole_record(tmp_path_factory, data):
    """Cut the last record anywhere (a byte of a UTF-8 character included): the next append keeps
    the earlier records, keeps the cut record only if nothing but its line break was lost, and
    appends after a line break. Small read chunks make the backwards search cross chunks."""
    path = tmp_path_factory.mktemp("jsonl") / "results.jsonl"
    records = data.draw(st.lists(st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=8), max_size=3), min_size=1, max_size=4))
    for record in records:
        io.append_jsonl(path, record)
    whole = path.read_bytes()
    last = len(whole) - len(lines_of(path)[-2]) - 1  # where the last record's line starts
    cut = data.draw(st.integers(last, len(whole) - 1))
    path.write_bytes(whole[:cut])
    with warnings.catch_warnings(), patch.object(io, "TAIL_CHUNK", 3):
        warnings.simplefilter("ignore", RuntimeWarning)
        io.append_jsonl(path, {"new": True})
    kept = records if cut == len(whole) - 1 else records[:-1]
    assert io.read_jsonl(path) == [*kept, {"new": True}]
    assert path.read_bytes().endswith(b'{"new": true}\n')


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b'{"a": 1}\n{"a": \n{"a": 2}\n', "line 2 is not a JSON object"),  # a torn line that an old version appended after
        (b'{"a": 1}\n[1, 2]\n', "line 2 is not a JSON object"),
        (b'\xff\xfe{"a": 1}\n{"a": 2}\n', "line 1 is not a JSON object"),
        (b"[" * 100_000 + b"\n{}\n", "line 1 is not a JSON object"),  # too deeply nested to parse
    ],
)
def test_a_damaged_line_before_the_last_is_a_clear_error(tmp_path, content, problem):
    path = tmp_path / "results.jsonl"
    path.write_bytes(content)
    with pytest.raises(FileCheckError, match=problem) as error:
        io.read_jsonl(path)
    assert str(path) in str(error.value) and "\n" not in str(error.value)


def test_a_folder_in_place_of_a_results_file_is_a_clear_error(tmp_path):
    (tmp_path / "results.jsonl").mkdir()
    with pytest.raises(FileCheckError, match="cannot read"):
        io.read_jsonl(tmp_path / "results.jsonl")
    assert io.read_jsonl(tmp_path / "missing.jsonl") == []


def test_output_folders_are_checked_before_any_work(tmp_path):
    (tmp_path / "file").write_text("x")
    bad = {
        "": "is empty",
        "  ": "is empty",
        tmp_path / "file": "is a file",
        tmp_path / "file" / "sub": "lies under .*, which is a file",
        "a\0b": "cannot be used",
    }
    for path, problem in bad.items():
        with pytest.raises(ConfigError, match=problem):
            io.output_folder(path)
    assert io.output_folder(tmp_path / "new" / "sub").is_dir()
    assert (tmp_path / "file").read_text() == "x"
