"""The containers every loader returns: `Split` (inputs + labels) and `Dataset`.

They are frozen so that a loaded dataset can be shared between a trainer, observers and
result writers without anyone mutating it behind the others' backs. Equality is identity
(`eq=False`): comparing tensors element-wise is never what `==` on a dataset should mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from plasticity.data.errors import DataError

OUT_OF_SCOPE = -1
"""Label of samples that belong to none of the classes (e.g. CLINC150's "oos" queries)."""


@dataclass(frozen=True, eq=False)
class Split:
    """One split of a dataset.

    x: float32 tensor (n, *input_shape) for numeric data, or a list of n strings for text.
    y: int64 tensor (n,): class indices in [0, n_classes), or `OUT_OF_SCOPE` (-1).
    """

    x: torch.Tensor | list[str]
    y: torch.Tensor

    def __post_init__(self) -> None:
        if self.y.dtype != torch.int64 or self.y.dim() != 1:
            raise DataError(f"labels must be a 1-D int64 tensor, got {self.y.dtype} of shape {tuple(self.y.shape)}")
        if len(self.x) != len(self.y):
            raise DataError(f"{len(self.x)} inputs but {len(self.y)} labels")
        if isinstance(self.x, torch.Tensor) and self.x.dtype != torch.float32:
            raise DataError(f"numeric inputs must be float32, got {self.x.dtype}")

    def __len__(self) -> int:
        return len(self.y)

    def __repr__(self) -> str:
        if isinstance(self.x, torch.Tensor):
            kind = f"float32{tuple(self.x.shape)}"
        else:
            kind = "text"
        return f"Split(n={len(self)}, x={kind})"


@dataclass(frozen=True, eq=False)
class Dataset:
    """A loaded, ready-to-train dataset.

    input_shape: shape of one sample, e.g. (784,) flattened or (1, 28, 28); () for text.
    source: human-readable provenance (citation and where the files came from).
    checksums: file name -> md5 that was verified (or computed) while loading; {} for
        generated or bundled data.
    extra: additional named splits, e.g. CLINC150's out-of-scope "oos_train" (labels -1).
    standardization: {"mean": m, "std": s} subtracted/divided from every numeric split, or
        None when inputs were left as scaled (text data, or standardize=False).
    """

    name: str
    train: Split
    test: Split
    val: Split | None
    classes: tuple[str, ...]
    input_shape: tuple[int, ...]
    source: str
    checksums: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Split] = field(default_factory=dict)
    standardization: dict[str, float] | None = None

    def __post_init__(self) -> None:
        main = {"train": self.train, "test": self.test}
        if self.val is not None:
            main["val"] = self.val
        for split_name, split in [*main.items(), *self.extra.items()]:
            low = OUT_OF_SCOPE if split_name in self.extra else 0
            if len(split) and (int(split.y.min()) < low or int(split.y.max()) >= self.n_classes):
                raise DataError(f"{self.name}/{split_name}: labels outside [{low}, {self.n_classes}); the files may be damaged")
            if isinstance(split.x, torch.Tensor) and tuple(split.x.shape[1:]) != self.input_shape:
                raise DataError(f"{self.name}/{split_name}: samples of shape {tuple(split.x.shape[1:])}, expected {self.input_shape}")

    @property
    def n_classes(self) -> int:
        """Number of (in-scope) classes."""
        return len(self.classes)

    @property
    def n_features(self) -> int:
        """Number of numbers in one sample, prod(input_shape); numeric datasets only."""
        if not isinstance(self.train.x, torch.Tensor):
            raise DataError(f"{self.name} is a text dataset: it has no numeric features until its texts are embedded")
        return math.prod(self.input_shape)

    def __repr__(self) -> str:
        sizes = [f"train={len(self.train)}", f"val={len(self.val) if self.val is not None else None}"]
        sizes.append(f"test={len(self.test)}")
        sizes += [f"{key}={len(split)}" for key, split in self.extra.items()]
        std = None if self.standardization is None else {key: round(v, 4) for key, v in self.standardization.items()}
        return f"Dataset({self.name!r}: {', '.join(sizes)}; input_shape={self.input_shape}, n_classes={self.n_classes}, standardization={std})"
