"""scikit-learn's 8x8 handwritten digits, bundled with scikit-learn (works offline).

1797 images of 8x8 pixels with values 0..16, from the UCI "Optical Recognition of
Handwritten Digits" data (Alpaydin & Kaynak, 1998). There is no official split, so we fix
one: `sklearn.model_selection.train_test_split(test_size=0.2, stratify=y, random_state=0)`,
giving 1437 train / 360 test images with class proportions preserved. Pixels are divided
by 16 to lie in [0, 1].
"""

from __future__ import annotations

from plasticity.data.dataset import Dataset
from plasticity.data.options import LoadOptions
from plasticity.data.prepare import numeric_dataset

TEST_FRACTION = 0.2
SPLIT_SEED = 0
_SOURCE = (
    "sklearn.datasets.load_digits: UCI Optical Recognition of Handwritten Digits (Alpaydin & Kaynak, 1998), "
    "bundled with scikit-learn; stratified 80/20 split with random_state=0"
)


def load_digits(options: LoadOptions) -> Dataset:
    """8x8 digits: (n, 64) flattened or (n, 1, 8, 8); 1437 train / 360 test; no val split."""
    # Imported here: sklearn.datasets pulls in scipy (about a second) at import time.
    from sklearn.datasets import load_digits as _sklearn_digits
    from sklearn.model_selection import train_test_split

    bunch = _sklearn_digits()
    images = bunch.images.reshape(-1, 1, 8, 8) / 16.0
    x_train, x_test, y_train, y_test = train_test_split(images, bunch.target, test_size=TEST_FRACTION, stratify=bunch.target, random_state=SPLIT_SEED)
    return numeric_dataset(
        "digits",
        {"train": (x_train, y_train), "test": (x_test, y_test)},
        tuple(str(digit) for digit in range(10)),
        options,
        source=_SOURCE,
    )
