"""Data files and folders as a hostile user hands them over: every damaged IDX file, CLINC150 JSON,
MNIST-1D cache or data folder ends in a DataError of one short line that names the file (or a
correct result), never a traceback, a hang, a huge allocation or a silently wrong dataset."""

import gzip
import hashlib
import json
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_data import TINY_CLINC, idx_bytes, patch_md5, write_fake_idx_set, write_idx_gz

from plasticity.data import DataError, load
from plasticity.data.idx import IMAGES_MAGIC, LABELS_MAGIC, MAX_BYTES, parse_idx, read_idx_gz
from plasticity.data.sets import clinc150, mnist1d

SHORT = 600  # characters: the longest message a bad input may produce (a path included)
NAME = Path("fuzz.idx")


def assert_names(error: pytest.ExceptionInfo, *names: object) -> None:
    """One line, short, naming each of `names` (the file at fault)."""
    message = str(error.value)
    assert "\n" not in message and len(message) < SHORT, message[:SHORT]
    for name in names:
        assert str(name) in message, message[:SHORT]


# ---------------------------------------------------------------- IDX headers and bodies


@settings(max_examples=400, deadline=None)
@given(raw=st.binary(max_size=64))
def test_any_bytes_are_an_array_or_a_data_error(raw):
    try:
        array = parse_idx(raw, LABELS_MAGIC, NAME)
    except DataError as error:
        assert str(NAME) in str(error) and len(str(error)) < SHORT
        return
    assert array.ndim == 1 and len(raw) == 8 + array.size  # what parses is what the header declares


@settings(max_examples=300, deadline=None)
@given(
    dims=st.tuples(*[st.integers(0, 2**32 - 1) | st.integers(0, 4)] * 3),
    extra=st.integers(-3, 3),
)
def test_declared_dimensions_are_kept_or_refused_quickly(dims, extra):
    """A header may claim (2^32 − 1)^3 bytes: it is refused before anything is read or allocated."""
    size = int(np.prod(dims, dtype=object))
    body = b"\x07" * max(0, min(size, 64) + extra) if size <= 64 else b"\x07" * 16
    raw = struct.pack(">I", IMAGES_MAGIC) + struct.pack(">3I", *dims) + body
    try:
        array = parse_idx(raw, IMAGES_MAGIC, NAME)
    except DataError as error:
        message = str(error)
        assert str(NAME) in message and ("truncated or corrupt" in message or f"the {MAX_BYTES}" in message), message
        return
    assert array.shape == dims and len(body) == size


def test_a_file_claiming_more_than_the_bound_is_refused_unread(tmp_path):
    path = tmp_path / "huge-claim.gz"
    path.write_bytes(gzip.compress(struct.pack(">I3I", IMAGES_MAGIC, 60000, 28000, 28000)))
    with pytest.raises(DataError) as error:
        read_idx_gz(path, IMAGES_MAGIC)
    assert_names(error, path, "more than the")


def test_a_gzip_bomb_is_read_only_as_far_as_its_header_says(tmp_path):
    """20 MB of zeros behind a 5-label header: refused after reading six bytes of the body."""
    path = tmp_path / "bomb.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros(5)) + bytes(20_000_000), compresslevel=1))
    started = time.perf_counter()
    with pytest.raises(DataError) as error:
        read_idx_gz(path, LABELS_MAGIC)
    assert time.perf_counter() - started < 1
    assert_names(error, path, "declares dimensions (5,)", "holds more")


@pytest.mark.parametrize(
    "damage",
    ["empty", "not gzip", "cut in the header", "cut in the body", "cut in the gzip trailer", "garbage after it", "wrong magic", "bit flip"],
)
def test_damaged_idx_files_name_the_file(tmp_path, damage):
    path = tmp_path / "labels.gz"
    good = gzip.compress(idx_bytes(np.arange(200) % 10), mtime=0)
    damaged = {
        "empty": b"",
        "not gzip": b"plain text",
        "cut in the header": gzip.compress(idx_bytes(np.arange(200) % 10)[:6]),
        "cut in the body": gzip.compress(idx_bytes(np.arange(200) % 10)[:-1]),
        "cut in the gzip trailer": good[:-4],
        "garbage after it": good + b"garbage",
        "wrong magic": gzip.compress(idx_bytes(np.arange(200) % 10, magic=0x0803)),
        "bit flip": good[:30] + bytes([good[30] ^ 0x10]) + good[31:],
    }[damage]
    path.write_bytes(damaged)
    with pytest.raises(DataError) as error:
        read_idx_gz(path, LABELS_MAGIC)
    assert_names(error, path)


def test_idx_sets_that_parse_but_cannot_be_a_dataset(tmp_path, monkeypatch):
    """Empty files, too few images for a split, labels out of range, images of another size."""
    cases = {
        "no labels": ({"train-labels-idx1-ubyte.gz": np.zeros(0), "train-images-idx3-ubyte.gz": np.zeros((0, 28, 28))}, "train-labels"),
        "label 10": ({"train-labels-idx1-ubyte.gz": np.full(12, 10)}, "outside 0..9"),
        "14x14 images": ({"train-images-idx3-ubyte.gz": np.zeros((12, 14, 14))}, "expected 28x28"),
    }
    for name, (arrays, problem) in cases.items():
        root = tmp_path / name.replace(" ", "-")
        md5 = write_fake_idx_set(root)
        md5.update({file: write_idx_gz(root / file, array) for file, array in arrays.items()})
        patch_md5(monkeypatch, "MNIST", md5)
        with pytest.raises(DataError) as error:
            load("mnist", root=root)
        assert_names(error, root, problem)
    one = tmp_path / "one"
    patch_md5(monkeypatch, "MNIST", write_fake_idx_set(one, n_test=1))
    with pytest.raises(DataError) as error:
        load("mnist-t10k", root=one)  # 1 image: the 80/20 split leaves no test sample
    assert_names(error, "mnist-t10k", "test split holds no samples")


def test_damaged_files_are_still_refused_with_both_md5s(tmp_path):
    write_fake_idx_set(tmp_path)
    with pytest.raises(DataError) as error:
        load("mnist", root=tmp_path)
    assert_names(error, tmp_path / "train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873")
    actual = hashlib.md5((tmp_path / "train-images-idx3-ubyte.gz").read_bytes()).hexdigest()
    assert actual in str(error.value)


# ---------------------------------------------------------------- data folders


def test_roots_that_are_no_folder(tmp_path):
    file = tmp_path / "file"
    file.write_text("")
    for name in ("mnist", "clinc150", "digits"):
        with pytest.raises(DataError) as error:
            load(name, root=file)
        assert_names(error, file, "is a file, not a folder")
    with pytest.raises(DataError) as error:
        load("mnist", root=tmp_path / "missing")
    assert_names(error, tmp_path / "missing", "does not exist", "--root")
    with pytest.raises(DataError) as error:
        load("mnist", root="r" * 1_000_000)
    assert_names(error, "File name too long", "characters)")
    for bad in ("a\0b", 42):
        with pytest.raises(DataError) as error:
            load("mnist", root=bad)
        assert_names(error, "root folder")
    with pytest.raises(DataError) as error:
        load("n" * 1_000_000)
    assert_names(error, "unknown dataset", "characters)")


# ---------------------------------------------------------------- CLINC150's JSON


def _clinc(tmp_path: Path, content: bytes) -> Path:
    root = tmp_path / "clinc"
    root.mkdir(exist_ok=True)
    (root / "data_full.json").write_bytes(content)
    return root


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"", "not valid JSON"),
        (b"\xff\xfe{}", "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (json.dumps(TINY_CLINC).encode()[:-1] + b', "train": []}', "key 'train' is given twice"),
        (json.dumps({**TINY_CLINC, "train": []}).encode(), "the train split is empty"),
        (json.dumps({**TINY_CLINC, "test": [["x", "i" * 100_000]]}).encode(), "not in train"),
        (json.dumps({**TINY_CLINC, "val": [["x" * 100_000]]}).encode(), "characters)"),
        (json.dumps({**TINY_CLINC, "oos_test": {"a": 1}}).encode(), "should be a list"),
        (b"NaN", "expected a JSON object"),
    ],
)
def test_malformed_clinc150_files_name_the_file(tmp_path, content, problem):
    root = _clinc(tmp_path, content)
    with pytest.raises(DataError) as error:
        load("clinc150", root=root)
    assert_names(error, root / "data_full.json", problem)


def test_an_oversized_clinc150_file_is_refused_unread(tmp_path, monkeypatch):
    root = _clinc(tmp_path, json.dumps(TINY_CLINC).encode())
    monkeypatch.setattr(clinc150, "MAX_BYTES", 100)
    with pytest.raises(DataError) as error:
        load("clinc150", root=root)
    assert_names(error, root / "data_full.json", "more than the 100")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)
texts = st.text(max_size=8)
rows = st.lists(st.tuples(texts, st.sampled_from(["greet", "leave"])).map(list), max_size=3)
oos_rows = st.lists(st.tuples(texts, st.just("oos")).map(list), max_size=2)
valid_files = st.fixed_dictionaries(
    {
        "train": rows.map(lambda extra: [["hi", "greet"], ["bye", "leave"], *extra]),
        "val": rows,
        "test": rows,
        "oos_train": oos_rows,
        "oos_val": oos_rows,
        "oos_test": oos_rows,
    }
)
damages = st.dictionaries(
    st.sampled_from(["train", "val", "test", "oos_train", "oos_val", "oos_test", "extra"]),
    json_values | st.lists(st.lists(st.sampled_from(["hi", "greet", "oos", "new", ""]), max_size=3), max_size=3),
    max_size=2,
)
files = st.builds(
    lambda valid, damage, drop: {k: v for k, v in {**valid, **damage}.items() if k != drop}, valid_files, damages, st.sampled_from([None, "val", "oos_test"])
)


@settings(max_examples=300, deadline=None)
@given(content=files | json_values)
def test_any_json_is_a_dataset_or_a_data_error(tmp_path_factory, content):
    root = _clinc(tmp_path_factory.mktemp("clinc"), json.dumps(content).encode())
    try:
        data = load("clinc150", root=root)
    except DataError as error:
        assert str(root / "data_full.json") in str(error) and "\n" not in str(error) and len(str(error)) < SHORT
        return
    assert data.classes == tuple(sorted({intent for _, intent in content["train"]}))
    assert [data.classes[i] for i in data.test.y] == [intent for _, intent in content["test"]]
    assert all(len(split.x) == len(split.y) for split in (data.train, data.val, data.test, *data.extra.values()))
    assert all(bool((split.y == -1).all()) for split in data.extra.values())


# ---------------------------------------------------------------- MNIST-1D's cache


def test_a_forged_mnist1d_cache_is_regenerated(tmp_path):
    """A cache whose digest was recomputed after editing (labels 0..12, a NaN, ragged splits) is
    not trusted: `_read_cache` declines it, so `load` would generate the data again."""
    rng = np.random.default_rng(0)
    good = {"x": rng.normal(size=(8, 40)), "y": np.arange(8) % 10, "x_test": rng.normal(size=(4, 40)), "y_test": np.arange(4)}
    path = tmp_path / "cache.npz"
    forgeries = {
        "good": good,
        "label 12": {**good, "y": np.arange(8) + 5},
        "a NaN": {**good, "x": np.where(np.arange(40) == 3, np.nan, good["x"])},
        "ragged": {**good, "x_test": good["x_test"][:, :30]},
        "float labels": {**good, "y": good["y"] + 0.5},
        "empty test": {**good, "x_test": good["x_test"][:0], "y_test": good["y_test"][:0]},
    }
    for name, arrays in forgeries.items():
        with open(path, "wb") as handle:
            np.savez(handle, sha256=np.array(mnist1d._digest(arrays)), **arrays)
        assert (mnist1d._read_cache(path) is not None) == (name == "good"), name
    path.write_bytes(zlib.compress(b"not a zip"))
    assert mnist1d._read_cache(path) is None
