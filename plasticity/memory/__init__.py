"""Structural memory: an append-only concept tree on frozen encoders (the estimator, its file format
and the encoders; the class-incremental benchmark is `plasticity.lab.continual`).

    >>> from plasticity.memory import StructuralMemory
    >>> memory = StructuralMemory(tolerance=3.0).partial_fit(X_task1, y_task1)   # doctest: +SKIP
    >>> memory.partial_fit(X_task2, y_task2)          # new classes: nothing earlier is rewritten
    >>> memory.predict(X)                             # labels, or -1 ("unknown") outside every concept
    >>> print(memory.explain(X[:1])[0])               # path, distances, radii, nearest exemplars

See docs/memory.md for the definitions (minimal evolution threshold, radius, tolerance,
abstention score) and the measured results.
"""

from __future__ import annotations

from plasticity.memory.encoders import CachedEncoder, Encoder, NetworkEncoder, PassThrough, SentenceEncoder
from plasticity.memory.persist import MemoryFileError
from plasticity.memory.structural import StructuralMemory

__all__ = [
    "CachedEncoder",
    "Encoder",
    "MemoryFileError",
    "NetworkEncoder",
    "PassThrough",
    "SentenceEncoder",
    "StructuralMemory",
]
