"""Atomic writes leave no half-written or temporary file behind, however they are interrupted."""

import builtins

import pytest

from plasticity import io


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
