"""Symmetric label noise on a dataset's training split, for tests of learning from corrupted labels.

Each training label is replaced, with probability p, by a class drawn uniformly from all C classes
(the "symmetric" or "uniform" noise of Zhang & Sabuncu 2018, NeurIPS, "Generalized Cross Entropy
Loss for Training Deep Neural Networks with Noisy Labels", and of most of that literature). The
drawn class may be the true one, so the expected fraction of labels that actually change is
p·(1 − 1/C). The test, validation and extra splits are left clean.

The draw is a function of (seed, p) alone, `numpy.random.default_rng([seed, round(100·p)])`, so
that every rule run with the same seed and p sees the same corrupted labels, and an analysis can
recompute which samples were flipped (`noisy_labels`) without storing them.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from plasticity.data.dataset import Dataset, Split
from plasticity.data.errors import DataError


def check_noise(p: float) -> float:
    """p as a float in [0, 1), or a DataError that says why not."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
        raise DataError(f"label noise must be a probability in [0, 1); got {p!r}")
    return float(p)


def noisy_labels(y: torch.Tensor, p: float, n_classes: int, seed: int) -> torch.Tensor:
    """`y` with each label replaced, with probability p, by a uniformly drawn class (a new tensor)."""
    p = check_noise(p)
    rng = np.random.default_rng([seed, round(100 * p)])
    replaced = rng.random(len(y)) < p
    drawn = rng.integers(0, n_classes, len(y))
    return torch.from_numpy(np.where(replaced, drawn, y.numpy())).to(torch.int64)


def with_label_noise(data: Dataset, p: float, seed: int) -> Dataset:
    """A copy of `data` whose training labels carry noise p drawn from `seed` (the same object if
    p = 0); inputs and every other split are shared, not copied."""
    if check_noise(p) == 0.0:
        return data
    train = Split(data.train.x, noisy_labels(data.train.y, p, data.n_classes, seed))
    return replace(data, train=train)
