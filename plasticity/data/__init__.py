"""Datasets for plasticity: one `load(name)` call gives ready-to-train tensors.

    >>> from plasticity.data import load, names
    >>> names()
    ['clinc150', 'digits', 'fashion-mnist', 'mnist', 'mnist-t10k', 'mnist1d']
    >>> load("digits")  # doctest: +SKIP
    Dataset('digits': train=1437, val=None, test=360; input_shape=(64,), n_classes=10, ...)

Files are looked for in `root`, else in the cache directory (`$PLASTICITY_CACHE`, default
~/.cache/plasticity); every file is md5-checked, and every problem raises `DataError` with
a message saying what to do.
"""

from plasticity.data.dataset import Dataset, Split
from plasticity.data.errors import DataError
from plasticity.data.registry import describe, load, names

__all__ = ["DataError", "Dataset", "Split", "describe", "load", "names"]
