"""Turning raw arrays into a numeric `Dataset`: tensors, standardization, flattening.

Every numeric loader funnels through `numeric_dataset`, so all datasets follow one rule:
inputs arrive scaled to about [0, 1] (or, for MNIST-1D, as generated), then, if asked,
the *training* split's global scalar mean and std are removed from every split. Using one
scalar (not per-pixel statistics) keeps the images' structure; using train statistics only
keeps the test set unseen.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from plasticity.data.dataset import Dataset, Split
from plasticity.data.errors import DataError
from plasticity.data.options import LoadOptions

_ROWS_PER_CHUNK = 4096


def numeric_dataset(
    name: str,
    splits: Mapping[str, tuple[np.ndarray, np.ndarray]],
    classes: tuple[str, ...],
    options: LoadOptions,
    *,
    source: str,
    checksums: dict[str, str] | None = None,
    flatten: bool | None = None,
) -> Dataset:
    """Build a Dataset from {"train"|"val"|"test": (x, y)} numpy arrays, x already scaled.

    `flatten` overrides `options.flatten` for data that has only one sensible layout.
    """
    empty = [key for key, (_, y) in splits.items() if not len(y)]
    if empty:
        raise DataError(f"{name}: the {' and '.join(empty)} split holds no samples; its files are damaged or too small")
    tensors = {key: (torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), _labels(y)) for key, (x, y) in splits.items()}
    standardization = None
    if options.standardize:
        mean, std = _scalar_stats(tensors["train"][0])
        if not std > 0:
            raise DataError(f"{name}: the training inputs are constant, so they cannot be standardized; pass standardize=False")
        for x, _ in tensors.values():
            x.sub_(mean).div_(std)
        standardization = {"mean": mean, "std": std}
    if options.flatten if flatten is None else flatten:
        tensors = {key: (x.reshape(len(x), -1).contiguous(), y) for key, (x, y) in tensors.items()}
    built = {key: Split(x, y) for key, (x, y) in tensors.items()}
    return Dataset(
        name=name,
        train=built["train"],
        test=built["test"],
        val=built.get("val"),
        classes=classes,
        input_shape=tuple(built["train"].x.shape[1:]),
        source=source,
        checksums=dict(checksums or {}),
        standardization=standardization,
    )


def _labels(y: np.ndarray) -> torch.Tensor:
    """Labels as a contiguous int64 tensor (a copy, so read-only buffers are never shared)."""
    return torch.from_numpy(np.array(y, dtype=np.int64, copy=True))


def _scalar_stats(x: torch.Tensor) -> tuple[float, float]:
    """Mean and population std over all elements, accumulated in float64 chunk by chunk.

    Chunking keeps the float64 temporaries small (full MNIST would need ~380 MB at once).
    """
    count = x.numel()
    total = sum(float(chunk.sum(dtype=torch.float64)) for chunk in x.split(_ROWS_PER_CHUNK))
    mean = total / count
    squares = sum(float(((chunk.double() - mean) ** 2).sum()) for chunk in x.split(_ROWS_PER_CHUNK))
    return mean, (squares / count) ** 0.5
