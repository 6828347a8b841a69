"""A dataset turned into embeddings once, for every method of a continual run to share.

Text datasets (CLINC150) go through a frozen sentence encoder (all-MiniLM-L6-v2 unless another is
given, e.g. `SentenceEncoder("mpnet")`) with the on-disk cache; numeric
datasets are used as raw values (`standardize=False`: digits' pixels in [0, 1], MNIST's in
[0, 1]) through `PassThrough`. Encoding time is recorded per split, apart from learning.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from plasticity.data import Dataset, load
from plasticity.memory.encoders import DEFAULT_ENCODER, CachedEncoder, Encoder, PassThrough, SentenceEncoder


@dataclass(frozen=True)
class Part:
    """Embeddings (n, d) float32 with int64 labels (−1: out of scope) and, for text, the raw inputs."""

    x: np.ndarray
    y: np.ndarray
    texts: list[str] | None = None


@dataclass(frozen=True)
class Embedded:
    """Every split of a dataset as embeddings. `oos` holds out-of-scope splits ("val", "test")."""

    name: str
    classes: tuple[str, ...]
    train: Part
    test: Part
    val: Part | None
    oos: dict[str, Part]
    encoder: str
    encoding: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        return len(self.classes)


def embed(
    name: str,
    root: str | os.PathLike | None = None,
    encoder: Encoder | str | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> Embedded:
    """Load dataset `name` (unstandardised) and embed every split with `embed_dataset`."""
    return embed_dataset(name, load(name, root=root, standardize=False), encoder, cache_dir, progress)


def embed_dataset(
    name: str,
    dataset: Dataset,
    encoder: Encoder | str | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> Embedded:
    """Embed every split of a loaded dataset (text: cached sentence embeddings; numbers: raw values).

    encoder: for text, an encoder or the name of a sentence model (`SENTENCE_MODELS`: None or
        "minilm" for all-MiniLM-L6-v2, "mpnet" for all-mpnet-base-v2), wrapped in a `CachedEncoder`
        under `cache_dir` (default <cache>/embeddings); ignored for numeric data.
    """
    text = isinstance(dataset.train.x, list)
    if text:
        if encoder is None or isinstance(encoder, str):
            encoder = SentenceEncoder(progress=progress) if encoder in (None, DEFAULT_ENCODER) else SentenceEncoder(encoder, progress=progress)
        coder: Encoder = CachedEncoder(encoder, cache_dir)
    else:
        coder = PassThrough()
    encoding: dict[str, dict[str, Any]] = {}

    def part(split_name: str, split: Any) -> Part:
        start = time.perf_counter()
        x = coder.encode(split.x)
        record = {"n": len(x), "seconds": time.perf_counter() - start, "cached": False, "compute_seconds": 0.0}
        if isinstance(coder, CachedEncoder):
            last = coder.log[-1]
            record.update(cached=last.cached, compute_seconds=last.compute_seconds)
        encoding[split_name] = record
        return Part(x, split.y.numpy().astype(np.int64), list(split.x) if text else None)

    oos = {key.removeprefix("oos_"): part(key, split) for key, split in dataset.extra.items() if key in ("oos_val", "oos_test")}
    return Embedded(
        name=name,
        classes=dataset.classes,
        train=part("train", dataset.train),
        test=part("test", dataset.test),
        val=part("val", dataset.val) if dataset.val is not None else None,
        oos=oos,
        encoder=coder.identity,
        encoding=encoding,
    )


def held_out(embedded: Embedded, fraction: float = 0.2, seed: int = 0) -> tuple[Part, Part]:
    """(fit part, selection part) for choosing hyperparameters without touching the test split.

    The val split when the dataset has one (train stays whole); otherwise a stratified
    `fraction` of train (`sklearn.model_selection.train_test_split`, random_state=seed).
    """
    if embedded.val is not None:
        return embedded.train, embedded.val
    from sklearn.model_selection import train_test_split

    index = np.arange(len(embedded.train.y))
    fit, select = train_test_split(index, test_size=fraction, stratify=embedded.train.y, random_state=seed)
    return _take(embedded.train, fit), _take(embedded.train, select)


def _take(part: Part, index: np.ndarray) -> Part:
    return Part(part.x[index], part.y[index], [part.texts[i] for i in index] if part.texts is not None else None)
