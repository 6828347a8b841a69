"""The dataset registry and `load`, the one entry point.

`_REGISTRY` is the single place that names datasets: adding one (cifar10, banking77, ...)
means writing its loader `(LoadOptions) -> Dataset` in `plasticity/data/sets/` and adding
one line here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from plasticity.data.dataset import Dataset
from plasticity.data.errors import DataError
from plasticity.data.files import default_cache_dir
from plasticity.data.locate import check_folder
from plasticity.data.options import LoadOptions
from plasticity.data.sets.clinc150 import load_clinc150
from plasticity.data.sets.digits import load_digits
from plasticity.data.sets.idx_images import load_fashion_mnist, load_mnist, load_mnist_t10k
from plasticity.data.sets.mnist1d import load_mnist1d
from plasticity.errors import brief


@dataclass(frozen=True)
class Entry:
    """A registered dataset: its loader and a one-line description."""

    loader: Callable[[LoadOptions], Dataset]
    description: str


_REGISTRY: dict[str, Entry] = {
    "digits": Entry(load_digits, "scikit-learn 8x8 digits, bundled; stratified 1437/360 split (seed 0)"),
    "mnist1d": Entry(load_mnist1d, "MNIST-1D (Greydanus & Kobak 2024), generated offline; 4000/1000"),
    "mnist": Entry(load_mnist, "MNIST (LeCun et al.), official IDX files; 60000/10000"),
    "fashion-mnist": Entry(load_fashion_mnist, "Fashion-MNIST (Xiao et al. 2017), official IDX files; 60000/10000"),
    "mnist-t10k": Entry(load_mnist_t10k, "MNIST's official 10k test set split 8000/2000 (default_rng(0))"),
    "clinc150": Entry(load_clinc150, "CLINC150 intents + out-of-scope (Larson et al. 2019), text; 15000/3000/4500"),
}


def names() -> list[str]:
    """The registered dataset names, sorted."""
    return sorted(_REGISTRY)


def describe(name: str | None = None) -> str:
    """One line per dataset (or just `name`'s line): "name: description"."""
    selected = [name] if name is not None else names()
    return "\n".join(f"{key}: {_entry(key).description}" for key in selected)


def load(
    name: str,
    root: str | os.PathLike | None = None,
    *,
    download: bool = False,
    cache_dir: str | os.PathLike | None = None,
    standardize: bool = True,
    flatten: bool = True,
    mirrors: Sequence[str] | None = None,
) -> Dataset:
    """Load a registered dataset by name.

    root: folder holding the dataset's files; default `<cache_dir>/<name>/`.
    download: fetch missing files (MNIST family only), md5-verified, into root or the cache.
    cache_dir: default `$PLASTICITY_CACHE`, else ~/.cache/plasticity.
    standardize: numeric data only; remove the train split's scalar mean and std.
    flatten: images as (n, features) rather than (n, 1, height, width).
    mirrors: base URLs to download from instead of the dataset's defaults, tried in order.

    Raises DataError for unknown names, for a root that is a file or cannot name a folder, and
    for missing, damaged or malformed files.
    """
    if isinstance(mirrors, str):
        mirrors = [mirrors]
    options = LoadOptions(
        root=check_folder(root, "root folder") if root is not None else None,
        cache_dir=Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir(),
        download=download,
        standardize=standardize,
        flatten=flatten,
        mirrors=tuple(mirrors) if mirrors else None,
    )
    return _entry(name).loader(options)


def _entry(name: str) -> Entry:
    """The registry entry for `name`, or a DataError listing the known names."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):  # TypeError: a name that is not even hashable
        raise DataError(f"unknown dataset {brief(name)}; known datasets: {', '.join(names())}") from None
