"""Structural memory: an append-only concept tree on frozen encoders, and its class-incremental benchmark.

    >>> from plasticity.memory import StructuralMemory
    >>> memory = StructuralMemory(tolerance=3.0).partial_fit(X_task1, y_task1)   # doctest: +SKIP
    >>> memory.partial_fit(X_task2, y_task2)          # new classes: nothing earlier is rewritten
    >>> memory.predict(X)                             # labels, or -1 ("unknown") outside every concept
    >>> print(memory.explain(X[:1])[0])               # path, distances, radii, nearest exemplars

See docs/memory.md for the definitions (minimal evolution threshold, radius, tolerance,
abstention score) and the measured results.
"""

from __future__ import annotations

from pathlib import Path

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
    "continual_demo",
]


def continual_demo(out_dir: str | Path, progress: bool = True) -> Path:
    """The quick class-incremental run of `plasticity demo`: digits (raw pixels), 5 tasks of 2
    classes, task orders 0, 1, 2, every method; writes the `continual` command's files into
    out_dir and returns the path of its summary.json. A folder that already holds the results of
    the same configuration is reused as it is.
    """
    import json

    from plasticity.memory.experiment import RESULTS, SUMMARY, ContinualConfig, run_continual, write_outputs

    config = ContinualConfig(data="digits", tasks=5, seeds=3)
    out = Path(out_dir)
    try:
        done = json.loads((out / RESULTS).read_text(encoding="utf-8"))["config"] == config.to_dict() and (out / SUMMARY).exists()
    except (OSError, ValueError, KeyError):
        done = False
    if done:
        return out / SUMMARY
    return write_outputs(run_continual(config, progress=progress), out)
