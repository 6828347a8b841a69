"""Saving and loading a StructuralMemory: exact round trip, no pickle, clear errors for bad files."""

from __future__ import annotations

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import save_file

from plasticity.memory import MemoryFileError, StructuralMemory


@pytest.fixture()
def data():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(5, 12))
    y = np.repeat(np.arange(5), 30)
    X = centres[y] + 0.3 * rng.normal(size=(len(y), 12))
    return X, y


def trained(X, y, labels=None):
    memory = StructuralMemory(rank=2, tolerance=2.5, n_exemplars=2, evolution_threshold=0.3, random_state=3)
    labels = y if labels is None else labels
    memory.partial_fit(X[y < 3], labels[y < 3], keys=[f"k{i}" for i in np.flatnonzero(y < 3)])
    return memory


def test_round_trip_is_exact_and_learning_continues_identically(tmp_path, data):
    X, y = data
    memory = trained(X, y)
    path = tmp_path / "memory.safetensors"
    memory.save(path)
    loaded = StructuralMemory.load(path)
    assert loaded.get_params() == memory.get_params()
    for method in ("predict", "predict_proba", "decision_function", "abstention_score"):
        np.testing.assert_array_equal(getattr(loaded, method)(X), getattr(memory, method)(X))
    assert str(loaded.explain(X[:1])[0]) == str(memory.explain(X[:1])[0])
    assert loaded.events_ == memory.events_ and loaded.exemplar_keys_ == memory.exemplar_keys_
    # the next task lands identically in both, reservoir draws included
    memory.partial_fit(X[y >= 3], y[y >= 3])
    loaded.partial_fit(X[y >= 3], y[y >= 3])
    memory.save(tmp_path / "a.safetensors")
    loaded.save(tmp_path / "b.safetensors")
    assert saved_contents(tmp_path / "a.safetensors") == saved_contents(tmp_path / "b.safetensors")


def saved_contents(path):
    """Metadata and every array's bytes (safetensors orders header keys arbitrarily, so not the raw file)."""
    with safe_open(str(path), framework="np") as handle:
        return handle.metadata(), {key: handle.get_tensor(key).tobytes() for key in handle.keys()}


def test_string_labels_round_trip(tmp_path, data):
    X, y = data
    names = np.array(["alarm", "balance", "card", "date", "exchange"])[y]
    memory = trained(X, y, names)
    memory.save(tmp_path / "m")
    loaded = StructuralMemory.load(tmp_path / "m")
    assert list(loaded.classes_) == ["alarm", "balance", "card"]
    np.testing.assert_array_equal(loaded.predict(X), memory.predict(X))


def test_file_holds_no_pickle(tmp_path, data):
    X, y = data
    trained(X, y).save(tmp_path / "m")
    raw = (tmp_path / "m").read_bytes()
    assert b"\x80\x04\x95" not in raw and b"numpy.core.multiarray" not in raw
    assert raw[8:9] == b"{"  # a safetensors JSON header


def test_truncated_tampered_and_foreign_files_raise_clear_errors(tmp_path, data):
    X, y = data
    path = tmp_path / "m"
    trained(X, y).save(path)
    raw = path.read_bytes()

    (tmp_path / "short").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(MemoryFileError, match="truncated"):
        StructuralMemory.load(tmp_path / "short")

    tampered = bytearray(raw)
    tampered[-20] ^= 0x01  # one bit of one stored number
    (tmp_path / "tampered").write_bytes(bytes(tampered))
    with pytest.raises(MemoryFileError, match="modified or damaged"):
        StructuralMemory.load(tmp_path / "tampered")

    edited = raw.replace(b'\\"tolerance\\": 2.5', b'\\"tolerance\\": 9.5')
    assert edited != raw
    (tmp_path / "edited").write_bytes(edited)
    with pytest.raises(MemoryFileError, match="modified or damaged"):
        StructuralMemory.load(tmp_path / "edited")

    save_file({"w": np.zeros(3)}, str(tmp_path / "foreign"))
    with pytest.raises(MemoryFileError, match="not a structural memory"):
        StructuralMemory.load(tmp_path / "foreign")

    with pytest.raises(MemoryFileError, match="cannot read"):
        StructuralMemory.load(tmp_path / "missing")


def test_saving_an_unfitted_memory_is_refused(tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        StructuralMemory().save(tmp_path / "m")


def test_a_file_of_another_format_version_says_so(tmp_path, data, monkeypatch):
    from plasticity.memory import persist

    X, y = data
    monkeypatch.setattr(persist, "FORMAT", "plasticity-structural-memory/1")
    trained(X, y).save(tmp_path / "old")
    monkeypatch.undo()
    with pytest.raises(MemoryFileError, match="format 'plasticity-structural-memory/1', written by another version.*fit the memory again"):
        StructuralMemory.load(tmp_path / "old")


def test_a_second_moment_smaller_than_the_centroids_imply_is_refused(tmp_path, data):
    from plasticity.memory.persist import read_memory_file, write_memory_file

    X, y = data
    trained(X, y).save(tmp_path / "m")
    state, arrays = read_memory_file(tmp_path / "m")
    arrays["root.moment"] = arrays["root.moment"] * 0.5  # less spread than the stored centroids alone
    write_memory_file(tmp_path / "forged", state, arrays)
    with pytest.raises(MemoryFileError, match="second moment is smaller"):
        StructuralMemory.load(tmp_path / "forged")


def test_the_file_keeps_the_second_moment_as_its_upper_triangle(tmp_path, data):
    from plasticity.memory.persist import read_memory_file, write_memory_file

    X, y = data
    memory = trained(X, y)
    memory.save(tmp_path / "m")
    state, arrays = read_memory_file(tmp_path / "m")
    d = X.shape[1]
    assert arrays["root.moment"].shape == (d * (d + 1) // 2,)
    np.testing.assert_array_equal(StructuralMemory.load(tmp_path / "m").store_.moment, memory.store_.moment)
    arrays["root.moment"] = np.triu(memory.store_.moment) + np.triu(memory.store_.moment, 1).T  # whole, as format 2 kept it
    write_memory_file(tmp_path / "full", state, arrays)
    with pytest.raises(MemoryFileError, match=r"second moment is float64 \(\d+, \d+\).*upper triangle"):
        StructuralMemory.load(tmp_path / "full")


def test_a_format_2_file_is_read_as_format_3(tmp_path, data, monkeypatch):
    from plasticity.memory import persist

    X, y = data
    memory = trained(X, y)
    memory.save(tmp_path / "new")
    state, arrays = persist.read_memory_file(tmp_path / "new")
    arrays["root.moment"] = np.triu(memory.store_.moment) + np.triu(memory.store_.moment, 1).T
    monkeypatch.setattr(persist, "FORMAT", persist.UPGRADABLE)
    persist.write_memory_file(tmp_path / "old", state, arrays)
    monkeypatch.undo()
    old = StructuralMemory.load(tmp_path / "old")
    np.testing.assert_array_equal(old.store_.moment, memory.store_.moment)
    np.testing.assert_array_equal(old.decision_function(X), memory.decision_function(X))
    old.save(tmp_path / "again")  # and it is saved in today's format, with today's contents
    (state_again, again), (state_new, new) = persist.read_memory_file(tmp_path / "again"), persist.read_memory_file(tmp_path / "new")
    assert state_again == state_new and again.keys() == new.keys()
    assert all(np.array_equal(again[name], new[name]) for name in new)
