"""Tests for plasticity.data: every loader's shapes, splits and standardization, and a clear
DataError for every kind of bad input (unknown name, missing/damaged/malformed files).

MNIST and Fashion-MNIST are exercised with tiny IDX files generated here (their md5 table
patched to match); mnist-t10k and clinc150 use the real files in ../shared/datasets.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import random
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from plasticity.data import DataError, Dataset, Split, describe, load, names
from plasticity.data.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx_gz
from plasticity.data.sets import idx_images, mnist1d

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
T10K_DIR = SHARED / "mnist-t10k"
CLINC_DIR = SHARED / "clinc150"
needs_t10k = pytest.mark.skipif(not T10K_DIR.exists(), reason=f"shared datasets not present: {T10K_DIR}")
needs_clinc = pytest.mark.skipif(not CLINC_DIR.exists(), reason=f"shared datasets not present: {CLINC_DIR}")

OFFICIAL_T10K_MD5 = {
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}


# ---------------------------------------------------------------- fixture helpers


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    """Uncompressed IDX encoding of a uint8 array (magic 0x0800 | ndim unless given)."""
    header = struct.pack(">I", magic if magic is not None else 0x0800 | array.ndim)
    return header + struct.pack(f">{array.ndim}I", *array.shape) + array.astype(np.uint8).tobytes()


def write_idx_gz(path: Path, array: np.ndarray, magic: int | None = None) -> str:
    """Write `array` as a gzip IDX file; return its md5."""
    data = gzip.compress(idx_bytes(array, magic), mtime=0)
    path.write_bytes(data)
    return hashlib.md5(data).hexdigest()


def write_fake_idx_set(directory: Path, n_train: int = 12, n_test: int = 6, seed: int = 0) -> dict[str, str]:
    """The four MNIST-style files with random pixels and labels; returns name -> md5."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, n_train),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, n_test),
    }
    return {name: write_idx_gz(directory / name, array) for name, array in arrays.items()}


def patch_md5(monkeypatch: pytest.MonkeyPatch, attr: str, md5: dict[str, str]) -> None:
    """Make idx_images.<attr> (MNIST or FASHION_MNIST) expect the fixture files' md5s."""
    source = getattr(idx_images, attr)
    monkeypatch.setattr(idx_images, attr, dataclasses.replace(source, md5={**source.md5, **md5}))


def assert_numeric(data: Dataset, sizes: dict[str, int], input_shape: tuple[int, ...]) -> None:
    """Shapes, dtypes, contiguity, label range and train standardization of a numeric dataset."""
    assert data.input_shape == input_shape
    for split_name, n in sizes.items():
        split = getattr(data, split_name)
        assert len(split) == n
        assert split.x.shape == (n, *input_shape)
        assert split.x.dtype == torch.float32 and split.y.dtype == torch.int64
        assert split.x.is_contiguous() and split.y.is_contiguous()
        assert int(split.y.min()) >= 0 and int(split.y.max()) < data.n_classes
    assert data.standardization is not None
    assert abs(float(data.train.x.double().mean())) < 1e-4
    assert abs(float(data.train.x.double().std(correction=0)) - 1) < 1e-4


# ---------------------------------------------------------------- registry


def test_names_are_sorted_and_complete():
    assert names() == sorted(names())
    assert {"digits", "mnist1d", "mnist", "fashion-mnist", "mnist-t10k", "clinc150"} <= set(names())
    assert all(line.split(":")[0] in names() for line in describe().splitlines())


def test_unknown_name_lists_known_names():
    with pytest.raises(DataError, match="unknown dataset 'nope'.*digits.*mnist1d"):
        load("nope")


# ---------------------------------------------------------------- digits


def test_digits_shapes_split_and_standardization():
    data = load("digits")
    assert_numeric(data, {"train": 1437, "test": 360}, (64,))
    assert data.val is None and data.extra == {} and data.checksums == {}
    assert data.classes == tuple("0123456789") and data.n_features == 64
    # Stratified: every class keeps about its 10% share of the test set.
    assert torch.bincount(data.test.y, minlength=10).min() >= 35


def test_digits_split_is_deterministic_and_unstandardized_pixels_are_in_unit_range():
    first, second = load("digits"), load("digits", standardize=False)
    assert second.standardization is None
    assert 0 <= float(second.train.x.min()) and float(second.train.x.max()) <= 1
    assert torch.equal(first.train.y, second.train.y)
    stats = first.standardization
    assert torch.allclose(first.train.x * stats["std"] + stats["mean"], second.train.x, atol=1e-5)
    # The test split is scaled with the train statistics, not its own.
    assert torch.allclose(first.test.x * stats["std"] + stats["mean"], second.test.x, atol=1e-5)


def test_digits_unflattened_and_repr():
    data = load("digits", flatten=False)
    assert data.train.x.shape == (1437, 1, 8, 8) and data.input_shape == (1, 8, 8)
    text = repr(data)
    assert "digits" in text and "1437" in text and "360" in text and "n_classes=10" in text
    assert "tensor" not in text and len(text) < 300


# ---------------------------------------------------------------- mnist1d


@pytest.fixture(scope="module")
def mnist1d_run(tmp_path_factory):
    """One real generation (about 2 s) into a fresh cache, shared by the mnist1d tests."""
    cache = tmp_path_factory.mktemp("cache")
    np_state, py_state = np.random.get_state()[1].copy(), random.getstate()
    data = load("mnist1d", cache_dir=cache)
    rng_untouched = np.array_equal(np.random.get_state()[1], np_state) and random.getstate() == py_state
    return cache, data, rng_untouched


def _cache_file(cache: Path) -> Path:
    (path,) = (cache / "mnist1d").glob("*.npz")
    return path


def test_mnist1d_shapes_and_standardization(mnist1d_run):
    cache, data, rng_untouched = mnist1d_run
    assert_numeric(data, {"train": 4000, "test": 1000}, (40,))
    assert data.checksums == {} and data.val is None
    assert rng_untouched, "generating MNIST-1D must not change the global random states"
    # The source names the cache file, never this machine's path to it: results.json files are shared.
    assert str(cache) not in data.source and _cache_file(cache).name in data.source


def test_mnist1d_reads_cache_without_regenerating(mnist1d_run, monkeypatch):
    cache, data, _ = mnist1d_run
    monkeypatch.setattr(mnist1d, "_generate", lambda: pytest.fail("regenerated despite a valid cache"))
    again = load("mnist1d", cache_dir=cache, flatten=False)
    assert again.train.x.shape == (4000, 40)
    assert torch.equal(again.train.x, data.train.x) and torch.equal(again.test.y, data.test.y)
    assert not [p for p in (cache / "mnist1d").iterdir() if p.suffix != ".npz"], "temp files left behind"


def _cached_arrays(cache: Path) -> dict[str, np.ndarray]:
    with np.load(_cache_file(cache)) as stored:
        return {key: stored[key] for key in ("x", "y", "x_test", "y_test")}


@pytest.mark.parametrize("damage", ["truncated", "wrong-digest"])
def test_mnist1d_corrupt_cache_is_regenerated(mnist1d_run, tmp_path, monkeypatch, damage):
    cache, data, _ = mnist1d_run
    arrays = _cached_arrays(cache)
    target = tmp_path / "mnist1d" / _cache_file(cache).name
    target.parent.mkdir()
    if damage == "truncated":
        target.write_bytes(_cache_file(cache).read_bytes()[:100_000])
    else:  # a perfectly readable npz whose contents do not match its stored digest
        with open(target, "wb") as handle:
            np.savez(handle, sha256=np.array("0" * 64), **arrays)
    calls = []
    monkeypatch.setattr(mnist1d, "_generate", lambda: calls.append(1) or arrays)
    again = load("mnist1d", cache_dir=tmp_path)
    assert calls == [1]
    assert torch.equal(again.train.x, data.train.x)
    monkeypatch.setattr(mnist1d, "_generate", lambda: pytest.fail("the rewritten cache should be valid"))
    load("mnist1d", cache_dir=tmp_path)


def test_mnist1d_unwritable_cache_warns_and_still_loads(mnist1d_run, tmp_path, monkeypatch):
    cache, data, _ = mnist1d_run
    arrays = _cached_arrays(cache)
    monkeypatch.setattr(mnist1d, "_generate", lambda: arrays)
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    with pytest.warns(UserWarning, match="could not cache"):
        again = load("mnist1d", cache_dir=not_a_dir)
    assert torch.equal(again.test.x, data.test.x)


# ---------------------------------------------------------------- mnist-t10k (real files)


@needs_t10k
def test_mnist_t10k_split_sizes_checksums_and_standardization():
    data = load("mnist-t10k", root=T10K_DIR)
    assert_numeric(data, {"train": 8000, "test": 2000}, (784,))
    assert data.checksums == OFFICIAL_T10K_MD5
    assert "default_rng(0)" in data.source


@needs_t10k
def test_mnist_t10k_split_follows_the_documented_permutation():
    labels = read_idx_gz(T10K_DIR / "t10k-labels-idx1-ubyte.gz", LABELS_MAGIC)
    order = np.random.default_rng(0).permutation(10000)
    data = load("mnist-t10k", root=T10K_DIR, flatten=False, standardize=False)
    assert data.train.x.shape == (8000, 1, 28, 28)
    assert np.array_equal(data.train.y.numpy(), labels[order[:8000]])
    assert np.array_equal(data.test.y.numpy(), labels[order[8000:]])
    assert 0 <= float(data.train.x.min()) and float(data.train.x.max()) <= 1


@needs_t10k
def test_mnist_t10k_found_in_cache_mnist_folder(tmp_path):
    (tmp_path / "mnist").mkdir()
    for name in OFFICIAL_T10K_MD5:
        (tmp_path / "mnist" / name).write_bytes((T10K_DIR / name).read_bytes())
    data = load("mnist-t10k", cache_dir=tmp_path)
    assert len(data.train) == 8000 and str(tmp_path / "mnist") in data.source


# ---------------------------------------------------------------- mnist / fashion-mnist (fixtures)


@pytest.mark.parametrize(("name", "attr"), [("mnist", "MNIST"), ("fashion-mnist", "FASHION_MNIST")])
def test_idx_datasets_from_root(tmp_path, monkeypatch, name, attr):
    md5 = write_fake_idx_set(tmp_path, n_train=12, n_test=6)
    patch_md5(monkeypatch, attr, md5)
    data = load(name, root=tmp_path)
    assert_numeric(data, {"train": 12, "test": 6}, (784,))
    assert data.checksums == md5 and data.n_classes == 10
    images = load(name, root=tmp_path, flatten=False)
    assert images.train.x.shape == (12, 1, 28, 28) and images.input_shape == (1, 28, 28)
    assert torch.equal(images.train.x.reshape(12, -1), data.train.x)


def test_idx_dataset_found_in_cache_dir(tmp_path, monkeypatch):
    patch_md5(monkeypatch, "MNIST", write_fake_idx_set(tmp_path / "mnist"))
    assert len(load("mnist", cache_dir=tmp_path).train) == 12


# ---------------------------------------------------------------- bad input


def test_missing_files_say_where_we_looked_and_what_to_do(tmp_path):
    root = tmp_path / "nowhere"
    with pytest.raises(DataError) as error:
        load("mnist", root=root)
    message = str(error.value)
    assert str(root) in message and "does not exist" in message
    assert "train-images-idx3-ubyte.gz" in message and "t10k-labels-idx1-ubyte.gz" in message
    assert "download=True" in message and "--root" in message


def test_missing_t10k_lists_both_cache_folders(tmp_path):
    with pytest.raises(DataError) as error:
        load("mnist-t10k", cache_dir=tmp_path)
    assert str(tmp_path / "mnist-t10k") in str(error.value) and str(tmp_path / "mnist") in str(error.value)


def test_wrong_md5_names_file_expected_and_actual(tmp_path):
    md5 = write_fake_idx_set(tmp_path)
    with pytest.raises(DataError) as error:
        load("mnist", root=tmp_path)
    message = str(error.value)
    assert "train-images-idx3-ubyte.gz" in message
    assert "f68b3c2dcbeaaa9fbdd348bbdeb94873" in message and md5["train-images-idx3-ubyte.gz"] in message


def test_truncated_gzip_names_the_file(tmp_path, monkeypatch):
    md5 = write_fake_idx_set(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz.*truncated or corrupt"):
        read_idx_gz(path, IMAGES_MAGIC)
    # Through load, with the md5 table matching the damaged file, the gzip check still catches it.
    patch_md5(monkeypatch, "MNIST", {**md5, path.name: hashlib.md5(path.read_bytes()).hexdigest()})
    with pytest.raises(DataError, match="not a complete gzip file"):
        load("mnist", root=tmp_path)


def test_not_gzip_at_all(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(b"this is not gzip data")
    with pytest.raises(DataError, match="x.gz"):
        read_idx_gz(path, LABELS_MAGIC)


def test_bad_magic_number(tmp_path):
    path = tmp_path / "labels.gz"
    write_idx_gz(path, np.zeros((5, 28, 28)))  # an images file where labels are expected
    with pytest.raises(DataError, match="magic number is 2051, expected 2049"):
        read_idx_gz(path, LABELS_MAGIC)


def test_idx_size_must_match_header(tmp_path):
    path = tmp_path / "images.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros((3, 28, 28)))[:-10]))
    with pytest.raises(DataError, match=r"declares dimensions \(3, 28, 28\).*truncated"):
        read_idx_gz(path, IMAGES_MAGIC)


def test_image_and_label_counts_must_agree(tmp_path, monkeypatch):
    md5 = write_fake_idx_set(tmp_path)
    md5["train-labels-idx1-ubyte.gz"] = write_idx_gz(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(5))
    patch_md5(monkeypatch, "MNIST", md5)
    with pytest.raises(DataError, match="12 images but .* 5 labels"):
        load("mnist", root=tmp_path)


def test_split_rejects_mismatched_lengths():
    with pytest.raises(DataError, match="3 inputs but 2 labels"):
        Split(torch.zeros(3, 4), torch.zeros(2, dtype=torch.int64))


# ---------------------------------------------------------------- clinc150


@needs_clinc
def test_clinc150_splits_classes_and_out_of_scope():
    data = load("clinc150", root=CLINC_DIR)
    assert (len(data.train), len(data.val), len(data.test)) == (15000, 3000, 4500)
    assert {key: len(split) for key, split in data.extra.items()} == {"oos_train": 100, "oos_val": 100, "oos_test": 1000}
    assert data.n_classes == 150 and list(data.classes) == sorted(data.classes) and "oos" not in data.classes
    assert data.input_shape == () and data.standardization is None
    assert isinstance(data.train.x, list) and all(isinstance(text, str) for text in data.train.x)
    assert torch.bincount(data.train.y, minlength=150).tolist() == [100] * 150
    assert all(bool((split.y == -1).all()) for split in data.extra.values())
    raw = json.loads((CLINC_DIR / "data_full.json").read_text())
    first_text, first_intent = raw["test"][0]
    assert data.test.x[0] == first_text and data.classes[int(data.test.y[0])] == first_intent
    assert data.checksums == {"data_full.json": hashlib.md5((CLINC_DIR / "data_full.json").read_bytes()).hexdigest()}
    with pytest.raises(DataError, match="text dataset"):
        _ = data.n_features


def _write_clinc(path: Path, content: object) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "data_full.json").write_text(content if isinstance(content, str) else json.dumps(content))
    return path


TINY_CLINC = {
    "train": [["hi", "greet"], ["bye", "leave"]],
    "val": [["hello", "greet"]],
    "test": [["ciao", "leave"]],
    "oos_train": [["what", "oos"]],
    "oos_val": [],
    "oos_test": [["eh", "oos"]],
}


def test_clinc150_tiny_file_from_cache_dir(tmp_path):
    _write_clinc(tmp_path / "clinc150", TINY_CLINC)
    data = load("clinc150", cache_dir=tmp_path)
    assert data.classes == ("greet", "leave") and data.train.y.tolist() == [0, 1] and data.test.y.tolist() == [1]
    assert len(data.extra["oos_val"]) == 0 and data.extra["oos_test"].y.tolist() == [-1]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"train": [["hi", "greet"]', "not valid JSON"),
        ([1, 2], "expected a JSON object"),
        ({k: v for k, v in TINY_CLINC.items() if k != "oos_test"}, "missing split.*oos_test"),
        ({**TINY_CLINC, "val": [["only text"]]}, r"val\[0\] should be a \[text, intent\] pair"),
        ({**TINY_CLINC, "test": [["x", "unseen_intent"]]}, "not in train: unseen_intent"),
        ({**TINY_CLINC, "oos_val": [["x", "greet"]]}, "should hold only 'oos'"),
    ],
)
def test_clinc150_malformed_file(tmp_path, content, expected):
    root = _write_clinc(tmp_path, content)
    with pytest.raises(DataError, match=expected) as error:
        load("clinc150", root=root)
    assert "data_full.json" in str(error.value)


def test_clinc150_missing_file(tmp_path):
    with pytest.raises(DataError, match="(?s)data_full.json.*oos-eval"):
        load("clinc150", root=tmp_path)
