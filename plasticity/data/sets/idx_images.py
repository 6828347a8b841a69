"""MNIST, Fashion-MNIST and MNIST's official test set alone ("mnist-t10k"), from IDX files.

MNIST: LeCun, Cortes & Burges, "The MNIST database of handwritten digits",
http://yann.lecun.com/exdb/mnist/ (LeCun et al., 1998). Fashion-MNIST: Xiao, Rasul &
Vollgraf, "Fashion-MNIST: a Novel Image Dataset for Benchmarking Machine Learning
Algorithms", arXiv:1708.07747, 2017. Both ship as four gzip-compressed IDX files; the md5s
below are the official ones (as also listed by torchvision). Every file is md5-verified
before use, whether found locally or downloaded. Pixels are divided by 255.

Where files are looked for: in `root` if given, else in `<cache_dir>/<name>/`. With
download=True, missing files are fetched into that same folder from the mirrors.

"mnist-t10k" uses only the two t10k files (MNIST's 10,000 official test images) and splits
them with a fixed permutation, `numpy.random.default_rng(0).permutation(10000)`: the first
8000 indices are train, the last 2000 test. Without `root` it looks in
`<cache_dir>/mnist-t10k/`, then `<cache_dir>/mnist/`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from plasticity.data.dataset import Dataset
from plasticity.data.download import fetch
from plasticity.data.errors import DataError
from plasticity.data.files import verify_md5
from plasticity.data.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx_gz
from plasticity.data.locate import find_dir, missing_files_error
from plasticity.data.options import LoadOptions
from plasticity.data.prepare import numeric_dataset

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"

T10K_SPLIT_SEED = 0
T10K_TRAIN_FRACTION = 0.8


@dataclass(frozen=True)
class IdxSource:
    """Where an IDX dataset comes from: official md5 per file, default mirrors, class names."""

    citation: str
    md5: dict[str, str]
    mirrors: tuple[str, ...]
    classes: tuple[str, ...]


MNIST = IdxSource(
    citation="MNIST (LeCun, Cortes & Burges, http://yann.lecun.com/exdb/mnist/)",
    md5={
        TRAIN_IMAGES: "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        TRAIN_LABELS: "d53e105ee54ea40749a09fcbcd1e9432",
        TEST_IMAGES: "9fb629c4189551a2d022fa330f9573f3",
        TEST_LABELS: "ec29112dd5afa0611ce80d1b7f02629c",
    },
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
    classes=tuple(str(digit) for digit in range(10)),
)

FASHION_MNIST = IdxSource(
    citation="Fashion-MNIST (Xiao, Rasul & Vollgraf 2017, arXiv:1708.07747)",
    md5={
        TRAIN_IMAGES: "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        TRAIN_LABELS: "25c81989df183df01b3e8a0aad5dffbe",
        TEST_IMAGES: "bef4ecab320f06d8554ea6380940ec79",
        TEST_LABELS: "bb300cfdad3c16e7a12a480ee83cd310",
    },
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    classes=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
)


def load_mnist(options: LoadOptions) -> Dataset:
    """Full MNIST: 60000 train / 10000 test, (n, 784) or (n, 1, 28, 28)."""
    return _load_official_split("mnist", MNIST, options)


def load_fashion_mnist(options: LoadOptions) -> Dataset:
    """Fashion-MNIST: 60000 train / 10000 test, (n, 784) or (n, 1, 28, 28)."""
    return _load_official_split("fashion-mnist", FASHION_MNIST, options)


def load_mnist_t10k(options: LoadOptions) -> Dataset:
    """MNIST's 10k test set split 8000 train / 2000 test by default_rng(0).permutation."""
    wanted = {name: MNIST.md5[name] for name in (TEST_IMAGES, TEST_LABELS)}
    candidates = [options.root] if options.root else [options.cache_dir / "mnist-t10k", options.cache_dir / "mnist"]
    directory, checksums = _obtain("mnist-t10k", wanted, candidates, MNIST, options)
    images, labels = _read_pair(directory / TEST_IMAGES, directory / TEST_LABELS)
    order = np.random.default_rng(T10K_SPLIT_SEED).permutation(len(labels))
    n_train = round(T10K_TRAIN_FRACTION * len(labels))
    train, test = order[:n_train], order[n_train:]
    return numeric_dataset(
        "mnist-t10k",
        {"train": (images[train], labels[train]), "test": (images[test], labels[test])},
        MNIST.classes,
        options,
        source=f"{MNIST.citation}: official t10k test set only, split {n_train}/{len(test)} by "
        f"numpy.random.default_rng({T10K_SPLIT_SEED}).permutation; files from {directory}",
        checksums=checksums,
    )


def _load_official_split(name: str, source: IdxSource, options: LoadOptions) -> Dataset:
    """Load the four official files of `source` and keep its train/test split."""
    candidates = [options.root] if options.root else [options.cache_dir / name]
    directory, checksums = _obtain(name, source.md5, candidates, source, options)
    x_train, y_train = _read_pair(directory / TRAIN_IMAGES, directory / TRAIN_LABELS)
    x_test, y_test = _read_pair(directory / TEST_IMAGES, directory / TEST_LABELS)
    return numeric_dataset(
        name,
        {"train": (x_train, y_train), "test": (x_test, y_test)},
        source.classes,
        options,
        source=f"{source.citation}; files from {directory}",
        checksums=checksums,
    )


def _obtain(name: str, wanted: dict[str, str], candidates: Sequence[Path], source: IdxSource, options: LoadOptions) -> tuple[Path, dict[str, str]]:
    """Find (or, if allowed, download) the `wanted` files; return their folder and verified md5s."""
    directory = find_dir(list(wanted), candidates)
    if directory is not None:
        return directory, {file: verify_md5(directory / file, md5) for file, md5 in wanted.items()}
    if not options.download:
        raise missing_files_error(
            name,
            list(wanted),
            candidates,
            f"Put the official files in one of those folders or pass root=DIR (--root DIR), or pass "
            f"download=True to fetch them from {', '.join(options.mirrors or source.mirrors)}.",
        )
    destination = candidates[0]
    return destination, fetch(wanted, destination, options.mirrors or source.mirrors)


def _read_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images as float32 (n, 1, 28, 28) in [0, 1] and labels as int64, checked to agree."""
    images = read_idx_gz(images_path, IMAGES_MAGIC)
    labels = read_idx_gz(labels_path, LABELS_MAGIC)
    if images.shape[1:] != (28, 28):
        raise DataError(f"{images_path}: images are {images.shape[1]}x{images.shape[2]}, expected 28x28")
    if len(images) != len(labels):
        raise DataError(f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels")
    if not len(labels):
        raise DataError(f"{labels_path} holds no labels; it is damaged or not a dataset file: replace it with the official one")
    if labels.max() > 9:
        raise DataError(f"{labels_path}: label {labels.max()} is outside 0..9")
    return (images.reshape(-1, 1, 28, 28) / np.float32(255)).astype(np.float32, copy=False), labels.astype(np.int64)
