"""Hostile inputs to the structural memory's area (issue 20, items 1–3 and 9): every class ends in
one clear error or a correct result, and `plasticity continual` writes only where it is told.

- `continual` arguments: wrongly typed or unknown --set values, --out / --cache-dir that cannot be
  what they name, the removed --no-doc and --doc; all refused in one line before any work.
- Memory files forged with a recomputed checksum: refused by the checks of their contents
  (MemoryFileError naming the file); random edits either are refused or load into a memory
  whose answers are finite.
- Embedding-cache entries with a malformed header, non-finite values or random damage: a warning
  and the right embeddings, recomputed.
- StructuralMemory edge cases: inputs at 2^±600, the unknown label, random_state, structural
  parameters changed after learning.
"""

from __future__ import annotations

import hashlib
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.numpy import save as save_arrays
from test_memory_encoders import TEXTS, StubModel

from plasticity.errors import ConfigError
from plasticity.lab.cli import main as plasticity_main
from plasticity.lab.continual import cli as memory_cli
from plasticity.lab.continual import experiment
from plasticity.memory import MemoryFileError, StructuralMemory
from plasticity.memory.encoders import CACHE_FORMAT, CachedEncoder, SentenceEncoder
from plasticity.memory.persist import FORMAT, _digest, read_memory_file, write_memory_file
from plasticity.memory.structural import STRUCTURAL

TINY = ["continual", "--data", "digits", "--tasks", "2", "--seeds", "1", "--methods", "ncm", "--quiet"]


def blobs(n_classes: int = 3, per_class: int = 12, dim: int = 8, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, dim))
    y = np.repeat(np.arange(n_classes), per_class)
    return centres[y] + 0.2 * rng.normal(size=(len(y), dim)), y


X, Y = blobs()


def one_line(capsys) -> str:
    """The command's stderr, checked to be one line with no traceback."""
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


# =========================================================================== continual arguments
@pytest.fixture()
def no_work(monkeypatch):
    """Loading a dataset fails the test: every refusal must come before any work."""

    def forbidden(*args, **kwargs):
        raise AssertionError("the command started working before refusing its arguments")

    monkeypatch.setattr(experiment, "load", forbidden)


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("rank=abc", "rank='abc' (must be a whole number"),
        ("rank=1.5", "rank=1.5 (must be a whole number"),
        ("rank=true", "rank=True (must be a whole number"),
        ("tolerance=", "tolerance='' (must be a number > 0"),
        ("tolerance=-1", "tolerance=-1"),
        ("tolerance=1e999", "tolerance=inf"),
        ("beam=0", "beam=0"),
        ("normalize=1", "normalize=1 (must be true or false)"),
        ("unknown_label=[1]", "unknown_label=[1]"),
        ("nonsense=3", "unknown StructuralMemory parameter(s) 'nonsense'"),
        ("random_state=1", "random_state cannot be set"),
        ("rank=" + "x" * 5000, "… (5002 characters)"),  # a huge value is cut in the message
    ],
)
def test_bad_set_values_are_one_line_before_any_work(setting, message, no_work, capsys):
    assert plasticity_main([*TINY, "--set", setting]) == 2
    err = one_line(capsys)
    assert err.startswith("plasticity: error: ") and message in err and len(err) < 600


@pytest.mark.parametrize("case", ["out is a file", "out is empty", "out under a file", "cache-dir is a file"])
def test_paths_that_cannot_be_what_they_name_are_refused_before_any_work(case, tmp_path, no_work, capsys):
    file = tmp_path / "file"
    file.write_text("x")
    argv = {
        "out is a file": ["--out", str(file)],
        "out is empty": ["--out", ""],
        "out under a file": ["--out", str(file / "run")],
        "cache-dir is a file": ["--cache-dir", str(file)],
    }[case]
    assert plasticity_main([*TINY, *argv]) == 2
    assert one_line(capsys).startswith("plasticity: error: --")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # nothing created


def test_doc_options_are_gone_and_no_doc_is_written(tmp_path, monkeypatch, capsys):
    for option in ("--no-doc", "--doc=docs/memory.md"):
        with pytest.raises(SystemExit) as exit_:
            plasticity_main([*TINY, option])
        assert exit_.value.code == 2
    capsys.readouterr()
    monkeypatch.chdir(tmp_path)  # a repository's working tree, with its published doc
    doc = tmp_path / "docs" / "memory.md"
    doc.parent.mkdir()
    doc.write_text("# published\n")
    assert plasticity_main([*TINY, "--out", "run"]) == 0
    assert doc.read_text() == "# published\n"
    files = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()}
    assert {name for name in files if not name.startswith("run/")} == {"docs/memory.md"}  # only --out was written
    assert {"run/results.json", "run/summary.json"} <= files


def test_an_unknown_label_that_is_a_class_is_refused_before_encoding(monkeypatch, capsys):
    def forbidden(*args, **kwargs):
        raise AssertionError("encoded before refusing")

    monkeypatch.setattr(experiment, "embed_dataset", forbidden)
    assert plasticity_main([*TINY, "--methods", "structural", "--set", "unknown_label=3"]) == 2
    assert "unknown_label=3 is also a class label" in one_line(capsys)
    assert plasticity_main([*TINY, "--tasks", "11"]) == 2
    assert "tasks must be between 1 and the number of classes (10)" in one_line(capsys)


def test_module_entry_point_catches_project_errors_only(monkeypatch, capsys):
    def fail(error):
        def command(args):
            raise error

        return command

    monkeypatch.setattr(memory_cli, "cmd_continual", fail(ConfigError("bad setting")))
    assert memory_cli.main(["--data", "digits"]) == 2
    assert one_line(capsys) == "plasticity continual: error: bad setting"
    monkeypatch.setattr(memory_cli, "cmd_continual", fail(ValueError("a bug")))
    with pytest.raises(ValueError, match="a bug"):  # a bug keeps its traceback
        memory_cli.main(["--data", "digits"])


PARAMETERS = sorted(StructuralMemory().get_params())
VALUES = st.one_of(
    st.text(max_size=10),
    st.sampled_from(["0", "1", "2", "-1", "1.5", "1e-300", "1e300", "true", "false", "null", "[]", "{}", '"x"', "NaN", "9" * 40]),
)


@given(key=st.one_of(st.sampled_from(PARAMETERS), st.text(min_size=1, max_size=8).filter(lambda k: "=" not in k and k.strip())), text=VALUES)
@settings(max_examples=80, deadline=None)
def test_any_set_value_gives_one_clear_error_or_a_working_memory(key, text):
    key, value = memory_cli._setting(f"{key}={text}")
    try:
        experiment.ContinualConfig(memory={key: value}).validate()
        memory = StructuralMemory(**{key: value}).fit(X, Y)  # an unknown label that is a class is refused here
    except ConfigError as error:
        assert "\n" not in str(error) and len(str(error)) < 600
        return
    predicted = memory.predict(X)
    assert set(predicted.tolist()) <= {*Y.tolist(), memory.unknown_label_}
    assert np.isfinite(memory.predict_proba(X)).all() and np.isfinite(memory.abstention_score(X)).all()


# =========================================================================== forged memory files
@pytest.fixture()
def saved(tmp_path) -> Path:
    memory = StructuralMemory(rank=2, tolerance=2.5, n_exemplars=2, evolution_threshold=0.3)
    memory.partial_fit(X[Y < 2], Y[Y < 2])
    memory.partial_fit(X[Y == 2], Y[Y == 2])  # two calls: nodes created in call 0 and call 1
    path = tmp_path / "memory.safetensors"
    memory.save(path)
    return path


def forge(path: Path, edit) -> None:
    """Apply `edit(state, arrays)` in place and write the file back with a fresh, valid checksum:
    only the checks of its contents can tell."""
    state, arrays = read_memory_file(path)
    arrays = {name: array.copy() for name, array in arrays.items()}
    edit(state, arrays)
    write_memory_file(path, state, arrays)


def put(name, index, value):
    return lambda state, arrays: arrays[name].__setitem__(index, value)


FORGERIES = {
    "parent cycle": put("node.parent", 2, 3),  # node 3 hangs under 2 and 2 under 3
    "own parent": put("node.parent", 2, 2),
    "parent out of range": put("node.parent", 2, 10**9),
    "negative count": lambda s, a: (a["node.count"].__setitem__(2, -5), a["node.hist"].__setitem__((2, 0), -5)),
    "counts that do not add up": put("node.count", 2, 7),
    "NaN centroid": put("node.mean", (2, 0), np.nan),
    "infinite scatter": put("node.scatter", 1, np.inf),
    "negative scatter": put("node.scatter", 1, -1.0),
    "centroid beyond range": put("node.mean", (2, 0), 1e300),
    "direction longer than 1": put("node.basis", (2, 0, 0), 50.0),
    "label out of range": put("node.label", 2, 99),
    "topic with a label": put("node.label", 1, 0),
    "wrong depth": put("node.depth", 2, 7),
    "created in a later call": put("node.created", 2, 99),
    "wrong shape": lambda s, a: a.__setitem__("node.mean", a["node.mean"][:, :-1].copy()),
    "wrong dtype": lambda s, a: a.__setitem__("node.count", a["node.count"].astype(np.float64)),
    "missing array": lambda s, a: a.pop("node.hist"),
    "extra array": lambda s, a: a.__setitem__("payload", np.zeros(3)),
    "exemplar in a topic": put("exemplar.node", 0, 1),
    "exemplar out of range": put("exemplar.node", 0, -7),
    "NaN exemplar": put("exemplar.vector", (0, 0), np.nan),
    "too many exemplars": lambda s, a: (
        a.__setitem__("exemplar.node", np.r_[a["exemplar.node"], a["exemplar.node"][:1]]),
        a.__setitem__("exemplar.vector", np.r_[a["exemplar.vector"], a["exemplar.vector"][:1]]),
        s["exemplar_keys"].append("extra"),
    ),
    "exemplar keys short": lambda s, a: s["exemplar_keys"].pop(),
    "exemplar key not a string": lambda s, a: s["exemplar_keys"].__setitem__(0, 3),
    "negative tolerance": lambda s, a: s["params"].__setitem__("tolerance", -1.0),
    "NaN tolerance": lambda s, a: s["params"].__setitem__("tolerance", float("nan")),
    "unknown parameter": lambda s, a: s["params"].__setitem__("evil", 1),
    "unknown label is a class": lambda s, a: s["params"].__setitem__("unknown_label", 0),
    "parameters not an object": lambda s, a: s.__setitem__("params", [1, 2]),
    "rank mismatch": lambda s, a: s.__setitem__("rank", 1),
    "dim zero": lambda s, a: s.__setitem__("dim", 0),
    "features a bool": lambda s, a: s.__setitem__("n_features_in", True),
    "duplicate labels": lambda s, a: s["labels"].__setitem__(1, s["labels"][0]),
    "mixed labels": lambda s, a: s["labels"].__setitem__(0, "zero"),
    "negative event count": lambda s, a: s["events"].__setitem__("fold", -1),
    "samples seen disagree": lambda s, a: s.__setitem__("n_samples_seen", s["n_samples_seen"] + 1),
    "generator state garbage": lambda s, a: s.__setitem__("rng_state", {"bit_generator": "PCG64", "state": "x"}),
    "generator of another kind": lambda s, a: s.__setitem__("rng_state", {"bit_generator": "MT19937", "state": {"key": [0], "pos": 0}}),
    "missing field": lambda s, a: s.pop("events"),
}


@pytest.mark.parametrize("name", list(FORGERIES))
def test_forged_files_with_a_valid_checksum_are_refused_by_their_contents(name, saved):
    forge(saved, FORGERIES[name])
    with pytest.raises(MemoryFileError) as error:
        StructuralMemory.load(saved)
    assert str(saved) in str(error.value) and "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("state_json", "problem"),
    [("[]", "not an object"), ('"text"', "not an object"), ("{", "not readable JSON"), ("[" * 100_000 + "]" * 100_000, "not readable JSON")],
)
def test_a_state_that_is_no_json_object_or_nests_deeply_is_refused(state_json, problem, saved):
    _, arrays = read_memory_file(saved)
    saved.write_bytes(save_arrays(arrays, metadata={"format": FORMAT, "state": state_json, "sha256": _digest(state_json, arrays)}))
    with pytest.raises(MemoryFileError, match=problem):
        StructuralMemory.load(saved)


NASTY = [np.nan, np.inf, -np.inf, -1, 0, 1, 2, 7, 2**40, -(2**40), 1e300, 0.5, -0.5]


@given(data=st.data())
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_single_edit_is_refused_or_loads_a_memory_with_finite_answers(saved, data):
    original = saved.read_bytes()
    state, arrays = read_memory_file(saved)
    name = data.draw(st.sampled_from(sorted(a for a in arrays if arrays[a].size)))
    array = arrays[name].copy()
    index = data.draw(st.integers(0, array.size - 1))
    value = data.draw(st.sampled_from(NASTY if array.dtype.kind == "f" else [v for v in NASTY if isinstance(v, int)]))
    array.flat[index] = value
    write_memory_file(saved, state, {**arrays, name: array})
    try:
        memory = StructuralMemory.load(saved)
    except MemoryFileError as error:
        assert str(saved) in str(error)
    else:
        assert np.isfinite(memory.abstention_score(X)).all() and np.isfinite(memory.predict_proba(X)).all()
        memory.explain(X[:2])
    finally:
        saved.write_bytes(original)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@given(data=st.data())
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_replaced_state_field_is_refused_or_loads_a_working_memory(saved, data):
    original = saved.read_bytes()
    state, arrays = read_memory_file(saved)
    field = data.draw(st.sampled_from(sorted(state)))
    if isinstance(state[field], dict) and data.draw(st.booleans()):  # one entry of params, events, rng_state
        key = data.draw(st.sampled_from(sorted(state[field])))
        state[field][key] = data.draw(JSON)
    else:
        state[field] = data.draw(JSON)
    write_memory_file(saved, state, arrays)
    try:
        memory = StructuralMemory.load(saved)
    except MemoryFileError as error:
        assert str(saved) in str(error)
    else:
        assert np.isfinite(memory.abstention_score(X)).all()
        memory.partial_fit(X[:5], Y[:5])  # and it goes on learning
    finally:
        saved.write_bytes(original)


# =========================================================================== the embedding cache
@pytest.fixture()
def cache(tmp_path):
    model = StubModel()
    cached = CachedEncoder(SentenceEncoder(model, name="stub-v1", progress=False), tmp_path)
    first = cached.encode(TEXTS)
    path = cached.path_for(TEXTS)
    return cached, model, first, path, path.read_bytes()


def entry(embeddings: np.ndarray, path: Path, extra: dict[str, np.ndarray] | None = None, **changes) -> bytes:
    """A cache file as `CachedEncoder` writes it (its SHA-256 recomputed), with header entries
    changed (None: left out) and `extra` arrays added."""
    metadata = {
        "format": CACHE_FORMAT,
        "identity": "stub-v1",
        "key": path.stem,
        "sha256": hashlib.sha256(embeddings.tobytes()).hexdigest(),
        "compute_seconds": "0.001",
        **changes,
    }
    return save_arrays({"embeddings": embeddings, **(extra or {})}, metadata={k: v for k, v in metadata.items() if v is not None})


def raw_header(header: str) -> bytes:
    return struct.pack("<Q", len(header)) + header.encode()


@pytest.mark.parametrize(
    ("case", "problem"),
    [
        ("NaN values", "NaN or infinite"),
        ("infinite values", "NaN or infinite"),
        ("float64 values", "float64"),
        ("missing rows", "for 3 inputs"),
        ("no header", "header"),
        ("foreign format", "header"),
        ("another encoder", "header"),
        ("another key", "header"),
        ("duration not a number", "compute_seconds"),
        ("duration NaN", "compute_seconds"),
        ("negative duration", "compute_seconds"),
        ("no duration", "compute_seconds"),
        ("extra array", "arrays"),
        ("header a list", "cannot be read"),
        ("header nested deeply", "cannot be read"),
        ("header longer than the file", "cannot be read"),
    ],
)
def test_malformed_cache_entries_are_recomputed_with_a_warning(case, problem, cache):
    cached, model, first, path, _ = cache
    nan = first.copy()
    nan[0, 0] = np.nan
    raw = {
        "NaN values": lambda: entry(nan, path),
        "infinite values": lambda: entry(np.full_like(first, np.inf), path),
        "float64 values": lambda: entry(first.astype(np.float64), path),
        "missing rows": lambda: entry(first[:2], path),
        "no header": lambda: save_arrays({"embeddings": first}),
        "foreign format": lambda: entry(first, path, format="other/1"),
        "another encoder": lambda: entry(first, path, identity="stub-v2"),
        "another key": lambda: entry(first, path, key="0" * 64),
        "duration not a number": lambda: entry(first, path, compute_seconds="abc"),
        "duration NaN": lambda: entry(first, path, compute_seconds="nan"),
        "negative duration": lambda: entry(first, path, compute_seconds="-1"),
        "no duration": lambda: entry(first, path, compute_seconds=None),
        "extra array": lambda: entry(first, path, extra={"more": first}),
        "header a list": lambda: raw_header("[]"),
        "header nested deeply": lambda: raw_header('{"__metadata__": {"a": "b"}, "x": ' + "[" * 5000 + "]" * 5000 + "}"),
        "header longer than the file": lambda: struct.pack("<Q", 10**9) + b"{}",
    }[case]()
    path.write_bytes(raw)
    with pytest.warns(RuntimeWarning, match=problem):
        again = cached.encode(TEXTS)
    np.testing.assert_array_equal(again, first)
    assert model.calls == 2  # recomputed ...
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cached.encode(TEXTS)  # ... and the entry repaired: a clean hit
    assert model.calls == 2


@given(data=st.data())
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_damaged_cache_entry_never_gives_wrong_embeddings(cache, data):
    cached, _, first, path, written = cache
    raw = bytearray(written)  # every example damages the entry as first written (a recomputed one differs in its timing)
    damage = data.draw(st.sampled_from(["truncate", "flip", "append"]))
    if damage == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    elif damage == "flip":
        raw[data.draw(st.integers(0, len(raw) - 1))] ^= data.draw(st.integers(1, 255))
    else:
        raw += data.draw(st.binary(min_size=1, max_size=16))
    path.write_bytes(bytes(raw))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        np.testing.assert_array_equal(cached.encode(TEXTS), first)


# =========================================================================== StructuralMemory edge cases
@given(exponent=st.integers(-600, 600))
@settings(max_examples=40, deadline=None)
def test_normalized_inputs_at_any_scale_give_the_same_memory_and_answers(exponent):
    memory = StructuralMemory(rank=2, tolerance=2.0).fit(X, Y)
    scaled = np.ldexp(X, exponent)
    np.testing.assert_array_equal(memory.decision_function(scaled), memory.decision_function(X))
    np.testing.assert_array_equal(memory.predict(scaled), memory.predict(X))
    again = StructuralMemory(rank=2, tolerance=2.0).fit(scaled, Y)
    np.testing.assert_array_equal(again.store_.mean, memory.store_.mean)


def test_unnormalized_inputs_too_large_are_refused_and_tiny_ones_stay_finite():
    with pytest.raises(ConfigError, match="normalize=True"):
        StructuralMemory(normalize=False).fit(np.ldexp(X, 600), Y)
    memory = StructuralMemory(normalize=False, tolerance=2.0).fit(X, Y)
    with pytest.raises(ConfigError, match="rescale X"):
        memory.predict(np.ldexp(X, 600))
    tiny = StructuralMemory(normalize=False, tolerance=2.0).fit(np.ldexp(X, -600), Y)
    for values in (tiny.abstention_score(X), tiny.predict_proba(np.ldexp(X, -600)), tiny.decision_function(X)):
        assert np.isfinite(values).all()


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ([0, 1, 2], -1),
        ([-1, 4, 7], -2),  # CLINC150's out-of-scope id learned as a class: the unknown label avoids it
        ([1.0, 2.0, 3.0], 0.0),
        (["alarm", "balance", "card"], "unknown"),
        (["alarm", "unknown", "unknown_"], "unknown__"),
    ],
)
def test_the_default_unknown_label_is_no_class_and_of_the_classes_type(labels, expected):
    y = np.array(labels, dtype=object if isinstance(labels[0], str) else None)[Y]
    memory = StructuralMemory(rank=2, tolerance=3.0).fit(X, y)
    assert memory.unknown_label_ == expected and type(memory.unknown_label_) is type(expected)
    far = -X[:6] * 5.0  # the opposite side of the sphere: nothing there
    predicted = memory.predict(np.r_[X, far])
    assert list(predicted[-6:]) == [expected] * 6 and predicted.dtype.kind == np.asarray(labels).dtype.kind
    assert memory.score(far, y[:6]) == 0.0 and memory.score(X, y) > 0.9  # score works on abstentions
    assert memory.score(far, np.full(6, expected)) == 1.0


def test_an_unknown_label_that_is_a_class_is_refused():
    memory = StructuralMemory(unknown_label=1)
    with pytest.raises(ConfigError, match="unknown_label=1 is also a class label"):
        memory.fit(X, Y)
    assert not hasattr(memory, "store_")  # refused before anything was learned
    memory = StructuralMemory(unknown_label=5, tolerance=3.0).fit(X, Y)
    with pytest.raises(ConfigError, match="also a class"):
        memory.partial_fit(X[:2], [5, 5])  # a later class may not take the unknown label either
    with pytest.raises(ConfigError, match="also a class"):
        memory.set_params(unknown_label=2).predict(X)


def test_labels_of_another_kind_than_the_classes_learned_are_refused():
    memory = StructuralMemory().fit(X, np.array(["a", "b", "c"])[Y])
    size = memory.store_.size
    with pytest.raises(ConfigError, match="all strings or all numbers"):
        memory.partial_fit(X[:3], [0, 1, 2])
    assert memory.store_.size == size and list(memory.classes_) == ["a", "b", "c"]


@pytest.mark.parametrize("seed", [None, 7, np.random.RandomState(7)])
def test_random_state_accepts_what_scikit_learn_accepts(seed):
    memory = StructuralMemory(n_exemplars=1, random_state=seed).fit(X, Y)
    assert (memory.predict(X) == Y).mean() > 0.9
    if isinstance(seed, np.random.RandomState):  # a seed is drawn from it: the same generator state, the same reservoirs
        twin = StructuralMemory(n_exemplars=1, random_state=np.random.RandomState(7)).fit(X, Y)
        assert twin.exemplar_keys_ == memory.exemplar_keys_


@pytest.mark.parametrize("seed", [-1, 1.5, "7", True, np.random.default_rng(0)])
def test_other_random_states_are_refused(seed):
    with pytest.raises(ConfigError, match="random_state"):
        StructuralMemory(random_state=seed).fit(X, Y)


def test_a_random_state_object_cannot_be_saved_but_none_can(tmp_path):
    with pytest.raises(ConfigError, match="cannot save"):
        StructuralMemory(random_state=np.random.RandomState(0)).fit(X, Y).save(tmp_path / "m")
    StructuralMemory(random_state=None).fit(X, Y).save(tmp_path / "m")
    assert StructuralMemory.load(tmp_path / "m").random_state is None


CHANGES = {"rank": 1, "normalize": False, "n_exemplars": 1, "random_state": 5}


@pytest.mark.parametrize("name", STRUCTURAL)
def test_structural_parameters_cannot_change_after_learning(name, tmp_path):
    assert set(CHANGES) == set(STRUCTURAL)
    memory = StructuralMemory(rank=2).partial_fit(X, Y)
    before = memory.get_params()[name]
    memory.set_params(**{name: CHANGES[name]})
    for call in (lambda: memory.partial_fit(X, Y), lambda: memory.predict(X), lambda: memory.save(tmp_path / "m")):
        with pytest.raises(ConfigError, match=f"{name}=.*cannot take effect.*call fit"):
            call()
    memory.set_params(**{name: before}).predict(X)  # set back: it works again
    memory.set_params(**{name: CHANGES[name]}).fit(X, Y).predict(X)  # fit starts over with the new value


def test_other_parameters_take_effect_at_the_next_call():
    memory = StructuralMemory(rank=2, tolerance=1.0).fit(X, Y)
    scores = memory.abstention_score(X)
    memory.set_params(radius_prior=0.0)  # was silently ignored until the next partial_fit
    assert not np.array_equal(memory.abstention_score(X), scores)
    assert np.array_equal(StructuralMemory(rank=2, radius_prior=0.0).fit(X, Y).abstention_score(X), memory.abstention_score(X))
    with pytest.raises(ConfigError, match="tolerance=-2"):
        memory.set_params(tolerance=-2).predict(X)
