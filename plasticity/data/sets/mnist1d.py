"""MNIST-1D, generated locally with the `mnist1d` package (never downloaded).

Greydanus & Kobak, "Scaling Down Deep Learning with MNIST-1D", ICML 2024. The dataset is
`mnist1d.data.make_dataset(get_dataset_args())` with the package's default arguments
(5000 sequences of length 40, seed 42, 80/20 split): 4000 train / 1000 test.

Generation takes a couple of seconds, so the arrays are cached as an .npz file in
`<cache_dir>/mnist1d/`, named after the package version (whose default arguments define
the data), written atomically and stored with a sha256 of its contents. A cache file that is
unreadable or fails that check is regenerated; a cache folder that cannot be written only
costs the regeneration next time.
"""

from __future__ import annotations

import hashlib
import random
import warnings
import zipfile
from importlib.metadata import version
from pathlib import Path

import numpy as np

from plasticity.data.dataset import Dataset
from plasticity.data.options import LoadOptions
from plasticity.data.prepare import numeric_dataset
from plasticity.io import atomic_write

_KEYS = ("x", "y", "x_test", "y_test")
_SOURCE = (
    "MNIST-1D (Greydanus & Kobak, ICML 2024), generated offline by mnist1d.data.make_dataset(get_dataset_args()) (mnist1d {version}, seed 42); cached as {name}"
)


def load_mnist1d(options: LoadOptions) -> Dataset:
    """MNIST-1D: (n, 40) sequences, 4000 train / 1000 test, 10 classes; no val split."""
    path = options.cache_dir / "mnist1d" / f"mnist1d-{version('mnist1d')}-default.npz"
    arrays = _read_cache(path)
    if arrays is None:
        arrays = _generate()
        _write_cache(path, arrays)
    return numeric_dataset(
        "mnist1d",
        {"train": (arrays["x"], arrays["y"]), "test": (arrays["x_test"], arrays["y_test"])},
        tuple(str(digit) for digit in range(10)),
        options,
        source=_SOURCE.format(version=version("mnist1d"), name=path.name),  # the file, not this machine's cache path
        flatten=True,
    )


def _generate() -> dict[str, np.ndarray]:
    """Run the generator, restoring the global `random`/`numpy.random` states it reseeds.

    `mnist1d` is imported here, not at module level: it pulls in scipy and matplotlib
    (about a second), which a cache hit should not pay for.
    """
    from mnist1d.data import get_dataset_args, make_dataset

    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        data = make_dataset(get_dataset_args())
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    return {key: np.asarray(data[key]) for key in _KEYS}


def _digest(arrays: dict[str, np.ndarray]) -> str:
    """sha256 over the arrays' names, dtypes, shapes and bytes."""
    digest = hashlib.sha256()
    for key in _KEYS:
        array = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}:{array.dtype.str}:{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _read_cache(path: Path) -> dict[str, np.ndarray] | None:
    """The cached arrays if the file exists, parses and matches its stored digest; else None."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {key: stored[key] for key in _KEYS}
            stored_digest = str(stored["sha256"])
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
        return None
    return arrays if _digest(arrays) == stored_digest and _plausible(arrays) else None


def _plausible(arrays: dict[str, np.ndarray]) -> bool:
    """Whether the arrays can be MNIST-1D: finite sequences of one length, as many integer labels
    in 0..9, no split empty (a cache edited and re-digested by hand is regenerated too)."""
    pairs = [(arrays["x"], arrays["y"]), (arrays["x_test"], arrays["y_test"])]
    return arrays["x"].shape[1:] == arrays["x_test"].shape[1:] and all(
        x.ndim == 2
        and y.ndim == 1
        and len(x) == len(y) > 0
        and np.issubdtype(x.dtype, np.number)
        and np.issubdtype(y.dtype, np.integer)
        and bool(np.isfinite(x).all())
        and int(y.min()) >= 0
        and int(y.max()) <= 9
        for x, y in pairs
    )


def _write_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write the cache atomically; an unwritable cache folder is a warning, not an error."""
    try:
        with atomic_write(path) as handle:
            np.savez(handle, sha256=np.array(_digest(arrays)), **arrays)
    except OSError as error:
        warnings.warn(f"could not cache MNIST-1D at {path} ({error}); it will be regenerated next time", stacklevel=3)
