"""File helpers shared by the loaders: the cache directory and md5 sums.

Files are written with `plasticity.io.atomic_write` (temp file in the destination folder +
`os.replace`), so an interrupted download or cache write never leaves a half-written file
under the final name.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from plasticity.data.errors import DataError

CACHE_ENV = "PLASTICITY_CACHE"
"""Environment variable naming the cache directory (default ~/.cache/plasticity)."""

_CHUNK = 1 << 20


def default_cache_dir() -> Path:
    """`$PLASTICITY_CACHE` if set, else ~/.cache/plasticity."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "plasticity"


def md5_of(path: Path) -> str:
    """Hex md5 of a file, read in 1 MiB chunks (MNIST's 47 MB never sits in memory twice)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_md5(path: Path, expected: str) -> str:
    """Return the file's md5, or raise DataError if it is not `expected`."""
    actual = md5_of(path)
    if actual != expected:
        raise DataError(
            f"{path}: md5 is {actual}, expected {expected}. The file is damaged or a different "
            "version; delete it and download it again (download=True) or copy a good one in its place."
        )
    return actual
